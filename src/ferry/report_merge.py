"""``ferry report merge``: the reports of a sharded run (``--shard I/N … --report``) as one.

Shards are disjoint by construction (plan/shard.py), so the merge is mostly a union; an image that
appears in two reports anyway (an unsharded rerun given alongside) is counted once, its successful
record preferred. Wall time is the longest shard's (they run side by side); requests, retries and
bytes are summed. One report per shard index: two for the same shard would count its images twice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ferry.errors import UsageError

# a project created by any shard was created; one no shard created already existed
_PROJECT_ACTIONS = ("created", "create", "would create", "exists", "plain registry")


def load_report(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: no such report") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: not a ferry JSON report ({type(e).__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise UsageError(f"{path}: not a ferry JSON report (no jobs list)",
                         hint="give the files migrate/sync wrote with --report")
    return data


def _shard_set(reports: list[tuple[str, dict[str, Any]]]) -> dict[str, Any] | None:
    seen: dict[int, str] = {}
    counts = set()
    for path, rep in reports:
        shard = rep.get("shard")
        if not shard:
            continue
        counts.add(shard["count"])
        if shard["index"] in seen:
            raise UsageError(f"{seen[shard['index']]} and {path} are both shard {shard['index']}/{shard['count']}",
                             hint="give one report per shard (the latest run of each)")
        seen[shard["index"]] = path
    if not counts:
        return None
    if len(counts) > 1:
        raise UsageError(f"the reports come from different shard counts ({', '.join(map(str, sorted(counts)))})")
    count = counts.pop()
    return {"count": count, "merged": sorted(seen), "missing": [i for i in range(count) if i not in seen]}


def _same(reports: list[tuple[str, dict[str, Any]]], key: str) -> Any:
    values = {rep.get(key) for _, rep in reports if rep.get(key) is not None}
    if len(values) > 1:
        raise UsageError(f"the reports are of different runs: {key} {' vs '.join(sorted(map(str, values)))}")
    return values.pop() if values else None


def _jobs(reports: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for _, rep in reports:
        for job in rep["jobs"]:
            key = (job["source"], job["destination"])
            kept = by_key.get(key)
            if kept is None or kept["status"] == "failed":
                by_key[key] = job
    return list(by_key.values())


def _summary(reports: list[tuple[str, dict[str, Any]]], jobs: list[dict[str, Any]]) -> dict[str, Any]:
    summaries = [rep["summary"] for _, rep in reports if rep.get("summary")]
    seconds = max((s.get("seconds", 0.0) for s in summaries), default=0.0)
    moved = sum(j.get("bytes", 0) for j in jobs)
    return {
        "jobs": len(jobs),
        **{status: sum(j["status"] == status for j in jobs) for status in ("copied", "skipped", "failed")},
        "bytes": moved,
        "seconds": seconds,
        "bytes_per_second": round(moved / max(seconds, 1e-9)),
        "requests": sum(s.get("requests", 0) for s in summaries),
        "http_retries": sum(s.get("http_retries", 0) for s in summaries),
    }


def _projects(reports: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for _, rep in reports:
        for proj in rep.get("projects", []):
            kept = merged.setdefault(proj["name"], {**proj, "differences": []})
            if _rank(proj["action"]) < _rank(kept["action"]):
                kept["action"] = proj["action"]
            kept["differences"] += [d for d in proj.get("differences", []) if d not in kept["differences"]]
    return list(merged.values())


def _rank(action: str) -> int:
    return _PROJECT_ACTIONS.index(action) if action in _PROJECT_ACTIONS else len(_PROJECT_ACTIONS)


def _verification(reports: list[tuple[str, dict[str, Any]]]) -> dict[str, Any] | None:
    checks = [rep["verification"] for _, rep in reports if rep.get("verification")]
    if not checks:
        return None
    mismatches = {m["destination"]: m for v in checks for m in v["mismatches"]}
    return {"checked": sum(v["checked"] for v in checks), "mismatches": list(mismatches.values())}


def merge_reports(reports: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """``reports``: (file name, payload) pairs, the names for error messages."""
    if not reports:
        raise UsageError("no reports to merge")
    shards = _shard_set(reports)
    jobs = _jobs(reports)
    out: dict[str, Any] = {}
    for key in ("source", "destination", "source_is_harbor", "destination_is_harbor"):
        if (value := _same(reports, key)) is not None:
            out[key] = value
    if shards is not None:
        out["shards"] = shards
    if any("projects" in rep for _, rep in reports):
        out["projects"] = _projects(reports)
    out["summary"] = _summary(reports, jobs)
    out["jobs"] = jobs
    if (verification := _verification(reports)) is not None:
        out["verification"] = verification
    return out
