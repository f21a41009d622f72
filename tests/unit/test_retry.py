"""The retry engine against a real aiohttp server on 127.0.0.1 (as go-containerregistry tests its
``retry.go`` and ``bearer.go``): what is retried and what not, one attempt budget per operation,
``Retry-After``, and the token exchange that runs under it."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from ferry.access import Access, Credential
from ferry.auth.challenge import Challenge
from ferry.auth.token import fetch_token
from ferry.errors import AuthError, DigestMismatchError, NetworkError, NotFoundError, ProtocolError
from ferry.http import RegistryHTTP
from ferry.retry import Attempts, Failure, RetryPolicy, classify

#: Fast backoff: the tests measure Retry-After, not the default delays.
FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)

Action = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answer(status: int, body: bytes = b"{}", headers: dict[str, str] | None = None) -> Action:
    async def act(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, headers=headers)

    return act


async def cut_short(request: web.Request) -> web.StreamResponse:
    """200 announcing 1000 bytes, 10 sent, then the connection closed."""
    resp = web.StreamResponse(headers={"Content-Length": "1000"})
    await resp.prepare(request)
    await resp.write(b"x" * 10)
    assert request.transport is not None
    request.transport.close()
    return resp


async def drop(request: web.Request) -> web.StreamResponse:
    """The connection closed without an answer."""
    assert request.transport is not None
    request.transport.close()
    return web.Response()


@dataclass
class Server:
    """Answers each path with its script of actions in order (the last one repeats); records arrivals."""

    url: str = ""
    scripts: dict[str, list[Action]] = field(default_factory=dict)
    arrivals: list[tuple[str, float]] = field(default_factory=list)
    ranges: list[str | None] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)

    def script(self, path: str, *actions: Action) -> None:
        self.scripts[path] = list(actions)

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.arrivals if p == path)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.arrivals.append((request.path, time.monotonic()))
        self.ranges.append(request.headers.get("Range"))
        self.authorizations.append(request.headers.get("Authorization"))
        if request.method == "POST":
            self.forms.append({k: str(v) for k, v in (await request.post()).items()})
        await request.read()
        actions = self.scripts.get(request.path) or [answer(404)]
        action = actions.pop(0) if len(actions) > 1 else actions[0]
        return await action(request)

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", srv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    srv.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield srv
    await runner.cleanup()


@pytest.fixture
async def http(server: Server) -> AsyncIterator[RegistryHTTP]:
    client = RegistryHTTP(server.host, Access(tls_verify=False, plain_http=True), retry=FAST)
    yield client
    await client.close()


# -- what is retried -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_retryable_status_is_tried_again(server: Server, http: RegistryHTTP, status: int) -> None:
    server.script("/v2/a", answer(status), answer(status), answer(200, b'{"ok": 1}'))
    _, body = await http.fetch("GET", "/v2/a", limit=1024)
    assert json.loads(body) == {"ok": 1}
    assert server.hits("/v2/a") == 3 and http.stats.retries == 2


@pytest.mark.parametrize(("status", "error"), [(400, ProtocolError), (404, NotFoundError), (501, NetworkError)])
async def test_other_status_is_final_after_one_request(server: Server, http: RegistryHTTP, status: int,
                                                       error: type[Exception]) -> None:
    server.script("/v2/a", answer(status), answer(200))
    with pytest.raises(error, match=f"HTTP {status}|not found"):
        await http.fetch("GET", "/v2/a", limit=1024)
    assert server.hits("/v2/a") == 1 and http.stats.retries == 0


async def test_dropped_connection_and_cut_body_are_tried_again(server: Server, http: RegistryHTTP) -> None:
    server.script("/v2/a", drop, cut_short, answer(200, b"[1]"))
    _, body = await http.fetch("GET", "/v2/a", limit=1024)
    assert body == b"[1]" and server.hits("/v2/a") == 3


async def test_a_plain_http_server_asked_for_https_is_not_retried(server: Server) -> None:
    """A TLS failure is final by its class: one connection, no backoff, a message that says why."""
    client = RegistryHTTP(server.host, Access(tls_verify=True), retry=FAST)
    try:
        with pytest.raises(NetworkError, match="does not speak HTTPS"):
            await client.request("GET", "/v2/")
    finally:
        await client.close()
    assert client.stats.retries == 0 and client.stats.requests == 1


async def test_own_error_in_a_streamed_body_is_not_retried(server: Server, http: RegistryHTTP) -> None:
    """A request body that fails its digest check midway is ferry's verdict, not the network's."""
    server.script("/v2/upload", answer(201))

    async def corrupted() -> AsyncIterator[bytes]:
        yield b"x" * 1024
        raise DigestMismatchError("blob content does not match its digest")

    with pytest.raises(DigestMismatchError):
        await http.request("PUT", "/v2/upload", body=corrupted, ok=(201,))
    assert http.stats.retries == 0


def test_failures_are_classified_by_class_and_innermost_cause() -> None:
    alert = ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate")
    refused_tls = aiohttp.ClientOSError(1, str(alert))
    refused_tls.__cause__ = alert
    reset = aiohttp.ClientOSError(104, "Connection reset by peer")
    reset.__cause__ = ConnectionResetError(104, "Connection reset by peer")
    own = aiohttp.ClientConnectionError("body failed")
    own.__cause__ = DigestMismatchError("no match")
    assert classify(refused_tls) == (Failure.TLS, alert)
    assert classify(reset) is not None and classify(reset)[0] is Failure.TRANSIENT  # type: ignore[index]
    assert classify(own) == (Failure.OWN, own.__cause__)
    assert classify(TimeoutError())[0] is Failure.TRANSIENT  # type: ignore[index]
    assert classify(ssl.SSLEOFError())[0] is Failure.TRANSIENT  # type: ignore[index]
    assert classify(ValueError("a bug")) is None


# -- one budget per operation ------------------------------------------------------------------


async def test_an_always_failing_server_gets_exactly_the_budget(server: Server, http: RegistryHTTP) -> None:
    server.script("/v2/a", answer(503))
    with pytest.raises(NetworkError, match="HTTP 503"):
        await http.fetch("GET", "/v2/a", limit=1024)
    assert server.hits("/v2/a") == FAST.attempts and http.stats.retries == FAST.attempts - 1


async def test_failed_requests_and_cut_bodies_share_one_budget(server: Server, http: RegistryHTTP) -> None:
    """Re-reading a cut body does not start the request's own retries afresh (was: up to 5 × 5)."""
    server.script("/v2/a", answer(503), cut_short, answer(502), cut_short, answer(200))
    with pytest.raises(NetworkError, match="cut short"):
        await http.fetch("GET", "/v2/a", limit=4096)
    assert server.hits("/v2/a") == FAST.attempts


