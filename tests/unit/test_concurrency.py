"""bounded_map, Budget and the sizing of images in flight: order, limits, growth with the round trip."""

from __future__ import annotations

import asyncio

from ferry.concurrency import Budget, InFlightSizer, bounded_map, images_in_flight


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


def test_budget_grants_in_order_and_never_over_capacity() -> None:
    budget = Budget(10)
    order: list[str] = []
    held = peak = 0

    async def take(name: str, units: int) -> None:
        nonlocal held, peak
        async with budget.hold(units):
            held += units
            peak = max(peak, held)
            order.append(name)
            await asyncio.sleep(0.001)
            held -= units

    async def main() -> None:
        # big waits for the two small ones to finish; the small one queued after it does not overtake it
        await asyncio.gather(take("a", 4), take("b", 4), take("big", 9), take("c", 1))

    asyncio.run(main())
    assert order == ["a", "b", "big", "c"]
    assert peak <= 10


def test_budget_gives_an_oversized_request_the_whole_budget_and_grows() -> None:
    async def main() -> tuple[int, int, int]:
        budget = Budget(2)
        async with budget.hold(5):
            oversized = budget.held
        gate_open = asyncio.Event()

        async def one() -> None:
            async with budget.hold():
                await gate_open.wait()

        tasks = [asyncio.ensure_future(one()) for _ in range(4)]
        await asyncio.sleep(0)
        before = budget.held  # two in, two waiting
        budget.grow(4)
        await asyncio.sleep(0)
        after = budget.held  # all four in
        gate_open.set()
        await asyncio.gather(*tasks)
        return oversized, before, after

    assert asyncio.run(main()) == (2, 2, 4)


def test_a_cancelled_waiter_gives_its_turn_away() -> None:
    async def main() -> bool:
        budget = Budget(1)
        entered = asyncio.Event()
        async with budget.hold():
            waiter = asyncio.ensure_future(budget.hold().__aenter__())
            await asyncio.sleep(0)
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)

        async def third() -> None:
            async with budget.hold():
                entered.set()

        await asyncio.wait_for(third(), 1)
        return entered.is_set() and budget.held == 0

    assert asyncio.run(main())


def test_images_in_flight_follow_the_round_trip_within_floor_and_cap() -> None:
    assert images_in_flight(0.0005) == 8  # a near registry: the floor
    assert images_in_flight(0.005) == 8
    assert images_in_flight(0.020) == 16  # Little's law: 800 requests/s × 20 ms
    assert images_in_flight(0.080) == 64  # ... and never above the cap
    assert images_in_flight(0.080, floor=2, cap=16, rate=100) == 8


def test_sizer_grows_the_gate_from_the_shortest_round_trip_and_never_shrinks_it() -> None:
    gate = Budget(8)
    sizer = InFlightSizer(gate, floor=8, cap=64)
    sizer.observe(0.030)  # the first answer, connection set-up included
    assert gate.capacity == 24
    sizer.observe(0.020)
    sizer.observe(0.300)  # queued behind others: not a shorter round trip
    assert sizer.round_trip == 0.020
    assert gate.capacity == 24

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
