"""Plain data shared by every planner and the engine: rules, jobs, registry access settings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ferry.refs import RegistryRef


@dataclass(frozen=True, slots=True)
class Credential:
    """A username and secret. ``repr`` never shows the secret.

    ``identity_token`` is a registry refresh token (docker's ``identitytoken``, image-syncer's
    ``identityToken``): when set, the bearer-token exchange uses ``grant_type=refresh_token`` with it
    instead of the password.
    """

    username: str
    password: str = field(repr=False)
    identity_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        token = ", identity_token=<hidden>" if self.identity_token else ""
        return f"Credential(username={self.username!r}, password=<hidden>{token})"


@dataclass(frozen=True, slots=True)
class Access:
    """How to reach one registry (or one ``registry/namespace`` prefix of it)."""

    credential: Credential | None = None
    tls_verify: bool = True  # False: skip certificate checks and allow plain HTTP (skopeo semantics)
    cert_dir: str | None = None  # containers certs.d layout: ca.crt, client.cert, client.key
    plain_http: bool = False  # image-syncer "insecure": the registry speaks HTTP


@dataclass(slots=True)
class AccessMap:
    """Access settings by ``registry`` or ``registry/namespace`` prefix; the longest prefix wins."""

    entries: dict[str, Access] = field(default_factory=dict)
    default: Access = field(default_factory=Access)

    def for_ref(self, ref: RegistryRef) -> Access:
        return self.for_path(f"{ref.registry}/{ref.repository}")

    def for_path(self, path: str) -> Access:
        best, best_len = self.default, -1
        for prefix, access in self.entries.items():
            if (path == prefix or path.startswith(prefix + "/")) and len(prefix) > best_len:
                best, best_len = access, len(prefix)
        return best

    def for_registry(self, registry: str) -> Access:
        return self.entries.get(registry, self.default)


@dataclass(frozen=True, slots=True)
class TagSelector:
    """Which tags of a source repository a rule takes. Exactly one form is set; none means all tags."""

    tags: tuple[str, ...] = ()
    digests: tuple[str, ...] = ()
    regex: str | None = None
    semver: str | None = None  # a constraint such as ">=1.2.0, <2"

    def matches_regex(self, tag: str) -> bool:
        return self.regex is not None and re.search(self.regex, tag) is not None


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of a sync config before tags are listed: a source repository and its destination.

    ``destination.tag`` renames a single tag; otherwise each source tag keeps its name, plus
    ``tag_suffix`` (skopeo sync ``--append-suffix``) when set.
    """

    source: RegistryRef  # repository only (tag/digest live in ``select``)
    select: TagSelector
    destination: RegistryRef  # repository, with a tag only when renaming one tag
    origin: str = ""  # where the rule came from, for error messages ("images.json: key 'a/b'")
    tag_suffix: str = ""  # appended to each kept source tag (not to a renamed tag, never to a digest)


@dataclass(frozen=True, slots=True)
class Job:
    """Copy one image: the source (tag or digest) to the destination (tag, or digest when untagged)."""

    source: RegistryRef
    destination: RegistryRef
    origin: str = ""

    @property
    def key(self) -> str:
        return f"{self.source} -> {self.destination}"


@dataclass(frozen=True, slots=True)
class PlatformFilter:
    """Keep only these platforms of an index (empty: all). Changes the index digest: opt-in."""

    os: tuple[str, ...] = ()
    arch: tuple[str, ...] = ()
    variant: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.os or self.arch)

