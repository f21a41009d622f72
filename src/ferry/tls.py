"""TLS settings of one registry: verification, CA and client certificates (stdlib only, so that
:mod:`ferry.warmup` can greet a registry before aiohttp is imported)."""

from __future__ import annotations

import ssl
from pathlib import Path

from ferry.access import Access
from ferry.errors import FerryError

#: Where containers and docker look for per-registry certificates (besides --cert-dir).
SYSTEM_CERT_DIRS = ("/etc/containers/certs.d", "/etc/docker/certs.d")


def tls_context(registry: str, access: Access) -> ssl.SSLContext | bool:
    """Verification on by default; CA and client certificates from --cert-dir or certs.d."""
    if not access.tls_verify:
        return False
    ctx = ssl.create_default_context()
    dirs = [Path(access.cert_dir)] if access.cert_dir else [Path(d) / registry for d in SYSTEM_CERT_DIRS]
    for d in dirs:
        if not d.is_dir():
            continue
        for ca in sorted(d.glob("*.crt")):
            ctx.load_verify_locations(cafile=str(ca))
        for cert in sorted(d.glob("*.cert")):
            key = cert.with_suffix(".key")
            if not key.exists():
                raise FerryError(f"client certificate {cert} has no matching key {key.name}")
            ctx.load_cert_chain(str(cert), str(key))
    return ctx
