"""The ``ferry`` command: subcommands, the ``ferry: …`` error line and exit codes."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer

from ferry import __version__
from ferry.cli.options import normalize_argv
from ferry.errors import FerryError, Interrupted

T = TypeVar("T")

app = typer.Typer(
    name="ferry",
    help="Move container images between registries — a whole Harbor into another Harbor.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        print(f"ferry version {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Log requests and show tracebacks."),
    version: bool = typer.Option(False, "--version", "-v", callback=_version, is_eager=True,
                                 help="Print the version."),
) -> None:
    _state["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not debug:
        logging.getLogger("ferry").setLevel(logging.WARNING)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; errors are turned into the ``ferry:`` line by :func:`run`."""
    return asyncio.run(coro)


def debug_enabled() -> bool:
    return _state["debug"]


def _register(args: list[str] | None = None) -> None:
    """Import the command modules. For a command of ``ferry.cli.images`` (the everyday ones) that
    module is enough: the bulk commands' modules would add about 0.3 s of imports to every start."""
    from ferry.cli import images  # noqa: F401  (commands register themselves on ``app``)

    wanted = next((a for a in args or [] if not a.startswith("-")), None)
    if wanted is not None and wanted in _command_names():
        return
    for optional in ("ferry.cli.sync", "ferry.cli.migrate", "ferry.cli.signing", "ferry.cli.report", "ferry.cli.k8s"):
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
    _register(args)
    try:
        app(args=args, prog_name="ferry", standalone_mode=False)
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
