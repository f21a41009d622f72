"""Plainly well-formed entries of rules files, read without their pydantic models.

Importing pydantic and building the models of :mod:`ferry.plan.rule_models` costs about 90 ms of a
sync's start-up, for files that almost always need no more than a glance. A skopeo sync registry
entry or an image-syncer auth entry is read here only when every key is one the models know and
every value has the exact type they accept (the strict models: text where text is expected, a YAML
boolean word or a boolean where a boolean is; nothing coerced), giving what the models would give.
Anything else, an unknown key, an odd type, anything doubtful, is None here, and the models read
it, or refuse it with their precise message, as they always have: they stay the validators of
record (tests/unit/test_plain_rules.py holds the two paths to the same results).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferry.plan.files import expect_bool

__all__ = ["AuthEntry", "Credentials", "SkopeoEntry", "auth_entry", "skopeo_entry"]


@dataclass(frozen=True, slots=True)
class Credentials:
    """A skopeo sync entry's ``credentials`` (a YAML null reads as "", as Go decodes it into a string)."""

    username: str = ""
    password: str = ""
    identitytoken: str = ""


@dataclass(frozen=True, slots=True)
class SkopeoEntry:
    """What a skopeo sync registry entry says besides its images (those are read from the file itself)."""

    credentials: Credentials | None = None
    tls_verify: bool | None = None
    cert_dir: str | None = None


@dataclass(frozen=True, slots=True)
class AuthEntry:
    """One image-syncer auth entry, before environment expansion."""

    username: str | None = None
    password: str | None = None
    identity_token: str | None = None
    insecure: bool | None = None


SKOPEO_SECTIONS = ("images", "images-by-tag-regex", "images-by-semver")
_SKOPEO_KEYS = frozenset({*SKOPEO_SECTIONS, "credentials", "tls-verify", "cert-dir"})
_CREDENTIAL_KEYS = frozenset({"username", "password", "identitytoken"})
_AUTH_KEYS = frozenset({"username", "password", "identityToken", "insecure"})


class _Doubt(Exception):
    """A value the quick reading does not vouch for: the models decide."""


def skopeo_entry(raw: object) -> SkopeoEntry | None:
    """A skopeo sync registry entry, or None when it is not plainly well-formed."""
    try:
        entry = _mapping(raw, _SKOPEO_KEYS)
        for section in SKOPEO_SECTIONS:
            if entry.get(section) is not None:
                _mapping(entry[section])
        creds = entry.get("credentials")
        credentials = None if creds is None else _credentials(_mapping(creds, _CREDENTIAL_KEYS))
        return SkopeoEntry(credentials, _bool(entry.get("tls-verify")), _text(entry.get("cert-dir")))
    except _Doubt:
        return None


def auth_entry(raw: object) -> AuthEntry | None:
    """An image-syncer auth entry (a mapping; the caller reads a null entry as ``{}``), or None when it
    is not plainly well-formed."""
    try:
        entry = _mapping(raw, _AUTH_KEYS)
        return AuthEntry(_text(entry.get("username")), _text(entry.get("password")),
                         _text(entry.get("identityToken")), _bool(entry.get("insecure")))
    except _Doubt:
        return None


def _mapping(value: object, keys: frozenset[str] | None = None) -> dict[Any, Any]:
    """A mapping with text keys (only ``keys``, when given)."""
    if type(value) is not dict or not all(isinstance(key, str) for key in value):
        raise _Doubt
    if keys is not None and not value.keys() <= keys:
        raise _Doubt
    return value


def _credentials(creds: dict[Any, Any]) -> Credentials:
    username, password, token = (creds.get(key) for key in ("username", "password", "identitytoken"))
    return Credentials(_text(username) or "", _text(password) or "", _text(token) or "")


def _text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Doubt
    return str(value)  # a plain str, as the models give, not the YAML reader's YStr


def _bool(value: object) -> bool | None:
    value = expect_bool(value)
    if value is not None and not isinstance(value, bool):
        raise _Doubt
    return value
