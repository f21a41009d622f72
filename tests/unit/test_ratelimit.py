"""The token buckets of ``--max-bandwidth``/``--max-requests`` on an injected clock (no real sleeping),
and the parser of their RATE values."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.filesize import decimal

from ferry.access import Access, Credential
from ferry.cli.options import parse_rate, rate_limits
from ferry.errors import UsageError
from ferry.http import HTTPPool
from ferry.ratelimit import BURST_SECONDS, MAX_PIECE, Pacer, RateLimits, TokenBucket, bucket_for


class FakeClock:
    """A clock that only moves when something sleeps on it (or a test lets time pass)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def bucket(rate: float, burst: float, clock: FakeClock) -> TokenBucket:
    return TokenBucket(rate, burst, clock=clock, sleep=clock.sleep)


def most_in_window(grants: list[tuple[float, float]], window: float) -> float:
    """The most tokens granted in any interval of ``window`` seconds (one starting at a grant is the worst)."""
    return max(sum(n for t, n in grants if start <= t <= start + window) for start, _ in grants)


def test_a_full_bucket_lets_its_burst_through_at_once_then_paces() -> None:
    clock = FakeClock()
    b = bucket(100.0, 10.0, clock)
    assert b.reserve(10) == 0.0
    assert b.reserve(5) == pytest.approx(0.05)
    assert b.reserve(5) == pytest.approx(0.10)  # reserved behind the first waiter: first come, first served


def test_idle_time_refills_only_up_to_the_burst() -> None:
    clock = FakeClock()
    b = bucket(100.0, 10.0, clock)
    b.reserve(10)
    clock.now += 60  # a minute idle saves up 10 tokens, not 6000
    assert b.reserve(10) == 0.0
    assert b.reserve(1) == pytest.approx(0.01)


def test_a_take_larger_than_the_burst_waits_for_its_debt() -> None:
    clock = FakeClock()
    b = bucket(1000.0, 100.0, clock)
    asyncio.run(b.take(1100))
    assert clock.slept == [pytest.approx(1.0)]


@settings(max_examples=200, deadline=None)
@given(rate=st.floats(1.0, 1e9), sizes=st.lists(st.floats(0.01, 1.0), min_size=1, max_size=60),
       gaps=st.lists(st.floats(0.0, 0.2), min_size=60, max_size=60), window=st.floats(0.05, 5.0))
def test_no_window_gets_more_than_rate_times_its_length_plus_the_burst(
        rate: float, sizes: list[float], gaps: list[float], window: float) -> None:
    """The promise of the module: over any interval, at most rate·T + burst; and never slower than needed."""
    clock = FakeClock()
    b = bucket_for(rate)
    b = bucket(b.rate, b.burst, clock)
    start = clock.now
    grants: list[tuple[float, float]] = []
    idle = 0.0

    async def run() -> None:
        nonlocal idle
        for fraction, gap in zip(sizes, gaps, strict=False):
            n = fraction * b.burst
            await b.take(n)
            grants.append((clock.now, n))
            clock.now += gap * len(sizes) / rate * b.burst  # some idle time, in proportion to the rate
            idle += gap * len(sizes) / rate * b.burst

    asyncio.run(run())
    total = sum(n for _, n in grants)
    assert most_in_window(grants, window) <= rate * window + b.burst * (1 + 1e-9)
    elapsed = clock.now - start
    assert elapsed >= (total - b.burst) / rate * (1 - 1e-9)  # the lower bound a user can count on
    assert elapsed - idle <= total / rate * (1 + 1e-9) + 1e-9  # and no waiting beyond what the rate asks


def test_the_burst_is_a_fiftieth_of_a_second_and_at_least_one_token() -> None:
    assert bucket_for(4_000_000).burst == pytest.approx(4_000_000 * BURST_SECONDS)
    assert bucket_for(20).burst == 1.0  # one request at a time
    assert bucket_for(0.5).burst == 1.0


async def _chunks(sizes: list[int]) -> AsyncIterator[bytes]:
    for i, size in enumerate(sizes):
        yield bytes([i % 256]) * size


def test_a_paced_stream_is_cut_into_pieces_within_the_burst_and_keeps_every_byte() -> None:
    """A big body is paced as it streams (1 MiB chunks in 80 kB pieces), not let through as one burst."""
    clock = FakeClock()
    rate = 4_000_000.0
    pacer = Pacer(bucket(rate, rate * BURST_SECONDS, clock))
    sizes = [1 << 20] * 12 + [17, 0, 300_000]
    start = clock.now

    async def collect() -> list[tuple[float, bytes]]:
        return [(clock.now, piece) async for piece in pacer.pace(_chunks(sizes))]

    pieces = asyncio.run(collect())
    assert b"".join(p for _, p in pieces) == b"".join(bytes([i % 256]) * s for i, s in enumerate(sizes))
    assert max(len(p) for _, p in pieces) <= pacer.piece == int(rate * BURST_SECONDS)
    total = sum(sizes)
    assert clock.now - start >= (total - pacer.bucket.burst) / rate - 1e-9
    assert most_in_window([(t, len(p)) for t, p in pieces], 1.0) <= rate * 1.0 + pacer.bucket.burst


