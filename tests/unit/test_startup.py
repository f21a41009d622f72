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
    loaded = sorted({m.split(".")[0] for m in sys.modules} & {"aiohttp", "typer", "click", "rich", "pydantic", "yaml"})
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


def test_each_bulk_command_is_found_in_the_module_main_imports_for_it() -> None:
    """A run imports the module of its own command only (``COMMAND_MODULES``): a command missing from
    that map, or mapped to the wrong module, would be 'No such command' for its users."""
    from ferry.cli import images  # the everyday commands, always registered
    from ferry.cli.app import app
    from ferry.cli.main import COMMAND_MODULES, _register

    _register(None)  # help: every module (other tests of this process may have imported some already)
    found = {c.name or c.callback.__name__.lower().replace("_", "-"): c.callback.__module__
             for c in app.registered_commands if c.callback and c.callback.__module__ != images.__name__}
    found.update({g.name: g.typer_instance.registered_commands[0].callback.__module__
                  for g in app.registered_groups if g.name and g.typer_instance})
    assert {k: v for k, v in found.items() if k != "k8s-job"} == COMMAND_MODULES
    assert found["k8s-job"] == "ferry.cli.k8s"


def test_sync_help_imports_its_own_module_and_not_migrate() -> None:
    done = subprocess.run([sys.executable, "-c", "import sys; sys.argv = ['ferry', 'sync', '--help']\n"
                           "from ferry.cli.main import run\ntry:\n    run()\nfinally:\n"
                           "    print('migrate' if 'ferry.cli.migrate' in sys.modules else 'alone')"],
                          capture_output=True, text=True, timeout=60)
    assert "Usage: ferry sync" in done.stdout and done.stdout.splitlines()[-1] == "alone", done


def test_a_sync_of_well_formed_rules_files_imports_no_pydantic() -> None:
    """Plainly well-formed rules are read without their pydantic models (ferry.plan.plain_rules); a file
    the quick reading does not vouch for still gets the models' precise message. image-syncer's JSON
    files are read without PyYAML. The rules list no image, so nothing is sent."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "sync.yaml").write_text("reg.example:\n  tls-verify: false\n  credentials: {username: u, password: p}\n"
                                     "  images: {}\n")
        (d / "images.json").write_text("{}")
        (d / "auth.json").write_text('{"reg.example": {"username": "u", "password": "p", "insecure": true}}')
        (d / "bad.yaml").write_text('reg.example:\n  tls-verify: "yes"\n  images: {}\n')
        for args, yaml in ((["--src", "yaml", "--dest", "docker", str(d / "sync.yaml"), "dst.example"], True),
                           (["--images", str(d / "images.json"), "--auth", str(d / "auth.json")], False)):
            done = _ferry("sync", "--quiet", "--journal", str(d / "journal"), *args)
            assert done.returncode == 0, done.stderr
            loaded = done.stdout.splitlines()[-1]
            assert loaded.startswith("loaded: aiohttp") and "pydantic" not in loaded, done.stdout
            assert ("yaml" in loaded.split(": ")[1].split(",")) is yaml, done.stdout
        done = _ferry("sync", "--quiet", "--src", "yaml", "--dest", "docker", str(d / "bad.yaml"), "dst.example")
        assert done.returncode == 2, done.stderr
        assert f'ferry: {d / "bad.yaml"}:1: key "reg.example": "tls-verify" must be true or false' in done.stderr
        assert "pydantic" in done.stdout.splitlines()[-1]
