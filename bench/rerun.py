"""No-op rerun benchmark (issue 12): a second ``ferry migrate`` with nothing new, against the source
inventory alone and against skopeo sync's second run.

A source Harbor test server seeded with the Harbor-like workload is migrated once into a destination
Harbor; then, alternately, ``reps`` times each: the rerun (``ferry migrate``, incremental: both
Harbors' listings, no request about any one image), the inventory alone (``Migration.prepare()``
with ``--force``, which lists the source and plans the projects and asks nothing of the destination's
tags), and ``skopeo sync --src yaml`` of every repository into the same destination, run once
beforehand so that each timed run is a second run. Each is timed as a whole process, start-up
included; the rerun copies images only (``--no-config --no-charts``: the configuration migration of
issue 10 lists every project's settings and is not what this measures). Target: rerun ≤ 1.3 × inventory.

    python -m bench.rerun --projects 4 --repos 4 --tags 3 --reps 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench  # noqa: F401  (puts the repository root on sys.path)
from bench import workloads
from bench.migrate import RESULTS, ROOT, _env, _ferry, _projects, _timed, seed_harbor
from tests.support.harbor import HarborServer

TARGET = 1.3
EXTRA = ["--no-config", "--no-charts"]  # images only: the configuration migration (issue 10) is not timed
RERUN, INVENTORY, SKOPEO = "ferry migrate (rerun)", "inventory alone", "skopeo sync (2nd run)"

# Runs in a child process: what the source inventory alone costs, as the command's preparation does it.
_INVENTORY = r"""
import asyncio, sys, time
from ferry.auth.side import Side
from ferry.engine import EngineOptions
from ferry.migration import Migration, MigrationOptions, SideOptions

async def main() -> float:
    options = MigrationOptions(source=SideOptions(sys.argv[1], Side("admin", password_env="FERRY_SRC_PASSWORD")),
                               destination=SideOptions(sys.argv[2], Side("admin", password_env="FERRY_DEST_PASSWORD")),
                               engine=EngineOptions(force=True))
    migration = Migration(options)
    try:
        start = time.perf_counter()
        await migration.prepare()
        return time.perf_counter() - start
    finally:
        await migration.close()

print(asyncio.run(main()))
"""


def _skopeo_spec(src: HarborServer, repos: Sequence[str], path: Path) -> Path:
    user, password = src.admin_creds
    spec = {src.host: {"tls-verify": False, "credentials": {"username": user, "password": password},
                       "images": {repo: [] for repo in repos}}}
    path.write_text(json.dumps(spec))  # JSON is YAML
    path.chmod(0o600)
    return path


def run_rerun_bench(workdir: Path, *, projects: int = 4, repos: int = 4, tags: int = 3,
                    reps: int = 3) -> dict[str, Any]:
    wl = workloads.build("harbor", workdir, projects=projects, repos=repos, tags=tags)
    walls: dict[str, list[float]] = {RERUN: [], INVENTORY: [], SKOPEO: []}
    errors: list[str] = []
    with HarborServer(workdir / "src", projects={p: {} for p in _projects(wl)}) as src, \
            HarborServer(workdir / "dst") as dst:
        seed_harbor(wl, src, workdir)
        env = _env(src, dst, workdir / "state")
        migrate = [_ferry(), "migrate", src.url, dst.url, "--src-creds", "admin", "--dest-creds", "admin", "--quiet",
                   "--journal", str(workdir / "journal"), *EXTRA]
        first, code = _timed(migrate, env, workdir / "first.log")
        if code != 0:
            raise RuntimeError(f"first migration failed: {(workdir / 'first.log').read_text()[-2000:]}")
        user, password = dst.admin_creds
        # one sync per project: a YAML source lands at DEST/<last path component of the repository>
        syncs = [["skopeo", "sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false", "--dest-creds",
                  f"{user}:{password}",
                  str(_skopeo_spec(src, [r for r in wl.repos if r.startswith(f"{p}/")], workdir / f"{p}.yaml")),
                  f"{dst.host}/{p}"] for p in _projects(wl)]

        def sync() -> tuple[float, int]:
            total, worst = 0.0, 0
            for n, cmd in enumerate(syncs):
                wall, code = _timed(cmd, env, workdir / f"skopeo-{n}.log")
                total, worst = total + wall, max(worst, code)
            return total, worst

        sync()
        for rep in range(reps):
            wall, code = _timed(migrate, env, workdir / f"rerun-{rep}.log")
            if code == 0:
                walls[RERUN].append(wall)
            start = time.perf_counter()  # the whole process, start-up included, as for the commands
            proc = subprocess.run([sys.executable, "-c", _INVENTORY, src.url, dst.url], env=env, capture_output=True,
                                  text=True, check=False)
            if proc.returncode == 0:
                walls[INVENTORY].append(time.perf_counter() - start)
            else:
                errors.append(f"inventory: {proc.stderr[-1000:]}")
            wall, code = sync()
            if code == 0:
                walls[SKOPEO].append(wall)
            else:
                errors.append(f"skopeo sync failed (rep {rep})")
            print(f"  rep {rep}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in walls.items() if v), flush=True)
    medians = {k: statistics.median(v) if v else None for k, v in walls.items()}
    ratio = medians[RERUN] / medians[INVENTORY] if medians[RERUN] and medians[INVENTORY] else None
    return {"benchmark": "rerun", "issue": 12, "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "workload": {**wl.params, "blob_bytes": wl.blob_bytes}, "first_migration_s": round(first, 3),
            "walls": walls, "medians": medians, "rerun_over_inventory": ratio and round(ratio, 3),
            "target": f"rerun ≤ {TARGET} × inventory", "met": ratio <= TARGET if ratio else None,
            "errors": errors}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.rerun", description=__doc__.splitlines()[0])
    for name, default in (("--projects", 4), ("--repos", 4), ("--tags", 3), ("--reps", 3)):
        ap.add_argument(name, type=int, default=default)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ferry-bench-rerun-") as tmp:
        result = run_rerun_bench(Path(tmp), projects=args.projects, repos=args.repos, tags=args.tags, reps=args.reps)
    for k, v in result["medians"].items():
        print(f"{k:<24} median {v if v is None else format(v, '.2f')} s")
    for e in result["errors"][:4]:
        print(e)
    print(f"rerun / inventory = {result['rerun_over_inventory']} (target ≤ {TARGET}: {result['met']})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"rerun-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"results: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
