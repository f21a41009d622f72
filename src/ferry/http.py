"""The one HTTP layer: connection pools, TLS, auth challenges, retries, redirects.

Every request to a registry goes through :class:`RegistryHTTP`, one per registry host. Callers
name the scope a request needs (``repository:proj/app:pull``); this layer obtains and caches the
token, retries transient failures with backoff (honouring ``Retry-After``), follows redirects
without carrying credentials to another host, and turns failures into ferry errors.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from ferry.access import Access
from ferry.aio import aiohttp
from ferry.auth.challenge import Challenge, TokenCache, parse_challenge
from ferry.auth.token import basic_authorization, fetch_token
from ferry.bodies import read_limited
from ferry.errors import AuthError, FerryError, NetworkError, NotFoundError, ProtocolError
from ferry.ratelimit import Pacer, RateLimits, TokenBucket
from ferry.retry import Attempts, Failure, RetryPolicy, causes, describe, retrying
from ferry.tls import tls_context
from ferry.warmup import USER_AGENT, Greeting, started

log = logging.getLogger("ferry.http")

#: Bodies are either bytes (replayable) or a factory of fresh async byte streams (replayable too).
Body = bytes | Callable[[], AsyncIterator[bytes]] | None

_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
MAX_REDIRECTS = 5
#: Seconds without a byte from the server before a request counts as stalled (and is retried).
#: ``FERRY_SOCK_READ_TIMEOUT`` overrides it (tests use a few seconds).
SOCK_READ_TIMEOUT = 120.0


def sock_read_timeout() -> float:
    value = os.environ.get("FERRY_SOCK_READ_TIMEOUT", "")
    try:
        return float(value) if value and float(value) > 0 else SOCK_READ_TIMEOUT
    except ValueError:
        return SOCK_READ_TIMEOUT


@dataclass(slots=True)
class Stats:
    """Counters the report and benchmarks read."""

    requests: int = 0
    retries: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


def _ssl_reason(exc: BaseException) -> str | None:
    """OpenSSL's reason code (``WRONG_VERSION_NUMBER`` …) of the TLS error behind ``exc``."""
    for cause in causes(exc):
        reason = getattr(cause, "reason", None) if isinstance(cause, ssl.SSLError) else None
        if reason:  # aiohttp's own SSL errors subclass SSLError without one; the cause has it
            return str(reason)
    return None


