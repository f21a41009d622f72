"""Shared pieces of the reliability tests (faults, crashes, hostile servers, secrets): running the real
``ferry`` with extra environment (short timeouts), as a child that can be killed, and the small
multi-project slice of the session workload they copy.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.support.workloads import Image, Workload, ferry_cmd, ferry_env

__all__ = [
    "FAST",
    "SLICE_REPOS",
    "kill",
    "report",
    "run_ferry",
    "slice_images",
    "spawn_ferry",
    "sync_yaml",
]

#: ferry gives up on a silent server after this many seconds (then retries): stalls in tests are longer.
FAST = {"FERRY_SOCK_READ_TIMEOUT": "2"}
#: Several images, shared layers (proj0's base in app and web), both media-type families, an index.
SLICE_REPOS = ("proj0/app", "proj0/web", "proj1/app", "proj0/multi")


def slice_images(w: Workload, repos: Sequence[str] = SLICE_REPOS) -> list[Image]:
    return [i for i in w.images if i.repo in repos]


def sync_yaml(path: Path, host: str, repos: Sequence[str]) -> Path:
    """A ``skopeo sync --src yaml`` file taking every tag of ``repos`` at ``host`` (plain HTTP)."""
    path.write_text(yaml.safe_dump({host: {"tls-verify": False, "images": {r: [] for r in repos}}}))
    return path


def _env(home: Path, env: Mapping[str, str] | None) -> dict[str, str]:
    return {**ferry_env(home), **(env or {})}


def run_ferry(*args: str, home: Path, env: Mapping[str, str] | None = None, timeout: float = 300,
              input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``ferry ARGS`` to completion (pipes, not a terminal); never raises on exit codes."""
    return subprocess.run(ferry_cmd(*args), capture_output=True, text=True, timeout=timeout, env=_env(home, env),
                          cwd=home, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                          check=False)


def spawn_ferry(*args: str, home: Path, env: Mapping[str, str] | None = None,
                log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``ferry ARGS`` in the background (output to ``log``), to be killed midway."""
    out = open(log or os.devnull, "wb")  # noqa: SIM115 (the child holds it; closed by the OS on exit)
    try:
        return subprocess.Popen(ferry_cmd(*args), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=_env(home, env), cwd=home)
    finally:
        out.close()


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL, by pid: no handler, no cleanup, no flush."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, f"ferry ended on its own ({proc.returncode}) before the kill"


def report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
