"""Summaries of a run for people (a rich table) and for machines (a JSON report file)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.engine import RunResult
from ferry.journal import JobStatus

if TYPE_CHECKING:  # rich costs start-up time; the everyday commands print no tables
    from rich.console import Console
    from rich.table import Table


def summary_dict(result: RunResult) -> dict[str, Any]:
    seconds = max(result.seconds, 1e-9)
    return {
        "jobs": len(result.records),
        "copied": result.count(JobStatus.COPIED),
        "skipped": result.count(JobStatus.SKIPPED),
        "failed": result.count(JobStatus.FAILED),
        "bytes": result.bytes,
        "seconds": round(result.seconds, 3),
        "bytes_per_second": round(result.bytes / seconds),
        "requests": result.requests,
        "http_retries": result.http_retries,
    }


def summary_table(result: RunResult, title: str = "ferry") -> Table:
    from rich.filesize import decimal
    from rich.table import Table

    s = summary_dict(result)
    table = Table(title=title, show_header=True, header_style="bold")
    for col in ("copied", "skipped (identical)", "failed", "bytes moved", "duration", "rate", "requests"):
        table.add_column(col, justify="right")
    table.add_row(
        str(s["copied"]), str(s["skipped"]), str(s["failed"]), decimal(s["bytes"]),
        f"{s['seconds']:.1f} s", f"{decimal(s['bytes_per_second'])}/s", str(s["requests"]),
    )
    return table


def print_failures(console: Console, result: RunResult) -> None:
    for rec in result.failed:
        console.print(f"[red]failed[/red] {rec.source} → {rec.destination}: {rec.error}", highlight=False,
                      markup=True, soft_wrap=True)


def write_report(path: str | Path, payload: dict[str, Any]) -> None:
    """Write the JSON report atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def run_payload(result: RunResult, **extra: Any) -> dict[str, Any]:
    return {"summary": summary_dict(result), "jobs": [r.to_json() for r in result.records], **extra}
