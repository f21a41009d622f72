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


def scope_atoms(scopes: frozenset[str]) -> frozenset[tuple[str, str]]:
    """``repository:a/b:pull,push`` → ``{("repository:a/b", "pull"), ("repository:a/b", "push")}``."""
    atoms = set()
    for scope in scopes:
        resource, _, actions = scope.rpartition(":")
        atoms.update((resource, action) for action in actions.split(","))
    return frozenset(atoms)


class TokenCache:
    """Bearer tokens keyed by realm, service and the set of scopes they were asked for. A token asked
    for a wider set serves a narrower request (a pull,push token serves a pull); a token whose granted
    actions were narrower is refused by the registry with 401, and the caller asks afresh."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str | None, frozenset[str]], Token] = {}
        # per realm and service: the scope atoms each cached token covers, for the superset lookup
        self._atoms: dict[tuple[str, str | None], dict[frozenset[str], frozenset[tuple[str, str]]]] = {}

    def get(self, realm: str, service: str | None, scopes: frozenset[str]) -> str | None:
        token = self._tokens.get((realm, service, scopes))
        if token and token.valid():
            return token.value
        wanted = scope_atoms(scopes)
        for held, atoms in self._atoms.get((realm, service), {}).items():
            candidate = self._tokens.get((realm, service, held))
            if candidate and candidate.valid() and wanted <= atoms:
                return candidate.value
        return None

    def put(self, realm: str, service: str | None, scopes: frozenset[str], value: str, expires_in: float) -> None:
        self._tokens[(realm, service, scopes)] = Token(value, time.monotonic() + max(expires_in, 0))
        self._atoms.setdefault((realm, service), {})[scopes] = scope_atoms(scopes)
