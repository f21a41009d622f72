"""Greetings during start-up: each registry's first exchange runs while the rest of ferry is imported.

A registry command spends about 0.25 s importing asyncio and aiohttp before it can send anything.
:func:`greet` starts, before those imports, one ``GET /v2/`` per registry in a thread of its own
(stdlib only: this module costs milliseconds to import). What the answer says — which scheme answers
(HTTPS, or plain HTTP when verification is off and HTTPS fails, as skopeo probes) and the auth
challenge of a 401 — is what :class:`ferry.http.RegistryHTTP` otherwise learns with its first
requests: the scheme probe and the first 401 then cost no round trip after start-up.

A greeting only ever informs: one that fails, or finds nothing, leaves the client to probe and
authenticate as it always does, with its retries and error messages. It sends no credential, and
over HTTPS it verifies exactly as the client will (:func:`ferry.tls.tls_context`).

A sync's first tag lists go out the same way (:func:`list_tags`): the request the client would send,
as it would send it, but during start-up. For a registry ferry holds a credential for, once the
greeting has found that it asks for none (``/v2/`` answered 200), so that no anonymous listing meets
its challenge; without a credential, at once, beside the greeting. Only a whole list in one page is
handed over; anything else (a 401, a ``Link`` to a next page, an error) is left for the client to ask
for itself.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Literal

from ferry.access import Access, AccessMap
from ferry.refs import ImageRef, RegistryRef
from ferry.tls import tls_context

USER_AGENT = "ferry"
#: Seconds a greeting may take before it is given up (the client's own probe takes over).
TIMEOUT = 10.0
_BODY_LIMIT = 64 * 1024
_LIST_LIMIT = 4 * 1024 * 1024  # a longer tag list is left to the client


@dataclass(frozen=True, slots=True)
class Greeting:
    """What one ``GET /v2/`` said."""

    scheme: str  # "https" or "http": the scheme that answered
    challenge: str | None  # the WWW-Authenticate header of a 401, else None
    round_trip: float = 0.0  # seconds from the request to its answer, the connection already open
    open: bool = False  # answered 200 to a request without credentials: the registry asks for none
    #: the TLS context it verified with (HTTPS), for the early tag lists to verify alike
    context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Listing:
    """What an early ``GET /v2/<repository>/tags/list`` was answered."""

    status: int
    body: bytes | None  # the JSON body when the list came whole in one page (200, no Link), else None
    retry_after: str | None = None


#: Greetings by registry and TLS settings: credentials play no part in ``GET /v2/``, so every client of a
#: registry with those settings (one per credential) takes the same answer.
_started: dict[tuple[str, bool, bool, str | None], Future[Greeting | None]] = {}
#: Tag lists asked for early, by the greeting's key and repository (None: not sent, or no answer).
_listings: dict[tuple[str, bool, bool, str | None, str], Future[Listing | None]] = {}


def _key(registry: str, access: Access) -> tuple[str, bool, bool, str | None]:
    return registry, access.tls_verify, access.plain_http, access.cert_dir


def greet(registry: str, access: Access) -> None:
    """Start greeting ``registry`` (once per registry and TLS settings) in a daemon thread."""
    key = _key(registry, access)
    if key in _started:
        return
    answer: Future[Greeting | None] = Future()
    _started[key] = answer

    def run() -> None:
        try:
            answer.set_result(_exchange(registry, access))
        except Exception:
            answer.set_result(None)

    threading.Thread(target=run, name=f"ferry greet {registry}", daemon=True).start()


def greet_refs(amap: AccessMap, refs: Iterable[ImageRef]) -> None:
    """Greet the registry of each registry reference in ``refs``, once per registry, with the TLS
    settings ``amap`` gives its first reference."""
    seen: set[str] = set()
    for ref in refs:
        if isinstance(ref, RegistryRef) and ref.registry not in seen:
            seen.add(ref.registry)
            greet(ref.registry, amap.for_ref(ref))


def started(registry: str, access: Access) -> Future[Greeting | None] | None:
    """The greeting started for ``registry`` with ``access``'s TLS settings, if one was."""
    return _started.get(_key(registry, access))


def round_trip() -> float | None:
    """The shortest round trip the greetings answered so far measured (None when none has)."""
    greetings = [answer.result() for answer in _started.values() if answer.done()]
    return min((greeting.round_trip for greeting in greetings if greeting is not None), default=None)


