"""TLS settings of one registry: verification, CA and client certificates (stdlib only, so that
:mod:`ferry.warmup` can greet a registry before aiohttp is imported)."""

from __future__ import annotations

import ssl
import threading
from pathlib import Path
from typing import Literal

from ferry.access import Access
from ferry.errors import FerryError

#: Where containers and docker look for per-registry certificates (besides --cert-dir).
SYSTEM_CERT_DIRS = ("/etc/containers/certs.d", "/etc/docker/certs.d")

_system: ssl.SSLContext | None = None
_system_lock = threading.Lock()


def system_context() -> ssl.SSLContext:
    """Verification against the system's CAs alone: one context for the whole process (the greeting's
    thread and the client share it), its CA bundle loaded (~30 ms) when first asked for."""
    global _system
    with _system_lock:
        if _system is None:
            _system = ssl.create_default_context()
        return _system


def tls_context(registry: str, access: Access) -> ssl.SSLContext | Literal[False]:
    """Verification on by default; CA and client certificates from --cert-dir or certs.d, else the
    system's CAs (:func:`system_context`); ``False``: none."""
    if not access.tls_verify:
        return False
    dirs = [Path(access.cert_dir)] if access.cert_dir else [Path(d) / registry for d in SYSTEM_CERT_DIRS]
    cas = [ca for d in dirs if d.is_dir() for ca in sorted(d.glob("*.crt"))]
    certs = [cert for d in dirs if d.is_dir() for cert in sorted(d.glob("*.cert"))]
    if not cas and not certs:
        return system_context()
    ctx = ssl.create_default_context()
    for ca in cas:
        ctx.load_verify_locations(cafile=str(ca))
    for cert in certs:
        key = cert.with_suffix(".key")
        if not key.exists():
            raise FerryError(f"client certificate {cert} has no matching key {key.name}")
        ctx.load_cert_chain(str(cert), str(key))
    return ctx
