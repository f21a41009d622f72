"""Benchmark for issue 4: ``ferry migrate`` against ``ferry sync`` on the same images, Harbor to Harbor.

Target: "Migration time on the bench workload of the engine issue: within 10% of ``ferry sync``
on the same images" (``median(migrate) / median(sync) ≤ 1.10``).

Workload: the Harbor-like bulk workload of :mod:`bench.workloads` (``projP/repoR:tT``, a shared
base layer per project and a layer of its own per tag), by default the smaller 4 × 4 × 3 variant
(48 images) so that a full run stays within a minute or so; ``--projects/--repos/--tags`` change it
(``--projects 6 --repos 6 --tags 4`` is the engine issue's size). ``--proc N`` gives both commands the
same concurrency; by default each keeps its own (migrate 8, sync 5), as a user would run them.

The source is a :class:`tests.support.harbor.HarborServer` with the projects created up front and
seeded by ``skopeo sync --src dir`` (never by ferry). Each run gets a fresh, empty destination
Harbor; runs alternate A B A B …:

- A. ``ferry migrate SRC_URL DST_URL`` (creates the destination projects itself);
- B. ``ferry sync --src yaml --dest docker`` over every source repository (the destination
  projects are created beforehand with ``create_project``, outside the timed region).

Passwords travel in ``FERRY_SRC_PASSWORD``/``FERRY_DEST_PASSWORD`` and in the YAML file, never on
argv. Each run is checked afterwards from the destination registry's storage (every tag present
with the source digest) and with ``ferry verify``. Wall time is the child process's, measured here.

Run from the repository root: ``.venv/bin/python -m bench.migrate``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench  # noqa: F401  (puts the repository root on sys.path)
from bench import workloads
from bench.workloads import Image, Workload
from tests.support import skopeo
from tests.support.harbor import HarborServer

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGET = 1.10
MIGRATE = "ferry migrate"
SYNC = "ferry sync"


def _ferry() -> str:
    exe = ROOT / ".venv" / "bin" / "ferry"
    return str(exe) if exe.exists() else shutil.which("ferry") or "ferry"


def _projects(wl: Workload) -> list[str]:
    return sorted({img.namespace for img in wl.images})


def seed_harbor(wl: Workload, harbor: HarborServer, workdir: Path, *, jobs: int = 4) -> float:
    """Push every image of ``wl`` to ``harbor`` with ``skopeo sync --src dir`` (one call per project,
    ``jobs`` at a time), authenticated through a temporary auth file; return the seconds taken."""
    start = time.monotonic()
    tree = Path(tempfile.mkdtemp(prefix="seed-", dir=workdir))
    try:
        authfile = skopeo.write_authfile(tree / "auth.json", {harbor.host: harbor.admin_creds})
        for img in wl.images:
            wl.layout.export_dir(img.digest, tree / img.namespace / f"{img.name}:{img.tag}")
        calls = [
            [
                "sync",
                "--src",
                "dir",
                "--dest",
                "docker",
                "--dest-tls-verify=false",
                "--preserve-digests",
                "--dest-authfile",
                str(authfile),
                f"{tree / ns}/",
                f"{harbor.host}/{ns}",
            ]
            for ns in _projects(wl)
        ]
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for f in [pool.submit(skopeo.skopeo, *c, timeout=900) for c in calls]:
                f.result()
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    return time.monotonic() - start


def check_storage(harbor: HarborServer, imgs: Sequence[Image]) -> str:
    """``""`` when every image's tag is in the destination registry's storage with the source digest.

    Read from the backing registry's files (``_manifests/tags/TAG/current/link``), independent of ferry.
    """
    assert harbor.registry is not None
    repos = Path(harbor.registry.root) / "docker" / "registry" / "v2" / "repositories"
    bad: list[str] = []
    for img in imgs:
        link = repos / img.repo / "_manifests" / "tags" / img.tag / "current" / "link"
        got = link.read_text().strip() if link.exists() else None
        if got != img.digest:
            bad.append(f"{img.repo}:{img.tag} {got}")
    return f"{len(bad)} of {len(imgs)} images wrong, e.g. {bad[:3]}" if bad else ""


def _env(src: HarborServer, dst: HarborServer, state: Path) -> dict[str, str]:
    return {
        **os.environ,
        "FERRY_SRC_PASSWORD": src.admin_creds[1],
        "FERRY_DEST_PASSWORD": dst.admin_creds[1],
        "XDG_STATE_HOME": str(state),
    }


def _timed(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, int]:
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
        wall = time.perf_counter() - start
    return wall, proc.returncode


def one_run(
    comp: str, rep: int, wl: Workload, src: HarborServer, workdir: Path, proc: int | None = None
) -> dict[str, Any]:
    """One timed run of ``comp`` into a fresh destination Harbor, then its checks.

    ``proc`` is passed to both as ``--proc``; without it each keeps its own default (migrate 8, sync 5).
    """
    run_dir = workdir / f"{comp.replace(' ', '-')}-{rep}"
    run_dir.mkdir(parents=True)
    ferry = _ferry()
    with HarborServer(run_dir / "dst") as dst:
        env = _env(src, dst, run_dir / "state")
        creds = ["--dest-creds", "admin"]
        extra = ["--proc", str(proc)] if proc else []
        if comp == MIGRATE:
            cmd = [
                ferry,
                "migrate",
                src.url,
                dst.url,
                "--src-creds",
                "admin",
                *creds,
                "--quiet",
                "--journal",
                str(run_dir / "journal"),
                *extra,
            ]
        else:
            for project in _projects(wl):
                dst.create_project(project)
            user, password = src.admin_creds
            spec = {
                src.host: {
                    "tls-verify": False,
                    "credentials": {"username": user, "password": password},
                    "images": {repo: [] for repo in wl.repos},
                }
            }
            spec_file = run_dir / "sync.yaml"
            spec_file.write_text(json.dumps(spec, indent=1))  # JSON is YAML
            spec_file.chmod(0o600)
            cmd = [
                ferry,
                "sync",
                "--src",
                "yaml",
                "--dest",
                "docker",
                "--dest-tls-verify=false",
                *creds,
                "--quiet",
                "--journal",
                str(run_dir / "journal"),
                *extra,
                str(spec_file),
                dst.host,
            ]
        wall, code = _timed(cmd, env, run_dir / "output.log")
        errors: list[str] = []
        if code != 0:
            tail = (run_dir / "output.log").read_text(errors="replace")[-2000:]
            errors.append(f"exit {code}: {tail}")
        if bad := check_storage(dst, wl.images):
            errors.append(f"storage check: {bad}")
        verify = subprocess.run(
            [ferry, "verify", src.url, dst.url, "--src-creds", "admin", *creds, "--quiet"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if verify.returncode != 0:
            errors.append(f"ferry verify exit {verify.returncode}: {(verify.stdout + verify.stderr)[-2000:]}")
        dst_projects = sorted(p for p in _projects(wl) if _has_project(dst, p))
    return {
        "competitor": comp,
        "rep": rep,
        "wall": round(wall, 3),
        "exit": code,
        "ok": not errors,
        "errors": errors,
        "dest_projects": len(dst_projects),
        "load1": round(os.getloadavg()[0], 2),
    }


def _has_project(harbor: HarborServer, name: str) -> bool:
    try:
        harbor.project(name)
    except KeyError:
        return False
    return True


def run_migrate_bench(
    workdir: Path | str,
    *,
    projects: int = 4,
    repos: int = 4,
    tags: int = 3,
    reps: int = 3,
    proc: int | None = None,
) -> dict[str, Any]:
    """Seed a source Harbor with the Harbor-like workload, run migrate and sync alternately ``reps``
    times each into fresh destination Harbors, and return the samples and their summary."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    wl = workloads.build("harbor", workdir, projects=projects, repos=repos, tags=tags)
    build_s = time.monotonic() - t0
    src_projects = {p: {} for p in _projects(wl)}
    samples: list[dict[str, Any]] = []
    with HarborServer(workdir / "src", projects=src_projects) as src:
        seed_s = seed_harbor(wl, src, workdir)
        if bad := check_storage(src, wl.images):
            raise RuntimeError(f"seeding failed: {bad}")
        for rep in range(reps):
            for comp in (MIGRATE, SYNC):
                s = one_run(comp, rep, wl, src, workdir, proc)
                print(f"  {comp:<14} rep {rep}  {s['wall']:7.2f} s  {'ok' if s['ok'] else 'FAILED'}", flush=True)
                samples.append(s)

    def median(comp: str) -> float | None:
        walls = [s["wall"] for s in samples if s["competitor"] == comp and s["ok"]]
        return statistics.median(walls) if walls else None

    m, y = median(MIGRATE), median(SYNC)
    ratio = m / y if m and y else None
    return {
        "benchmark": "migrate",
        "issue": 4,
        "target": f"median({MIGRATE}) / median({SYNC}) ≤ {TARGET}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()},
        "workload": {
            **wl.params,
            "blob_bytes": wl.blob_bytes,
            "manifest_bytes": wl.manifest_bytes,
            "build_s": round(build_s, 2),
            "seed_s": round(seed_s, 2),
        },
        "reps": reps,
        "proc": proc or "defaults (migrate 8, sync 5)",
        "samples": samples,
        "summary": {
            MIGRATE: {"median": m, "walls": [s["wall"] for s in samples if s["competitor"] == MIGRATE]},
            SYNC: {"median": y, "walls": [s["wall"] for s in samples if s["competitor"] == SYNC]},
            "ratio": round(ratio, 3) if ratio else None,
            "met": ratio <= TARGET if ratio else None,
            "all_ok": all(s["ok"] for s in samples),
        },
    }


