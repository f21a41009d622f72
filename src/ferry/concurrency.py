"""Running many awaitables with a bound on how many are in flight at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def bounded_map(fn: Callable[[T], Awaitable[R]], items: Iterable[T], limit: int = 8) -> list[R]:
    """``fn`` over ``items`` with at most ``limit`` calls in flight; the results in the order of ``items``.

    ``limit`` workers take the items one after another, so that a million items cost a million results,
    not a million pending tasks (a task and its coroutine weigh about 1.5 kB)."""
    work = list(items)
    results: list[R] = [None] * len(work)  # type: ignore[list-item]
    queue = iter(enumerate(work))

    async def worker() -> None:
        for i, item in queue:
            results[i] = await fn(item)

    await asyncio.gather(*(worker() for _ in range(min(limit, len(work)))))
    return results
