"""A scriptable fault-injecting HTTP proxy between ferry and a real registry (127.0.0.1 only).

:class:`FaultProxy` listens on ``127.0.0.1:<free port>`` (aiohttp, in a background thread with its
own event loop) and forwards every request to one upstream registry, streaming bodies both ways.
Tests script faults with :class:`Rule` objects matching a method, a path regex and which
occurrences (the Nth, every Nth, the first K, or only once another request has been answered):

- :class:`Respond`: answer with a status of its own (500/502/503, 429 with ``Retry-After``) without
  forwarding;
- :class:`Drop`: reset the connection without any answer (the request is not forwarded);
- :class:`Lose`: forward the request, then reset the connection instead of answering (the registry acted
  on it; the client cannot know);
- :class:`Reset`: reset the connection (TCP RST) after N bytes of the response body (a download) or
  of the request body (an upload);
- :class:`Truncate`: close the connection cleanly after N bytes of a response body that announced more;
- :class:`Stall`: hold the request (before forwarding, or after N bytes of the response or request
  body) for some seconds, or until :meth:`FaultProxy.release` / the proxy stops;
- :class:`Flip`: flip one byte of a response body (a blob or a manifest) at an offset.

Uploads go one of two ways (``store_and_forward``):

- **store-and-forward** (like Harbor's nginx, ``proxy_request_buffering on``): a request body is read
  completely before anything is forwarded, so a reset midway never reaches the registry and its
  upload session stays intact;
- **pass-through** (default): the body streams to the registry as it arrives, so a reset midway
  leaves a partial chunk in the registry's upload (distribution 2.8 then refuses the session).

Every ``Location`` that names the upstream is rewritten to the proxy (and the client's ``Host`` is
forwarded, so the registry builds its URLs for the proxy anyway): uploads keep going through it.

Everything is counted: each rule's matches and applications (``rule.seen``/``rule.applied``, and
``rule.fired`` to wait on), the proxy's per-fault totals (:meth:`FaultProxy.counts`) and one
:class:`ProxyRecord` per request with the bytes received, forwarded upstream and sent back, and when
(``started``; each request body chunk's arrival): :meth:`FaultProxy.upload_flow` is the timeline of the
bytes a client sent through the proxy, to measure its rate from the outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
import yarl
from aiohttp import web
from multidict import CIMultiDict

__all__ = [
    "Drop",
    "Fault",
    "FaultProxy",
    "Flip",
    "Lose",
    "ProxyRecord",
    "Reset",
    "Respond",
    "Rule",
    "ServerThread",
    "Stall",
    "Truncate",
]

LOOPBACK = "127.0.0.1"
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
     "transfer-encoding", "upgrade", "content-length"}
)
_READ = 256 * 1024


# --------------------------------------------------------------------------------------------------
# Faults


class Fault:
    """What a rule does to a request it applies to."""

    name = "fault"


@dataclass(frozen=True)
class Respond(Fault):
    """Answer ``status`` (with ``headers`` and ``body``) instead of forwarding."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    name = "respond"


@dataclass(frozen=True)
class Drop(Fault):
    """Reset the connection without answering; nothing is forwarded."""

    name = "drop"


@dataclass(frozen=True)
class Reset(Fault):
    """Reset the connection (RST) after ``after`` bytes of the response body, or of the request body
    with ``side="request"`` (an upload cut midway)."""

    after: int = 0
    side: str = "response"
    name = "reset"


@dataclass(frozen=True)
class Lose(Fault):
    """Forward the request and let the registry act on it, then reset the connection instead of answering:
    the client cannot know that its upload or manifest went through."""

    name = "lose"


@dataclass(frozen=True)
class Truncate(Fault):
    """Send ``after`` bytes of the response body, then close the connection cleanly (FIN)."""

    after: int = 0
    name = "truncate"


@dataclass(frozen=True)
class Stall(Fault):
    """Hold the request for ``seconds`` (or until released): before forwarding when ``after`` is None,
    else after ``after`` bytes of the response body (``side="response"``) or of the request body."""

    seconds: float = 3600.0
    after: int | None = None
    side: str = "response"
    name = "stall"


