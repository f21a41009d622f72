"""Images in flight from the first image on: the engine starts from the round trip the start-up
greetings measured (:func:`ferry.warmup.round_trip`), so a far registry's first images do not go in
waves of the floor; with no greeting, or ``--proc``, nothing changes."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from ferry import warmup
from ferry.connect import Connections
from ferry.engine import PROC_CAP, PROC_FLOOR, Engine, EngineOptions


def _greetings(*round_trips: float | None) -> dict[tuple[str, bool, bool, None], Future[warmup.Greeting | None]]:
    """Greetings by key: a finished one per round trip, one still under way for None."""
    started: dict[tuple[str, bool, bool, None], Future[warmup.Greeting | None]] = {}
    for i, seconds in enumerate(round_trips):
        answer: Future[warmup.Greeting | None] = Future()
        if seconds is not None:
            answer.set_result(warmup.Greeting("http", None, seconds, open=True))
        started[(f"r{i}.example", False, False, None)] = answer
    return started


@pytest.mark.parametrize(("round_trips", "proc", "expected"), [
    ((), None, PROC_FLOOR),  # no greeting (migrate, --max-requests): the floor, grown by the images' probes
    ((0.0004,), None, PROC_FLOOR),  # a near registry
    ((0.08, 0.02), None, 16),  # the nearer of the two: 800 requests/s × 20 ms
    ((0.08,), None, PROC_CAP),
    ((None,), None, PROC_FLOOR),  # a greeting still under way is not waited for
    ((0.08,), 3, 3),  # --proc fixes it
])
def test_the_first_images_in_flight_follow_the_greetings_round_trip(
        monkeypatch: pytest.MonkeyPatch, round_trips: tuple[float | None, ...], proc: int | None,
        expected: int) -> None:
    monkeypatch.setattr(warmup, "_started", _greetings(*round_trips))
    engine = Engine(Connections(), EngineOptions(proc=proc))
    assert engine._gate.capacity == expected
