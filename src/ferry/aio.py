"""aiohttp as ferry imports it: without loading the system's CA bundle twice for contexts ferry never uses.

When imported, aiohttp builds a verifying and a non-verifying default TLS context, and each loads the
system's CA bundle (30–40 ms apiece on the machines measured, about a third of aiohttp's import and a
tenth of a registry command's start-up). ferry hands every connection a context of its own
(:mod:`ferry.tls`: the system's CAs loaded once per process, and only when a registry is reached over
verified HTTPS), so the import runs with the bundle's loading skipped, in the importing thread alone: a
greeting building its context in another thread at the same time (:mod:`ferry.warmup`) loads the CAs as
ever. Should anything fall back to aiohttp's verifying default, it holds no CA and refuses every server:
closed, not open. Every module of ferry takes aiohttp from here (tests/unit/test_tls_contexts.py).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOADER = "set_default_verify_paths"


@contextmanager
def _default_cas_skipped() -> Iterator[None]:
    """Within the block, ``SSLContext.set_default_verify_paths`` does nothing when this thread calls it."""
    importing = threading.get_ident()
    own = ssl.SSLContext.__dict__.get(_LOADER)  # None: inherited from the C base class, as in CPython
    load = getattr(ssl.SSLContext, _LOADER)

    def set_default_verify_paths(self: ssl.SSLContext) -> None:
        if threading.get_ident() != importing:
            load(self)

    setattr(ssl.SSLContext, _LOADER, set_default_verify_paths)
    try:
        yield
    finally:
        if own is None:
            delattr(ssl.SSLContext, _LOADER)
        else:
            setattr(ssl.SSLContext, _LOADER, own)


with _default_cas_skipped():
    import aiohttp as aiohttp

__all__ = ["aiohttp"]
