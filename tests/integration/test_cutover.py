"""``ferry migrate --cutover`` (issue 12): the source Harbor frozen in read-only mode for the final pass.

Sources are small Harbor test servers seeded by skopeo; the read-only mode is read from the server
itself (``HarborServer.read_only``, what its ``/configurations`` answers), and a write to a frozen
source is tried through its API.
"""

from __future__ import annotations

import base64
import json
import signal
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.cli import FerryCLI, FerryResult, Running
from tests.support.faultproxy import FaultProxy, Rule, Stall
from tests.support.harbor import API, HarborServer
from tests.support.harbor_marks import HARBOR_TESTS, Factory
from tests.support.harbor_seed import HarborSeeder
from tests.support.registry import Registry

pytest_plugins = ["tests.support.harbor_fixtures"]
pytestmark = HARBOR_TESTS


def seeded_source(harbor_factory: Factory, work: Path) -> HarborServer:
    src = harbor_factory()
    seeder = HarborSeeder(src, work)
    seeder.project("alpha")
    seeder.image("alpha/app:v1", seed=1)
    seeder.image("alpha/app:v2", seed=2)
    return src


def args(src_url: str, dst_url: str, tmp: Path, *extra: str, user: str = "admin") -> list[str]:
    return ["migrate", src_url, dst_url, "--src-creds", user, "--dest-creds", "admin", "--no-config",
            "--retries", "0", "--journal", str(tmp / "journal.db"), "--cutover", *extra]


def env(src: HarborServer, dst: HarborServer, password: str | None = None) -> dict[str, str]:
    return {"FERRY_SRC_PASSWORD": password or src.admin_creds[1], "FERRY_DEST_PASSWORD": dst.admin_creds[1]}


def cutover(cli: FerryCLI, src: HarborServer, dst: HarborServer, tmp: Path, *extra: str) -> FerryResult:
    return cli.run(*args(src.url, dst.url, tmp, *extra), env=env(src, dst), timeout=300)


