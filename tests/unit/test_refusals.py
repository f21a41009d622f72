"""Harbor's refusals recognised from the error lines ferry records (Harbor's own messages, read in its
source), and grouped by cause in the summary and the report."""

from __future__ import annotations

from rich.console import Console

from ferry.engine import RunResult
from ferry.harbor.refusals import classify
from ferry.journal import JobRecord, JobStatus
from ferry.report import print_failures, refusals_json, summary_dict

QUOTA = ("h: permission denied for PUT manifest upload p/a:1: DENIED Quota exceeded when processing the request of "
         "adding 2.1 MiB of storage resource, which when updated to current usage of 8.3 MiB will exceed the "
         "configured upper limit of 10.0 MiB.")
IMMUTABLE = ("h: PUT manifest upload p/a:2 answered HTTP 412: PRECONDITION Failed to process request due to 'a:2' "
             "configured as immutable.")
READ_ONLY = ("h: permission denied for POST blob upload to p/a: DENIED The system is in read only mode. Any "
             "modification is prohibited.")
POLICY = "s: GET manifest p/a:4 answered HTTP 412: PROJECTPOLICYVIOLATION The image is not signed in Cosign."
OTHER = "h: user 'u' lacks permission for blob upload to p/a"


def test_each_harbor_refusal_is_recognised_and_a_plain_denial_is_not() -> None:
    assert [getattr(classify(e), "key", None) for e in (QUOTA, IMMUTABLE, READ_ONLY, POLICY, OTHER, None)] == \
        ["quota", "immutable", "read-only", "policy", None, None]
    assert classify("h: permission denied for PUT manifest upload p/a:1: DENIED requested access to the resource "
                    "is denied") is None


def test_refusals_are_grouped_by_cause_with_their_fix_and_counted_in_the_report() -> None:
    errors = (QUOTA, IMMUTABLE, QUOTA, OTHER)
    result = RunResult(records=[JobRecord(f"s/a:{i}", f"d/a:{i}", JobStatus.FAILED, error=e)
                                for i, e in enumerate(errors)] + [JobRecord("s/b", "d/b", JobStatus.COPIED)])
    assert summary_dict(result)["refused"] == {"quota": 2, "immutable": 1}
    assert [r["destination"] for r in refusals_json(result)["quota"]] == ["d/a:0", "d/a:2"]
    console = Console(record=True, width=400)
    print_failures(console, result)
    lines = console.export_text().splitlines()
    assert lines[0] == f"failed s/a:3 → d/a:3: {OTHER}"
    assert lines[1].startswith("2 image(s) refused by a project quota (fix: raise the destination project's quota")
    assert lines[2:4] == [f"  d/a:0: {QUOTA}", f"  d/a:2: {QUOTA}"]
    assert lines[4].startswith("1 image(s) refused by an immutable tag rule (fix: ")
