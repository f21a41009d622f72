"""The one HTTP layer: connection pools, TLS, auth challenges, retries, redirects.

Every request to a registry goes through :class:`RegistryHTTP`, one per registry host. Callers
name the scope a request needs (``repository:proj/app:pull``); this layer obtains and caches the
token, retries transient failures with backoff (honouring ``Retry-After``), follows redirects
without carrying credentials to another host, and turns failures into ferry errors.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import random
import re
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import aiohttp

from ferry.access import Access
from ferry.auth.challenge import Challenge, TokenCache, parse_challenge
from ferry.errors import AuthError, FerryError, NetworkError, NotFoundError, ProtocolError

log = logging.getLogger("ferry.http")

#: Bodies are either bytes (replayable) or a factory of fresh async byte streams (replayable too).
Body = bytes | Callable[[], AsyncIterator[bytes]] | None

_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_REDIRECTS = 5
MAX_TOKEN_BYTES = 1024 * 1024
#: Where containers and docker look for per-registry certificates (besides --cert-dir).
SYSTEM_CERT_DIRS = ("/etc/containers/certs.d", "/etc/docker/certs.d")
#: Seconds without a byte from the server before a request counts as stalled (and is retried).
#: ``FERRY_SOCK_READ_TIMEOUT`` overrides it (tests use a few seconds).
SOCK_READ_TIMEOUT = 120.0


def sock_read_timeout() -> float:
    value = os.environ.get("FERRY_SOCK_READ_TIMEOUT", "")
    try:
        return float(value) if value and float(value) > 0 else SOCK_READ_TIMEOUT
    except ValueError:
        return SOCK_READ_TIMEOUT


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5  # total tries of one request
    base_delay: float = 0.25
    max_delay: float = 20.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), self.max_delay * 3)
            except ValueError:
                pass
        backoff = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return backoff * (0.5 + random.random() / 2)  # jitter: spread retries of many clients


@dataclass(slots=True)
class Stats:
    """Counters the report and benchmarks read."""

    requests: int = 0
    retries: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


def tls_context(registry: str, access: Access) -> ssl.SSLContext | bool:
    """Verification on by default; CA and client certificates from --cert-dir or certs.d."""
    if not access.tls_verify:
        return False
    ctx = ssl.create_default_context()
    dirs = [Path(access.cert_dir)] if access.cert_dir else [Path(d) / registry for d in SYSTEM_CERT_DIRS]
    for d in dirs:
        if not d.is_dir():
            continue
        for ca in sorted(d.glob("*.crt")):
            ctx.load_verify_locations(cafile=str(ca))
        for cert in sorted(d.glob("*.cert")):
            key = cert.with_suffix(".key")
            if not key.exists():
                raise FerryError(f"client certificate {cert} has no matching key {key.name}")
            ctx.load_cert_chain(str(cert), str(key))
    return ctx


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]


def _ferry_cause(exc: BaseException) -> FerryError | None:
    """The ferry error that made aiohttp fail a request, e.g. raised by a streamed request body."""
    seen: set[int] = set()
    cause = exc.__cause__
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, FerryError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__
    return None


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class RegistryHTTP:
    """HTTP to one registry host with auth, TLS, retries and a connection limit."""

    def __init__(
        self,
        registry: str,
        access: Access,
        *,
        connections: int = 16,
        retry: RetryPolicy | None = None,
        user_agent: str = "ferry",
        stats: Stats | None = None,
    ) -> None:
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
        self._tokens = TokenCache()
        self._token_locks: dict[tuple[str, str | None, frozenset[str]], asyncio.Lock] = {}
        self._user_agent = user_agent

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._connections, ssl=self._ssl, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                # Harbor's sid cookie makes later writes fail with "CSRF token invalid": keep none.
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30,
                                              sock_read=sock_read_timeout()),
                headers={"User-Agent": self._user_agent},
                auto_decompress=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def base_url(self) -> str:
        """``scheme://host``; with TLS verification off, HTTPS is tried first, then plain HTTP (as skopeo)."""
        if self._scheme is None:
            async with self._scheme_lock:
                if self._scheme is None:
                    self._scheme = await self._probe_scheme()
        return f"{self._scheme}://{self.registry}"

    async def _probe_scheme(self) -> str:
        if self.access.tls_verify:
            return "https"
        try:
            async with self.session.get(f"https://{self.registry}/v2/", allow_redirects=False) as resp:
                await resp.read()
                return "https"
        except (aiohttp.ClientError, TimeoutError, ssl.SSLError) as e:
            log.debug("https probe of %s failed (%s); using http", self.registry, _describe(e))
            return "http"

    def _same_host(self, url: str) -> bool:
        return urlsplit(url).netloc.lower() == self.registry.lower()

    # -- auth -------------------------------------------------------------------------------

    async def _authorization(self, scopes: frozenset[str], *, fresh: bool = False) -> str | None:
        ch = self._challenge
        if ch is None:
            return None
        cred = self.access.credential
        if ch.scheme == "basic":
            return _basic(cred.username, cred.password) if cred else None
        key = (ch.realm, ch.service, scopes)
        token = None if fresh else self._tokens.get(*key)
        if token is None:
            # Many requests for one scope at once share a single token request.
            async with self._token_locks.setdefault(key, asyncio.Lock()):
                token = None if fresh else self._tokens.get(*key)
                if token is None:
                    token, expires_in = await self._fetch_token(ch, scopes)
                    self._tokens.put(*key, token, expires_in)
        return f"Bearer {token}"

    async def _fetch_token(self, ch: Challenge, scopes: frozenset[str]) -> tuple[str, float]:
        realm = ch.realm
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ProtocolError(f"{self.registry}: token realm {realm!r} is not an http(s) URL")
        query: list[tuple[str, str]] = []
        if ch.service:
            query.append(("service", ch.service))
        query.extend(("scope", s) for s in sorted(scopes))
        url = realm + ("&" if parts.query else "?") + urlencode(query)
        headers: dict[str, str] = {}
        cred = self.access.credential
        realm_host = (parts.hostname or "").lower()
        trusted = parts.scheme == "https" or realm_host == (urlsplit(f"//{self.registry}").hostname or "").lower()
        if cred and not trusted:
            # A realm on another host over plain HTTP could be anyone's: it gets no secret.
            log.warning("not sending credentials to token realm %s over plain HTTP on another host", parts.netloc)
            cred = None
        # The token service fails transiently like any server (a restart, a proxy): retried the same way.
        for attempt in range(1, self.retry.attempts + 1):
            try:
                if cred and cred.identity_token:
                    # docker's identity token: the OAuth2 refresh-token grant, by POST, instead of the password
                    form = {"grant_type": "refresh_token", "refresh_token": cred.identity_token,
                            "client_id": "ferry", "scope": " ".join(sorted(scopes))}
                    if ch.service:
                        form["service"] = ch.service
                    request = self.session.post(realm, data=form, allow_redirects=False)
                else:
                    if cred:
                        headers["Authorization"] = _basic(cred.username, cred.password)
                    request = self.session.get(url, headers=headers, allow_redirects=False)
                async with request as resp:
                    self.stats.requests += 1
                    if resp.status in (401, 403):
                        raise AuthError(
                            f"{self.registry}: credentials refused by the token service",
                            hint="check the username and password (--creds, --authfile or ferry login)",
                        )
                    if resp.status in RETRY_STATUSES and attempt < self.retry.attempts:
                        await self.backoff(attempt, resp.headers.get("Retry-After"),
                                           f"token service {parts.netloc}: HTTP {resp.status}")
                        continue
                    if resp.status != 200:
                        raise ProtocolError(f"{self.registry}: token service answered HTTP {resp.status}")
                    body = await read_limited(resp, MAX_TOKEN_BYTES, f"{self.registry}: token service answer")
                break
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as e:
                if attempt < self.retry.attempts:
                    await self.backoff(attempt, None, f"token service {parts.netloc}: {_describe(e)}")
                    continue
                raise NetworkError(f"{self.registry}: cannot reach token service {parts.netloc}: "
                                   f"{_describe(e)}") from None
        import json

        try:
            data = json.loads(body)
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token or len(body) > MAX_TOKEN_BYTES:
            raise ProtocolError(f"{self.registry}: token service returned no usable token")
        expires_in = data.get("expires_in", 60)
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
            expires_in = 60
        return token, float(expires_in)

    # -- requests ---------------------------------------------------------------------------

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
        basic: bool = False,
    ) -> aiohttp.ClientResponse:
        """Send a request and return the response (to be released by the caller) once its status is
        one of ``ok`` or ``allow``. ``path`` is ``/v2/...`` or an absolute URL on this registry (an
        upload ``Location``). Auth, retries and redirects happen here; other statuses become errors.
        ``basic`` sends the credential as Basic auth up front (Harbor's API takes no challenge dance).
        """
        scopes = scopes or frozenset()
        max_attempts = self.retry.attempts if retries else 1
        attempt = 0
        refreshed_auth = False
        while True:
            attempt += 1
            try:
                resp = await self._send(method, path, scopes, headers, params, body, fresh_token=refreshed_auth,
                                        basic=basic)
            except FerryError:
                raise
            except (aiohttp.ClientConnectorCertificateError, ssl.SSLError,
                    aiohttp.ClientConnectorSSLError) as e:
                if "WRONG_VERSION_NUMBER" in str(e):
                    raise NetworkError(
                        f"{self.registry}: the registry does not speak HTTPS",
                        hint="for a plain-HTTP registry use --tls-verify=false "
                             "(--src-tls-verify=false or --dest-tls-verify=false when copying)",
                    ) from None
                raise NetworkError(
                    f"{self.registry}: TLS verification failed: {_describe(e)}",
                    hint="trust its CA with --cert-dir DIR holding ca.crt (--src-cert-dir or --dest-cert-dir when "
                         "copying), or use --tls-verify=false for a test registry",
                ) from None
            except aiohttp.ClientConnectorDNSError:
                raise NetworkError(f"{self.registry}: unknown host", hint="check the registry name") from None
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as e:
                if (own := _ferry_cause(e)) is not None:
                    raise own from None  # our request body failed (a blob not matching its digest): not the network
                if "[SSL: " in str(e) and "ALERT" in str(e):  # the server's TLS alert, e.g. no client certificate
                    raise NetworkError(
                        f"{self.registry}: the registry refused the TLS connection: {_describe(e)}",
                        hint="if it requires a client certificate, put client.cert and client.key in --cert-dir DIR "
                             "(--src-cert-dir or --dest-cert-dir when copying)",
                    ) from None
                if attempt < max_attempts:
                    await self.backoff(attempt, None, f"{method} {what or path}: {_describe(e)}")
                    continue
                raise NetworkError(f"{self.registry}: {method} {what or path} failed: {_describe(e)}",
                                   hint="is the registry running and reachable?") from None
            status = resp.status
            if status in ok or status in allow:
                return resp
            if status == 401 and basic:
                resp.release()
                raise self._auth_error(what or path, None)
            if status == 401:
                ch = parse_challenge(resp.headers.get("WWW-Authenticate"))
                resp.release()
                if ch is not None and not refreshed_auth:
                    # First challenge, a scope not yet granted, or an expired token: one fresh try.
                    self._challenge = ch
                    refreshed_auth = True
                    attempt -= 1
                    continue
                raise self._auth_error(what or path, ch)
            if status in RETRY_STATUSES and attempt < max_attempts:
                retry_after = resp.headers.get("Retry-After")
                resp.release()
                await self.backoff(attempt, retry_after, f"{method} {what or path}: HTTP {status}")
                continue
            raise await self._status_error(resp, method, what or path)

    async def fetch(self, method: str, path: str, *, limit: int, what: str = "",
                    **kwargs: Any) -> tuple[aiohttp.ClientResponse, bytes]:
        """:meth:`request` and its whole body, at most ``limit`` bytes. A body cut short, reset or stalled
        is retried like a failed request. The response comes back released (status and headers stay)."""
        attempt = 0
        while True:
            attempt += 1
            resp = await self.request(method, path, what=what, **kwargs)
            try:
                return resp, await read_limited(resp, limit, what or path)
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as e:
                if attempt >= self.retry.attempts:
                    raise NetworkError(f"{self.registry}: {method} {what or path}: the answer was cut short "
                                       f"{attempt} times: {_describe(e)}",
                                       hint="is the registry (or a proxy in front of it) overloaded?") from None
                await self.backoff(attempt, None, f"{method} {what or path}: answer cut short: {_describe(e)}")
            finally:
                resp.release()

    async def download(self, path: str, *, scopes: frozenset[str], offset: int = 0, what: str = "",
                       chunk_size: int = 1024 * 1024) -> AsyncGenerator[bytes, None]:
        """GET ``path`` and yield its body from byte ``offset``. A body cut short, reset or stalled midway is
        resumed where it stopped (``Range``) under the same retry policy as a failed request; a server that
        ignores ``Range`` is read from the start and skipped ahead."""
        position = offset
        attempt = 0
        while True:
            headers = {"Range": f"bytes={position}-"} if position else None
            resp = await self.request("GET", path, scopes=scopes, headers=headers, ok=(200, 206), what=what)
            try:
                skip = position if (position and resp.status == 200) else 0
                async for chunk in resp.content.iter_chunked(chunk_size):
                    self.stats.bytes_received += len(chunk)
                    if skip:
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk, skip = chunk[skip:], 0
                    position += len(chunk)
                    yield chunk
                return
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as e:
                attempt += 1
                if attempt >= self.retry.attempts:
                    raise NetworkError(f"{self.registry}: GET {what or path} was cut short {attempt} times: "
                                       f"{_describe(e)}", hint="is the registry (or a proxy) overloaded?") from None
                await self.backoff(attempt, None, f"GET {what or path} cut at byte {position}: {_describe(e)}")
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
        fresh_token: bool,
        basic: bool = False,
    ) -> aiohttp.ClientResponse:
        base = await self.base_url()
        url = path if path.startswith(("http://", "https://")) else base + path
        if not self._same_host(url):
            raise ProtocolError(f"{self.registry}: refusing to send a request to another host ({urlsplit(url).netloc})")
        hdrs = dict(headers or {})
        cred = self.access.credential
        if basic:
            auth = _basic(cred.username, cred.password) if cred else None
        else:
            auth = await self._authorization(scopes, fresh=fresh_token)
        if auth:
            hdrs["Authorization"] = auth
        data: Any = body() if callable(body) else body
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

    async def backoff(self, attempt: int, retry_after: str | None, why: str) -> None:
        delay = self.retry.delay(attempt, retry_after)
        self.stats.retries += 1
        log.info("retrying in %.1fs (%s)", delay, why)
        await asyncio.sleep(delay)

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