def list_tags(registry: str, access: Access, repository: str) -> None:
    """Ask for ``repository``'s tags during start-up, for :func:`listing` to hand over: with a
    credential, once the greeting of ``registry`` (started with :func:`greet`) finds that it asks for
    none; without one, at once."""
    greeting = started(registry, access)
    key = (*_key(registry, access), repository)
    if greeting is None or key in _listings:
        return
    listing: Future[Listing | None] = Future()
    _listings[key] = listing

    def ask(page: Callable[[], Listing | None]) -> None:
        def run() -> None:
            try:
                listing.set_result(page())
            except Exception:
                listing.set_result(None)

        try:
            threading.Thread(target=run, name=f"ferry tags {repository}", daemon=True).start()
        except RuntimeError:  # no thread to be had: the client lists it itself
            listing.set_result(None)

    def greeted(done: Future[Greeting | None]) -> None:
        said = done.result()
        if said is not None and said.open:
            ask(lambda: _tag_page(registry, said, repository))
        else:
            listing.set_result(None)

    if access.credential is None:
        # No credential to wait for the greeting's verdict on: asked beside the greeting, the scheme
        # chosen as the greeting chooses it (one round trip less before the plan; a 401 is left to the
        # client, which meets that challenge anyway).
        ask(lambda: _first_tag_page(registry, access, repository))
    else:
        greeting.add_done_callback(greeted)


def listing(registry: str, access: Access, repository: str) -> Future[Listing | None] | None:
    """The early tag list of ``repository``, once: a later listing of the same repository asks the
    registry again."""
    return _listings.pop((*_key(registry, access), repository), None)


def _first_answer(registry: str, access: Access, path: str,
                  limit: int) -> tuple[str, ssl.SSLContext | None, http.client.HTTPResponse, bytes, float] | None:
    """``GET path`` in the scheme that answers (HTTPS, or plain HTTP when verification is off and HTTPS
    fails: skopeo's order), with that scheme and context; None when neither answers."""
    if access.plain_http:
        schemes: tuple[str, ...] = ("http",)
    elif access.tls_verify:
        schemes = ("https",)
    else:
        schemes = ("https", "http")
    context = _https_context(tls_context(registry, access)) if "https" in schemes else None
    for scheme in schemes:
        try:
            return (scheme, context, *_get(scheme, registry, context, path, limit))
        except (OSError, http.client.HTTPException):
            continue
    return None


def _exchange(registry: str, access: Access) -> Greeting | None:
    answer = _first_answer(registry, access, "/v2/", _BODY_LIMIT)
    if answer is None:
        return None
    scheme, context, resp, _body, seconds = answer
    challenge = resp.getheader("WWW-Authenticate") if resp.status == 401 else None
    return Greeting(scheme, challenge, seconds, open=resp.status == 200, context=context)


def _tag_page(registry: str, said: Greeting, repository: str) -> Listing:
    """``repository``'s tag list, asked for as the client asks for its first page."""
    resp, body, _seconds = _get(said.scheme, registry, said.context, _tags_path(repository), _LIST_LIMIT + 1)
    return _listing(resp, body)


def _first_tag_page(registry: str, access: Access, repository: str) -> Listing | None:
    """:func:`_tag_page` without the greeting's scheme: chosen as the greeting chooses it."""
    answer = _first_answer(registry, access, _tags_path(repository), _LIST_LIMIT + 1)
    if answer is None:
        return None
    _scheme, _context, resp, body, _seconds = answer
    return _listing(resp, body)


def _tags_path(repository: str) -> str:
    return f"/v2/{repository}/tags/list"


def _listing(resp: http.client.HTTPResponse, body: bytes) -> Listing:
    whole = resp.status == 200 and resp.getheader("Link") is None and len(body) <= _LIST_LIMIT
    return Listing(resp.status, body if whole else None, resp.getheader("Retry-After"))


def _https_context(context: ssl.SSLContext | Literal[False]) -> ssl.SSLContext:
    if context is False:  # verification off
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _get(scheme: str, registry: str, context: ssl.SSLContext | None, path: str,
         limit: int) -> tuple[http.client.HTTPResponse, bytes, float]:
    """``GET path`` without credentials: the answer, at most ``limit`` bytes of its body, and the seconds
    from the request to the end of that body (the connection's set-up not counted)."""
    conn: http.client.HTTPConnection
    if scheme == "https":
        conn = http.client.HTTPSConnection(registry, timeout=TIMEOUT, context=context)
    else:
        conn = http.client.HTTPConnection(registry, timeout=TIMEOUT)
    try:
        conn.connect()
        sent = time.perf_counter()
        conn.request("GET", path, headers={"User-Agent": USER_AGENT})
        resp = conn.getresponse()
        body = resp.read(limit)
        return resp, body, time.perf_counter() - sent
    finally:
        conn.close()
