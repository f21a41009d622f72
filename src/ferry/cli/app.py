"""The ``ferry`` typer application and its global options (skopeo's, accepted before or after the
command). Command modules register themselves on :data:`app`; :mod:`ferry.cli.main` runs it."""

from __future__ import annotations

import logging
import os
import platform as host
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import typer

from ferry import __version__
from ferry.cli import collector
from ferry.cli.options import parse_duration
from ferry.cli.trust import TrustPolicy
from ferry.errors import NetworkError, UsageError

T = TypeVar("T")

app = typer.Typer(
    name="ferry",
    help="Move container images between registries — a whole Harbor into another Harbor.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: ``platform.machine()`` → the architecture names of image indexes (Go's GOARCH).
_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
           "armv6l": "arm", "i386": "386", "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x",
           "riscv64": "riscv64"}


@dataclass(slots=True)
class GlobalOptions:
    """What the global options asked for, for the command that runs."""

    debug: bool = False
    policy: TrustPolicy = field(default_factory=TrustPolicy)
    override_os: str | None = None
    override_arch: str | None = None
    override_variant: str | None = None
    command_timeout: str | None = None  # as given, for the error message
    deadline: float | None = None  # time.monotonic() by which the command must be done
    registries_d: str | None = None

    def override_platform(self) -> str | None:
        """``os/arch[/variant]`` when an ``--override-*`` option is given (the host fills in the rest)."""
        if not (self.override_os or self.override_arch or self.override_variant):
            return None
        machine = host.machine().lower()
        spec = f"{self.override_os or sys.platform}/{self.override_arch or _GOARCH.get(machine, machine)}"
        return f"{spec}/{self.override_variant}" if self.override_variant else spec

    def refuse_override(self, command: str, instead: str) -> None:
        """For commands that copy every platform: an ``--override-*`` option would be silently ignored."""
        if self.override_platform() is not None:
            raise UsageError(f"--override-os/--override-arch/--override-variant pick one platform for copy and "
                             f"inspect; {command} copies every platform", hint=instead)


state = GlobalOptions()


def _version(value: bool) -> None:
    if value:
        print(f"ferry version {__version__}")
        raise typer.Exit()


def _directory(value: str | None, flag: str) -> str | None:
    if value is not None and not Path(value).is_dir():
        raise UsageError(f"{flag} {value}: no such directory")
    return value


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Log requests and show tracebacks."),
    version: bool = typer.Option(False, "--version", "-v", callback=_version, is_eager=True,
                                 help="Print the version."),
    insecure_policy: bool = typer.Option(False, "--insecure-policy",
                                         help="Apply no signature policy, even with --policy (skopeo's flag)."),
    policy: str | None = typer.Option(None, "--policy", metavar="FILE",
                                      help="containers' policy.json to decide which images may be copied "
                                           "(default: none, every image is accepted)."),
    override_arch: str | None = typer.Option(None, "--override-arch", metavar="ARCH",
                                             help="Copy (and inspect) only this architecture of a "
                                                  "multi-platform image, as skopeo does without --all."),
    override_os: str | None = typer.Option(None, "--override-os", metavar="OS", help="The same for the OS."),
    override_variant: str | None = typer.Option(None, "--override-variant", metavar="VARIANT",
                                                help="The same for the architecture variant (v7, v8 …)."),
    command_timeout: str | None = typer.Option(None, "--command-timeout", metavar="DURATION",
                                               help="Give up on the whole command after this long (1m30s, 90s …)."),
    tmpdir: str | None = typer.Option(None, "--tmpdir", metavar="DIR", help="Directory for temporary files."),
    registries_d: str | None = typer.Option(None, "--registries.d", metavar="DIR",
                                            help="containers' registries.d (signature lookaside configuration)."),
) -> None:
    seconds = parse_duration(command_timeout, "--command-timeout") if command_timeout is not None else 0.0
    if policy is not None and not Path(policy).is_file():
        raise UsageError(f"--policy {policy}: no such file")
    if _directory(tmpdir, "--tmpdir"):
        tempfile.tempdir = tmpdir  # Python's temporary files, and TMPDIR for any helper program
        os.environ["TMPDIR"] = str(tmpdir)
    state.debug = debug
    state.policy = TrustPolicy(policy, insecure_policy, registries_d)
    state.override_os, state.override_arch, state.override_variant = override_os, override_arch, override_variant
    state.command_timeout = command_timeout
    state.deadline = time.monotonic() + seconds if seconds > 0 else None  # skopeo: 0 or less means none
    state.registries_d = _directory(registries_d, "--registries.d")
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not debug:
        logging.getLogger("ferry").setLevel(logging.WARNING)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine within what is left of ``--command-timeout``; errors are turned into
    the ``ferry:`` line by :func:`ferry.cli.main.run`."""
    import asyncio  # not at the top: a command greets its registries first (ferry.warmup)

    collector.resume()
    result: list[T] = []

    async def main() -> None:
        # The answer is kept out of the main task's result: Python 3.11's asyncio.run reprs that task
        # (signal.getsignal on its SIGINT handler), and the repr of a million-tag outcome weighs 300 MB.
        result.append(await (coro if state.deadline is None else _bounded(coro, state.deadline - time.monotonic())))

    asyncio.run(main())
    return result[0]


async def _bounded(coro: Coroutine[Any, Any, T], seconds: float) -> T:
    import asyncio

    try:
        async with asyncio.timeout(max(seconds, 0)) as limit:
            return await coro
    except TimeoutError:
        if not limit.expired():
            raise
        raise NetworkError(f"the command did not finish within --command-timeout {state.command_timeout}",
                           hint="give it longer, or rerun: work already done is not repeated") from None


def debug_enabled() -> bool:
    return state.debug
