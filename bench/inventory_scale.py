"""Inventory at scale (issue 14): ``ferry migrate --dry-run`` against a synthetic Harbor of up to
1,000 projects, 100,000 repositories and 1,000,000 tags (:mod:`bench.synthetic_harbor`, its own
process), and the plan of a ``ferry sync`` rules file of as many tags.

For each size it measures ferry (a child process: wall time, CPU seconds and peak RSS from
``os.wait4``), the source server (requests by kind, its CPU seconds over ferry's run), and the server's
own floor: a bare aiohttp client walking the same pages with the inventory's concurrency (8), bodies
parsed as JSON and nothing else. Targets: source requests ≤ pages + 1, ferry's wall ≤ 1.3 × the floor's,
peak RSS ≤ 300 MB; RSS growth is reported per 100,000 tags (the two sizes' difference).

The destination is a second, empty synthetic Harbor: the dry run compares the two listings
(Harbor to Harbor) and asks the destination registry nothing per tag.

    python -m bench.inventory_scale --quick       # 10,000 and 100,000 tags
    python -m bench.inventory_scale               # 100,000 and 1,000,000 tags
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bench
from bench.synthetic_harbor import PASSWORD, USER, Shape

FULL = (Shape(100, 10_000, 100_000), Shape(1000, 100_000, 1_000_000))
QUICK = (Shape(10, 1_000, 10_000), Shape(100, 10_000, 100_000))
CONCURRENCY = 8  # the inventory's bounded_map default

# The floor: the same pages, the same concurrency, nothing but HTTP and json.loads.
_FLOOR = r"""
import asyncio, base64, json, sys, time
from urllib.parse import quote
import aiohttp

base, user, password, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
auth = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

async def main() -> None:
    requests = 0
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(),
                                     connector=aiohttp.TCPConnector(limit=limit)) as s:
        async def pages(path, params=""):
            nonlocal requests
            out, page = [], 1
            while True:
                async with s.get(f"{base}/api/v2.0{path}?page={page}&page_size=100{params}", headers=auth) as r:
                    body = json.loads(await r.read())
                    requests += 1
                    out += body
                    if 'rel="next"' not in r.headers.get("Link", ""):
                        return out
                page += 1

        async def bounded(fn, items):
            it, res = iter(enumerate(items)), [None] * len(items)
            async def worker():
                for i, x in it:
                    res[i] = await fn(x)
            await asyncio.gather(*(worker() for _ in range(min(limit, len(items)))))
            return res

        start = time.perf_counter()
        projects = [p["name"] for p in await pages("/projects")]
        await pages("/quotas", "&reference=project")
        repos = [r["name"] for rs in await bounded(lambda p: pages(f"/projects/{p}/repositories"), projects)
                 for r in rs]
        def art_path(r):
            p, _, inner = r.partition("/")
            return f"/projects/{p}/repositories/{quote(quote(inner, safe=''), safe='')}/artifacts"
        await bounded(lambda r: pages(art_path(r), "&with_tag=true&with_accessory=true"), repos)
        print(json.dumps({"seconds": time.perf_counter() - start, "requests": requests}))

asyncio.run(main())
"""

# The plan of a sync rules file, nothing copied: rules read, tags expanded, the plan checked.
_SYNC_PLAN = r"""
import asyncio, json, sys, time
from ferry.access import AccessMap
from ferry.engine import EngineOptions
from ferry.plan import imagesyncer
from ferry.syncing import Sync

async def main() -> dict:
    start = time.process_time()
    rules = imagesyncer.load_images(sys.argv[1])
    sync = Sync(rules, AccessMap(), EngineOptions())
    try:
        plan = await sync.plan()
    finally:
        await sync.close()
    return {"rules": len(rules), "jobs": len(plan.jobs), "cpu_in_process": time.process_time() - start}

print(json.dumps(asyncio.run(main())))
"""


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(bench.ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


@contextmanager
def synthetic(shape: Shape) -> Iterator[str]:
    """A synthetic Harbor of ``shape`` in its own process; yields its base URL."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.synthetic_harbor", "--projects", str(shape.projects),
                             "--repositories", str(shape.repositories), "--tags", str(shape.tags),
                             "--tags-per-artifact", str(shape.tags_per_artifact)],
                            cwd=bench.ROOT, env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("listening "):
            raise RuntimeError(f"synthetic Harbor did not start: {line!r}")
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(10)


def _call(url: str, path: str, method: str = "GET") -> dict[str, Any]:
    with urllib.request.urlopen(urllib.request.Request(url + path, method=method), timeout=60) as resp:
        return json.loads(resp.read())


