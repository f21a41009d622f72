"""The Bearer token exchange: ask a challenge's realm for a token that covers some scopes.

Docker's token protocol (GET with Basic credentials) or, for an identity token, the OAuth2
refresh-token grant (POST). The token service fails transiently like any server (a restart, a
proxy), so the exchange runs under the retry engine with a budget of its own.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from ferry.access import Credential
from ferry.aio import aiohttp
from ferry.auth.challenge import Challenge
from ferry.bodies import read_limited
from ferry.errors import AuthError, FerryError, NetworkError, ProtocolError
from ferry.retry import Attempts, Failure, describe, retrying

log = logging.getLogger("ferry.http")

MAX_TOKEN_BYTES = 1024 * 1024
#: Seconds a token lives when the service does not say (the distribution token spec's default).
DEFAULT_EXPIRES_IN = 60


def basic_authorization(credential: Credential) -> str:
    return "Basic " + base64.b64encode(f"{credential.username}:{credential.password}".encode()).decode()


def _trusted_realm(registry: str, realm: str) -> bool:
    """A realm gets the password only over HTTPS or on the registry's own host: a realm on another host
    over plain HTTP could be anyone's."""
    parts = urlsplit(realm)
    registry_host = (urlsplit(f"//{registry}").hostname or "").lower()
    return parts.scheme == "https" or (parts.hostname or "").lower() == registry_host


async def fetch_token(
    session: aiohttp.ClientSession,
    registry: str,
    challenge: Challenge,
    scopes: frozenset[str],
    credential: Credential | None,
    attempts: Attempts,
    on_request: Callable[[], None],
) -> tuple[str, float]:
    """A token for ``scopes`` from the challenge's realm and its lifetime in seconds; ``on_request``
    counts each request sent."""
    realm = challenge.realm
    parts = urlsplit(realm)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProtocolError(f"{registry}: token realm {realm!r} is not an http(s) URL")
    if credential and not _trusted_realm(registry, realm):
        log.warning("not sending credentials to token realm %s over plain HTTP on another host", parts.netloc)
        credential = None

    async def send() -> aiohttp.ClientResponse:
        if credential and credential.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": credential.identity_token,
                    "client_id": "ferry", "scope": " ".join(sorted(scopes))}
            if challenge.service:
                form["service"] = challenge.service
            return await session.post(realm, data=form, allow_redirects=False)
        query: list[tuple[str, str]] = [("service", challenge.service)] if challenge.service else []
        query.extend(("scope", s) for s in sorted(scopes))
        url = realm + ("&" if parts.query else "?") + urlencode(query)
        headers = {"Authorization": basic_authorization(credential)} if credential else {}
        return await session.get(url, headers=headers, allow_redirects=False)

    async def attempt() -> bytes:
        async with await send() as resp:
            on_request()
            if resp.status in (401, 403):
                raise AuthError(f"{registry}: credentials refused by the token service",
                                hint="check the username and password (--creds, --authfile or ferry login)")
            attempts.check_status(resp)
            if resp.status != 200:
                raise ProtocolError(f"{registry}: token service answered HTTP {resp.status}")
            return await read_limited(resp, MAX_TOKEN_BYTES, f"{registry}: token service answer")

    def give_up(exc: BaseException, failure: Failure) -> FerryError:
        return NetworkError(f"{registry}: cannot reach token service {parts.netloc}: {describe(exc)}")

    body = await retrying(attempt, attempts, f"token service {parts.netloc}", give_up)
    return parse_token_answer(registry, body)


def parse_token_answer(registry: str, body: bytes) -> tuple[str, float]:
    """The token (``token`` or OAuth2's ``access_token``) and its lifetime from a token service answer."""
    try:
        data = json.loads(body)
        token = data.get("token") or data.get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise ProtocolError(f"{registry}: token service returned no usable token")
    expires_in = data.get("expires_in", DEFAULT_EXPIRES_IN)
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
        expires_in = DEFAULT_EXPIRES_IN
    return token, float(expires_in)
