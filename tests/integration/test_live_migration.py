"""Live migration, Harbor to Harbor (issue 12): incremental reruns by the two listings, push order kept.

The source is a small Harbor test server seeded by skopeo (never by ferry): two projects, repositories
with several tags pushed one after the other, a retag, a cosign signature, an index and an untagged
artifact. Each test migrates into an empty destination Harbor with the real ``ferry`` command and checks
the destination through its own API and registry, and the cost of a rerun through both servers'
request logs.
"""

from __future__ import annotations

import base64
import json
import shutil
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import FerryCLI, FerryResult
from tests.support.harbor import API, HarborServer
from tests.support.harbor_seed import HarborSeeder, Seeded

pytest_plugins = ["tests.support.harbor_fixtures"]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is not installed"),
    pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed"),
]

Factory = Callable[..., HarborServer]
REPOS = ("alpha/app", "alpha/team/tool", "beta/svc")


def seed(server: HarborServer, work: Path) -> tuple[HarborSeeder, Seeded]:
    s = HarborSeeder(server, work)
    s.project("alpha")
    s.project("beta", public=True)
    for n, repo in enumerate(REPOS):
        for i in range(4):
            s.image(f"{repo}:v{i}", seed=100 * n + i)
    s.retag("alpha/app", "v1", ["stable"])  # pushed last: the newest tag of alpha/app
    s.cosign_signature("alpha/app", s.seeded.tags["alpha/app"]["v0"])
    s.image("alpha/app", seed=99)  # untagged
    s.index("beta/multi:1", seed=98)
    return s, s.seeded


def migrate(cli: FerryCLI, src: HarborServer, dst: HarborServer, tmp: Path, *extra: str) -> FerryResult:
    env = {"FERRY_SRC_PASSWORD": src.admin_creds[1], "FERRY_DEST_PASSWORD": dst.admin_creds[1]}
    return cli.run("migrate", src.url, dst.url, "--src-creds", "admin", "--dest-creds", "admin", "--include-untagged",
                   "--journal", str(tmp / "journal.db"), "--quiet", *extra, env=env, timeout=300)