def test_pieces_are_capped_for_a_large_rate() -> None:
    assert Pacer(bucket_for(1.5e9)).piece == MAX_PIECE


def test_no_limit_means_no_pacer_and_no_bucket() -> None:
    limits = rate_limits(None, None)
    assert limits == RateLimits()
    assert limits.pacer() is None and limits.request_bucket() is None
    both = rate_limits("4M", "20", pace_uploads=True)
    assert both.bandwidth == 4e6 and both.requests == 20 and both.pace_uploads
    assert both.request_bucket() is not both.request_bucket()  # one per registry host


def test_the_pool_gives_each_registry_host_one_request_budget_and_the_run_one_bandwidth_budget() -> None:
    pool = HTTPPool(limits=rate_limits("4M", "20"))
    alice, bob = Access(Credential("alice", "a")), Access(Credential("bob", "b"))
    src_a, src_b, dst = pool.get("src:5000", alice), pool.get("SRC:5000", bob), pool.get("dst:5000", alice)
    assert src_a is not src_b and src_a._requests is src_b._requests  # one host, whatever the credentials
    assert dst._requests is not None and dst._requests is not src_a._requests  # each side its own
    assert src_a._received is dst._received is not None and src_a._sent is None  # one pacer, on what is read
    uploads = HTTPPool(limits=rate_limits("4M", None, pace_uploads=True)).get("dst:5000", alice)
    assert uploads._sent is not None and uploads._received is None and uploads._requests is None


async def test_without_limits_nothing_is_on_the_path() -> None:
    pool = HTTPPool()
    client = pool.get("src:5000", Access())
    assert client._requests is client._received is client._sent is None
    assert not client.session._trace_configs
    limited = HTTPPool(limits=rate_limits(None, "20"))
    assert len(limited.get("src:5000", Access()).session._trace_configs) == 1
    await pool.close()
    await limited.close()


# -- RATE ---------------------------------------------------------------------------------------

DECIMAL = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


@given(n=st.integers(1, 10**6), prefix=st.sampled_from(sorted({**DECIMAL, **BINARY})),
       suffix=st.sampled_from(["", "B", "/s", "B/s"]), space=st.sampled_from(["", " "]))
def test_a_rate_is_its_number_times_its_unit(n: int, prefix: str, suffix: str, space: str) -> None:
    text = f"{n}{space}{prefix}{suffix}"
    assert parse_rate(text, "--max-bandwidth") == n * {**DECIMAL, **BINARY}[prefix]


@given(n=st.integers(1, 10**15 - 1))  # from 1 PB on rich prints PB, beyond any link
def test_what_rich_filesize_prints_reads_back_as_that_size(n: int) -> None:
    """``decimal()`` rounds to one decimal: reading it back lands within that rounding."""
    assert parse_rate(decimal(n), "--max-bandwidth") == pytest.approx(n, rel=0.06)


@given(text=st.text(max_size=12))
def test_any_text_is_a_positive_finite_rate_or_a_usage_error(text: str) -> None:
    for unit in ("B", ""):
        try:
            value = parse_rate(text, "--max-requests", unit=unit)
        except UsageError as e:
            assert "\n" not in str(e) and "--max-requests" in str(e)
        else:
            assert 0 < value < math.inf


@given(value=st.floats(0.001, 1e6), suffix=st.sampled_from(["", "/s"]))
def test_requests_take_plain_numbers(value: float, suffix: str) -> None:
    text = f"{value:.3f}"
    assert parse_rate(text + suffix, "--max-requests", unit="") == float(text)


@pytest.mark.parametrize("text", ["0", "0M", "-5M", "fast", "5 M B", "1e6", "3Mb", "2k/min", "inf", "nan", "",
                                  "9" * 400])
def test_bad_rates_are_refused_in_one_line(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_rate(text, "--max-bandwidth")
    assert info.value.exit_code == 2 and "--max-bandwidth" in str(info.value)


def test_bits_are_refused_with_the_fix() -> None:
    with pytest.raises(UsageError, match="bits"):
        parse_rate("100Mb", "--max-bandwidth")


@pytest.mark.parametrize("text", ["2k", "10MB", "5 bytes"])
def test_requests_take_no_byte_units(text: str) -> None:
    with pytest.raises(UsageError, match="not a rate"):
        parse_rate(text, "--max-requests", unit="")
