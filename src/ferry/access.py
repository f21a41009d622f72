"""Credentials and per-registry access settings (TLS, certificate directories): data, no I/O."""

from __future__ import annotations

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

    @staticmethod
    def key(registry: str, repository: str = "") -> str:
        """The entry key for a registry (``host``) or a repository prefix in it (``host/ns/repo``)."""
        return f"{registry}/{repository}" if repository else registry

    def add(self, ref: RegistryRef, access: Access) -> None:
        """Use ``access`` for ``ref``'s repository (its whole registry when the repository is empty)."""
        self.entries[self.key(ref.registry, ref.repository)] = access

    def for_ref(self, ref: RegistryRef) -> Access:
        return self.for_path(self.key(ref.registry, ref.repository))

    def for_path(self, path: str) -> Access:
        # The path's own prefixes, longest first: a sync file may hold an entry per repository, and
        # every repository's connection asks.
        while True:
            access = self.entries.get(path)
            if access is not None:
                return access
            path, slash, _ = path.rpartition("/")
            if not slash:
                return self.default

    def for_registry(self, registry: str) -> Access:
        return self.entries.get(registry, self.default)
