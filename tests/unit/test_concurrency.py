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