class RegistryHTTP:
    """HTTP to one registry host with auth, TLS, retries and a connection limit."""

    def __init__(
        self,
        registry: str,
        access: Access,
        *,
        connections: int = 16,
        retry: RetryPolicy | None = None,
        user_agent: str = USER_AGENT,
        stats: Stats | None = None,
        requests: TokenBucket | None = None,
        received: Pacer | None = None,
        sent: Pacer | None = None,
    ) -> None:
        """``requests`` paces every request to this host (token requests and retries too); ``received``
        and ``sent`` pace the bodies it answers and the streamed bodies sent to it (``--max-bandwidth``)."""
        self.registry = registry
        self.access = access
        self.retry = retry or RetryPolicy()
        self.stats = stats or Stats()
        self._ssl = tls_context(registry, access)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._scheme: str | None = "http" if access.plain_http else None
        self._scheme_lock = asyncio.Lock()
        self._challenge: Challenge | None = None
        self._greeting = started(registry, access)  # what start-up learnt of this registry (ferry.warmup)
        self._tokens = TokenCache()
        self._token_locks: dict[tuple[str, str | None, frozenset[str]], asyncio.Lock] = {}
        self._user_agent = user_agent
        self._requests = requests
        self._received = received
        self._sent = sent

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            extra: dict[str, Any] = {}
            if self._received is not None:
                extra["socket_factory"] = receive_window(self._received.window)
            connector = aiohttp.TCPConnector(limit=self._connections, ssl=self._ssl, ttl_dns_cache=300, **extra)
            self._session = aiohttp.ClientSession(
                connector=connector,
                # Harbor's sid cookie makes later writes fail with "CSRF token invalid": keep none.
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30,
                                              sock_read=sock_read_timeout()),
                headers={"User-Agent": self._user_agent},
                auto_decompress=False,
                trace_configs=[request_pacing(self._requests)] if self._requests else None,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def base_url(self) -> str:
        """``scheme://host``; with TLS verification off, HTTPS is tried first, then plain HTTP (as skopeo)."""
        if self._greeting is not None:
            async with self._scheme_lock:
                if self._greeting is not None:
                    self._greeted(await asyncio.wrap_future(self._greeting))
                    self._greeting = None
        if self._scheme is None:
            async with self._scheme_lock:
                if self._scheme is None:
                    self._scheme = await self._probe_scheme()
        return f"{self._scheme}://{self.registry}"

    def _greeted(self, greeting: Greeting | None) -> None:
        """Take the scheme and challenge a start-up greeting found (none: the client probes as usual)."""
        if greeting is None:
            return
        self.stats.requests += 1
        self._scheme = self._scheme or greeting.scheme
        self._challenge = self._challenge or parse_challenge(greeting.challenge)

    async def _probe_scheme(self) -> str:
        if self.access.tls_verify:
            return "https"
        try:
            async with self.session.get(f"https://{self.registry}/v2/", allow_redirects=False) as resp:
                await resp.read()
                return "https"
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError) as e:
            log.debug("https probe of %s failed (%s); using http", self.registry, describe(e))
            return "http"

    def _same_host(self, url: str) -> bool:
        return urlsplit(url).netloc.lower() == self.registry.lower()

    # -- auth -------------------------------------------------------------------------------

    async def _authorization(self, scopes: frozenset[str], *, refused: str | None = None) -> str | None:
        """The Authorization value for ``scopes``. ``refused``: the value a 401 just answered ("" when none
        was sent); a cached token other than that one is newer and is used, so that many requests refused
        at once share one fresh token request."""
        ch = self._challenge
        if ch is None:
            return None
        cred = self.access.credential
        if ch.scheme == "basic":
            return basic_authorization(cred) if cred else None
        key = (ch.realm, ch.service, scopes)

        def usable(token: str | None) -> bool:
            return token is not None and f"Bearer {token}" != refused

        token = self._tokens.get(*key)
        if not usable(token):
            # Many requests for one scope at once share a single token request.
            async with self._token_locks.setdefault(key, asyncio.Lock()):
                token = self._tokens.get(*key)
                if not usable(token):
                    token, expires_in = await fetch_token(self.session, self.registry, ch, scopes, cred,
                                                          self.attempts(), self._count_request)
                    self._tokens.put(*key, token, expires_in)
        return f"Bearer {token}"

    # -- requests ---------------------------------------------------------------------------

    def attempts(self) -> Attempts:
        """A fresh attempt budget for one operation; pass it to every request the operation makes."""
        return Attempts(self.retry, on_retry=self._count_retry)

    def _count_request(self) -> None:
        self.stats.requests += 1

    def _count_retry(self) -> None:
        self.stats.retries += 1

    async def request(
        self,
        method: str,
        path: str,
        *,
        scopes: frozenset[str] | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: Body = None,
        ok: tuple[int, ...] = (200,),
        allow: tuple[int, ...] = (),
        what: str = "",
        retries: bool = True,
        attempts: Attempts | None = None,
        basic: bool = False,
    ) -> aiohttp.ClientResponse:
        """Send a request and return the response (to be released by the caller) once its status is
        one of ``ok`` or ``allow``. ``path`` is ``/v2/...`` or an absolute URL on this registry (an
        upload ``Location``). Auth, retries and redirects happen here; other statuses become errors.
        Retries draw on ``attempts``, the budget of the operation this request is part of (a new one
        when not given); ``retries=False`` sends it once (an upload whose retry needs a new session).
        ``basic`` sends the credential as Basic auth up front (Harbor's API takes no challenge dance).
        """
        scopes = scopes or frozenset()
        what = what or path
        budget = (attempts or self.attempts()) if retries else Attempts(self.retry, limit=1)
        refused: str | None = None  # the Authorization a 401 answered, once

        async def attempt() -> aiohttp.ClientResponse:
            nonlocal refused
            while True:
                resp = await self._send(method, path, scopes, headers, params, body, refused=refused, basic=basic)
                if resp.status in ok or resp.status in allow:
                    return resp
                if resp.status == 401:
                    ch = None if basic else parse_challenge(resp.headers.get("WWW-Authenticate"))
                    resp.release()
                    if ch is not None and refused is None:
                        # First challenge, a scope not yet granted, or an expired token: one fresh try,
                        # not counted as an attempt.
                        self._challenge = ch
                        refused = resp.request_info.headers.get("Authorization", "")
                        continue
                    raise self._auth_error(what, ch)
                budget.check_status(resp)
                raise await self._status_error(resp, method, what)

        def give_up(exc: BaseException, failure: Failure) -> FerryError:
            return self._network_error(exc, failure, f"{method} {what}")

        return await retrying(attempt, budget, f"{method} {what}", give_up)

    async def fetch(self, method: str, path: str, *, limit: int, what: str = "",
                    **kwargs: Any) -> tuple[aiohttp.ClientResponse, bytes]:
        """:meth:`request` and its whole body, at most ``limit`` bytes. A body cut short, reset or stalled
        is retried like a failed request, from the same budget. The response comes back released
        (status and headers stay)."""
        budget = self.attempts()

        async def attempt() -> tuple[aiohttp.ClientResponse, bytes]:
            resp = await self.request(method, path, what=what, attempts=budget, **kwargs)
            try:
                return resp, await read_limited(resp, limit, what or path, self._received)
            finally:
                resp.release()

        def give_up(exc: BaseException, failure: Failure) -> FerryError:
            return NetworkError(f"{self.registry}: {method} {what or path}: the answer was cut short after "
                                f"{budget.made} attempts: {describe(exc)}",
                                hint="is the registry (or a proxy in front of it) overloaded?")

        return await retrying(attempt, budget, f"{method} {what or path}: answer cut short", give_up)

    async def download(self, path: str, *, scopes: frozenset[str], offset: int = 0, what: str = "",
                       chunk_size: int = 1024 * 1024) -> AsyncGenerator[bytes, None]:
        """GET ``path`` and yield its body from byte ``offset``. A body cut short, reset or stalled midway is
        resumed where it stopped (``Range``), from the same attempt budget as the requests; a server that
        ignores ``Range`` is read from the start and skipped ahead."""
        position = offset
        budget = self.attempts()

        def give_up(exc: BaseException, failure: Failure) -> FerryError:
            return NetworkError(f"{self.registry}: GET {what or path} was cut short after {budget.made} attempts: "
                                f"{describe(exc)}", hint="is the registry (or a proxy) overloaded?")

        while True:
            headers = {"Range": f"bytes={position}-"} if position else None
            resp = await self.request("GET", path, scopes=scopes, headers=headers, ok=(200, 206), what=what,
                                      attempts=budget)
            try:
                skip = position if (position and resp.status == 200) else 0
                chunks: AsyncIterator[bytes]
                if self._received is None:
                    chunks = resp.content.iter_chunked(chunk_size)
                else:  # read no further ahead of the pace than a piece
                    chunks = self._received.pace(resp.content.iter_chunked(min(chunk_size, self._received.piece)))
                async for chunk in chunks:
                    self.stats.bytes_received += len(chunk)
                    if skip:
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk, skip = chunk[skip:], 0
                    position += len(chunk)
                    yield chunk
                return
            except Exception as exc:
                await budget.after(exc, f"GET {what or path} cut at byte {position}", give_up)
            finally:
                resp.release()

    async def _send(
        self,
        method: str,
        path: str,
        scopes: frozenset[str],
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        body: Body,
        *,
        refused: str | None,
        basic: bool = False,
    ) -> aiohttp.ClientResponse:
        base = await self.base_url()
        absolute = path.startswith(("http://", "https://"))  # an upload's Location: may name any host
        url = path if absolute else base + path
        if absolute and not self._same_host(url):
            raise ProtocolError(f"{self.registry}: refusing to send a request to another host ({urlsplit(url).netloc})")
        hdrs = dict(headers or {})
        cred = self.access.credential
        if basic:
            auth = basic_authorization(cred) if cred else None
        else:
            auth = await self._authorization(scopes, refused=refused)
        if auth:
            hdrs["Authorization"] = auth
        data: Any = body() if callable(body) else body
        if callable(body) and self._sent is not None:
            data = self._sent.pace(data)
        for _hop in range(MAX_REDIRECTS + 1):
            self.stats.requests += 1
            resp = await self.session.request(method, url, headers=hdrs, params=params, data=data,
                                              allow_redirects=False)
            if resp.status not in (301, 302, 303, 307, 308) or "Location" not in resp.headers:
                return resp
            target = urljoin(url, resp.headers["Location"])
            resp.release()
            if not self._same_host(target):
                hdrs.pop("Authorization", None)  # credentials never follow a redirect to another host
            if urlsplit(target).scheme == "http" and urlsplit(url).scheme == "https":
                raise ProtocolError(f"{self.registry}: redirect from HTTPS to plain HTTP refused")
            if resp.status == 303:
                method, data = "GET", None
            url, params = target, None
        raise ProtocolError(f"{self.registry}: too many redirects for {path}")

    async def pages(
        self,
        path: str,
        *,
        scopes: frozenset[str] | None = None,
        params: Mapping[str, str] | None = None,
        basic: bool = False,
        what: str,
        limit: int = 64 * 1024 * 1024,
        max_pages: int = 100_000,
    ) -> AsyncIterator[Any]:
        """Yield the JSON body of each page, following ``Link: rel="next"`` on this host only.

        A Link that loops back to a page already read is an error, not an endless walk.
        """
        import json

        url: str | None = path
        seen: set[str] = set()
        for _ in range(max_pages):
            if url is None:
                return
            resp, raw = await self.fetch("GET", url, scopes=scopes, params=params, basic=basic, what=what,
                                         limit=limit)
            link = resp.headers.get("Link")
            current = str(resp.url)
            try:
                body = json.loads(raw)
            except ValueError:
                raise ProtocolError(f"{self.registry}: {what}: answer is not JSON") from None
            seen.add(current)
            yield body
            nxt = next_link(link, current)
            if nxt is not None and nxt in seen:
                raise ProtocolError(f"{self.registry}: {what}: pagination Link loops back to {nxt}")
            url, params = nxt, None
        raise ProtocolError(f"{self.registry}: {what}: more than {max_pages} pages")

    def _network_error(self, exc: BaseException, failure: Failure, what: str) -> NetworkError:
        """The error for a request that the network failed for good (``exc``, of kind ``failure``)."""
        if failure is Failure.UNKNOWN_HOST:
            return NetworkError(f"{self.registry}: unknown host", hint="check the registry name")
        if failure is Failure.TLS and isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):  # the handshake
            if _ssl_reason(exc) == "WRONG_VERSION_NUMBER":
                return NetworkError(
                    f"{self.registry}: the registry does not speak HTTPS",
                    hint="for a plain-HTTP registry use --tls-verify=false "
                         "(--src-tls-verify=false or --dest-tls-verify=false when copying)",
                )
            return NetworkError(
                f"{self.registry}: TLS verification failed: {describe(exc)}",
                hint="trust its CA with --cert-dir DIR holding ca.crt (--src-cert-dir or --dest-cert-dir when "
                     "copying), or use --tls-verify=false for a test registry",
            )
        if failure is Failure.TLS:  # the server's TLS alert after the handshake, e.g. no client certificate
            return NetworkError(
                f"{self.registry}: the registry refused the TLS connection: {describe(exc)}",
                hint="if it requires a client certificate, put client.cert and client.key in --cert-dir DIR "
                     "(--src-cert-dir or --dest-cert-dir when copying)",
            )
        return NetworkError(f"{self.registry}: {what} failed: {describe(exc)}",
                            hint="is the registry running and reachable?")

    def _auth_error(self, what: str, ch: Challenge | None) -> AuthError:
        if ch is not None and ch.error == "invalid_token":  # the token service accepted us; the registry not its token
            return AuthError(f"{self.registry}: refused a fresh token from {ch.realm} for {what}",
                             hint="the registry does not accept its token service's tokens: check both clocks and "
                                  "the registry's token issuer, service and certificate")
        if self.access.credential is None:
            return AuthError(f"{self.registry}: authentication required for {what}",
                             hint="give credentials with --creds, --authfile or ferry login")
        if ch is not None and ch.error == "insufficient_scope":
            return AuthError(f"{self.registry}: user {self.access.credential.username!r} lacks permission for {what}")
        return AuthError(f"{self.registry}: credentials for user {self.access.credential.username!r} were refused",
                         hint="check the username and password")

    async def _status_error(self, resp: aiohttp.ClientResponse, method: str, what: str) -> FerryError:
        detail = code = ""
        try:
            raw = await resp.content.read(64 * 1024)
            import json

            errors = json.loads(raw).get("errors") or []
            if errors and isinstance(errors[0], dict):
                code = str(errors[0].get("code", ""))[:100]
                detail = f"{code} {str(errors[0].get('message', ''))[:300]}".strip()
        except Exception:  # a broken error body still yields the status line
            detail = ""
        finally:
            resp.release()
        status = resp.status
        tail = f": {detail}" if detail else ""
        err: FerryError
        if status == 404:
            err = NotFoundError(f"{self.registry}: {what} not found{tail}")
        elif status == 403:
            err = AuthError(f"{self.registry}: permission denied for {method} {what}{tail}")
        elif status == 429 or status >= 500:
            err = NetworkError(f"{self.registry}: {method} {what} failed with HTTP {status}{tail} after "
                               f"{self.retry.attempts} attempts")
        else:
            err = ProtocolError(f"{self.registry}: {method} {what} answered HTTP {status}{tail}")
        err.code = code or None
        return err