async def test_download_resumptions_draw_on_the_same_budget(server: Server, http: RegistryHTTP) -> None:
    server.script("/v2/blob", answer(503), cut_short)
    received = bytearray()
    with pytest.raises(NetworkError, match="cut short"):
        async for chunk in http.download("/v2/blob", scopes=frozenset()):
            received += chunk
    assert server.hits("/v2/blob") == FAST.attempts
    # the 503 retried, the cut answer resumed where it stopped (this server ignores Range: skipped ahead)
    assert server.ranges == [None, None, "bytes=10-", "bytes=10-"] and received == b"x" * 10


async def test_retries_false_sends_once(server: Server, http: RegistryHTTP) -> None:
    server.script("/v2/a", answer(503), answer(200))
    with pytest.raises(NetworkError, match="HTTP 503"):
        await http.request("PUT", "/v2/a", retries=False)
    assert server.hits("/v2/a") == 1


# -- how long it waits -------------------------------------------------------------------------


async def test_retry_after_is_honoured(server: Server) -> None:
    server.script("/v2/a", answer(429, headers={"Retry-After": "1"}), answer(200))
    http = RegistryHTTP(server.host, Access(tls_verify=False, plain_http=True),
                        retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=1.0))
    try:
        resp = await http.request("GET", "/v2/a")
        resp.release()
    finally:
        await http.close()
    (_, first), (_, second) = server.arrivals
    assert second - first >= 1.0


