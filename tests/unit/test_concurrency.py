"""bounded_map: results in the order of the inputs, never more calls in flight than the limit."""

from __future__ import annotations

import asyncio

from ferry.concurrency import bounded_map


def test_results_keep_input_order_and_limit_holds() -> None:
    in_flight = peak = 0

    async def slow_square(n: int) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001 * (10 - n))  # later items finish first
        in_flight -= 1
        return n * n

    assert asyncio.run(bounded_map(slow_square, range(10), 3)) == [n * n for n in range(10)]
    assert peak == 3


def test_only_limit_calls_are_started_at_a_time() -> None:
    """Workers take the items one after another: no coroutine exists for an item before a worker takes it,
    so a million items never mean a million pending tasks."""
    started: list[int] = []
    done: list[int] = []

    async def record(n: int) -> int:
        started.append(n)
        assert len(started) - len(done) <= 2  # never more begun than the limit before some finished
        await asyncio.sleep(0)
        done.append(n)
        return n

    assert asyncio.run(bounded_map(record, range(50), 2)) == list(range(50))
    assert asyncio.run(bounded_map(record, [], 2)) == []
