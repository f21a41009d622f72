"""The pydantic models of record for skopeo sync's registry entries and image-syncer's auth entries.

They read what :mod:`ferry.plan.plain_rules` does not vouch for, and refuse what is wrong with a
precise one-line message (:func:`ferry.plan.files.validation_error`). Imported only then: pydantic
and these models cost about 90 ms of a sync's start-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ferry.plan.files import Document, expect_bool, validation_error
from ferry.plan.plain_rules import AuthEntry, Credentials, SkopeoEntry

__all__ = ["auth_entry", "skopeo_entry"]


def _text(value: object) -> object:
    """Strict str fields, but YAML nulls read as "" the way Go decodes them into a string."""
    return "" if value is None else value


_Str = Annotated[str, BeforeValidator(_text)]
_Bool = Annotated[bool | None, BeforeValidator(expect_bool)]


class _Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    username: _Str = ""
    password: _Str = ""
    identitytoken: _Str = ""


class _RegistryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    images: dict[str, Any] | None = None  # values checked by hand for precise messages
    images_by_tag_regex: dict[str, Any] | None = Field(default=None, alias="images-by-tag-regex")
    images_by_semver: dict[str, Any] | None = Field(default=None, alias="images-by-semver")
    credentials: _Credentials | None = None
    tls_verify: _Bool = Field(default=None, alias="tls-verify")
    cert_dir: _Str | None = Field(default=None, alias="cert-dir")


_SKOPEO_KEYS = {
    (): "images, images-by-tag-regex, images-by-semver, credentials, tls-verify, cert-dir",
    ("credentials",): "username, password, identitytoken",
}


class _AuthEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    username: str | None = None
    password: str | None = None
    identity_token: str | None = Field(default=None, alias="identityToken")
    insecure: _Bool = None


_AUTH_KEYS = {(): "username, password, identityToken, insecure"}


def skopeo_entry(doc: Document, path: Sequence[str | int], raw: object) -> SkopeoEntry:
    """A skopeo sync registry entry (at ``path`` in ``doc``), or its ConfigError."""
    try:
        entry = _RegistryEntry.model_validate(raw)
    except ValidationError as err:
        raise validation_error(doc, path, err, _SKOPEO_KEYS) from None
    creds = entry.credentials
    credentials = None if creds is None else Credentials(creds.username, creds.password, creds.identitytoken)
    return SkopeoEntry(credentials, entry.tls_verify, entry.cert_dir)


def auth_entry(doc: Document, path: Sequence[str | int], raw: object) -> AuthEntry:
    """An image-syncer auth entry (at ``path`` in ``doc``), or its ConfigError."""
    try:
        entry = _AuthEntry.model_validate(raw)
    except ValidationError as err:
        raise validation_error(doc, path, err, _AUTH_KEYS) from None
    return AuthEntry(entry.username, entry.password, entry.identity_token, entry.insecure)
