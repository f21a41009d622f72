"""Parse ``WWW-Authenticate`` challenges and keep bearer tokens per realm, service and scope."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

_PARAM = re.compile(r'\s*([a-zA-Z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # "basic" or "bearer" (lower case)
    params: dict[str, str]

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def error(self) -> str | None:
        return self.params.get("error")


def parse_challenge(header: str | None) -> Challenge | None:
    """The first challenge of a ``WWW-Authenticate`` header, or None when absent or unparseable."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in ("basic", "bearer"):
        return None
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if not m or m.end() == pos:
            break
        value = m.group(2) if m.group(2) is not None else m.group(3)
        params[m.group(1).lower()] = value.replace('\\"', '"')
        pos = m.end()
    return Challenge(scheme, params)


@dataclass(slots=True)
class Token:
    value: str
    expires_at: float

    def valid(self, margin: float = 10.0) -> bool:
        return time.monotonic() + margin < self.expires_at


class TokenCache:
    """Bearer tokens keyed by realm, service and the exact set of scopes they were issued for."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str | None, frozenset[str]], Token] = {}

    def get(self, realm: str, service: str | None, scopes: frozenset[str]) -> str | None:
        token = self._tokens.get((realm, service, scopes))
        return token.value if token and token.valid() else None

    def put(self, realm: str, service: str | None, scopes: frozenset[str], value: str, expires_in: float) -> None:
        self._tokens[(realm, service, scopes)] = Token(value, time.monotonic() + max(expires_in, 0))

    def drop(self, realm: str, service: str | None, scopes: frozenset[str]) -> None:
        self._tokens.pop((realm, service, scopes), None)
