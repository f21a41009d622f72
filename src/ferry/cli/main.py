"""The ``ferry`` command: argument rewriting, command registration, the ``ferry: …`` error line and
exit codes. Nothing imports this module; the commands register on :data:`ferry.cli.app.app`."""

from __future__ import annotations

import sys

import typer
import typer.main

from ferry.cli import images  # noqa: F401  (its commands register themselves on ``app``)
from ferry.cli.app import app, debug_enabled
from ferry.cli.options import command_index, hoist_global_options, normalize_argv
from ferry.errors import FerryError, Interrupted


def _register(wanted: str | None) -> None:
    """Import the bulk commands' modules unless the command is one of ``ferry.cli.images`` (the everyday
    ones, always imported): they would add about 0.3 s of imports to every start."""
    if wanted is not None and wanted in _command_names():
        return
    for optional in ("ferry.cli.sync", "ferry.cli.migrate", "ferry.cli.signing", "ferry.cli.airgap"):
        try:
            __import__(optional)
        except ModuleNotFoundError as e:
            if e.name != optional:
                raise


def _command_names() -> set[str]:
    """Names of the commands registered so far (typer derives a missing name from the function)."""
    return {c.name or c.callback.__name__.lower().replace("_", "-") for c in app.registered_commands if c.callback}


def run(argv: list[str] | None = None) -> None:
    """Console entry point."""
    args = normalize_argv(list(sys.argv[1:] if argv is None else argv))
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
    if debug_enabled():
        import traceback

        traceback.print_exc()
    line = str(e).replace("\n", " ")
    print(f"ferry: {line}", file=sys.stderr)
    sys.exit(e.exit_code)
