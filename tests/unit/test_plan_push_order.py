"""The inventory's plan: jobs in source push order, push times kept compactly beside the jobs."""

from __future__ import annotations

from ferry.harbor.artifacts import Artifact
from ferry.plan.inventory import ArtifactIndex, MigrationPlan, Selection, _plan_artifact
from ferry.refs import RegistryRef

SRC, DST = RegistryRef("src.example", "p/app"), RegistryRef("dst.example", "p/app")


def _artifact(digest: str, tags: tuple[str, ...], pushed: str, tag_times: tuple[str, ...] = ()) -> Artifact:
    return Artifact("p/app", digest, "application/vnd.oci.image.manifest.v1+json", 10, tags, push_time=pushed,
                    tag_push_times=tag_times)


def test_jobs_go_oldest_push_first_and_ties_keep_the_listing_order() -> None:
    plan = MigrationPlan(projects=[])
    arts = [_artifact("sha256:c", ("new",), "2026-03-01T00:00:00.000Z"),
            _artifact("sha256:a", ("old", "retagged"), "2026-01-01T00:00:00.000Z", ("", "2026-04-01T00:00:00.000Z")),
            _artifact("sha256:b", ("mid-1", "mid-2"), "2026-02-01T00:00:00.000Z")]
    for art in arts:
        _plan_artifact(plan, Selection(), "p", art, SRC, DST, {})
    plan.in_push_order()
    assert [j.source.tag for j in plan.images] == ["old", "mid-1", "mid-2", "new", "retagged"]
    assert [str(e.destination) for e in plan.expected][:2] == ["dst.example/p/app:new", "dst.example/p/app:old"]
    assert plan.image_times == []  # the times served the sort and are gone


def test_a_tag_pushed_with_its_artifact_takes_the_artifact_time() -> None:
    art = _artifact("sha256:a", ("x", "y"), "2026-01-01T00:00:00.000Z", ("", "2026-05-01T00:00:00.000Z"))
    assert art.pushed("x") == "2026-01-01T00:00:00.000Z"
    assert art.pushed("y") == "2026-05-01T00:00:00.000Z"
    assert _artifact("sha256:b", ("z",), "2026-02-01T00:00:00.000Z").pushed("z") == "2026-02-01T00:00:00.000Z"


def test_tag_filters_still_apply_when_given() -> None:
    plan = MigrationPlan(projects=[])
    _plan_artifact(plan, Selection(exclude_tags=("*-rc",)), "p", _artifact("sha256:a", ("1.0", "1.1-rc"), "t"),
                   SRC, DST, {})
    assert [j.destination.tag for j in plan.images] == ["1.0"]


def test_artifact_index_finds_each_listed_artifact_by_repository_and_digest() -> None:
    a, b = _artifact("sha256:a", ("1",), "t"), _artifact("sha256:b", (), "t")
    index = ArtifactIndex({"p/app": [a, b], "p/empty": []})
    assert index[("p/app", "sha256:b")] is b and index.get(("p/app", "sha256:x")) is None
    assert index.get(("p/other", "sha256:a")) is None
    assert list(index) == [("p/app", "sha256:a"), ("p/app", "sha256:b")] and len(index) == 2
    assert list(index.values()) == [a, b]
