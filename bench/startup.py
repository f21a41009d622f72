"""Start-up (issue 14): how long ``ferry --version`` takes, and when ``ferry copy``'s first request leaves.

The first request is timed from outside: a listener on 127.0.0.1 stands in for the source registry
and the time from spawning ``ferry copy docker://127.0.0.1:PORT/… oci:…`` to the listener's first
accepted connection is the start-up a copy pays before any network work. The interpreter's own
start (``python -I -c pass``) is measured beside it as the floor. Competitors alternate, as in the
other cases, and each sample records the 1-minute load average it started at.

    python -m bench.startup [--reps 7]
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

import bench
from bench.cases import Bench, CaseResult, Sample, Target

VERSION = "ferry --version"
FIRST_REQUEST = "ferry copy: first request"
FLOOR = "python -I -c pass (floor)"
COMPETITORS = [VERSION, FIRST_REQUEST, FLOOR]
TARGETS = {VERSION: 0.12, FIRST_REQUEST: 0.2}


def _load1() -> float:
    return os.getloadavg()[0]


def _whole_process(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _first_request(ferry: str, layout: str, timeout: float = 30.0) -> float:
    """Seconds from spawning a registry-to-layout copy to its first connection at the source."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        cmd = [ferry, "copy", "--src-tls-verify=false", f"docker://127.0.0.1:{port}/bench/startup:1",
               f"oci:{layout}:startup"]
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            ready, _, _ = select.select([listener], [], [], timeout)
            if not ready:
                raise RuntimeError(f"no connection within {timeout:.0f} s: {' '.join(cmd)}")
            elapsed = time.perf_counter() - start
            listener.accept()[0].close()
        finally:
            child.kill()
            child.wait()
    return elapsed


def case_startup(b: Bench, *, reps: int | None = None) -> list[CaseResult]:
    """The case as ``bench.run`` runs it: at least 7 alternated runs (these are short)."""
    return [measure(b.ferry, max(7, b.reps) if reps is None else reps)]


def measure(ferry: str, reps: int) -> CaseResult:
    """Medians over ``reps`` alternated runs of each competitor."""
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="ferry-bench-startup-") as tmp:
        for rep in range(reps):
            for comp in COMPETITORS:
                load = _load1()
                if comp == VERSION:
                    wall = _whole_process([ferry, "--version"])
                elif comp == FIRST_REQUEST:
                    wall = _first_request(ferry, os.path.join(tmp, "layout"))
                else:
                    wall = _whole_process([sys.executable, "-I", "-c", "pass"])
                samples.append(Sample(comp, rep, wall, load1=load))
    res = CaseResult("startup", "0. start-up (whole process / to first request)", 0, 0, samples, COMPETITORS, "")
    res.targets = [
        Target(f"{comp} ≤ {limit} s", res.median(comp), limit, (res.median(comp) or 0) <= limit)
        for comp, limit in TARGETS.items()
    ]
    return res


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--ferry", default=os.path.join(os.path.dirname(sys.executable), "ferry"))
    args = ap.parse_args(argv)
    bench.compile_ferry()
    res = measure(args.ferry, args.reps)
    for comp in res.competitors:
        walls = sorted(s.wall for s in res.ok_samples(comp))
        print(f"{comp:28} median {res.median(comp):.3f} s  ({walls[0]:.3f}–{walls[-1]:.3f})")
    for t in res.targets:
        print(f"  {t.text}: {t.value:.3f} — {'met' if t.met else 'MISSED'}")
    loads = [s.load1 for s in res.samples]
    print(f"  1-minute load average when runs started: {min(loads):.1f}–{max(loads):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
