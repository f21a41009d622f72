"""HTTP helpers the Harbor test server's tests share: one request, its JSON, all pages, a token's
access claim."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

from tests.support.harbor import HarborServer, iter_pages
from tests.support.pki import TokenSigner

Creds = tuple[str, str] | None


def _basic(creds: Creds) -> dict[str, str]:
    if creds is None:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()}


def call(
    server: HarborServer,
    path: str,
    creds: Creds = None,
    *,
    method: str = "GET",
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One request; returns (status, headers, parsed JSON body or raw bytes)."""
    data = json.dumps(body).encode() if body is not None else None
    hdrs = {**_basic(creds), **(headers or {})}
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    url = path if path.startswith("http") else server.url + path
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, rh, raw = r.status, dict(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        status, rh, raw = e.code, dict(e.headers.items()), e.read()
    if rh.get("Content-Type", "").startswith("application/json") and raw:
        return status, rh, json.loads(raw)
    return status, rh, raw


def api(server: HarborServer, path: str, creds: Creds = None, **kw: Any) -> tuple[int, dict[str, str], Any]:
    return call(server, "/api/v2.0" + path, creds, **kw)


def all_pages(server: HarborServer, path: str, creds: Creds) -> list[Any]:
    items: list[Any] = []
    for status, _, body in iter_pages(lambda p: call(server, p, creds), "/api/v2.0" + path):
        assert status == 200, body
        items.extend(body)
    return items


def token_access(server: HarborServer, scope: str, creds: Creds) -> list[dict[str, Any]]:
    status, _, body = call(server, f"/service/token?service=harbor-registry&scope={scope}", creds)
    assert status == 200, body
    assert set(body) == {"token", "expires_in", "issued_at"}
    return TokenSigner.decode_unverified(body["token"])["access"]
