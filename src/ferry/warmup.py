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
"""

from __future__ import annotations

import http.client
import ssl
import threading
from concurrent.futures import Future
from dataclasses import dataclass

from ferry.access import Access
from ferry.tls import tls_context

USER_AGENT = "ferry"
#: Seconds a greeting may take before it is given up (the client's own probe takes over).
TIMEOUT = 10.0
_BODY_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class Greeting:
    """What one ``GET /v2/`` said."""

    scheme: str  # "https" or "http": the scheme that answered
    challenge: str | None  # the WWW-Authenticate header of a 401, else None


#: Greetings by registry and TLS settings: credentials play no part in ``GET /v2/``, so every client of a
#: registry with those settings (one per credential) takes the same answer.
_started: dict[tuple[str, bool, bool, str | None], Future[Greeting | None]] = {}


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


def started(registry: str, access: Access) -> Future[Greeting | None] | None:
    """The greeting started for ``registry`` with ``access``'s TLS settings, if one was."""
    return _started.get(_key(registry, access))


def _exchange(registry: str, access: Access) -> Greeting | None:
    if access.plain_http:
        schemes = ("http",)
    elif access.tls_verify:
        schemes = ("https",)
    else:  # skopeo's order with verification off: HTTPS first, plain HTTP when HTTPS fails
        schemes = ("https", "http")
    context = tls_context(registry, access)
    for scheme in schemes:
        try:
            return _get_v2(scheme, registry, context)
        except (OSError, http.client.HTTPException):
            continue
    return None


def _get_v2(scheme: str, registry: str, context: ssl.SSLContext | bool) -> Greeting:
    conn: http.client.HTTPConnection
    if scheme == "https":
        if context is True:  # the system's CAs
            context = ssl.create_default_context()
        elif context is False:  # verification off
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(registry, timeout=TIMEOUT, context=context)
    else:
        conn = http.client.HTTPConnection(registry, timeout=TIMEOUT)
    try:
        conn.request("GET", "/v2/", headers={"User-Agent": USER_AGENT})
        resp = conn.getresponse()
        resp.read(_BODY_LIMIT)
        return Greeting(scheme, resp.getheader("WWW-Authenticate") if resp.status == 401 else None)
    finally:
        conn.close()
