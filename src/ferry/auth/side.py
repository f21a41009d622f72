"""One side of a command (source or destination) as its options give it, and the one way those options
become an :class:`~ferry.access.Access`: copy, sync, migrate and verify all build theirs here."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ferry.access import Access, Credential
from ferry.auth import credentials
from ferry.errors import UsageError


@dataclass(frozen=True, slots=True)
class Side:
    """Credentials and TLS settings given for one side.

    ``creds`` is ``USER[:PASS]`` (without a password, ``password_env`` or a prompt supplies it); without
    ``creds`` the credential comes from ``authfile`` or the standard auth files.
    """

    creds: str | None = None
    tls_verify: bool = True
    cert_dir: str | None = None
    authfile: str | None = None
    flag_prefix: str = ""  # "src-", "dest-" or "": names the side's flags in messages
    password_env: str | None = None

    def credential(self, registry: str, repository: str = "") -> Credential | None:
        if self.creds:
            return credentials.parse_creds(self.creds, password_env=self.password_env)
        cred = credentials.lookup(registry, repository, self.authfile)
        if cred is None and self.password_env and os.environ.get(self.password_env):
            raise UsageError(f"{self.password_env} is set but no user name is given",
                             hint=f"add --{self.flag_prefix}creds USER")
        return cred

    def access(self, registry: str, repository: str = "", *, plain_http: bool = False) -> Access:
        """Access to ``registry`` (or one repository of it); ``plain_http`` when the URL says ``http://``."""
        return Access(credential=self.credential(registry, repository), tls_verify=self.tls_verify and not plain_http,
                      cert_dir=self.cert_dir, plain_http=plain_http)
