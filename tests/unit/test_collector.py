"""Start-up runs without the cyclic collector's young-generation passes, and a command's work runs with
the thresholds the process started with (``ferry.cli.collector``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

#: Runs the console entry as the ``ferry`` script does and prints what the collector did around it.
_WRAPPER = """
import gc, json, sys
from ferry.cli import collector

seen = {"start": list(gc.get_threshold())}
defer, resume = collector.defer, collector.resume

def collections():
    return sum(s["collections"] for s in gc.get_stats())

def watched_defer():
    defer()
    seen["at defer"] = collections()
    seen["during start-up"] = list(gc.get_threshold())

def watched_resume():
    seen["start-up collections"] = collections() - seen["at defer"]
    resume()
    seen["during the work"] = list(gc.get_threshold())
    seen["frozen"] = gc.get_freeze_count()

collector.defer, collector.resume = watched_defer, watched_resume
sys.argv = ["ferry", *sys.argv[1:]]
from ferry.cli.main import run
try:
    run()
finally:
    seen["at exit"] = list(gc.get_threshold())
    print(json.dumps(seen))
"""


def _collector_of(*args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    done = subprocess.run([sys.executable, "-c", _WRAPPER, *args], capture_output=True, text=True, timeout=60)
    return done, json.loads(done.stdout.splitlines()[-1])


def test_start_up_runs_without_collections_and_the_work_with_the_usual_thresholds(tmp_path: Path) -> None:
    done, seen = _collector_of("inspect", f"oci:{tmp_path / 'missing'}:latest")
    assert done.returncode != 0 and "does not exist" in done.stderr  # the command ran (run_async) and failed
    assert seen["start-up collections"] == 0
    assert seen["during start-up"][0] >= 100_000
    assert seen["during the work"] == seen["start"] == seen["at exit"]
    assert seen["frozen"] > 10_000  # what start-up made is frozen: no later collection traverses it


def test_a_command_without_async_work_still_collects_at_the_start_up_threshold(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"schemaVersion": 2}')
    done, seen = _collector_of("manifest-digest", str(manifest))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("sha256:")
    assert "during the work" not in seen  # no run_async: start-up's thresholds to the end, collections bounded
    assert seen["at exit"] == seen["during start-up"] and 0 < seen["at exit"][0] < 1_000_000