def api_call(server: HarborServer, path: str, method: str = "GET") -> Any:
    auth = base64.b64encode(":".join(server.admin_creds).encode()).decode()
    req = urllib.request.Request(server.url + API + path, method=method, headers={"Authorization": f"Basic {auth}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
    return json.loads(body) if body else None


def artifacts_path(repo: str) -> str:
    project, _, inner = repo.partition("/")
    return f"/projects/{project}/repositories/{inner.replace('/', '%252F')}/artifacts"


def tag_times(server: HarborServer, repo: str) -> dict[str, str]:
    """Every tag of ``repo`` with its push time, from the server's Harbor API."""
    out = {}
    for art in api_call(server, f"{artifacts_path(repo)}?with_tag=true&page_size=100"):
        for t in art.get("tags") or []:
            out[t["name"]] = t["push_time"]
    return out


def per_image_requests(server: HarborServer) -> list[str]:
    """Registry requests that name one image: manifests, blobs, tag lists."""
    return [f"{r.method} {r.path}" for r in list(server.request_log)
            if r.path.startswith("/v2/") and any(k in r.path for k in ("/manifests/", "/blobs/", "/tags/list"))]


@pytest.fixture
def cli(tmp_path: Path) -> FerryCLI:
    return FerryCLI(tmp_path / "cli")


def test_rerun_touches_only_what_differs_and_a_noop_rerun_costs_only_listings(
    harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    src, dst = harbor_factory(), harbor_factory()
    seeder, seeded = seed(src, tmp_path / "seed")
    first = migrate(cli, src, dst, tmp_path, "--report", str(tmp_path / "first.json"))
    assert first.returncode == 0, first
    for repo in REPOS:
        assert set(tag_times(dst, repo)) == set(tag_times(src, repo)), repo

    # nothing new: the listing pages of both sides, no request about any one image, nothing written
    src.reset_counts()
    dst.reset_counts()
    idle = migrate(cli, src, dst, tmp_path, "--report", str(tmp_path / "idle.json"))
    assert idle.returncode == 0, idle
    assert per_image_requests(src) == [] and per_image_requests(dst) == []
    assert [r for r in dst.request_log if r.method != "GET"] == []
    report = json.loads((tmp_path / "idle.json").read_text())
    assert report["summary"]["jobs"] == 0
    assert report["incremental"]["unchanged"] == report["verification"]["checked"] > 15
    assert report["verification"]["mismatches"] == []

    # a push and a moved tag at the source: exactly those two are copied
    new = seeder.image("beta/svc:v9", seed=500)
    seeder.retag("alpha/app", "v2", ["stable"])
    again = migrate(cli, src, dst, tmp_path, "--report", str(tmp_path / "again.json"))
    assert again.returncode == 0, again
    jobs = json.loads((tmp_path / "again.json").read_text())["jobs"]
    assert sorted(j["destination"].rpartition("/")[2] for j in jobs if j["status"] == "copied") == \
        ["app:stable", "svc:v9"]
    assert len(jobs) == 2
    assert tag_times(dst, "beta/svc").keys() >= {"v9"}
    assert seeded.tags["beta/svc"]["v9"] == new


def test_destination_push_times_follow_the_source_order_in_every_repository(
    harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    src, dst = harbor_factory(), harbor_factory()
    seed(src, tmp_path / "seed")
    result = migrate(cli, src, dst, tmp_path, "--proc", "8", "--report", str(tmp_path / "r.json"))
    assert result.returncode == 0, result
    for repo in (*REPOS, "beta/multi"):
        source, dest = tag_times(src, repo), tag_times(dst, repo)
        by_source = sorted(source, key=lambda t: source[t])
        assert len(set(source.values())) == len(source), f"{repo}: source push times not distinct"
        assert [dest[t] for t in by_source] == sorted(dest[t] for t in by_source), (repo, source, dest)
    assert json.loads((tmp_path / "r.json").read_text())["incremental"]["pull_times"] == \
        "start afresh at the destination"


def test_prune_deletes_exactly_what_the_source_lost_inside_the_selection_after_a_dry_run(
    harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    src, dst = harbor_factory(), harbor_factory()
    _, seeded = seed(src, tmp_path / "seed")
    assert migrate(cli, src, dst, tmp_path).returncode == 0
    # at the source: one tag removed, one whole artifact removed, in two projects
    api_call(src, f"{artifacts_path('beta/svc')}/v3/tags/v3", "DELETE")
    api_call(src, f"{artifacts_path('alpha/team/tool')}/{seeded.tags['alpha/team/tool']['v0']}", "DELETE")
    before = {repo: tag_times(dst, repo) for repo in REPOS}

    plan = migrate(cli, src, dst, tmp_path, "--prune", "--dry-run")
    assert plan.returncode == 0, plan
    assert "would delete beta/svc:v3" in plan.out and "prune: 2 to delete" in plan.out
    assert {repo: tag_times(dst, repo) for repo in REPOS} == before  # nothing deleted by a dry run

    only_alpha = migrate(cli, src, dst, tmp_path, "--prune", "--project", "alpha", "--report",
                         str(tmp_path / "alpha.json"))
    assert only_alpha.returncode == 0, only_alpha
    assert "v3" in tag_times(dst, "beta/svc")  # outside the selection: kept
    assert "v0" not in tag_times(dst, "alpha/team/tool")
    assert json.loads((tmp_path / "alpha.json").read_text())["prune"]["deleted"] == 1

    everything = migrate(cli, src, dst, tmp_path, "--prune", "--report", str(tmp_path / "all.json"))
    assert everything.returncode == 0, everything
    for repo in REPOS:
        assert tag_times(dst, repo).keys() == tag_times(src, repo).keys(), repo
    assert json.loads((tmp_path / "all.json").read_text())["prune"] == {
        "planned": ["beta/svc:v3"],
        "deleted": 1, "failed": {}}


def test_watch_picks_up_a_push_between_rounds_and_stops_cleanly_on_sigterm(
    harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    src, dst = harbor_factory(), harbor_factory()
    seeder = HarborSeeder(src, tmp_path / "seed")
    seeder.project("alpha")
    seeder.image("alpha/app:v1", seed=1)
    report = tmp_path / "watch.json"
    env = {"FERRY_SRC_PASSWORD": src.admin_creds[1], "FERRY_DEST_PASSWORD": dst.admin_creds[1]}
    running = cli.start("migrate", src.url, dst.url, "--src-creds", "admin", "--dest-creds", "admin",
                        "--journal", str(tmp_path / "journal.db"), "--report", str(report), "--watch", "1", env=env)

    def wait_for(check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 60
        while not check():
            assert time.monotonic() < deadline, what
            time.sleep(0.1)

    def tags() -> set[str]:
        try:
            return set(tag_times(dst, "alpha/app"))
        except urllib.error.HTTPError:
            return set()

    wait_for(lambda: tags() == {"v1"}, "first round")
    seeder.image("alpha/app:v2", seed=2)
    wait_for(lambda: tags() == {"v1", "v2"}, "a later round picks up the push")
    wait_for(lambda: report.exists() and json.loads(report.read_text())["summary"]["jobs"] == 0, "an idle round")
    running.proc.send_signal(signal.SIGTERM)
    result = running.wait(timeout=60)
    assert result.returncode == 0, result
    rounds = [line for line in result.lines if "round " in line]
    assert len(rounds) >= 3 and "1 copied" in rounds[0] and "watch stopped" in result.stderr
