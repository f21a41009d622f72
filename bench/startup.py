"""Start-up (issue 14): how long ``ferry --version`` takes, and when ``ferry copy``'s first request leaves.

The first request is timed from outside: a listener on 127.0.0.1 stands in for the source registry
and the time from spawning ``ferry copy docker://127.0.0.1:PORT/… oci:…`` to the listener's first
accepted connection is the start-up a copy pays before any network work. That first request is the
registry's greeting (``GET /v2/``, :mod:`ferry.warmup`), sent while aiohttp is imported; the same copy
under ``--max-requests`` (no greeting) shows when the first request through aiohttp leaves. The interpreter's own
start (``python -I -c pass``) is measured beside it as the floor. Competitors alternate, as in the
other cases, and each sample records the 1-minute load average it started at.

    python -m bench.startup [--reps 7]
"""

from __future__ import annotations

import argparse
import os
import select
import signal
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
UNGREETED = "copy's first aiohttp request"
FLOOR = "python -I -c pass (floor)"
COMPETITORS = [VERSION, FIRST_REQUEST, UNGREETED, FLOOR]
TARGETS = {VERSION: 0.12, FIRST_REQUEST: 0.2}


def _load1() -> float:
    return os.getloadavg()[0]


def _whole_process(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of ``cmd`` run to its end."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {child.returncode}")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def _first_request(ferry: str, layout: str, *extra: str, timeout: float = 30.0) -> tuple[float, float]:
    """Seconds from spawning a registry-to-layout copy to its first connection at the source, and the
    CPU seconds the copy had used when it was stopped there."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        cmd = [ferry, "copy", *extra, "--src-tls-verify=false", f"docker://127.0.0.1:{port}/bench/startup:1",
               f"oci:{layout}:startup"]
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            ready, _, _ = select.select([listener], [], [], timeout)
            if not ready:
                raise RuntimeError(f"no connection within {timeout:.0f} s: {' '.join(cmd)}")
            elapsed = time.perf_counter() - start
            child.send_signal(signal.SIGSTOP)  # its CPU up to here, not the retries that follow
            listener.accept()[0].close()
        finally:
            child.kill()
            _, _, usage = os.wait4(child.pid, 0)
            child.returncode = -9
    return elapsed, usage.ru_utime + usage.ru_stime


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
                    wall, cpu = _whole_process([ferry, "--version"])
                elif comp == FIRST_REQUEST:
                    wall, cpu = _first_request(ferry, os.path.join(tmp, "layout"))
                elif comp == UNGREETED:  # --max-requests turns the greeting off: what the imports cost
                    wall, cpu = _first_request(ferry, os.path.join(tmp, "layout"), "--max-requests", "1000000")
                else:
                    wall, cpu = _whole_process([sys.executable, "-I", "-c", "pass"])
                samples.append(Sample(comp, rep, wall, processes=1, cpu=cpu, load1=load))
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
        cpu = sorted(s.cpu for s in res.ok_samples(comp))[len(walls) // 2]
        print(f"{comp:28} median {res.median(comp):.3f} s  ({walls[0]:.3f}–{walls[-1]:.3f}), CPU {cpu:.3f} s")
    for t in res.targets:
        print(f"  {t.text}: {t.value:.3f} — {'met' if t.met else 'MISSED'}")
    loads = [s.load1 for s in res.samples]
    print(f"  1-minute load average when runs started: {min(loads):.1f}–{max(loads):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
