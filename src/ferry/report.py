"""Summaries of a run for people (a rich table) and for machines (a JSON report file)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.engine import RunResult
from ferry.harbor.refusals import CAUSES, classify
from ferry.journal import JobRecord, JobStatus

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
        "refused": {key: len(records) for key, records in refusals(result).items()},
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


def refusals(result: RunResult) -> dict[str, list[JobRecord]]:
    """The failed jobs a Harbor refused (quota, immutable tag, read-only, policy), by cause."""
    out: dict[str, list[JobRecord]] = {}
    for rec in result.failed:
        cause = classify(rec.error)
        if cause is not None:
            out.setdefault(cause.key, []).append(rec)
    return out


def refusals_json(result: RunResult) -> dict[str, list[dict[str, str | None]]]:
    """The report's ``refusals`` section: cause → the images it refused, with Harbor's reason."""
    return {key: [{"source": r.source, "destination": r.destination, "reason": r.error} for r in records]
            for key, records in refusals(result).items()}


def print_failures(console: Console, result: RunResult, limit: int = 50) -> None:
    """Every failed image; those a Harbor refused grouped by cause, each group with its fix."""
    grouped = refusals(result)
    refused = {id(r) for records in grouped.values() for r in records}
    for rec in [r for r in result.failed if id(r) not in refused][:limit]:
        console.print(f"[red]failed[/red] {rec.source} → {rec.destination}: {rec.error}", highlight=False,
                      markup=True, soft_wrap=True)
    for cause in CAUSES:
        records = grouped.get(cause.key, [])
        if not records:
            continue
        console.print(f"[red]{len(records)} image(s) {cause.title}[/red] (fix: {cause.fix}):", highlight=False,
                      soft_wrap=True)
        for rec in records[:limit]:
            console.print(f"  {rec.destination}: {rec.error}", highlight=False, markup=False, soft_wrap=True)


def write_report(path: str | Path, payload: dict[str, Any]) -> None:
    """Write the JSON report atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def run_payload(result: RunResult, **extra: Any) -> dict[str, Any]:
    return {"summary": summary_dict(result), "jobs": [r.to_json() for r in result.records], **extra}


# -- the configuration section of ``ferry migrate`` (issue 10) ---------------------------------

CONFIG_COLUMNS = ("create", "update", "unchanged", "cannot", "failed", "manual")
_DONE = {"created": "create", "updated": "update"}  # a run's actions counted with the plan's


def config_table(entries: list[Any], title: str) -> Table:
    """One row per destination project and kind: how many objects each action took."""
    from rich.table import Table

    table = Table(title=title, header_style="bold")
    for col in ("project", "kind", *CONFIG_COLUMNS):
        table.add_column(col, justify="left" if col in ("project", "kind") else "right")
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for e in entries:
        row = counts.setdefault((e.project, e.kind), dict.fromkeys(CONFIG_COLUMNS, 0))
        row[_DONE.get(e.action, e.action)] += 1
    for (project, kind), row in counts.items():
        table.add_row(project, kind, *(str(row[c]) if row[c] else "" for c in CONFIG_COLUMNS))
    return table


def print_config_details(console: Console, entries: list[Any]) -> None:
    """Every object that changed, would change, or could not be, with its differences and why."""
    from rich.text import Text

    changed = [e for e in entries if e.action != "unchanged"]
    for e in changed:
        colour = "red" if e.failed else "yellow" if e.action == "manual" else "green"
        detail = "; ".join([*e.differences, *([e.note] if e.note else [])])
        line = Text.assemble((e.action, colour), f" {e.project} {e.kind} {e.name}" + (f": {detail}" if detail else ""))
        console.print(line, highlight=False, soft_wrap=True)
    if entries and not changed:
        console.print(f"configuration: all {len(entries)} objects already in place, nothing to change")
    elif not entries:
        console.print("configuration: nothing to migrate")
