"""``python -m bench.run``: ferry side by side with skopeo and with the physical limit.

Starts its own registries on 127.0.0.1, seeds them with skopeo, runs the competitors
alternately, prints one table and writes the same as JSON under ``bench/results/``.

    python -m bench.run                        # everything, 3 runs per competitor
    python -m bench.run --case big --reps 1    # one case, quickly
    python -m bench.run --case big,big5        # both big images: 400 MB layer, 5 × 200 MB layers (--big5)
    python -m bench.run --case wan --reps 1 --rtts 80 --wan-big-mb 50 --wan-bulk 2x3x2  # make bench-quick
    python -m bench.run --update-docs          # also put the table into docs/benchmarks.md
    python -m bench.run --case inventory       # bench/inventory.py's Harbor inventory bench (opt-in)
    python -m bench.run --case inventory-scale # issue 14: 1M tags from a synthetic Harbor (--reps 1: 100k)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import bench
from bench import cases
from bench.cases import Bench, CaseResult
from bench.export import case_export
from bench.startup import case_startup

RESULTS = bench.ROOT / "bench" / "results"
DOCS = bench.ROOT / "docs" / "benchmarks.md"
#: Seeded sources kept between runs (skopeo seeding 1,000 tiny images takes minutes).
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ferry-bench"
DOCS_BEGIN = "<!-- bench:table:begin -->"
DOCS_END = "<!-- bench:table:end -->"
CASES: dict[str, Callable[..., list[CaseResult]]] = {
    "startup": case_startup,
    "big": cases.case_big,
    "big5": cases.case_big5,
    "bulk": cases.case_bulk,
    "small": cases.case_small,
    "scale": cases.case_scale,
    "wan": cases.case_wan,
    "export": case_export,
}
OPTIONAL = ("inventory", "inventory-scale")  # not in CASES: they report in their own form
#: What ``make bench`` runs: every case of issue 14, the million-tag inventory included (about 2 minutes).
DEFAULT = [*CASES, "inventory-scale"]
MB = 1e6


def _version(cmd: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory, kernel, tool versions, the commit measured."""
    cpu = "unknown"
    try:
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = m[1].strip() if m else cpu
    except OSError:
        pass
    mem = 0
    try:
        m = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        mem = int(m[1]) * 1024 if m else 0
    except OSError:
        pass
    ferry = str(Path(sys.executable).with_name("ferry"))
    commit = _version(["git", "-C", str(bench.ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _version(["git", "-C", str(bench.ROOT), "status", "--porcelain", "--", "src"]) not in ("", "unknown")
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem / (1 << 30), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "skopeo": _version(["skopeo", "--version"]),
        "docker-registry": _version(["docker-registry", "--version"]),
        "ferry": _version([ferry, "--version"]),
        "commit": commit + ("+uncommitted src changes" if dirty else ""),
    }


# -- the table ---------------------------------------------------------------------------------------
def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "—" if x is None else format(x, spec)


def rows(res: CaseResult) -> list[list[str]]:
    """Table rows of one case, one per competitor."""
    out = []
    ferry_med = res.median(res.ferry) if res.ferry else None
    for i, comp in enumerate(res.competitors):
        ok = res.ok_samples(comp)
        n_all = sum(1 for s in res.samples if s.competitor == comp)
        walls = [s.wall for s in ok]
        med = statistics.median(walls) if walls else None
        is_limit = comp.startswith("limit")
        probe_only = is_limit and not any(s.processes for s in ok)
        images = ok[0].extra.get("images", res.images) if ok and "images" in ok[0].extra else res.images
        ratio = None
        if ferry_med is not None and med and comp != res.ferry:
            ratio = ferry_med / med
        rss = max((s.peak_rss_kib for s in ok), default=0) / 1024
        reqs = statistics.median([s.src_requests + s.dst_requests for s in ok]) if ok else None
        if probe_only:
            req_img = res.extra.get("floor_requests_per_image")
            moved = "—"
        else:
            req_img = reqs / images if reqs is not None and images else None
            src_b = statistics.median([s.src_bytes for s in ok]) if ok else None
            dst_b = statistics.median([s.dst_bytes for s in ok]) if ok else None
            moved = "—" if src_b is None else f"{src_b / MB:.1f} / {dst_b / MB:.1f}"
        failed = n_all - len(ok)
        cpu = "—"
        if ok:
            own = "—" if probe_only else f"{statistics.median([s.cpu for s in ok]):.1f}"
            cpu = f"{own} / {statistics.median([s.registry_cpu for s in ok]):.1f}"
        out.append(
            [
                res.title if i == 0 else "",
                comp,
                f"{len(ok)}" + (f" (+{failed} failed)" if failed else ""),
                _fmt(med),
                f"{min(walls):.2f}–{max(walls):.2f}" if walls else "—",
                _fmt(ratio),
                "—" if probe_only or not rss else f"{rss:.0f}",
                cpu,
                _fmt(images / med if med else None, ".0f" if med and images / med >= 10 else ".1f"),
                _fmt(req_img, ".1f"),
                moved,
            ]
        )
    return out


HEADER = [
    "case",
    "competitor",
    "runs",
    "median s",
    "min–max s",
    "ferry ÷ it",
    "peak RSS MiB",
    "CPU s it / registries",
    "images/s",
    "req/image",
    "MB src out / dst in",
]


def table(results: Sequence[CaseResult]) -> str:
    """One Markdown table over every case, then the targets and notes."""
    body = [r for res in results for r in rows(res)]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(HEADER)]
    right = {2, 3, 4, 5, 6, 7, 8, 9, 10}

    def line(cells: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    sep = "|" + "|".join(("-" * (w + 1) + ":") if i in right else "-" * (w + 2) for i, w in enumerate(widths)) + "|"
    lines = [line(HEADER), sep, *(line(r) for r in body), ""]
    for res in results:
        for t in res.targets:
            mark = {True: "met", False: "MISSED", None: "not measured"}[t.met]
            value = "—" if t.value is None else f"{t.value:.2f}"
            lines.append(f"- {res.key}: {t.text}: {value} (target ≤ {t.limit:.2f}) — {mark}")
        for note in res.notes:
            lines.append(f"- {res.key}: {note}")
        loads = [s.load1 for s in res.samples]
        if loads:
            lines.append(f"- {res.key}: 1-minute load average when runs started: {min(loads):.1f}–{max(loads):.1f}")
        for s in res.samples:
            if not s.ok:
                lines.append(f"- {res.key}: {s.competitor} run {s.rep} failed: {s.error[:400]}")
    return "\n".join(lines)


def inventory_lines(r: dict[str, Any]) -> str:
    """A few lines for bench/inventory.py's figures (its own printout has the details)."""
    s = r["source"]
    met = "met" if r["inventory_meets_target"] else "MISSED"
    return "\n".join(
        [
            f"- inventory: {s['projects']} projects, {s['repositories']} repositories, {s['tags']} tags; "
            f"Migration.prepare() median {r['prepare_seconds_median']} s ({r['tags_per_second']} tags/s), "
            f"bare replay of the same GETs {r['replay_seconds_median']} s",
            f"- inventory: requests {r['inventory_requests']} against {r['target']} allowed "
            f"(pages needed + 1 credential check) — {met}; with the quota reads {r['requests_total']}",
        ]
    )


# -- main -----------------------------------------------------------------------------------------------
def _memory_dir(need: int = 4 << 30) -> str | None:
    """/dev/shm when it is a tmpfs with ``need`` bytes free (registries then keep their data in memory)."""
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return None
    return "/dev/shm" if st.f_bavail * st.f_frsize >= need else None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--case",
        default=",".join(DEFAULT),
        help=f"comma-separated cases among {', '.join([*CASES, *OPTIONAL])} (default: {','.join(DEFAULT)})",
    )
    p.add_argument("--reps", type=int, default=3, help="runs per competitor per case (default 3)")
    p.add_argument(
        "--workdir",
        type=Path,
        help="where registries keep their data (default: a new directory in /dev/shm when it has room, "
        "else in the temp dir; removed at the end)",
    )
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, registries)")
    p.add_argument(
        "--cache",
        type=Path,
        default=CACHE,
        help="keep skopeo-seeded source storage here for later runs (default ~/.cache/ferry-bench)",
    )
    p.add_argument("--no-cache", action="store_true", help="seed every source with skopeo, cache nothing")
    p.add_argument("--big-mb", type=int, default=400, help="size of the big layer in MB (default 400)")
    p.add_argument("--big5", default="5x200",
                   help="layers x MB per layer of case 1b's big image (default %(default)s)")
    p.add_argument("--bulk", default="6x6x4", help="projects x repositories x tags for bulk and scale (default 6x6x4)")
    p.add_argument("--rtts", default=",".join(map(str, cases.WAN_RTTS_MS)),
                   help="round trips in ms for the wan case (default %(default)s)")
    p.add_argument("--wan-big-mb", type=int, help="big layer of the wan case in MB (default: --big-mb)")
    p.add_argument("--wan-bulk", default="2x3x4",
                   help="projects x repositories x tags of the wan case (default %(default)s: 24 images, as issue 14 "
                   "measured; skopeo copy per image at 80 ms takes minutes a run at the bulk size)")
    p.add_argument("--small", default="100x10", help="repositories x tags of tiny images (default 100x10)")
    p.add_argument("--small-skopeo", action="store_true", help="also run skopeo sync in case 4 (slow: ~1 min a run)")
    p.add_argument("--noop-copy-loop", action="store_true", help="also run the skopeo copy loop in case 3")
    p.add_argument(
        "--scale-reuse-1x",
        action="store_true",
        help="take scaling's 1× from case 2's ferry runs instead of measuring it alternated with 2× and 4×",
    )
    p.add_argument("--update-docs", action="store_true", help=f"put the table into {DOCS.relative_to(bench.ROOT)}")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.cases = [c.strip() for c in args.case.split(",") if c.strip()]
    unknown = [c for c in args.cases if c not in CASES and c not in OPTIONAL]
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; choose among {', '.join([*CASES, *OPTIONAL])}")
    if args.reps < 1:
        p.error("--reps must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen cases; print the table; write JSON (and the docs table when asked)."""
    args = parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    bench.compile_ferry()
    for tool in ("skopeo", "docker-registry"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} not found (make setup installs it)", file=sys.stderr)
            return 2
    info = machine()
    log(f"machine: {info['cores']} cores, {info['cpu']}; {info['skopeo']}; {info['docker-registry']}; {info['ferry']}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ferry-bench-", dir=_memory_dir()))
    workdir.mkdir(parents=True, exist_ok=True)
    b = Bench(workdir, args.reps, cache=None if args.no_cache else args.cache, log=log)
    projects, repos, tags = (int(x) for x in args.bulk.lower().split("x"))
    b5_layers, b5_mb = (int(x) for x in args.big5.lower().split("x"))
    s_repos, s_tags = (int(x) for x in args.small.lower().split("x"))
    w_projects, w_repos, w_tags = (int(x) for x in args.wan_bulk.lower().split("x"))
    kwargs: dict[str, dict[str, Any]] = {
        "startup": {},
        "big": {"size": args.big_mb * 1_000_000},
        "big5": {"layers": b5_layers, "size": b5_mb * 1_000_000},
        "bulk": {"projects": projects, "repos": repos, "tags": tags, "copy_loop_noop": args.noop_copy_loop},
        "small": {"repos": s_repos, "tags": s_tags, "with_skopeo": args.small_skopeo},
        "scale": {"projects": projects, "repos": repos, "tags": tags, "reuse_bulk": args.scale_reuse_1x},
        "wan": {
            "rtts": [int(x) for x in args.rtts.split(",") if x.strip()],
            "size": (args.wan_big_mb or args.big_mb) * 1_000_000,
            "projects": w_projects, "repos": w_repos, "tags": w_tags,
        },
        "export": {"projects": projects, "repos": repos, "tags": tags},
    }
    results: list[CaseResult] = []
    durations: dict[str, float] = {}
    inventory: dict[str, Any] | None = None
    inventory_scale: dict[str, Any] | None = None
    try:
        for name in args.cases:
            c0 = time.monotonic()
            log(f"== case {name}")
            if name == "inventory":
                from bench.inventory import run_inventory_bench  # another engineer's bench, run as it is

                inventory = run_inventory_bench(workdir / "inventory", reps=args.reps)
            elif name == "inventory-scale":  # issue 14: bench/inventory_scale.py, 1M tags (--reps 1: 100k)
                from bench.inventory_scale import run_inventory_scale

                inventory_scale = run_inventory_scale(workdir / "inventory-scale", quick=args.reps == 1)
            else:
                results.extend(CASES[name](b, **kwargs[name]))
            durations[name] = time.monotonic() - c0
    finally:
        b.close()
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    text = table(results)
    if inventory is not None:
        text += "\n" + inventory_lines(inventory)
    if inventory_scale is not None:
        from bench.inventory_scale import lines

        text += "\n" + lines(inventory_scale)
    total = time.monotonic() - t0
    print(text)
    print(f"\n{info['cores']} cores, {info['cpu']}; {info['skopeo']}; {info['docker-registry']}; total {total:.0f} s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    payload = {
        "started": started.isoformat(),
        "seconds": total,
        "case_seconds": durations,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": info,
        "workdir": str(workdir),
        "table": text,
        "cases": [r.to_json() for r in results],
        "inventory": inventory,
        "inventory_scale": inventory_scale,
    }
    out.write_text(json.dumps(payload, indent=2))
    print(f"results: {out.relative_to(bench.ROOT)}")
    if args.update_docs:
        update_docs(text, info, started, total, args, workdir)
    return 0 if all(s.ok for r in results for s in r.samples) else 1