@dataclass(frozen=True)
class Flip(Fault):
    """XOR one byte of the response body with ``mask``; ``at`` counts from the end when negative."""

    at: int = -1
    mask: int = 0x01
    name = "flip"


@dataclass
class Rule:
    """Apply ``fault`` to requests matching ``method`` (None: any) and the ``path`` regex (searched in
    the path without its query).

    Which matching requests: ``nth`` (1-based occurrence or occurrences), else ``every`` Nth, else all;
    at most ``times`` applications. ``after=(method, regex)`` or ``(method, regex, count)``: the rule counts
    and applies only once ``count`` (default 1) requests matching that have been answered with a status
    below 400 (e.g. every tag's manifest PUT).
    """

    fault: Fault
    method: str | None = None
    path: str = ""
    nth: int | Iterable[int] | None = None
    every: int | None = None
    times: int | None = None
    after: tuple[str | None, str] | tuple[str | None, str, int] | None = None
    seen: int = 0
    applied: int = 0
    fired: threading.Event = field(default_factory=threading.Event)
    armed: bool = False

    def __post_init__(self) -> None:
        self._path = re.compile(self.path)
        self._nth = {self.nth} if isinstance(self.nth, int) else (set(self.nth) if self.nth is not None else None)
        self._after = (self.after[0], re.compile(self.after[1])) if self.after else None
        self._after_left = self.after[2] if self.after and len(self.after) > 2 else 1  # type: ignore[misc]
        self.armed = self._after is None

    def matches(self, method: str, path: str) -> bool:
        return self.armed and (self.method is None or self.method == method) and bool(self._path.search(path))

    def decide(self) -> bool:
        """Count one matching request; True when the fault applies to it."""
        self.seen += 1
        if self.times is not None and self.applied >= self.times:
            return False
        if self._nth is not None:
            return self.seen in self._nth
        if self.every is not None:
            return self.seen % self.every == 0
        return True

    def arm_on(self, method: str, path: str, status: int) -> None:
        if not self.armed and self._after is not None and status < 400:
            m, rx = self._after
            if (m is None or m == method) and rx.search(path):
                self._after_left -= 1
                self.armed = self._after_left <= 0


@dataclass
class ProxyRecord:
    """One request through the proxy."""

    method: str
    path: str
    query: str
    status: int = 0  # 0: no answer (dropped, reset before the headers)
    fault: str | None = None
    bytes_in: int = 0  # request body bytes received from the client
    bytes_up: int = 0  # request body bytes forwarded to the registry
    bytes_out: int = 0  # response body bytes sent to the client
    started: float = 0.0
    seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    received: list[tuple[float, int]] = field(default_factory=list)  # (time.monotonic(), bytes) per body chunk


_CUT = object()


class _Stopped(Exception):
    """The proxy stopped while a request was stalled: it is dropped, never forwarded late."""


class _Cut(Exception):
    """The upstream request body is cut on purpose (pass-through reset)."""


# --------------------------------------------------------------------------------------------------
# A background aiohttp server


class ServerThread:
    """Runs an aiohttp application on ``host:port`` (port 0: a free one) in a thread of its own."""

    def __init__(self, app: web.Application, host: str = LOOPBACK, port: int = 0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.host_ip = host
        self._port = port
        self._ssl = ssl_context
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=f"aiohttp-{host}", daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> ServerThread:
        self._thread.start()
        self.call(self._start())
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, shutdown_timeout=0.5, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host_ip, self._port, reuse_address=True, ssl_context=self._ssl)
        await site.start()
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    @property
    def port(self) -> int:
        return self._port

    @property
    def host(self) -> str:
        return f"{self.host_ip}:{self._port}"

    @property
    def url(self) -> str:
        return f"{'https' if self._ssl else 'http'}://{self.host}"

    def call(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the server's loop from another thread and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self.call(self._stop(), timeout=15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self.loop.is_running():
            self.loop.close()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def reset_connection(request: web.BaseRequest) -> None:
    """Close the client connection with a TCP RST (SO_LINGER 0), dropping anything buffered."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def flush(request: web.BaseRequest, timeout: float = 2.0) -> None:
    """Wait until what was written to the client has left the proxy's buffers."""
    transport = request.transport
    deadline = time.monotonic() + timeout
    while transport is not None and transport.get_write_buffer_size() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)


