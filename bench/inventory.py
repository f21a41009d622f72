"""Inventory benchmark: how long ferry takes to inventory a big Harbor, and how many API requests
it spends doing so against the pages the listing needs.

A source Harbor test server (:mod:`tests.support.harbor`: Harbor's API v2.0 in front of a real
``docker-registry``) is seeded with 50 projects, 2,000 repositories and 10,000 tags (five per
repository, each its own artifact): one real image pushed by skopeo, its annotation variants PUT
beside it, and every other repository filled by blob mounts and manifest PUTs
(:func:`tests.support.harbor_seed.seed_scale_source`). An empty destination Harbor is started too,
because a migration's preparation also plans the destination projects.

Then ``Migration.prepare()`` (credential checks, the inventory, the project plan: exactly what
``ferry migrate`` does before copying) runs in its own Python process, as the real command would,
so that the server threads of this process do not share its interpreter. The source server's
request log says what ferry asked for; the seeding record says how many pages at page size 100
the lists take. Target (issue 4): inventory requests ≤ pages + 1 credential check.

    python -m bench.inventory                 # 3 runs, figures printed
    python -m bench.inventory --reps 1 --json

``run_inventory_bench(workdir)`` returns the figures as a dict (for ``bench/run.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import bench  # puts the repository root on sys.path
from tests.support.harbor import API, HarborServer, RequestRecord
from tests.support.harbor_seed import seed_scale_source

PROJECTS = 50
REPOSITORIES = 2_000
TAGS = 10_000

# Runs in a child process: Migration.prepare() against both servers, timed; prints JSON.
_PREPARE = r"""
import asyncio, json, os, sys, time
from ferry.migration import Migration, MigrationOptions, SideOptions

async def main() -> dict:
    options = MigrationOptions(
        source=SideOptions(sys.argv[1], "admin", password_env="FERRY_SRC_PASSWORD"),
        destination=SideOptions(sys.argv[2], "admin", password_env="FERRY_DEST_PASSWORD"),
    )
    migration = Migration(options)
    try:
        start = time.perf_counter()
        outcome = await migration.prepare()
        seconds = time.perf_counter() - start
    finally:
        await migration.close()
    plan = outcome.plan
    return {
        "seconds": seconds,
        "projects": len(plan.projects),
        "repositories": sum(len(r) for r in plan.repositories.values()),
        "jobs": len(plan.jobs),
        "distinct_digests": len(plan.sizes),
        "inventory_requests": outcome.inventory_requests,
    }

print(json.dumps(asyncio.run(main())))
"""


# Runs in a child process: the same GET requests replayed by a bare aiohttp client, 8 at a time (the
# inventory's listing concurrency), bodies read in full: what the server alone needs for the work.
_REPLAY = r"""
import asyncio, base64, json, sys, time
import aiohttp

async def main() -> float:
    base, user, password = sys.argv[1:4]
    paths = json.load(sys.stdin)
    auth = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),
            "Accept": "application/json"}
    gate = asyncio.Semaphore(8)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        async def one(path: str) -> None:
            async with gate, session.get(base + path, headers=auth) as resp:
                await resp.read()
                assert resp.status == 200, (resp.status, path)
        start = time.perf_counter()
        await asyncio.gather(*(one(p) for p in paths))
        return time.perf_counter() - start