def update_docs(
    text: str, info: dict[str, Any], started: dt.datetime, total: float, args: argparse.Namespace, workdir: Path
) -> None:
    """Replace the generated block of docs/benchmarks.md (between its markers) with this run."""
    doc = DOCS.read_text() if DOCS.exists() else f"# Benchmarks\n\n{DOCS_BEGIN}\n{DOCS_END}\n"
    if DOCS_BEGIN not in doc or DOCS_END not in doc:
        doc += f"\n{DOCS_BEGIN}\n{DOCS_END}\n"
    block = "\n".join(
        [
            DOCS_BEGIN,
            f"Run of {started.strftime('%Y-%m-%d %H:%M UTC')}, `python -m bench.run {' '.join(args.argv)}`"
            f" (cases {args.case}, {args.reps} runs each), {total:.0f} s in all"
            + (", generating and seeding everything (no cache)." if args.no_cache else "."),
            "",
            f"- Machine: {info['cores']} cores, {info['cpu']}, {info['memory_gib']} GiB, Linux {info['kernel']}, "
            f"Python {info['python']}",
            f"- Tools: {info['skopeo']}; {info['docker-registry']}; {info['ferry']} (commit {info['commit']})",
            f"- Registry data under {workdir.parent}"
            + (" (tmpfs: the disk is out of the picture)" if str(workdir).startswith("/dev/shm") else ""),
            "",
            text,
            DOCS_END,
        ]
    )
    head, _, rest = doc.partition(DOCS_BEGIN)
    _, _, tail = rest.partition(DOCS_END)
    DOCS.write_text(head + block + tail)
    print(f"updated {DOCS.relative_to(bench.ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
