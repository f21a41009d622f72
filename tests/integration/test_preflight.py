"""Pre-flight checks and refusals during a copy (issue 12), Harbor to Harbor.

One destination Harbor is set up to trip every check at once, each in a project of its own: a quota
smaller than the image (``full``), an immutable rule on an existing tag with another digest
(``frozen``), a user who is only a guest (``guest``), and the whole Harbor in read-only mode; ``fine``
trips nothing. The destination user is not an administrator. The source is seeded by skopeo; its
project ``signed`` requires cosign signatures on pull, and its image has none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.cli import FerryCLI, FerryResult
from tests.support.harbor import HarborServer
from tests.support.harbor_http import api
from tests.support.harbor_marks import HARBOR_TESTS, Factory
from tests.support.harbor_seed import HarborSeeder

if TYPE_CHECKING:  # the plugin module must not be imported before pytest loads it
    from tests.support.harbor_spec import Spec

pytest_plugins = ["tests.support.harbor_fixtures", "tests.support.harbor_spec"]
pytestmark = HARBOR_TESTS

PROJECTS = ("full", "frozen", "guest", "fine")


def tripping_pair(harbor_factory: Factory, work: Path) -> tuple[HarborServer, HarborServer, dict[str, str]]:
    src, dst = harbor_factory(), harbor_factory()
    source = HarborSeeder(src, work / "src")
    for n, project in enumerate(PROJECTS):
        source.project(project)
        source.image(f"{project}/app:v1", seed=n + 1)
    source.project("signed", metadata={"enable_content_trust_cosign": "true"})
    source.image("signed/app:v1", seed=9)
    dst.add_user("mover", "Mover12345")
    target = HarborSeeder(dst, work / "dst")
    target.project("full", storage_limit=100)
    target.project("frozen")
    target.image("frozen/app:v1", seed=50)  # the same tag, another digest
    dst.add_immutable_rule("frozen", repositories="app", tags="v*")
    target.project("guest")
    target.project("fine")
    target.project("signed")
    for project in (*PROJECTS, "signed"):
        dst.add_member(project, "mover", "guest" if project == "guest" else "developer")
    dst.read_only = True
    return src, dst, source.seeded.tags["fine/app"]


def migrate(cli: FerryCLI, src: HarborServer, dst: HarborServer, *extra: str) -> FerryResult:
    env = {"FERRY_SRC_PASSWORD": src.admin_creds[1], "FERRY_DEST_PASSWORD": "Mover12345"}
    return cli.run("migrate", src.url, dst.url, "--src-creds", "admin", "--dest-creds", "mover", "--no-config",
                   "--retries", "0", *extra, env=env, timeout=300)


def writes(server: HarborServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in list(server.request_log) if r.method not in ("GET", "HEAD")]


def test_each_check_fires_before_any_copy_and_the_override_meets_refusals_grouped_by_cause(
    harbor_factory: Factory, tmp_path: Path, spec: Spec
) -> None:
    src, dst, fine = tripping_pair(harbor_factory, tmp_path / "seed")
    # what the quota check reads: a member sees the quota in the project summary, as on Harbor
    status, _, summary = api(dst, "/projects/full/summary", ("mover", "Mover12345"))
    assert status == 200, summary
    spec.check("ProjectSummary", summary)
    assert summary["quota"] == {"hard": {"storage": 100}, "used": {"storage": 0}}
    cli = FerryCLI(tmp_path / "cli")
    journal = ("--journal", str(tmp_path / "journal.db"))

    plan = migrate(cli, src, dst, "--dry-run", "--report", str(tmp_path / "plan.json"))
    assert plan.returncode == 0, plan
    assert "pre-flight read-only: destination Harbor" in plan.out and "Repository Read Only" in plan.out
    assert "pre-flight quota: up to" in plan.out and "into full, which has 100 bytes left" in plan.out
    assert "pre-flight immutable: frozen/app:v1 exists at the destination" in plan.out
    assert "pre-flight push: user 'mover' may not push to destination project guest" in plan.out
    assert "pre-flight: 4 finding(s) would stop the run" in plan.out
    found = json.loads((tmp_path / "plan.json").read_text())["preflight"]
    assert sorted((f["check"], f["project"]) for f in found) == [
        ("immutable", "frozen"), ("push", "guest"), ("quota", "full"), ("read-only", "")]
    assert all(f["fix"] for f in found)

    dst.reset_counts()
    stopped = migrate(cli, src, dst, *journal)
    assert stopped.returncode == 8, stopped
    assert stopped.error.startswith("ferry: pre-flight: the destination would refuse the run (4 finding(s)")
    assert "--ignore-preflight" in stopped.error
    assert "fix: make 'mover' a developer" in stopped.stderr
    assert writes(dst) == []  # stopped before anything was written

    # read-only: every push refused; the unsigned image already refused by the source on pull
    ro = migrate(cli, src, dst, *journal, "--ignore-preflight", "--report", str(tmp_path / "ro.json"))
    assert ro.returncode == 1, ro
    report = json.loads((tmp_path / "ro.json").read_text())
    assert report["summary"]["refused"] == {"read-only": 4, "policy": 1}, report["refusals"]  # before any role
    assert "4 image(s) refused: Harbor is in read-only mode" in ro.stderr
    assert "DENIED The system is in read only mode" in report["refusals"]["read-only"][0]["reason"]

    dst.read_only = False
    run = migrate(cli, src, dst, *journal, "--ignore-preflight", "--report", str(tmp_path / "run.json"))
    assert run.returncode == 1, run
    report = json.loads((tmp_path / "run.json").read_text())
    refusals = report["refusals"]
    assert report["summary"]["refused"] == {"immutable": 1, "quota": 1, "policy": 1}, refusals
    assert refusals["quota"][0]["destination"].endswith("/full/app:v1")
    assert "will exceed the configured upper limit of 100.0 B" in refusals["quota"][0]["reason"]
    assert refusals["immutable"][0]["destination"].endswith("/frozen/app:v1")
    assert "configured as immutable" in refusals["immutable"][0]["reason"]
    assert refusals["policy"][0]["source"].endswith("/signed/app:v1")
    assert "PROJECTPOLICYVIOLATION The image is not signed in Cosign." in refusals["policy"][0]["reason"]
    assert "1 image(s) refused by a project quota" in run.stderr
    assert "1 image(s) refused by an immutable tag rule" in run.stderr
    assert "1 image(s) refused by a project policy (content trust, vulnerability prevention)" in run.stderr
    by_destination = {j["destination"].split("/", 1)[1]: j for j in report["jobs"]}
    assert by_destination["fine/app:v1"]["status"] == "copied"  # the rest continued
    assert by_destination["fine/app:v1"]["digest"] == fine["v1"]
    assert by_destination["guest/app:v1"]["status"] == "failed"
