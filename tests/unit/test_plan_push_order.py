"""The inventory's plan: jobs in source push order, push times kept compactly beside the jobs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from ferry.harbor.artifacts import Artifact, ArtifactList
from ferry.plan.inventory import ArtifactIndex, MigrationPlan, Selection, _plan_repository
from ferry.plan.model import Route
from ferry.refs import RegistryRef

SRC, DST = RegistryRef("src.example", "p/app"), RegistryRef("dst.example", "p/app")
ROUTE = Route(SRC, DST, "p")

#: a listing as Harbor's is kept (columns), and as plain artifacts (an export's description): planned alike
LISTINGS: list[Callable[[list[Artifact]], Sequence[Artifact]]] = [lambda arts: ArtifactList("p/app", arts), list]


def _artifact(digest: str, tags: tuple[str, ...], pushed: str, tag_times: tuple[str, ...] = ()) -> Artifact:
    return Artifact("p/app", digest, "application/vnd.oci.image.manifest.v1+json", 10, tags, push_time=pushed,
                    tag_push_times=tag_times)


@pytest.mark.parametrize("listing", LISTINGS)
def test_jobs_go_oldest_push_first_and_ties_keep_the_listing_order(
        listing: Callable[[list[Artifact]], Sequence[Artifact]]) -> None:
    plan = MigrationPlan(projects=[])
    arts = [_artifact("sha256:c", ("new",), "2026-03-01T00:00:00.000Z"),
            _artifact("sha256:a", ("old", "retagged"), "2026-01-01T00:00:00.000Z", ("", "2026-04-01T00:00:00.000Z")),
            _artifact("sha256:b", ("mid-1", "mid-2"), "2026-02-01T00:00:00.000Z")]
    _plan_repository(plan, Selection(), ROUTE, listing(arts), {})
    plan.in_push_order()
    assert [j.source.tag for j in plan.images] == ["old", "mid-1", "mid-2", "new", "retagged"]
    assert [str(e.destination) for e in plan.expected][:2] == ["dst.example/p/app:new", "dst.example/p/app:old"]
    assert plan.image_times == []  # the times served the sort and are gone


def test_a_tag_pushed_with_its_artifact_takes_the_artifact_time() -> None:
    art = _artifact("sha256:a", ("x", "y"), "2026-01-01T00:00:00.000Z", ("", "2026-05-01T00:00:00.000Z"))
    assert art.pushed("x") == "2026-01-01T00:00:00.000Z"
    assert art.pushed("y") == "2026-05-01T00:00:00.000Z"
    assert _artifact("sha256:b", ("z",), "2026-02-01T00:00:00.000Z").pushed("z") == "2026-02-01T00:00:00.000Z"


@pytest.mark.parametrize("listing", LISTINGS)
def test_tag_filters_still_apply_when_given(listing: Callable[[list[Artifact]], Sequence[Artifact]]) -> None:
    plan = MigrationPlan(projects=[])
    arts = [_artifact("sha256:a", ("1.0", "1.1-rc"), "t"), _artifact("sha256:b", ("2.0-rc",), "t")]
    _plan_repository(plan, Selection(exclude_tags=("*-rc",)), ROUTE, listing(arts), {})
    assert [j.destination.tag for j in plan.images] == ["1.0"]
    assert [j.digest for j in plan.expected] == ["sha256:a"] and plan.expected[0].project == "p"


def test_artifact_index_finds_each_listed_artifact_by_repository_and_digest() -> None:
    a, b = _artifact("sha256:a", ("1",), "t"), _artifact("sha256:b", (), "t")
    index = ArtifactIndex({"p/app": [a, b], "p/empty": []})
    assert index[("p/app", "sha256:b")] is b and index.get(("p/app", "sha256:x")) is None
    assert index.get(("p/other", "sha256:a")) is None
    assert list(index) == [("p/app", "sha256:a"), ("p/app", "sha256:b")] and len(index) == 2
    assert list(index.values()) == [a, b]
