"""The one retry engine: which failures another attempt may cure, how long to wait, how many attempts.

Every request ferry makes runs under an :class:`Attempts` budget, one per operation (a manifest read
with its body, a blob download with its resumptions, a blob upload with its new sessions, a token
exchange): the requests an operation makes share it, so a flaky server costs at most
``RetryPolicy.attempts`` tries of that operation, never that many squared.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from ferry.aio import aiohttp
from ferry.errors import FerryError

log = logging.getLogger("ferry.http")
T = TypeVar("T")

#: Answers that say "not now" rather than "no": another attempt may get a real answer.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class Failure(enum.Enum):
    """What an exception raised while talking to a server means for another attempt."""

    TRANSIENT = "transient"  # a dropped, reset, cut or silent connection: another attempt may succeed
    OWN = "own"  # ferry's own verdict (a streamed body failing its digest, a refused token): final
    TLS = "tls"  # a TLS verification failure or the server's TLS alert: the same every time
    UNKNOWN_HOST = "unknown host"  # name resolution failed: the same every time


#: Exception classes and what they mean, most specific first. The innermost cause of an exception
#: found here decides: a ``ClientOSError`` caused by a TLS alert is a TLS refusal, not a reset.
FAILURES: tuple[tuple[type[BaseException], Failure], ...] = (
    (FerryError, Failure.OWN),
    (ssl.SSLEOFError, Failure.TRANSIENT),  # the TLS stream cut short, as a plain one
    (ssl.SSLZeroReturnError, Failure.TRANSIENT),
    (ssl.SSLError, Failure.TLS),
    (aiohttp.ClientSSLError, Failure.TLS),
    (aiohttp.ClientConnectorDNSError, Failure.UNKNOWN_HOST),
    (aiohttp.ClientError, Failure.TRANSIENT),
    (TimeoutError, Failure.TRANSIENT),
    (ConnectionError, Failure.TRANSIENT),
)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the chain of exceptions that caused it (``raise … from``), outermost first."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        cause = cause.__cause__


def classify(exc: BaseException) -> tuple[Failure, BaseException] | None:
    """The failure ``exc`` is and the exception of its chain that says so; None when it is none of
    :data:`FAILURES` (a bug, not the network: never retried)."""
    for cause in reversed(list(causes(exc))):
        for kind, failure in FAILURES:
            if isinstance(cause, kind):
                return failure, cause
    return None


def describe(exc: BaseException) -> str:
    """The first line of an exception's text, for logs and error messages."""
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5  # total tries of one operation
    base_delay: float = 0.25
    max_delay: float = 20.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt``: the server's ``Retry-After`` (in
        seconds, capped) when it sent one, else exponential backoff with jitter."""
        if retry_after:
            try:
                return min(float(retry_after), self.max_delay * 3)
            except ValueError:
                pass
        backoff = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return backoff * (0.5 + random.random() / 2)  # jitter: spread retries of many clients


class RetryStatus(Exception):
    """Raised by an attempt whose answer had a retryable status while the budget allows another."""

    def __init__(self, status: int, retry_after: str | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


#: Turns a failure that ends an operation into the error its user sees.
GiveUp = Callable[[BaseException, Failure], FerryError]


class Attempts:
    """One operation's budget of attempts, shared by every request the operation makes."""

    def __init__(self, policy: RetryPolicy, *, limit: int | None = None,
                 on_retry: Callable[[], None] | None = None) -> None:
        self.policy = policy
        self.limit = max(1, policy.attempts if limit is None else limit)
        self.made = 1  # the first attempt is the one under way
        self._on_retry = on_retry

    @property
    def left(self) -> bool:
        """Whether another attempt is allowed after the current one."""
        return self.made < self.limit

    async def again(self, why: str, retry_after: str | None = None) -> None:
        """Wait before the next attempt (``Retry-After`` when the server sent one) and count it."""
        delay = self.policy.delay(self.made, retry_after)
        self.made += 1
        if self._on_retry is not None:
            self._on_retry()
        log.info("retrying in %.1fs (%s)", delay, why)
        await asyncio.sleep(delay)

    def check_status(self, resp: aiohttp.ClientResponse) -> None:
        """Ask for another attempt (:class:`RetryStatus`) when the answer's status is a retryable one
        and the budget allows; the response is then released. Otherwise return: the caller decides."""
        if resp.status in RETRYABLE_STATUSES and self.left:
            retry_after = resp.headers.get("Retry-After")
            resp.release()
            raise RetryStatus(resp.status, retry_after)

    async def after(self, exc: BaseException, what: str, give_up: GiveUp) -> None:
        """Back off for another attempt after ``exc``, or raise what ends the operation: a ferry error
        (its own or the one that caused ``exc``), ``give_up(…)`` for a network failure that another
        attempt cannot cure or that has used the budget up, ``exc`` itself when it is no failure of
        :data:`FAILURES`."""
        if isinstance(exc, RetryStatus):
            await self.again(f"{what}: HTTP {exc.status}", exc.retry_after)
            return
        found = classify(exc)
        if found is None:
            raise exc
        failure, cause = found
        if failure is Failure.OWN:
            raise cause from None
        if failure is Failure.TRANSIENT and self.left:
            await self.again(f"{what}: {describe(exc)}")
            return
        raise give_up(exc, failure) from None


async def retrying(attempt: Callable[[], Awaitable[T]], attempts: Attempts, what: str, give_up: GiveUp) -> T:
    """Run ``attempt`` until it returns, fails for good, or ``attempts`` is spent (see :meth:`Attempts.after`)."""
    while True:
        try:
            return await attempt()
        except Exception as exc:
            await attempts.after(exc, what, give_up)
