"""Run the real ``ferry`` command in a subprocess, isolated from the user's files and the network.

Every run gets its own ``HOME`` (no ``REGISTRY_AUTH_FILE``, ``XDG_RUNTIME_DIR``, ``DOCKER_CONFIG``
unless a test sets them), so credentials come only from what the test writes. A small
``sitecustomize`` in the child refuses to resolve any host name but loopback ones: an "unknown
host" fails locally, exactly like a failed DNS lookup, and no test can reach past 127.0.0.1.

Starting the interpreter costs about a second: :func:`FerryCLI.run_many` runs independent
commands side by side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["EXIT_CODES", "FerryCLI", "FerryResult", "Running"]

#: The exit codes ferry documents (src/ferry/errors.py).
EXIT_CODES = frozenset(range(9))

_SITECUSTOMIZE = """
import socket

_real_getaddrinfo = socket.getaddrinfo
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def _loopback_only(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and name.lower() not in _LOOPBACK:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _loopback_only
"""

_SCRUBBED = ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "DOCKER_CONFIG", "FERRY_SRC_PASSWORD", "FERRY_DEST_PASSWORD")


@dataclass(frozen=True)
class FerryResult:
    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def out(self) -> str:
        return self.stdout.decode()

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def lines(self) -> list[str]:
        """stderr lines without blanks."""
        return [line for line in self.stderr.splitlines() if line.strip()]

    @property
    def error(self) -> str:
        """The ``ferry: …`` error line (the last line of stderr)."""
        return self.lines[-1] if self.lines else ""

    def __str__(self) -> str:
        return f"ferry {' '.join(self.args)} -> {self.returncode}\nstdout: {self.out[:2000]}\nstderr: {self.stderr}"


class FerryCLI:
    """Runs ``python -m ferry`` with a private home directory under ``root``."""

    def __init__(self, root: Path, env: Mapping[str, str] | None = None) -> None:
        self.root = Path(root)
        self.home = self.root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        shim = self.root / "sitecustomize"
        shim.mkdir(exist_ok=True)
        (shim / "sitecustomize.py").write_text(_SITECUSTOMIZE)
        base = {k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.startswith("PYTHON")}
        base.update(HOME=str(self.home), PYTHONPATH=str(shim), PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1", COLUMNS="200")
        self.env: dict[str, str] = {**base, **(env or {})}

    def _popen(self, args: Sequence[str], env: Mapping[str, str] | None, stdin: bool) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "ferry", *args],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**self.env, **(env or {})},
            cwd=self.root,
        )

    def run(
        self, *args: str, env: Mapping[str, str] | None = None, input: str | None = None, timeout: float = 120
    ) -> FerryResult:
        proc = self._popen(args, env, input is not None)
        out, err = proc.communicate(None if input is None else input.encode(), timeout=timeout)
        return FerryResult(tuple(args), proc.returncode, out, err.decode(errors="replace"))

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> Running:
        """Start a command without waiting (see :meth:`Running.wait`)."""
        return Running(tuple(args), self._popen(args, env, False))

    def run_many(self, commands: Sequence[Sequence[str]], env: Mapping[str, str] | None = None,
                 timeout: float = 120) -> list[FerryResult]:
        """Run independent commands concurrently; results in the order given."""
        running = [self.start(*c, env=env) for c in commands]
        return [r.wait(timeout) for r in running]


@dataclass
class Running:
    args: tuple[str, ...]
    proc: subprocess.Popen[bytes]

    def wait(self, timeout: float = 120) -> FerryResult:
        out, err = self.proc.communicate(timeout=timeout)
        return FerryResult(self.args, self.proc.returncode, out, err.decode(errors="replace"))