print(json.dumps(asyncio.run(main())))
"""


def _kind(record: RequestRecord) -> str:
    """What a source request was for."""
    path = record.path
    if path.startswith(API + "/"):
        rest = path[len(API) + 1 :]
        if rest == "projects":
            return "project pages"
        if re.fullmatch(r"projects/[^/]+/repositories", rest):
            return "repository pages"
        if re.fullmatch(r"projects/[^/]+/repositories/[^/]+/artifacts", rest):
            return "artifact pages"
        if rest == "users/current":
            return "credential check"
        if rest == "quotas":
            return "quotas"
        return f"API {rest.split('/')[0]}"
    return "registry (/v2/, token)"


def _env() -> dict[str, str]:
    return {**os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(bench.ROOT / "src"), os.environ.get("PYTHONPATH", "")]))}


def _replay(src: HarborServer, records: list[RequestRecord]) -> float:
    """Seconds a bare client needs for the same API GETs (the server's own floor)."""
    paths = [r.path + (f"?{r.query}" if r.query else "") for r in records if r.method == "GET"
             and r.path.startswith(API + "/")]
    proc = subprocess.run([sys.executable, "-c", _REPLAY, src.url, *src.admin_creds], input=json.dumps(paths),
                          env=_env(), capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"replay failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return float(proc.stdout.strip().splitlines()[-1])


def _prepare_once(src: HarborServer, dst: HarborServer) -> tuple[dict[str, Any], Counter[str]]:
    src.reset_counts()
    env = {
        **_env(),
        "FERRY_SRC_PASSWORD": src.admin_creds[1],
        "FERRY_DEST_PASSWORD": dst.admin_creds[1],
    }
    proc = subprocess.run([sys.executable, "-c", _PREPARE, src.url, dst.url], env=env, capture_output=True,
                          text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"Migration.prepare() failed ({proc.returncode}): {proc.stderr[-2000:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    return figures, Counter(_kind(r) for r in list(src.request_log))


def run_inventory_bench(workdir: Path | str, *, reps: int = 3, projects: int = PROJECTS,
                        repositories: int = REPOSITORIES, tags: int = TAGS) -> dict[str, Any]:
    """Seed, then time ``Migration.prepare()`` ``reps`` times; the figures as a dict."""
    workdir = Path(workdir)
    with HarborServer(workdir / "source") as src, HarborServer(workdir / "destination") as dst:
        start = time.perf_counter()
        seeded = seed_scale_source(src, workdir, projects=projects, repositories=repositories, tags=tags)
        seed_seconds = time.perf_counter() - start
        need = seeded.inventory_pages()
        pages_needed = sum(need.values())
        load = os.getloadavg()[0]
        runs = []
        replays = []
        for _ in range(reps):
            runs.append(_prepare_once(src, dst))
            replays.append(_replay(src, list(src.request_log)))

    seconds = [f["seconds"] for f, _ in runs]
    figures, counts = runs[-1]
    counts_list = [sum(c.values()) for _, c in runs]
    inventory = sum(counts[k] for k in ("project pages", "repository pages", "artifact pages", "credential check",
                                       "registry (/v2/, token)"))
    total = sum(counts.values())
    n_tags = sum(len(t) for t in seeded.tags.values())
    result: dict[str, Any] = {
        "source": {
            "projects": len(seeded.server_projects()),
            "repositories": len(seeded.repositories()),
            "tags": n_tags,
            "artifacts": sum(seeded.listed_artifacts(r) for r in seeded.repositories()),
        },
        "seed_seconds": round(seed_seconds, 1),
        "reps": reps,
        "prepare_seconds": [round(s, 2) for s in seconds],
        "prepare_seconds_median": round(statistics.median(seconds), 2),
        "tags_per_second": round(n_tags / statistics.median(seconds)),
        "replay_seconds": [round(s, 2) for s in replays],
        "replay_seconds_median": round(statistics.median(replays), 2),
        "load1_at_start": round(load, 2),
        "plan": {k: figures[k] for k in ("projects", "repositories", "distinct_digests", "jobs")},
        "pages_needed": {**need, "total": pages_needed},
        "requests_by_kind": dict(sorted(counts.items())),
        "requests_total": total,
        "requests_total_each_run": counts_list,
        "ferry_counted_inventory_requests": figures["inventory_requests"],  # MigrationOutcome.inventory_requests
        "inventory_requests": inventory,  # credential check + every list page (+ registry side, if any)
        "project_plan_requests": total - inventory,  # quotas read for the destination projects
        "target": pages_needed + 1,
        "inventory_meets_target": inventory <= pages_needed + 1,
        "total_meets_target": total <= pages_needed + 1,
    }
    return result


def _print(r: dict[str, Any]) -> None:
    s = r["source"]
    print(f"source: {s['projects']} projects, {s['repositories']} repositories, {s['tags']} tags, "
          f"{s['artifacts']} artifacts (seeded in {r['seed_seconds']} s)")
    print(f"Migration.prepare(): median {r['prepare_seconds_median']} s over {r['reps']} run(s) "
          f"{r['prepare_seconds']}, {r['tags_per_second']} tags/s; plan {r['plan']}")
    print(f"the same API GETs replayed by a bare aiohttp client, 8 at a time: median {r['replay_seconds_median']} s "
          f"{r['replay_seconds']} (the test server's own floor); load average at start {r['load1_at_start']}")
    need = r["pages_needed"]
    print(f"pages needed at page size 100: {need['total']} (projects {need['projects']}, repositories "
          f"{need['repositories']}, artifacts {need['artifacts']}); target ≤ {r['target']} requests")
    for kind, n in r["requests_by_kind"].items():
        print(f"  {kind:24} {n:6}")
    print(f"requests to the source: {r['requests_total']} (each run: {r['requests_total_each_run']}); "
          f"inventory {r['inventory_requests']} → target {'met' if r['inventory_meets_target'] else 'MISSED'}; "
          f"with the project plan's quota reads {r['requests_total']} → "
          f"{'met' if r['total_meets_target'] else 'over by ' + str(r['requests_total'] - r['target'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inventory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--projects", type=int, default=PROJECTS)
    parser.add_argument("--repositories", type=int, default=REPOSITORIES)
    parser.add_argument("--tags", type=int, default=TAGS)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the servers' files here")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ferry-bench-inventory-") as tmp:
        result = run_inventory_bench(args.workdir or tmp, reps=args.reps, projects=args.projects,
                                     repositories=args.repositories, tags=args.tags)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
