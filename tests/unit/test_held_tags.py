"""What a run takes from a destination repository's tag listing (``ferry.transports.registry._HeldTags``):
absence only, only after a HEAD has missed, one listing shared by everyone asking, and nothing at all
when the listing fails."""

from __future__ import annotations

import asyncio

from ferry.transports.registry import _HeldTags


def _lister(result: set[str] | None) -> tuple[list[int], object]:
    calls: list[int] = []

    async def list_tags() -> set[str] | None:
        calls.append(1)
        await asyncio.sleep(0.01)
        return None if result is None else set(result)

    return calls, list_tags


def test_nothing_is_listed_until_a_head_misses() -> None:
    held = _HeldTags()
    calls, list_tags = _lister({"v1"})
    assert asyncio.run(held.may_hold("v9", list_tags)) is True  # no listing: ask the registry
    assert calls == []


def test_after_a_miss_one_listing_answers_absence_and_pushed_tags_count_as_held() -> None:
    held = _HeldTags()
    calls, list_tags = _lister({"v1"})
    held.missed()

    async def run() -> tuple[list[bool], bool]:
        first = await asyncio.gather(*(held.may_hold(t, list_tags) for t in ("v1", "v2", "v3")))
        held.pushed("v2")
        return list(first), await held.may_hold("v2", list_tags)

    assert asyncio.run(run()) == ([True, False, False], True)
    assert calls == [1]  # one listing for all of them


def test_a_listing_that_fails_leaves_every_tag_to_its_head() -> None:
    held = _HeldTags()
    calls, list_tags = _lister(None)
    held.missed()

    async def run() -> list[bool]:
        return [await held.may_hold(t, list_tags) for t in ("v2", "v3")]

    assert asyncio.run(run()) == [True, True]
    assert calls == [1]
