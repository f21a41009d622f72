"""The ``ferry`` command: argument rewriting, command registration, the ``ferry: …`` error line and
exit codes. Nothing imports this module; the commands register on :data:`ferry.cli.app.app`.
typer and the commands are imported only past the ``--version`` fast path (see :func:`run`)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ferry import __version__

if TYPE_CHECKING:
    from ferry.errors import FerryError


#: Where each bulk command is defined, so that a run imports its own module only (each weighs tens of
#: milliseconds; tests/unit/test_startup.py checks this against what the modules register). ``k8s-job``
#: is not here: it checks the command it wraps, so it has them all imported, as help does.
COMMAND_MODULES = {
    "sync": "ferry.cli.sync",
    "migrate": "ferry.cli.migrate",
    "verify": "ferry.cli.migrate",
    "standalone-sign": "ferry.cli.signing",
    "standalone-verify": "ferry.cli.signing",
    "export": "ferry.cli.airgap",
    "import": "ferry.cli.airgap",
    "report": "ferry.cli.report",
}


def _register(wanted: str | None) -> None:
    """Import the module of the bulk command ``wanted``; every one of them for help or an unknown name.
    The everyday commands (``ferry.cli.images``) are always registered."""
    if wanted is not None and wanted in _command_names():
        return
    every = [*dict.fromkeys(COMMAND_MODULES.values()), "ferry.cli.k8s"]
    for optional in [COMMAND_MODULES[wanted]] if wanted in COMMAND_MODULES else every:
        try:
            __import__(optional)
        except ModuleNotFoundError as e:
            if e.name != optional:
                raise


def _command_names() -> set[str]:
    """Names of the commands registered so far (typer derives a missing name from the function)."""
    from ferry.cli.app import app

    return {c.name or c.callback.__name__.lower().replace("_", "-") for c in app.registered_commands if c.callback}


#: ``ferry --version`` alone, answered before typer, rich and aiohttp are imported (about 0.3 s of
#: imports); with any other argument the version is printed by the app's eager option as before.
_VERSION_ONLY = (["--version"], ["-v"])


def run(argv: list[str] | None = None) -> None:
    """Console entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in _VERSION_ONLY:
        print(f"ferry version {__version__}")
        sys.exit(0)
    _run(args)


def _run(args: list[str]) -> None:
    from ferry.cli import collector

    collector.skip_at_exit()
    collector.defer()  # until the command's work starts (run_async)
    from ferry.cli import early
    from ferry.cli.argv import normalize_argv

    args = normalize_argv(args)
    early.greet(args)  # while typer and the command's modules are imported
    import typer
    import typer.main

    from ferry.cli import images  # noqa: F401  (its commands register themselves on ``app``)
    from ferry.cli.app import app, debug_enabled
    from ferry.cli.options import command_index, hoist_global_options
    from ferry.errors import FerryError, Interrupted

    try:
        at = command_index(args, typer.main.get_command(app))
        if at is not None or not {"--version", "-v"} & set(args):  # help lists every command; --version none
            _register(args[at] if at is not None else None)
        command = typer.main.get_command(app)
        args = hoist_global_options(args, command)
        command.main(args=args, prog_name="ferry", standalone_mode=False)
    except FerryError as e:
        _fail(e)
    except KeyboardInterrupt:
        _fail(Interrupted("interrupted"))
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        _fail(Interrupted("aborted"))
    except Exception as e:  # command-line usage errors: exit code 2
        if isinstance(e, _usage_error_types()):
            print(f"ferry: {e.format_message()}", file=sys.stderr)
            sys.exit(2)
        if debug_enabled():
            raise
        print(f"ferry: internal error: {type(e).__name__}: {e} (run with --debug for details)", file=sys.stderr)
        sys.exit(70)
    sys.exit(0)


def _usage_error_types() -> tuple[type[Exception], ...]:
    """The argument parser's errors: typer >= 0.20 vendors click (``typer.TyperException``); older
    typer raises click's own ``ClickException``."""
    import typer

    types: list[type[Exception]] = []
    if (vendored := getattr(typer, "TyperException", None)) is not None:
        types.append(vendored)
    try:
        import click
    except ModuleNotFoundError:
        pass
    else:
        types.append(click.exceptions.ClickException)
    return tuple(types)


def _fail(e: FerryError) -> None:
    from ferry.cli.app import debug_enabled

    if debug_enabled():
        import traceback

        traceback.print_exc()
    line = str(e).replace("\n", " ")
    print(f"ferry: {line}", file=sys.stderr)
    sys.exit(e.exit_code)
