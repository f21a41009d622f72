"""``python -m bench.shards``: one sync of the bulk workload (6 projects × 6 repositories × 4 tags =
144 images, a base layer shared per project) run as 1, 2 and 4 concurrent ``ferry sync --shard I/N``
processes into a fresh plain registry each time (issue 15).

Measured per run: wall time (first start to last exit), requests (both registries' access logs),
bytes the source served, bytes the shards report moving (their sum minus the one-shard run's is what
was moved twice: a blob two shards need and neither found in place), ferry's CPU seconds and the
registries' CPU seconds (from /proc) — the registries' share says when they, not ferry, are the limit.

    python -m bench.shards                    # 1, 2, 4 shards, 3 runs each
    python -m bench.shards --reps 1 --bulk 3x4x4 --shards 1,2   # the quick form
    python -m bench.shards --small 100x10     # the 1,000 small images of case 4 instead
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import bench
from bench.cases import Bench, Meter, Sample, check_images
from bench.run import CACHE, RESULTS


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_shards(b: Bench, src: Any, wl: Any, count: int, rep: int) -> dict[str, Any]:
    dst = b.registry(f"shards{count}-dst-{rep}")
    all_tags: dict[str, list[str]] = {repo: [] for repo in wl.repos}
    reports = [Path(tempfile.mkdtemp(dir=b.workdir)) / "report.json" for _ in range(count)]
    cmds = [[*b.ferry_sync_yaml(src, dst, all_tags, f"s{i}of{count}"), "--shard", f"{i}/{count}",
             "--report", str(reports[i])] for i in range(count)]
    meter = Meter(src, dst).start()
    cpu0, start = _children_cpu(), time.perf_counter()
    logs = [open(r.with_name("stderr.log"), "wb") for r in reports]  # noqa: SIM115 (closed below)
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=log) for c, log in zip(cmds, logs, strict=True)]
    codes = [p.wait() for p in procs]
    for log in logs:
        log.close()
    wall = time.perf_counter() - start
    sample = meter.fill(Sample(f"{count} shard(s)", rep, wall, processes=count, cpu=_children_cpu() - cpu0))
    problem = "" if codes == [0] * count else \
        f"exit codes {codes}: {reports[0].with_name('stderr.log').read_text(errors='replace')[-300:]}"
    problem = problem or check_images(dst, wl.images)
    moved = sum(json.loads(r.read_text())["summary"]["bytes"] for r in reports if r.exists())
    b.drop(dst)
    b.log(f"[shards] {count} shard(s) rep {rep}: {wall:.2f} s, {sample.src_requests + sample.dst_requests} requests, "
          f"{moved / 1e6:.1f} MB moved, ferry cpu {sample.cpu:.1f} s, registries cpu {sample.registry_cpu:.1f} s"
          + (f" FAILED: {problem}" if problem else ""))
    return {"shards": count, "rep": rep, "wall": wall, "ok": not problem, "error": problem, "moved_bytes": moved,
            "src_bytes": sample.src_bytes, "requests": sample.src_requests + sample.dst_requests,
            "ferry_cpu": sample.cpu, "registry_cpu": sample.registry_cpu, "load1": sample.load1}


def summarise(runs: list[dict[str, Any]], images: int) -> list[dict[str, Any]]:
    def med(count: int, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["shards"] == count and r["ok"])

    counts = sorted({r["shards"] for r in runs if r["ok"]})
    base_moved = med(counts[0], "moved_bytes") if counts else 0
    return [{
        "shards": n, "images": images, "wall": med(n, "wall"), "requests": med(n, "requests"),
        "moved_mb": med(n, "moved_bytes") / 1e6, "moved_twice_mb": (med(n, "moved_bytes") - base_moved) / 1e6,
        "src_served_mb": med(n, "src_bytes") / 1e6, "ferry_cpu": med(n, "ferry_cpu"),
        "registry_cpu": med(n, "registry_cpu"),
        "registry_cores_busy": med(n, "registry_cpu") / med(n, "wall"),
        "load1": med(n, "load1"),
    } for n in counts]


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| shards | wall (s) | requests | moved (MB) | moved twice (MB) | source served (MB) | ferry CPU (s) "
            "| registries CPU (s) | registry cores busy | load |\n|" + " --- |" * 10)
    lines = [f"| {r['shards']} | {r['wall']:.2f} | {r['requests']:.0f} | {r['moved_mb']:.1f} | "
             f"{r['moved_twice_mb']:.1f} | {r['src_served_mb']:.1f} | {r['ferry_cpu']:.1f} | {r['registry_cpu']:.1f} "
             f"| {r['registry_cores_busy']:.2f} | {r['load1']:.1f} |" for r in rows]
    return "\n".join([head, *lines])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.shards", description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--bulk", default="6x6x4", help="projects x repositories x tags (default 6x6x4 = 144 images)")
    p.add_argument("--small", metavar="REPOSxTAGS", help="case 4's tiny images instead of the bulk workload")
    p.add_argument("--shards", default="1,2,4", help="shard counts to run (default 1,2,4)")
    args = p.parse_args(argv)
    projects, repos, tags = (int(x) for x in args.bulk.split("x"))
    counts = [int(x) for x in args.shards.split(",")]
    with tempfile.TemporaryDirectory(prefix="ferry-bench-shards-") as tmp:
        b = Bench(Path(tmp), args.reps, cache=CACHE)
        try:
            if args.small:
                s_repos, s_tags = (int(x) for x in args.small.split("x"))
                wl = b.workload("small", repos=s_repos, tags=s_tags)
            else:
                wl = b.workload("harbor", projects=projects, repos=repos, tags=tags)
            src = b.source("shards-src", wl)
            runs = [run_shards(b, src, wl, n, rep) for rep in range(args.reps) for n in counts]
        finally:
            b.close()
    rows = summarise(runs, len(wl.images))
    print(table(rows))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"shards-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({"params": vars(args), "cores": os.cpu_count(), "rows": rows, "runs": runs}, indent=1))
    print(f"written {out.relative_to(bench.ROOT)}")
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
