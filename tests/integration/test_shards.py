"""``ferry migrate --shard I/N`` (issue 15): three shards run side by side against the test Harbor
leave the destination a single run leaves; ``ferry report merge`` counts every image once; a shard
killed with SIGKILL and run again completes its part, and ``ferry verify`` over the whole migration
then passes. The source is the migration tests' Harbor (tests/support/harbor_seed.py), written by
skopeo; destinations are read from their registry storage, not through ferry.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import FerryCLI
from tests.support.harbor import HarborServer
from tests.support.harbor_fixtures import require_registry
from tests.support.harbor_seed import Seeded, seed_migration_source

pytest_plugins = ["tests.support.harbor_fixtures"]

# harbor_factory skips without docker-registry; the source is seeded with skopeo
pytestmark = [pytest.mark.integration, pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs skopeo")]

Factory = Callable[..., HarborServer]
SHARDS = 3


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    require_registry()
    work = tmp_path_factory.mktemp("harbor-source")
    with HarborServer(work / "server") as server:
        yield seed_migration_source(server, work, filler_projects=4)


@pytest.fixture
def cli(tmp_path: Path) -> FerryCLI:
    return FerryCLI(tmp_path / "cli")


def env(src: HarborServer, dst: HarborServer) -> dict[str, str]:
    return {"FERRY_SRC_PASSWORD": src.creds("admin")[1], "FERRY_DEST_PASSWORD": dst.creds("admin")[1]}


def args(src: HarborServer, dst: HarborServer, tmp: Path, name: str, *extra: str) -> list[str]:
    # images only: configuration (issue 10) is migrated by shard 0 alone and tested with migrate itself
    return ["migrate", src.url, dst.url, "--src-creds", "admin", "--dest-creds", "admin", "--include-untagged",
            "--no-config", "--quiet", "--journal", str(tmp / f"journal-{name}.db"),
            "--report", str(tmp / f"report-{name}.json"), *extra]


def contents(server: HarborServer) -> dict[str, Any]:
    """What a destination holds: projects with their settings, and per repository its tags (with
    digests) and every manifest digest (untagged and accessories included)."""
    projects = {name: (p.public, p.storage_limit) for name, p in server.projects.items()}
    repos = {}
    for name in server.storage.repo_names(projects):
        view = server.storage.repo_view(name)
        assert view is not None
        repos[name] = ({t: d for t, (d, _) in view.tags.items()}, sorted(view.artifacts))
    return {"projects": projects, "repositories": repos}


def image(job: dict[str, Any]) -> tuple[str, str]:
    """A job's image: its source and its destination without the host (destinations differ by port)."""
    return job["source"], job["destination"].partition("/")[2]


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_three_concurrent_shards_equal_one_run_and_merge_counts_each_image_once(
    source: Seeded, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    src, single, sharded = source.server, harbor_factory(), harbor_factory()
    whole = cli.run(*args(src, single, tmp_path, "single"), env=env(src, single), timeout=300)
    assert whole.returncode == 0, whole

    runs = cli.run_many([args(src, sharded, tmp_path, f"s{i}", "--shard", f"{i}/{SHARDS}") for i in range(SHARDS)],
                        env=env(src, sharded), timeout=300)
    assert [r.returncode for r in runs] == [0] * SHARDS, "\n".join(map(str, runs))

    assert contents(sharded) == contents(single)
    assert len(contents(sharded)["repositories"]) > 100

    shard_jobs = [{(j["source"], j["destination"]) for j in load(tmp_path / f"report-s{i}.json")["jobs"]}
                  for i in range(SHARDS)]
    assert all(shard_jobs), "every shard had work"
    assert sum(map(len, shard_jobs)) == len(set().union(*shard_jobs))  # no image in two shards

    merged_path = tmp_path / "merged.json"
    merged = cli.run("report", "merge", *(str(tmp_path / f"report-s{i}.json") for i in range(SHARDS)),
                     "-o", str(merged_path))
    assert merged.returncode == 0, merged
    m, one = load(merged_path), load(tmp_path / "report-single.json")
    assert {image(j) for j in m["jobs"]} == {image(j) for j in one["jobs"]}
    assert m["summary"]["jobs"] == one["summary"]["jobs"] == len(m["jobs"])
    assert m["summary"]["copied"] + m["summary"]["skipped"] == one["summary"]["jobs"]
    assert m["summary"]["failed"] == 0
    assert m["verification"] == {"checked": one["verification"]["checked"], "mismatches": []}
    assert m["shards"] == {"count": SHARDS, "merged": [0, 1, 2], "missing": []}
    assert {p["name"] for p in m["projects"]} == {p["name"] for p in one["projects"]}

    # a shard's report missing from the merge is an error, not a smaller total
    partial = cli.run("report", "merge", str(tmp_path / "report-s0.json"), str(tmp_path / "report-s2.json"))
    assert partial.returncode == 1 and "shard(s) 1 of 3 missing" in partial.error, partial
    twice = cli.run("report", "merge", str(tmp_path / "report-s0.json"), str(tmp_path / "report-s0.json"))
    assert twice.returncode == 2 and "both shard 0/3" in twice.error, twice


def test_a_shard_killed_and_restarted_completes_its_part(
    source: Seeded, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    src, dst = source.server, harbor_factory()
    victim = args(src, dst, tmp_path, "s1", "--shard", f"1/{SHARDS}", "--proc", "2")
    running = cli.start(*victim, env=env(src, dst))
    deadline = time.monotonic() + 120
    while not any(r.method == "PUT" and "/manifests/" in r.path for r in list(dst.request_log)):
        assert running.proc.poll() is None, running.wait()
        assert time.monotonic() < deadline, "the shard never wrote a manifest"
        time.sleep(0.02)
    assert running.proc.poll() is None, "the shard finished before the kill"
    os.kill(running.proc.pid, signal.SIGKILL)
    assert running.wait().returncode == -signal.SIGKILL

    again = cli.run(*victim, env=env(src, dst), timeout=300)
    assert again.returncode == 0, again
    report = load(tmp_path / "report-s1.json")
    assert report["shard"] == {"index": 1, "count": SHARDS}
    assert report["summary"]["failed"] == 0 and report["verification"]["mismatches"] == []
    # what the killed run had copied is found in place: by the listings (incremental) or by a check
    found = report["summary"]["skipped"] + report.get("incremental", {}).get("unchanged", 0)
    assert found > 0, "the rerun found what the killed run had copied"

    # the other shards, then one verification of the whole migration
    others = cli.run_many([args(src, dst, tmp_path, f"s{i}", "--shard", f"{i}/{SHARDS}") for i in (0, 2)],
                          env=env(src, dst), timeout=300)
    assert [r.returncode for r in others] == [0, 0], "\n".join(map(str, others))
    check = cli.run("verify", src.url, dst.url, "--src-creds", "admin", "--dest-creds", "admin",
                    "--include-untagged", "--report", str(tmp_path / "verify.json"), env=env(src, dst), timeout=300)
    assert check.returncode == 0, check
    assert load(tmp_path / "verify.json")["verification"]["checked"] == sum(
        load(tmp_path / f"report-s{i}.json")["verification"]["checked"] for i in range(SHARDS))
