"""Option values shared by commands: skopeo-style booleans, credentials and access per side."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from ferry.auth import credentials
from ferry.errors import UsageError
from ferry.plan.model import Access, AccessMap, Credential
from ferry.refs import ImageRef, RegistryRef

#: skopeo accepts ``--tls-verify`` alone and ``--tls-verify=false``; click flags take no value,
#: so these are string options and a bare flag is rewritten to ``=true`` before parsing.
VALUED_BOOL_FLAGS = ("--tls-verify", "--src-tls-verify", "--dest-tls-verify")


def normalize_argv(argv: list[str]) -> list[str]:
    out = []
    for i, arg in enumerate(argv):
        nxt = argv[i + 1] if i + 1 < len(argv) else ""
        if arg in VALUED_BOOL_FLAGS and nxt.lower() not in ("true", "false"):
            out.append(f"{arg}=true")
        else:
            out.append(arg)
    return out


def parse_bool(value: str, flag: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise UsageError(f"{flag} takes true or false, not {value!r}")


def warn_argv_password(flag: str) -> None:
    print(f"ferry: warning: a password in {flag} is visible to other users in the process list; "
          "prefer an auth file (ferry login --password-stdin) or the password environment variable",
          file=sys.stderr)


@dataclass(frozen=True, slots=True)
class Side:
    """Access options for one side (source or destination) of a command."""

    creds: str | None = None
    tls_verify: str = "true"
    cert_dir: str | None = None
    authfile: str | None = None
    flag_prefix: str = ""  # "src-", "dest-" or ""
    password_env: str | None = None

    def credential(self, ref: RegistryRef) -> Credential | None:
        if self.creds:
            if ":" in self.creds:
                warn_argv_password(f"--{self.flag_prefix}creds")
            return credentials.parse_creds(self.creds, password_env=self.password_env)
        return credentials.lookup(ref.registry, ref.repository, self.authfile)

    def access(self, ref: RegistryRef) -> Access:
        return Access(
            credential=self.credential(ref),
            tls_verify=parse_bool(self.tls_verify, f"--{self.flag_prefix}tls-verify"),
            cert_dir=self.cert_dir,
        )


def access_map(*pairs: tuple[ImageRef, Side]) -> AccessMap:
    """Access for the registries named on the command line, keyed by ``registry/repository``."""
    amap = AccessMap()
    for ref, side in pairs:
        if isinstance(ref, RegistryRef):
            amap.entries[f"{ref.registry}/{ref.repository}"] = side.access(ref)
    return amap
