"""Start-up: ``ferry --version`` answers before the CLI's heavy imports, so it stays fast."""

from __future__ import annotations

import subprocess
import sys

from ferry import __version__

#: Runs the console entry as the ``ferry`` script does, then prints which heavy packages were loaded.
_WRAPPER = """
import sys
sys.argv = ["ferry", *sys.argv[1:]]
from ferry.cli.main import run
try:
    run()
finally:
    loaded = sorted({m.split(".")[0] for m in sys.modules} & {"aiohttp", "typer", "click", "rich", "pydantic"})
    print("loaded:", ",".join(loaded))
"""


def _ferry(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _WRAPPER, *args], capture_output=True, text=True, timeout=60)


def test_version_prints_the_package_version_without_the_cli_imports() -> None:
    for flag in ("--version", "-v"):
        done = _ferry(flag)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [f"ferry version {__version__}", "loaded: "]


def test_version_with_a_global_option_goes_through_the_app_and_prints_the_same() -> None:
    done = _ferry("--debug", "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"ferry version {__version__}"
    assert "typer" in done.stdout.splitlines()[-1]


def test_copy_help_still_works() -> None:
    done = subprocess.run([sys.executable, "-m", "ferry", "copy", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Usage: ferry copy" in done.stdout
