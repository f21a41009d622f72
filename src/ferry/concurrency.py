"""Bounding what is in flight: many awaitables at most N at a time, a budget of units held at once
(images, buffer bytes) and how many images to keep in flight for a measured round trip."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
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


class Budget:
    """At most ``capacity`` units held at once, granted strictly in the order they were asked for (a big
    request is not overtaken for ever by small ones, and tasks start in the order they queued). A
    request larger than the whole budget is granted the whole budget. ``grow`` raises the capacity while
    the budget is in use."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a budget needs a capacity of at least 1")
        self.capacity = capacity
        self._free = capacity
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def held(self) -> int:
        return self.capacity - self._free

    @contextlib.asynccontextmanager
    async def hold(self, units: int = 1) -> AsyncIterator[None]:
        units = max(0, min(units, self.capacity))
        if self._waiting or units > self._free:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (units, fut)
            self._waiting.append(entry)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._release(units)  # granted, then cancelled before it could be used
                else:
                    self._waiting.remove(entry)
                    self._grant()
                raise
        else:
            self._free -= units
        try:
            yield
        finally:
            self._release(units)

    def grow(self, capacity: int) -> None:
        """Raise the capacity to ``capacity`` (never lowers it: units already held stay valid)."""
        if capacity > self.capacity:
            self._free += capacity - self.capacity
            self.capacity = capacity
            self._grant()

    def _release(self, units: int) -> None:
        self._free += units
        self._grant()

    def _grant(self) -> None:
        while self._waiting and self._waiting[0][0] <= self._free:
            units, fut = self._waiting.popleft()
            if not fut.done():
                self._free -= units
                fut.set_result(None)


#: Requests a second the images in flight are sized to keep going against each side: about what one
#: registry process answers on a loopback here (field notes: ~900 manifest HEADs/s at concurrency 16).
#: Far registries are then waited on side by side rather than one after the other; a near one keeps
#: the floor (at 0.5 ms, 800/s asks for less than one image).
TARGET_RATE = 800.0


def images_in_flight(round_trip: float, *, floor: int = 8, cap: int = 64, rate: float = TARGET_RATE) -> int:
    """Images to keep in flight when a request takes ``round_trip`` seconds: Little's law (in flight =
    rate × latency), at least ``floor`` (what a near registry needs to be kept busy) and at most ``cap``
    (connections and the memory of what waits)."""
    return max(floor, min(cap, math.ceil(rate * max(0.0, round_trip))))


class InFlightSizer:
    """Grows a :class:`Budget` of images in flight as round trips are measured (the first requests of a
    run, time to the answer): far registries get more images in flight, near ones keep the floor."""

    def __init__(self, gate: Budget, *, floor: int, cap: int) -> None:
        self.gate, self.floor, self.cap = gate, floor, cap
        self.round_trip: float | None = None  # the shortest measured so far

    def observe(self, seconds: float) -> None:
        self.round_trip = seconds if self.round_trip is None else min(self.round_trip, seconds)
        self.gate.grow(images_in_flight(self.round_trip, floor=self.floor, cap=self.cap))

    def expect(self, seconds: float) -> None:
        """Grow the budget for a round trip measured before the run (the start-up greeting), without
        taking it as the run's: a near registry's greeting (~1 ms) would otherwise hold the budget at
        the floor while a busy registry's answers take longer, which the run's own probes measured and
        grew it for (a cold sync of 1,000 small images ran ~7 % slower so)."""
        self.gate.grow(images_in_flight(seconds, floor=self.floor, cap=self.cap))
