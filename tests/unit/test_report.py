"""The run summary: counts per status, the same strings in the JSON report, sizes in decimal units."""

from __future__ import annotations

import json

from rich.console import Console

from ferry.engine import RunResult
from ferry.journal import JobRecord, JobStatus
from ferry.report import run_payload, summary_table


def _result() -> RunResult:
    return RunResult(
        records=[
            JobRecord("s/a:1", "d/a:1", JobStatus.COPIED, bytes=1_234_567),
            JobRecord("s/a:2", "d/a:2", JobStatus.SKIPPED),
            JobRecord("s/a:3", "d/a:3", JobStatus.FAILED, error="boom"),
        ],
        seconds=2.0,
    )


def test_json_report_counts_statuses_and_keeps_their_strings() -> None:
    payload = json.loads(json.dumps(run_payload(_result())))
    summary = payload["summary"]
    assert (summary["copied"], summary["skipped"], summary["failed"]) == (1, 1, 1)
    assert [job["status"] for job in payload["jobs"]] == ["copied", "skipped", "failed"]


def test_table_shows_bytes_and_rate_in_decimal_units() -> None:
    console = Console(width=160, record=True)
    console.print(summary_table(_result()))
    row = console.export_text().splitlines()[-2]
    assert [cell.strip() for cell in row.strip("│ ").split("│")] == [
        "1", "1", "1", "1.2 MB", "2.0 s", "617.3 kB/s", "0",
    ]
