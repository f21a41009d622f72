"""The dry run's printout: each project's bytes (its planned artifacts, each distinct digest once) and jobs, whether its
entries come together (a Harbor plan) or mixed with other projects' (an import's)."""

from __future__ import annotations

from ferry.cli.migrate import _bytes_by_project, _runs
from ferry.digests import pack
from ferry.plan.inventory import MigrationPlan
from ferry.plan.model import Job, Route
from ferry.refs import RegistryRef

A, B, C = ("sha256:" + c * 64 for c in "abc")


def _job(project: str, tag: str, digest: str | None) -> Job:
    return Job.named(Route(RegistryRef("src", f"{project}/app"), RegistryRef("dst", f"{project}/app"), project), tag,
                     digest)


def test_each_digest_counts_once_per_project_in_any_order() -> None:
    plan = MigrationPlan(projects=[], sizes={pack(A): 10, pack(B): 200, pack(C): 3000})
    plan.expected = [_job("p", "1", A), _job("p", "2", A), _job("q", "1", A), _job("p", "3", B),
                     _job("q", "2", C), _job("r", "1", None)]
    assert _bytes_by_project(plan) == {"p": 210, "q": 3010, "r": 0}


def test_the_printout_finds_each_projects_jobs_in_every_run() -> None:
    jobs = [_job("p", "1", A), _job("p", "2", A), _job("q", "1", A), _job("p", "3", B)]
    runs = _runs(jobs)
    assert runs == {"p": [slice(0, 2), slice(3, 4)], "q": [slice(2, 3)]}
    assert [j.source_parts()[1] for r in runs["p"] for j in jobs[r]] == ["1", "2", "3"]
