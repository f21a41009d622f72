"""``ferry report merge``: shard reports into one (src/ferry/report_merge.py)."""

from __future__ import annotations

import json
import sys

import typer

from ferry.cli.app import app
from ferry.errors import RunFailedError
from ferry.report import write_report
from ferry.report_merge import load_report, merge_reports

report_app = typer.Typer(help="Work with --report files.", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("merge")
def merge(
    reports: list[str] = typer.Argument(..., metavar="REPORT...", help="The --report files of the shards."),
    output: str | None = typer.Option(None, "--output", "-o", help="Write the merged report here (default: stdout)."),
) -> None:
    """Merge the reports of a sharded migration or sync into one; every image is counted once."""
    merged = merge_reports([(path, load_report(path)) for path in reports])
    if output:
        write_report(output, merged)
    else:
        json.dump(merged, sys.stdout, indent=2)
        sys.stdout.write("\n")
    s = merged["summary"]
    mismatches = len(merged.get("verification", {}).get("mismatches", []))
    missing = merged.get("shards", {}).get("missing", [])
    print(f"{len(reports)} report(s): {s['jobs']} images, {s['copied']} copied, {s['skipped']} skipped, "
          f"{s['failed']} failed" + (f", {mismatches} not verified" if "verification" in merged else ""),
          file=sys.stderr)
    problems = [text for text, bad in (
        (f"shard(s) {', '.join(map(str, missing))} of {merged.get('shards', {}).get('count')} missing", missing),
        (f"{s['failed']} image(s) failed", s["failed"]),
        (f"{mismatches} not verified", mismatches),
    ) if bad]
    if problems:
        raise RunFailedError("merged report: " + "; ".join(problems))
