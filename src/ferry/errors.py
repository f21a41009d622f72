"""Errors as values: one line for people (``ferry: …``) and a stable exit code.

Exit codes are part of the interface (documented in the README):

==  =====================================================================
0   success
1   the run finished but some jobs failed, or verification found differences
2   bad input: command line, reference, config file, journal file
3   authentication or authorisation refused (credentials, permissions)
4   network: unknown host, connection refused, timeout, TLS failure
5   not found: repository, tag, digest, project
6   the server broke the protocol: bad answer, digest mismatch, oversize body
7   interrupted (Ctrl-C)
8   pre-flight checks: the destination would refuse the run (quota, immutable tag, read-only, push right)
==  =====================================================================
"""

from __future__ import annotations


class FerryError(Exception):
    """An error a user can act on. ``str(err)`` is the one line, without the ``ferry:`` prefix."""

    exit_code = 1
    #: The registry's error code (``MANIFEST_BLOB_UNKNOWN`` …) when the error came from its answer.
    code: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} ({hint})")


class UsageError(FerryError):
    """Bad input: a reference, a flag, a config file."""

    exit_code = 2


class ConfigError(UsageError):
    """A config or rules file that cannot be used; the message names file, key and expectation."""


class AuthError(FerryError):
    """Credentials refused or permission missing."""

    exit_code = 3


class NetworkError(FerryError):
    """The server could not be reached, or TLS failed."""

    exit_code = 4


class NotFoundError(FerryError):
    """A repository, tag, digest or project that does not exist."""

    exit_code = 5


class ProtocolError(FerryError):
    """The server answered something ferry cannot accept (hostile or broken)."""

    exit_code = 6


class DigestMismatchError(ProtocolError):
    """Content whose sha256 differs from the digest that names it."""


class RunFailedError(FerryError):
    """Some jobs of a bulk run failed; the others completed."""

    exit_code = 1


class Interrupted(FerryError):
    exit_code = 7


class PreflightError(FerryError):
    """A pre-flight check found what the destination would refuse; nothing was copied."""

    exit_code = 8
