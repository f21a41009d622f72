"""--shard: the split by source repository is a partition (every job in exactly one shard) and parses
the forms users type, with a clear error for the others."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferry.errors import UsageError
from ferry.harbor.projects import Project
from ferry.plan.inventory import MigrationPlan
from ferry.plan.model import Expected, Job
from ferry.plan.shard import Shard, parse_shard, select_jobs, select_plan, shard_of
from ferry.refs import RegistryRef

repo_names = st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9._-]{1,8}){0,3}", fullmatch=True)
tags = st.from_regex(r"[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,10}", fullmatch=True)


def _job(repo: str, tag: str) -> Job:
    return Job(RegistryRef("src.example:5000", repo, tag=tag), RegistryRef("dst.example", repo, tag=tag), "p")


@given(st.lists(st.tuples(repo_names, tags), unique=True, max_size=60), st.integers(1, 9))
def test_shards_partition_the_jobs(pairs: list[tuple[str, str]], count: int) -> None:
    jobs = [_job(r, t) for r, t in pairs]
    shares = [select_jobs(jobs, Shard(i, count)) for i in range(count)]
    keys = [j.key for share in shares for j in share]
    assert sorted(keys) == sorted(j.key for j in jobs)  # the union is the whole: none lost, none twice
    for share in shares:  # a repository is never split
        for other in shares:
            if share is not other:
                assert not {j.source.repository for j in share} & {j.source.repository for j in other}


def test_split_is_stable_and_spreads() -> None:
    assert shard_of("library/alpine", 4) == shard_of("library/alpine", 4)  # not Python's salted hash
    assert shard_of("library/alpine", 1) == 0
    spread = {shard_of(f"proj/repo{i}", 4) for i in range(40)}
    assert spread == {0, 1, 2, 3}


def test_accessories_and_verification_follow_their_repository() -> None:
    plan = MigrationPlan(projects=[Project(name="p", project_id=1, public=False)])
    repos = [f"p/r{i}" for i in range(12)]
    for r in repos:
        plan.images.append(_job(r, "v1"))
        plan.accessories.append(_job(r, "sha256-abc.sig"))
        plan.expected.append(Expected(plan.images[-1].source, plan.images[-1].destination, "p"))
    plan.repositories["p"] = list(repos)
    total = len(plan.jobs)
    seen = 0
    for i in range(3):
        part = MigrationPlan(projects=list(plan.projects), images=list(plan.images),
                             accessories=list(plan.accessories), expected=list(plan.expected),
                             repositories={"p": list(repos)})
        part = select_plan(part, Shard(i, 3))
        assert {j.source.repository for j in part.accessories} == {j.source.repository for j in part.images}
        assert {e.source.repository for e in part.expected} == set(part.repositories["p"])
        assert [p.name for p in part.projects] == ["p"]  # every shard may create the project
        seen += len(part.jobs)
    assert seen == total


def test_parse_shard_forms() -> None:
    assert parse_shard(None) is None
    assert parse_shard("2/4") == Shard(2, 4)
    assert parse_shard("auto/3", {"JOB_COMPLETION_INDEX": "1"}) == Shard(1, 3)


@pytest.mark.parametrize(("text", "env", "message"), [
    ("4/4", {}, "index '4' is not in 0..3"),
    ("1", {}, "invalid --shard '1'"),
    ("0/0", {}, "invalid --shard '0/0'"),
    ("-1/2", {}, "is not in 0..1"),
    ("x/2", {}, "is not in 0..1"),
    ("auto/2", {}, "$JOB_COMPLETION_INDEX is not set"),
    ("auto/2", {"JOB_COMPLETION_INDEX": "5"}, "index '5' is not in 0..1"),
])
def test_parse_shard_errors(text: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=None) as err:
        parse_shard(text, env)
    assert message in str(err.value)