# --------------------------------------------------------------------------------------------------
# The proxy


class Served:
    """Lifecycle and address of a test server run by a :class:`ServerThread` held in ``_server``."""

    _server: ServerThread

    def start(self) -> Self:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        """``IP:PORT`` to give ferry."""
        return self._server.host

    @property
    def url(self) -> str:
        return self._server.url

    def ref(self, name: str) -> str:
        return f"{self.host}/{name}"


class FaultProxy(Served):
    """See the module docstring. Use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(self, upstream: str, *, store_and_forward: bool = False, rewrite_location: bool = True) -> None:
        self.upstream = upstream.rstrip("/")  # http://127.0.0.1:PORT
        self.store_and_forward = store_and_forward
        self.rewrite_location = rewrite_location
        self.rules: list[Rule] = []
        self.records: list[ProxyRecord] = []
        self._lock = threading.Lock()
        app = web.Application(client_max_size=1 << 40)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        app.on_shutdown.append(self._on_shutdown)
        self._server = ServerThread(app)
        self._session: aiohttp.ClientSession | None = None
        self._release: asyncio.Event | None = None
        self._stopping = False

    # -- lifecycle and scripting ----------------------------------------------------------------
    def start(self) -> Self:
        super().start()
        self._server.call(self._init())
        return self

    async def _init(self) -> None:
        self._release = asyncio.Event()
        self._session = aiohttp.ClientSession(
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
        )

    async def _on_shutdown(self, app: web.Application) -> None:
        if self._release is not None:
            self._release.set()

    def stop(self) -> None:
        """Stop; requests still stalled are reset, not forwarded."""
        self._stopping = True

        async def close() -> None:
            if self._release is not None:
                self._release.set()
            if self._session is not None:
                await self._session.close()

        with contextlib.suppress(Exception):
            self._server.call(close(), timeout=10)
        self._server.stop()

    def add(self, *rules: Rule) -> list[Rule]:
        with self._lock:
            self.rules.extend(rules)
        return list(rules)

    def clear(self) -> None:
        """Forget the rules (the records stay)."""
        with self._lock:
            self.rules.clear()

    def abandon(self) -> None:
        """Forget the rules and drop every request still stalled (reset, never forwarded late): after its
        client was killed, say. The proxy goes on serving."""
        self.clear()

        async def go() -> None:
            assert self._release is not None
            self._stopping = True
            self._release.set()
            for _ in range(20):
                await asyncio.sleep(0.01)
            self._release.clear()
            self._stopping = False

        self._server.call(go())

    def release(self) -> None:
        """Let every stalled request go on."""
        async def go() -> None:
            assert self._release is not None
            self._release.set()
            await asyncio.sleep(0)
            self._release.clear()

        self._server.call(go())

    def wait(self, rule: Rule, timeout: float = 60) -> None:
        """Block until ``rule`` has applied at least once."""
        if not rule.fired.wait(timeout):
            raise TimeoutError(f"rule {rule.fault} on {rule.method} {rule.path} never applied (seen {rule.seen})")

    def counts(self) -> dict[str, int]:
        """Applications per fault name."""
        out: dict[str, int] = {}
        with self._lock:
            for r in self.records:
                if r.fault:
                    out[r.fault] = out.get(r.fault, 0) + 1
        return out

    def requests(self, method: str | None = None, path: str = "") -> list[ProxyRecord]:
        rx = re.compile(path)
        with self._lock:
            return [r for r in self.records if (method is None or r.method == method) and rx.search(r.path)]

    def upload_flow(self) -> list[tuple[float, int]]:
        """Every request body chunk received from the client, in time order, as (time.monotonic(), bytes)."""
        with self._lock:
            return sorted(chunk for r in self.records for chunk in r.received)

    def bytes_forwarded(self, method: str, path: str = "") -> int:
        """Request body bytes that reached the registry for matching requests."""
        return sum(r.bytes_up for r in self.requests(method, path))

    # -- the handler -----------------------------------------------------------------------------
    def _choose(self, method: str, path: str) -> Rule | None:
        with self._lock:
            chosen = None
            for rule in self.rules:
                if rule.matches(method, path) and rule.decide() and chosen is None:
                    chosen = rule
            if chosen is not None:
                chosen.applied += 1
            return chosen

    def _answered(self, method: str, path: str, status: int) -> None:
        with self._lock:
            for rule in self.rules:
                rule.arm_on(method, path, status)

    async def _stall(self, seconds: float) -> None:
        """Hold on; raises :class:`_Stopped` when the proxy stops meanwhile (nothing is forwarded then)."""
        assert self._release is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), seconds)
        if self._stopping:
            raise _Stopped

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        rec = ProxyRecord(request.method, request.path, request.query_string, started=time.monotonic(),
                          headers=dict(request.headers))
        with self._lock:
            self.records.append(rec)
        rule = self._choose(request.method, request.path)
        fault = rule.fault if rule is not None else None
        if fault is not None:
            rec.fault = fault.name
            rule.fired.set()  # type: ignore[union-attr]
        try:
            resp = await self._serve(request, rec, fault)
            if rec.status:
                self._answered(request.method, request.path, rec.status)
            return resp
        except _Stopped:
            reset_connection(request)
            return web.Response(status=499)
        finally:
            rec.seconds = time.monotonic() - rec.started

    async def _serve(self, request: web.Request, rec: ProxyRecord, fault: Fault | None) -> web.StreamResponse:
        if isinstance(fault, Respond):
            with contextlib.suppress(Exception):  # the body is not wanted; read a little so the client sees the answer
                await asyncio.wait_for(request.content.read(1 << 20), 0.2)
            rec.status = fault.status
            return web.Response(status=fault.status, headers=fault.headers, body=fault.body)
        if isinstance(fault, Drop):
            reset_connection(request)
            return web.Response(status=499)
        if isinstance(fault, Stall) and fault.after is None:
            await self._stall(fault.seconds)
        body = await self._request_body(request, rec, fault)
        if body is _CUT:  # the client connection was reset while uploading (store-and-forward)
            return web.Response(status=499)
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP)
        if request.content_length is not None and not isinstance(body, bytes | bytearray):
            headers["Content-Length"] = str(request.content_length)
        url = yarl.URL(self.upstream + request.raw_path, encoded=True)
        assert self._session is not None
        try:
            upstream = await self._session.request(request.method, url, headers=headers, data=body,
                                                   allow_redirects=False)
        except (aiohttp.ClientError, OSError, _Cut, _Stopped):
            await asyncio.sleep(0.1)
            reset_connection(request)
            return web.Response(status=499)
        async with upstream:
            if isinstance(fault, Lose):
                await upstream.read()
                rec.status = upstream.status
                reset_connection(request)
                return web.Response(status=499)
            return await self._respond(request, rec, fault, upstream)

    async def _request_body(self, request: web.Request, rec: ProxyRecord,
                            fault: Fault | None) -> Any:
        """The body to forward: all of it (store-and-forward), a stream (pass-through), None when there is
        none, or ``_CUT`` when the client connection was cut here."""
        if not request.body_exists:
            return None
        limit = None
        if isinstance(fault, Reset | Stall) and fault.side == "request" and fault.after is not None:
            limit = fault.after
        if self.store_and_forward:
            buf = bytearray()
            try:
                async for chunk in self._client_chunks(request, rec, limit):
                    buf += chunk
                if limit is not None and rec.bytes_in >= limit:
                    if not isinstance(fault, Stall):
                        reset_connection(request)
                        return _CUT
                    await self._stall(fault.seconds)
                    async for chunk in self._client_chunks(request, rec, None):
                        buf += chunk
            except (aiohttp.ClientError, ConnectionError, asyncio.IncompleteReadError):
                return _CUT
            if request.content_length is not None and len(buf) < request.content_length:
                return _CUT  # the client gave up midway: like nginx, forward nothing of it
            rec.bytes_up = len(buf)
            return bytes(buf)
        return self._pass_through(request, rec, fault, limit)

    async def _client_chunks(self, request: web.Request, rec: ProxyRecord, limit: int | None) -> AsyncIterator[bytes]:
        while True:
            want = _READ if limit is None else min(_READ, limit - rec.bytes_in)
            if want <= 0:
                return
            chunk = await request.content.read(want)
            if not chunk:
                return
            rec.bytes_in += len(chunk)
            rec.received.append((time.monotonic(), len(chunk)))
            yield chunk

    async def _pass_through(self, request: web.Request, rec: ProxyRecord, fault: Fault | None,
                            limit: int | None) -> AsyncIterator[bytes]:
        async for chunk in self._client_chunks(request, rec, limit):
            rec.bytes_up += len(chunk)
            yield chunk
        if limit is not None and rec.bytes_in >= limit:
            if isinstance(fault, Stall):
                await self._stall(fault.seconds)
            else:
                await asyncio.sleep(0.2)  # let the partial chunk reach the registry, then cut both sides
                reset_connection(request)
                raise _Cut("request body cut by the fault proxy")
        async for chunk in self._client_chunks(request, rec, None):
            rec.bytes_up += len(chunk)
            yield chunk

    def _response_headers(self, upstream: aiohttp.ClientResponse) -> CIMultiDict[str]:
        out: CIMultiDict[str] = CIMultiDict()
        for k, v in upstream.headers.items():
            if k.lower() in HOP_BY_HOP:
                continue
            if k.lower() == "location" and self.rewrite_location and v.startswith(self.upstream):
                v = self.url + v[len(self.upstream):]
            out.add(k, v)
        return out

    async def _respond(self, request: web.Request, rec: ProxyRecord, fault: Fault | None,
                       upstream: aiohttp.ClientResponse) -> web.StreamResponse:
        resp = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        headers = self._response_headers(upstream)
        resp.headers.extend(headers)
        if "Content-Type" not in headers:
            resp.headers.pop("Content-Type", None)
        if upstream.content_length is not None:
            resp.content_length = upstream.content_length
        rec.status = upstream.status
        await resp.prepare(request)
        if request.method == "HEAD":
            await resp.write_eof()
            return resp
        cut = fault.after if isinstance(fault, Reset | Truncate) and getattr(fault, "side", "response") == "response" \
            else None
        stall_at = fault.after if isinstance(fault, Stall) and fault.side == "response" else None
        flip_at = None
        if isinstance(fault, Flip):
            total = upstream.content_length
            flip_at = fault.at if fault.at >= 0 else (total + fault.at if total is not None else None)
        sent = 0
        try:
            async for chunk in upstream.content.iter_chunked(_READ):
                if flip_at is not None and sent <= flip_at < sent + len(chunk):
                    b = bytearray(chunk)
                    b[flip_at - sent] ^= fault.mask  # type: ignore[union-attr]
                    chunk = bytes(b)
                if stall_at is not None and sent + len(chunk) > stall_at:
                    head, chunk = chunk[: stall_at - sent], chunk[stall_at - sent:]
                    await resp.write(head)
                    sent += len(head)
                    rec.bytes_out = sent
                    await self._stall(fault.seconds)  # type: ignore[union-attr]
                    stall_at = None
                if cut is not None and sent + len(chunk) >= cut:
                    await resp.write(chunk[: cut - sent])
                    rec.bytes_out = cut
                    await flush(request)
                    if isinstance(fault, Reset):
                        reset_connection(request)
                    elif request.transport is not None:
                        request.transport.close()
                    return resp
                await resp.write(chunk)
                sent += len(chunk)
                rec.bytes_out = sent
            await resp.write_eof()
        except (ConnectionError, aiohttp.ClientError, OSError):
            reset_connection(request)
        return resp
