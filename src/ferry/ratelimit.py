"""Token buckets for ``--max-bandwidth`` (bytes per second) and ``--max-requests`` (requests per second).

A :class:`TokenBucket` is filled at ``rate`` tokens a second up to ``burst``; taking ``n`` tokens
*reserves* them at once (the level may go below zero) and sleeps until the level is back at zero,
so waiters are served in the order they came and a big taker never starves behind small ones. Over
any interval of ``T`` seconds it lets at most ``rate·T + burst`` tokens through (plus one take larger
than ``burst``). The bursts are small — a fiftieth of a second of traffic, at least one request —
so a run never exceeds its rate by more than a few percent, measured over any second of it.

A :class:`Pacer` passes byte streams through the bandwidth bucket in pieces of at most ``burst``
bytes, so a 400 MB blob is paced as it streams, not let through as one burst. The HTTP layer
(:mod:`ferry.http`) is where both are applied; with no limit set, nothing here is on the path.

Each byte is paced once, where it leaves the source: a run that reads from registries paces the bodies
it receives (blobs, and the few manifests and listings beside them), and a streamed copy writes them
to the destination at that pace; a run that reads files (``ferry import``, ``copy`` from a directory or
an archive) paces the blob bodies it sends. Requests are paced per registry host: the source and the
destination of a migration each get the whole rate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

#: A bucket holds this share of a second's rate (20 ms of traffic): the most a run exceeds its rate by.
BURST_SECONDS = 0.02
#: A paced download's socket buffers this many seconds of its rate (at least 64 KiB, at most 4 MiB).
WINDOW_SECONDS = 0.05
#: Largest piece a paced stream is cut into (a larger burst only makes fewer, bigger pieces).
MAX_PIECE = 256 * 1024


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; ``clock`` and ``sleep`` are injectable for tests."""

    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("a token bucket needs a positive rate and burst")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._level = burst
        self._stamp = clock()

    def reserve(self, n: float) -> float:
        """Take ``n`` tokens now; the seconds to wait before using them (0: at once)."""
        now = self._clock()
        self._level = min(self.burst, self._level + (now - self._stamp) * self.rate) - n
        self._stamp = now
        return -self._level / self.rate if self._level < 0 else 0.0

    async def take(self, n: float) -> None:
        """Wait until ``n`` tokens may be used."""
        delay = self.reserve(n)
        if delay > 0:
            await self._sleep(delay)


def bucket_for(rate: float) -> TokenBucket:
    """A bucket for ``rate`` with the small burst every limit of a run uses (at least one token)."""
    return TokenBucket(rate, max(1.0, rate * BURST_SECONDS))


class Pacer:
    """Paces byte streams through one shared bandwidth bucket, piece by piece."""

    def __init__(self, bucket: TokenBucket) -> None:
        self.bucket = bucket
        self.piece = max(1, int(min(bucket.burst, MAX_PIECE)))
        #: Receive buffer of a paced download's socket: what the source can send ahead of the pace; enough for
        #: one connection to carry the whole rate over a 50 ms round trip.
        self.window = max(64 * 1024, min(4 * 1024 * 1024, int(bucket.rate * WINDOW_SECONDS)))

    async def pace(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``chunks`` again, in pieces of at most :attr:`piece` bytes, each once the bucket allows it."""
        step = self.piece
        async for chunk in chunks:
            for start in range(0, len(chunk), step):
                piece = chunk[start:start + step] if len(chunk) > step else chunk
                await self.bucket.take(len(piece))
                yield piece


@dataclass(frozen=True, slots=True)
class RateLimits:
    """What a run may use: ``bandwidth`` bytes a second over all its blob transfers, ``requests`` a second
    to each registry host (None: unlimited). ``pace_uploads``: the run reads from files (``ferry import``,
    ``copy`` from a directory or archive), so the bytes it sends are paced instead of those it receives."""

    bandwidth: float | None = None
    requests: float | None = None
    pace_uploads: bool = False

    def pacer(self) -> Pacer | None:
        """The run's one bandwidth pacer (shared by every registry), or None without a limit."""
        return Pacer(bucket_for(self.bandwidth)) if self.bandwidth else None

    def request_bucket(self) -> TokenBucket | None:
        """A request bucket for one registry host, or None without a limit."""
        return bucket_for(self.requests) if self.requests else None
