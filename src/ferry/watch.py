"""``ferry migrate --watch SECONDS``: the incremental migration again and again, until SIGINT or
SIGTERM. A signal lets the round in progress finish (its images, verification and report) and then
ends the watch with exit 0; between rounds it ends the wait at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator

from ferry.errors import FerryError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM while the block runs (the default handlers come back after)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


async def watch(one_round: Callable[[int], Awaitable[str]], seconds: float) -> int:
    """Run rounds ``seconds`` apart until a signal; each logs one summary line. Returns the rounds run."""
    rounds = 0
    with stop_on_signals() as stop:
        while not stop.is_set():
            rounds += 1
            try:
                line = await one_round(rounds)
            except FerryError as e:  # one bad round (a registry down for a while) does not end the watch
                line = f"failed: {e}"
            log.warning("round %d: %s", rounds, line)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
    log.warning("watch stopped after %d round(s)", rounds)
    return rounds