async def read_limited(resp: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    """Read a whole body, refusing one larger than ``limit`` (hostile or broken servers)."""
    declared = resp.content_length
    if declared is not None and declared > limit:
        resp.release()
        raise ProtocolError(f"{what}: body of {declared} bytes exceeds the {limit}-byte limit")
    # StreamReader.read(n) answers what is buffered (one chunk), not n bytes: read to the end.
    data = bytearray()
    while chunk := await resp.content.read(limit + 1 - len(data)):
        data += chunk
        if len(data) > limit:
            resp.release()
            raise ProtocolError(f"{what}: body exceeds the {limit}-byte limit")
    return bytes(data)


def next_link(header: str | None, current: str) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header, resolved against the current URL."""
    if not header:
        return None
    m = _LINK_NEXT.search(header)
    return urljoin(current, m.group(1)) if m else None


class HTTPPool:
    """One :class:`RegistryHTTP` per registry host and access settings, created on first use."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._clients: dict[tuple[str, Access], RegistryHTTP] = {}
        self.stats: Stats = kwargs.setdefault("stats", Stats())

    def get(self, registry: str, access: Access) -> RegistryHTTP:
        client = self._clients.get((registry, access))
        if client is None:
            client = self._clients[(registry, access)] = RegistryHTTP(registry, access, **self._kwargs)
        return client

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._clients.values()))
        self._clients.clear()