def create_project(server: HarborServer, name: str) -> int:
    """A write through the API, as a client of the source would try it: the answer's status."""
    auth = base64.b64encode(":".join(server.admin_creds).encode()).decode()
    req = urllib.request.Request(server.url + API + "/projects", method="POST",
                                 data=json.dumps({"project_name": name}).encode(),
                                 headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def writes(server: HarborServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in list(server.request_log) if r.method not in ("GET", "HEAD")]


def test_cutover_leaves_a_read_only_verified_source_and_says_where_clients_go(
    harbor_factory: Factory, tmp_path: Path
) -> None:
    src, dst = seeded_source(harbor_factory, tmp_path / "seed"), harbor_factory()
    cli = FerryCLI(tmp_path / "cli")

    plan = cutover(cli, src, dst, tmp_path, "--dry-run")
    assert plan.returncode == 0, plan
    assert f"would put source Harbor {src.host} in read-only mode (now writable)" in plan.stderr
    assert src.read_only is False and writes(dst) == []

    done = cutover(cli, src, dst, tmp_path, "--report", str(tmp_path / "r.json"))
    assert done.returncode == 0, done
    assert src.read_only is True
    assert create_project(src, "late") == 403  # the frozen source refuses writes
    assert f"cutover complete: source Harbor {src.host} is read-only; 2 tags and digests verified" in done.out
    assert f"{src.host}/alpha/… → {dst.host}/alpha/…" in done.out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verification"] == {"checked": 2, "mismatches": []}
    assert sorted(j["status"] for j in report["jobs"]) == ["copied", "copied"]
    assert report["cutover"]["source_read_only"] is True and report["cutover"]["was_read_only"] is False
    assert {"from": f"{src.host}/alpha", "to": f"{dst.host}/alpha"} in report["cutover"]["switch"]


def test_a_failing_final_pass_restores_the_previous_mode_unless_keep_read_only(
    harbor_factory: Factory, tmp_path: Path
) -> None:
    src, dst = seeded_source(harbor_factory, tmp_path / "seed"), harbor_factory()
    target = HarborSeeder(dst, tmp_path / "dst")
    target.project("alpha")
    target.image("alpha/app:v1", seed=50)  # another digest under the same tag, protected
    dst.add_immutable_rule("alpha", repositories="**", tags="v1")
    cli = FerryCLI(tmp_path / "cli")

    stopped = cutover(cli, src, dst, tmp_path)  # the pre-flight check fails the pass
    assert stopped.returncode == 8, stopped
    assert f"cutover failed: source Harbor {src.host} is writable again" in stopped.stderr
    assert src.read_only is False

    failed = cutover(cli, src, dst, tmp_path, "--ignore-preflight")  # the copy itself fails
    assert failed.returncode == 1, failed
    assert "1 image(s) refused by an immutable tag rule" in failed.stderr
    assert f"source Harbor {src.host} is writable again" in failed.stderr
    assert src.read_only is False
    assert create_project(src, "still-open") == 201

    kept = cutover(cli, src, dst, tmp_path, "--ignore-preflight", "--keep-read-only")
    assert kept.returncode == 1, kept
    assert f"source Harbor {src.host} left read-only (--keep-read-only)" in kept.stderr
    assert src.read_only is True


def test_a_signal_during_the_final_pass_restores_the_mode_and_exits_non_zero(
    harbor_factory: Factory, tmp_path: Path
) -> None:
    src, dst = seeded_source(harbor_factory, tmp_path / "seed"), harbor_factory()
    cli = FerryCLI(tmp_path / "cli")
    with FaultProxy(dst.url) as px:
        (rule,) = px.add(Rule(Stall(), "PUT", r"/manifests/"))  # the final pass held at its first push
        running: Running = cli.start(*args(src.url, px.url, tmp_path), env=env(src, dst))
        assert rule.fired.wait(120), "the final pass never pushed"
        assert src.read_only is True
        running.proc.send_signal(signal.SIGINT)
        result = running.wait(timeout=120)
    assert result.returncode == 7, result
    assert result.error == "ferry: cutover interrupted by SIGINT"
    assert f"source Harbor {src.host} is writable again" in result.stderr
    assert src.read_only is False


def test_a_non_admin_non_harbor_or_watched_cutover_is_refused_before_anything_is_copied(
    harbor_factory: Factory, registry: Registry, tmp_path: Path
) -> None:
    src, dst = harbor_factory(), harbor_factory()
    src.add_user("dev", "Dev12345")
    src.create_project("alpha", members={"dev": "developer"})
    cli = FerryCLI(tmp_path / "cli")

    refused = cli.run(*args(src.url, dst.url, tmp_path, user="dev"), env=env(src, dst, "Dev12345"))
    assert refused.returncode == 3, refused
    assert refused.error == (f"ferry: source Harbor {src.host}: user 'dev' is not a Harbor administrator and may "
                             "not set the system setting read_only (use an administrator account for --cutover)")
    assert writes(dst) == [] and writes(src) == [] and src.read_only is False
    assert not any(r.path.startswith("/v2/") for r in list(src.request_log))  # nothing listed, nothing pulled

    plain, watched, alone = cli.run_many([args(registry.url, dst.url, tmp_path),
                                          args(src.url, dst.url, tmp_path, "--watch", "5"),
                                          ["migrate", src.url, dst.url, "--keep-read-only"]], env=env(src, dst))
    assert plain.returncode == 2, plain
    assert f"--cutover puts the source Harbor in read-only mode, and {registry.host} is not a Harbor" in plain.error
    assert writes(dst) == []
    assert watched.returncode == 2 and "--watch repeats passes" in watched.error, watched
    assert alone.returncode == 2 and alone.error == "ferry: --keep-read-only goes with --cutover", alone