def table(result: dict[str, Any]) -> str:
    s = result["summary"]
    w = result["workload"]
    lines = [
        f"Harbor → Harbor, {w['projects']}×{w['repos']}×{w['tags']} = {w['images']} images, "
        f"{w['blob_bytes'] / 1e6:.0f} MB of blobs, {result['reps']} reps each, --proc {result['proc']}, "
        "fresh destination per run",
        f"{'competitor':<15} {'median s':>9}  runs (s)",
    ]
    for comp in (MIGRATE, SYNC):
        med = s[comp]["median"]
        walls = ", ".join(f"{x:.2f}" for x in s[comp]["walls"])
        lines.append(f"{comp:<15} {med if med is None else format(med, '9.2f'):>9}  {walls}")
    ratio = s["ratio"]
    verdict = "n/a" if s["met"] is None else ("met" if s["met"] else "NOT met")
    lines.append(
        f"migrate / sync = {ratio if ratio is None else format(ratio, '.3f')} (target ≤ {TARGET}: {verdict}); "
        f"all runs verified: {s['all_ok']}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.migrate", description=__doc__.splitlines()[0])
    ap.add_argument("--projects", type=int, default=4)
    ap.add_argument("--repos", type=int, default=4)
    ap.add_argument("--tags", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--proc", type=int, help="--proc for both (default: each command's own default)")
    ap.add_argument("--workdir", help="keep the work files here (default: a temporary directory)")
    args = ap.parse_args(argv)
    kw = {"projects": args.projects, "repos": args.repos, "tags": args.tags, "reps": args.reps, "proc": args.proc}
    if args.workdir:
        result = run_migrate_bench(Path(args.workdir), **kw)
    else:
        with tempfile.TemporaryDirectory(prefix="ferry-bench-migrate-") as tmp:
            result = run_migrate_bench(Path(tmp), **kw)
    print(table(result))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"migrate-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"results: {out.relative_to(ROOT)}")
    return 0 if result["summary"]["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
