"""A dry run of a whole Harbor into another (issue 14, scale of the inventory), against the synthetic
Harbor API of bench/synthetic_harbor.py, small: one request per listing page plus the credential check,
no HEAD per tag at the destination (the two listings say what differs), a summary row per project and
one line per repository, and the report's list of what would be copied."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from bench.inventory_scale import synthetic
from bench.synthetic_harbor import PASSWORD, USER, Shape
from tests.support.reliability import run_ferry

pytestmark = pytest.mark.integration

SHAPE = Shape(projects=3, repositories=7, tags=200, tags_per_artifact=2)  # 28 or 29 tags a repository


def _stats(url: str) -> dict:
    with urllib.request.urlopen(url + "/_synthetic/stats", timeout=30) as resp:
        return json.loads(resp.read())


def test_dry_run_reads_each_page_once_and_asks_nothing_per_tag(tmp_path: Path) -> None:
    with synthetic(SHAPE) as src, synthetic(Shape(0, 0, 0)) as dst:
        proc = run_ferry("migrate", src, dst, "--src-creds", USER, "--dest-creds", USER, "--dry-run",
                         "--no-config", "--no-charts", "--report", str(tmp_path / "report.json"), home=tmp_path,
                         env={"FERRY_SRC_PASSWORD": PASSWORD, "FERRY_DEST_PASSWORD": PASSWORD})
        source, destination = _stats(src), _stats(dst)
    assert proc.returncode == 0, proc.stderr
    assert source["requests"] == sum(SHAPE.pages().values()) + 1  # pages + the credential check
    assert not [k for k in destination["by_kind"] if "/v2/" in k]  # no HEAD per tag at the destination
    lines = proc.stdout.splitlines()
    listed = [f"1.{a}.{t}" for a, n in enumerate(SHAPE.artifacts(29)) for t in range(n)]  # the listing's order
    assert f"  p0000/team-0/app-000000: {', '.join(listed[:20])} …" in lines  # the first 20 tags, an ellipsis
    assert sum(line.startswith("  p000") for line in lines) == SHAPE.repositories
    assert sum("would create" in line for line in lines) == SHAPE.projects
    assert lines[-1] == f"0 of {SHAPE.tags} already in place at the destination; {SHAPE.tags} to copy"
    report = json.loads((tmp_path / "report.json").read_text())
    to_copy = report["dry_run"]["to_copy"]
    assert report["dry_run"]["in_place"] == 0 and len(to_copy) == SHAPE.tags
    assert all(e["digest"].startswith("sha256:") and e["destination"].startswith(dst.partition("//")[2])
               for e in to_copy)
