"""``ferry report merge``'s rules on reports that overlap or do not belong together."""

from __future__ import annotations

from typing import Any

import pytest

from ferry.errors import UsageError
from ferry.report_merge import merge_reports


def rep(index: int | None, jobs: list[tuple[str, str, int]], seconds: float, **extra: Any) -> dict[str, Any]:
    return {
        "source": "a.example", "destination": "b.example",
        **({"shard": {"index": index, "count": 2}} if index is not None else {}),
        "summary": {"seconds": seconds, "requests": 10, "http_retries": 1},
        "jobs": [{"source": s, "destination": f"b/{s}", "status": st, "bytes": n} for s, st, n in jobs],
        **extra,
    }


def test_shards_add_up_and_wall_time_is_the_longest_shard() -> None:
    merged = merge_reports([
        ("r0", rep(0, [("x:1", "copied", 100), ("x:2", "skipped", 0)], 3.0,
                   verification={"checked": 2, "mismatches": []},
                   projects=[{"name": "p", "action": "exists", "differences": []}])),
        ("r1", rep(1, [("y:1", "copied", 50)], 5.0, verification={"checked": 1, "mismatches": []},
                   projects=[{"name": "p", "action": "created", "differences": []}])),
    ])
    s = merged["summary"]
    assert (s["jobs"], s["copied"], s["skipped"], s["failed"], s["bytes"]) == (3, 2, 1, 0, 150)
    assert (s["seconds"], s["requests"], s["http_retries"], s["bytes_per_second"]) == (5.0, 20, 2, 30)
    assert merged["verification"] == {"checked": 3, "mismatches": []}
    assert merged["projects"] == [{"name": "p", "action": "created", "differences": []}]


def test_an_image_in_two_reports_counts_once_and_its_success_wins() -> None:
    merged = merge_reports([("first", rep(None, [("x:1", "failed", 0)], 1.0)),
                            ("rerun", rep(None, [("x:1", "copied", 7)], 1.0))])
    assert [(j["status"], j["bytes"]) for j in merged["jobs"]] == [("copied", 7)]
    assert merged["summary"]["failed"] == 0 and "shards" not in merged


@pytest.mark.parametrize(("reports", "message"), [
    ([], "no reports to merge"),
    ([("a", rep(0, [], 1.0)), ("b", rep(0, [], 1.0))], "a and b are both shard 0/2"),
    ([("a", rep(0, [], 1.0)), ("b", {**rep(1, [], 1.0), "shard": {"index": 1, "count": 3}})],
     "different shard counts (2, 3)"),
    ([("a", rep(0, [], 1.0)), ("b", {**rep(1, [], 1.0), "source": "c.example"})], "different runs: source"),
])
def test_reports_that_do_not_belong_together_are_refused(reports: list[tuple[str, dict[str, Any]]],
                                                         message: str) -> None:
    with pytest.raises(UsageError) as err:
        merge_reports(reports)
    assert message in str(err.value)