def next_link(header: str | None, current: str) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header, resolved against the current URL."""
    if not header:
        return None
    m = _LINK_NEXT.search(header)
    return urljoin(current, m.group(1)) if m else None


def receive_window(size: int) -> Callable[[Any], socket.socket]:
    """Sockets whose receive buffer holds ``size`` bytes: a paced download then runs ahead of its pace by
    that much at most (TCP stops the sender), not by the megabytes Linux would buffer on its own."""
    def factory(addr_info: Any) -> socket.socket:
        family, kind, proto, _name, _address = addr_info
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        return sock

    return factory


def request_pacing(bucket: TokenBucket) -> aiohttp.TraceConfig:
    """A session hook that waits for ``bucket`` before each request the session sends, whoever sends it."""
    async def before(_session: aiohttp.ClientSession, _ctx: Any, _params: aiohttp.TraceRequestStartParams) -> None:
        await bucket.take(1)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(before)
    return trace


class HTTPPool:
    """One :class:`RegistryHTTP` per registry host and access settings, created on first use. ``limits``:
    one request budget per registry host (shared by its clients of different access) and one bandwidth
    budget for the whole run."""

    def __init__(self, *, limits: RateLimits | None = None, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._clients: dict[tuple[str, Access], RegistryHTTP] = {}
        self.stats: Stats = kwargs.setdefault("stats", Stats())
        self.limits = limits or RateLimits()
        pacer = self.limits.pacer()
        self._pacing = {"sent": pacer} if self.limits.pace_uploads else {"received": pacer}
        self._request_buckets: dict[str, TokenBucket | None] = {}

    def get(self, registry: str, access: Access) -> RegistryHTTP:
        client = self._clients.get((registry, access))
        if client is None:
            host = registry.lower()
            if host not in self._request_buckets:
                self._request_buckets[host] = self.limits.request_bucket()
            client = self._clients[(registry, access)] = RegistryHTTP(
                registry, access, requests=self._request_buckets[host], **self._pacing, **self._kwargs)
        return client

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._clients.values()))
        self._clients.clear()