def _measured(argv: list[str], env: dict[str, str], *, capture: bool = False) -> dict[str, Any]:
    """A child run with its resource usage (``os.wait4`` on that child alone)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=bench.ROOT, stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE if capture else subprocess.DEVNULL)
    # read stderr/stdout in full before reaping, so that os.wait4 is the one to collect the child
    out = proc.stdout.read() if proc.stdout else b""
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv[:4])} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return {"wall_seconds": round(time.perf_counter() - start, 2),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "stdout": out.decode()}


def migrate_dry_run(shape: Shape) -> dict[str, Any]:
    """``ferry migrate --dry-run`` of ``shape`` into an empty Harbor, the floor, and the server's figures."""
    pages = shape.pages()
    with synthetic(shape) as src, synthetic(Shape(0, 0, 0)) as dst:
        floor = json.loads(_measured([sys.executable, "-c", _FLOOR, src, USER, PASSWORD, str(CONCURRENCY)], _env(),
                                     capture=True)["stdout"].strip().splitlines()[-1])
        before = _call(src, "/_synthetic/reset", "POST")["cpu_seconds"]
        ferry = _measured([sys.executable, "-m", "ferry", "migrate", src, dst, "--src-creds", USER,
                           "--dest-creds", USER, "--dry-run", "--no-config", "--no-charts"],
                          _env(FERRY_SRC_PASSWORD=PASSWORD, FERRY_DEST_PASSWORD=PASSWORD))
        stats = _call(src, "/_synthetic/stats")
    needed = sum(pages.values())
    return {
        "shape": {"projects": shape.projects, "repositories": shape.repositories, "tags": shape.tags,
                  "tags_per_artifact": shape.tags_per_artifact},
        "pages": {**pages, "total": needed},
        "source_requests": stats["requests"], "requests_by_kind": stats["by_kind"],
        "requests_target": needed + 1, "requests_met": stats["requests"] <= needed + 1,
        "ferry": {k: v for k, v in ferry.items() if k != "stdout"},
        "server_cpu_seconds_during_ferry": round(stats["cpu_seconds"] - before, 2),
        "floor": {"wall_seconds": round(floor["seconds"], 2), "requests": floor["requests"]},
        "wall_ratio": round(ferry["wall_seconds"] / floor["seconds"], 2),
        "rss_met": ferry["peak_rss_mb"] <= 300,
    }


def images_file(shape: Shape, src_host: str, dst_host: str, path: Path) -> Path:
    """An image-syncer images file naming every tag of ``shape`` (one rule per repository)."""
    rules = {}
    for p in range(shape.projects):
        for j in range(shape.repos_of(p)):
            repo = shape.repo_name(p, j)
            counts = shape.artifacts(shape.tags_of(shape.repo_index(p, j)))
            tags = [f"1.{a}.{t}" for a, n in enumerate(counts) for t in range(n)]
            rules[f"{src_host}/{repo}:{','.join(tags)}"] = f"{dst_host}/mirror/{repo}"
    path.write_text(json.dumps(rules))
    return path


def sync_plan(shape: Shape, workdir: Path) -> dict[str, Any]:
    """The plan of a rules file naming ``shape.tags`` tags explicitly (no listing: nothing to ask)."""
    rules = images_file(shape, "src.example:5000", "dst.example:5000", workdir / f"images-{shape.tags}.json")
    run = _measured([sys.executable, "-c", _SYNC_PLAN, str(rules)], _env(), capture=True)
    figures = json.loads(run["stdout"].strip().splitlines()[-1])
    return {"tags": shape.tags, "rules_file_mb": round(rules.stat().st_size / 1e6, 1), **figures,
            **{k: v for k, v in run.items() if k != "stdout"}, "rss_met": run["peak_rss_mb"] <= 300}


def per_100k(small: dict[str, Any], big: dict[str, Any], key: str = "peak_rss_mb") -> float:
    """RSS growth per 100,000 tags between two sizes."""
    tags = big["tags"] - small["tags"]
    return round((big[key] - small[key]) * 100_000 / tags, 1) if tags else 0.0


def run_inventory_scale(workdir: Path | str, *, quick: bool = False) -> dict[str, Any]:
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    shapes = QUICK if quick else FULL
    load = os.getloadavg()
    migrate = [migrate_dry_run(s) for s in shapes]
    sync = [sync_plan(s, workdir) for s in shapes]
    rows = [{"tags": m["shape"]["tags"], "peak_rss_mb": m["ferry"]["peak_rss_mb"]} for m in migrate]
    return {"load_at_start": [round(x, 2) for x in load], "migrate_dry_run": migrate, "sync_plan": sync,
            "migrate_rss_mb_per_100k_tags": per_100k(*rows),
            "sync_rss_mb_per_100k_tags": per_100k(*sync)}


def lines(r: dict[str, Any]) -> str:
    """The figures as Markdown lines (for bench/run.py and docs/benchmarks.md)."""
    out = [f"- inventory scale (load average at start {r['load_at_start']}):"]
    for m in r["migrate_dry_run"]:
        s, f = m["shape"], m["ferry"]
        out.append(f"  - migrate --dry-run, {s['projects']} projects / {s['repositories']} repositories / "
                   f"{s['tags']} tags: {m['source_requests']} source requests for {m['pages']['total']} pages "
                   f"({'met' if m['requests_met'] else 'MISSED'}); ferry {f['wall_seconds']} s wall, "
                   f"{f['cpu_seconds']} s CPU, peak RSS {f['peak_rss_mb']} MB "
                   f"({'met' if m['rss_met'] else 'MISSED'}); floor {m['floor']['wall_seconds']} s → "
                   f"{m['wall_ratio']} × (target 1.3); server CPU {m['server_cpu_seconds_during_ferry']} s")
    for s in r["sync_plan"]:
        out.append(f"  - sync plan of {s['jobs']} tags ({s['rules']} rules, {s['rules_file_mb']} MB file): "
                   f"{s['cpu_seconds']} s CPU, peak RSS {s['peak_rss_mb']} MB ({'met' if s['rss_met'] else 'MISSED'})")
    out.append(f"  - RSS per 100,000 tags: migrate dry run {r['migrate_rss_mb_per_100k_tags']} MB, "
               f"sync plan {r['sync_rss_mb_per_100k_tags']} MB")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inventory_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 and 100,000 tags")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ferry-bench-scale-") as tmp:
        result = run_inventory_scale(tmp, quick=args.quick)
    print(json.dumps(result, indent=2) if args.json else lines(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