async def test_without_retry_after_the_backoff_is_short(server: Server, http: RegistryHTTP) -> None:
    server.script("/v2/a", answer(503), answer(200))
    resp = await http.request("GET", "/v2/a")
    resp.release()
    (_, first), (_, second) = server.arrivals
    assert second - first < 0.5


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(attempts=10, base_delay=1.0, max_delay=8.0)
    assert all(0.5 <= policy.delay(1) <= 1.0 for _ in range(20))
    assert all(4.0 <= policy.delay(4) <= 8.0 for _ in range(20))
    assert all(policy.delay(9) <= 8.0 for _ in range(20))
    assert policy.delay(1, "7") == 7.0
    assert policy.delay(1, "9999") == 24.0  # a hostile Retry-After cannot park ferry for hours
    assert policy.delay(1, "Wed, 21 Oct 2015 07:28:00 GMT") <= 1.0  # an HTTP date: backoff instead


# -- the token exchange ------------------------------------------------------------------------

ALICE = Credential("alice", "s3cret")
TOKEN = answer(200, json.dumps({"token": "t0k", "expires_in": 300}).encode())


async def exchange(server: Server, http: RegistryHTTP, credential: Credential | None = ALICE) -> tuple[str, float]:
    challenge = Challenge("bearer", {"realm": f"{server.url}/token", "service": "reg"})
    return await fetch_token(http.session, server.host, challenge, frozenset({"repository:a/b:pull"}), credential,
                             http.attempts(), lambda: None)


async def test_token_service_hiccups_are_retried_under_its_own_budget(server: Server, http: RegistryHTTP) -> None:
    server.script("/token", answer(503), drop, TOKEN)
    assert await exchange(server, http) == ("t0k", 300.0)
    assert server.hits("/token") == 3
    assert server.authorizations[-1] == "Basic YWxpY2U6czNjcmV0"


async def test_token_service_refusing_credentials_is_final(server: Server, http: RegistryHTTP) -> None:
    server.script("/token", answer(401), TOKEN)
    with pytest.raises(AuthError, match="credentials refused by the token service"):
        await exchange(server, http)
    assert server.hits("/token") == 1


@pytest.mark.parametrize("body", [b"<html>login</html>", b"[]", b'{"token": ""}', b'{"token": 5}'])
async def test_token_answer_without_a_token_is_a_protocol_error(server: Server, http: RegistryHTTP,
                                                                body: bytes) -> None:
    server.script("/token", answer(200, body))
    with pytest.raises(ProtocolError, match="no usable token"):
        await exchange(server, http)
    assert server.hits("/token") == 1


async def test_identity_token_uses_the_refresh_token_grant(server: Server, http: RegistryHTTP) -> None:
    server.script("/token", answer(200, b'{"access_token": "oauth"}'))
    token, expires_in = await exchange(server, http, Credential("<token>", "", identity_token="refresh-me"))
    assert (token, expires_in) == ("oauth", 60.0)
    assert server.forms == [{"grant_type": "refresh_token", "refresh_token": "refresh-me", "client_id": "ferry",
                             "scope": "repository:a/b:pull", "service": "reg"}]
    assert server.authorizations == [None]


async def test_bearer_challenge_is_answered_without_spending_an_attempt(server: Server) -> None:
    """401 with a challenge, a token, the request again: works with a budget of one attempt."""
    challenge = f'Bearer realm="{server.url}/token",service="reg",scope="repository:a/b:pull"'

    async def protected(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") == "Bearer t0k":
            return web.Response(body=b'{"tags": []}')
        return web.Response(status=401, headers={"WWW-Authenticate": challenge})

    server.script("/v2/a/b/tags/list", protected)
    server.script("/token", TOKEN)
    http = RegistryHTTP(server.host, Access(credential=ALICE, tls_verify=False, plain_http=True),
                        retry=RetryPolicy(attempts=1))
    try:
        _, body = await http.fetch("GET", "/v2/a/b/tags/list", scopes=frozenset({"repository:a/b:pull"}), limit=1024)
    finally:
        await http.close()
    assert json.loads(body) == {"tags": []}
    assert [p for p, _ in server.arrivals] == ["/v2/a/b/tags/list", "/token", "/v2/a/b/tags/list"]
    assert http.stats.retries == 0


async def test_budget_left_and_again() -> None:
    counted: list[int] = []
    attempts = Attempts(RetryPolicy(attempts=3, base_delay=0.0), on_retry=lambda: counted.append(1))
    assert attempts.left
    await attempts.again("first")
    assert attempts.left
    await attempts.again("second")
    assert not attempts.left and attempts.made == 3 and len(counted) == 2
