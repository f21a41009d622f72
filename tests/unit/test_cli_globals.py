"""skopeo's global options after the command, and Go durations, as the command line reads them."""

from __future__ import annotations

import pytest
import typer.main

from ferry.cli import images, main
from ferry.cli.app import app
from ferry.cli.options import hoist_global_options, parse_duration
from ferry.errors import UsageError


@pytest.fixture(scope="module")
def group():  # type: ignore[no-untyped-def]
    assert images  # the everyday commands register on import
    main._register("sync")
    return typer.main.get_command(app)


@pytest.mark.parametrize(("argv", "expected"), [
    (["copy", "--debug", "a", "b"], ["--debug", "copy", "a", "b"]),
    (["copy", "a", "b", "--policy", "p.json", "--command-timeout=1m"],
     ["--policy", "p.json", "--command-timeout=1m", "copy", "a", "b"]),
    (["--tmpdir", "/t", "copy", "a", "--override-arch", "arm64", "b"],
     ["--tmpdir", "/t", "--override-arch", "arm64", "copy", "a", "b"]),
    # a value of the command's own option is not a global option; nor is anything after --
    (["copy", "--src-creds", "--debug", "a", "b"], ["copy", "--src-creds", "--debug", "a", "b"]),
    (["sync", "--", "--debug"], ["sync", "--", "--debug"]),
    # --help and --version keep their place
    (["copy", "--help"], ["copy", "--help"]),
])
def test_global_options_move_in_front_of_the_command(group, argv: list[str], expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert hoist_global_options(argv, group) == expected


@pytest.mark.parametrize(("text", "seconds"), [("1m30s", 90), ("0", 0), ("1.5h", 5400), ("300ms", 0.3),
                                               ("2h45m", 9900), ("-1s", -1), ("1us", 1e-6)])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--command-timeout") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["90", "1x", "", "m", "1m30", "s1"])
def test_not_a_duration(text: str) -> None:
    with pytest.raises(UsageError, match="is not a duration"):
        parse_duration(text, "--command-timeout")
