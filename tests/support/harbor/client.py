"""A minimal synchronous registry client through a Harbor-style ``/v2/`` (for seeding content)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from tests.support.harbor.common import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    SCHEMA1_SIGNED,
    SERVICE,
)


class V2Client:
    """Pushes and reads through a Harbor-style ``/v2/`` with the token dance (urllib, sync).

    Meant for seeding tests quickly (many small manifests); images with real layers are easier
    with skopeo (:mod:`tests.support.skopeo`). ``creds`` are Basic credentials for the token
    service; ``None`` is anonymous.
    """

    def __init__(self, base_url: str, creds: tuple[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.creds = creds
        self._tokens: dict[str, str] = {}

    def token(self, scope: str) -> str:
        if scope not in self._tokens:
            query = urllib.parse.urlencode({"service": SERVICE, "scope": scope})
            req = urllib.request.Request(f"{self.base_url}/service/token?{query}")
            if self.creds:
                raw = base64.b64encode(f"{self.creds[0]}:{self.creds[1]}".encode()).decode()
                req.add_header("Authorization", f"Basic {raw}")
            with urllib.request.urlopen(req, timeout=30) as r:
                self._tokens[scope] = json.loads(r.read())["token"]
        return self._tokens[scope]

    def request(
        self, method: str, path: str, *, scope: str, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One request with a bearer token for ``scope``; returns (status, headers, body)."""
        url = path if path.startswith("http") else self.base_url + path
        req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
        req.add_header("Authorization", f"Bearer {self.token(scope)}")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, dict(r.headers.items()), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers.items()), e.read()

    def push_blob(self, repo: str, data: bytes) -> str:
        """Upload a blob (skipped when present); returns its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        scope = f"repository:{repo}:pull,push"
        status, _, _ = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=scope)
        if status == 200:
            return digest
        status, headers, body = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope, data=b"")
        if status != 202:
            raise HarborPushError(status, body)
        location = headers["Location"]
        sep = "&" if "?" in location else "?"
        status, _, body = self.request(
            "PUT",
            f"{location}{sep}digest={urllib.parse.quote(digest)}",
            scope=scope,
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if status != 201:
            raise HarborPushError(status, body)
        return digest

    def push_manifest(self, repo: str, reference: str, raw: bytes, media_type: str) -> str:
        """PUT a manifest by tag or digest; returns its digest."""
        status, headers, body = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            scope=f"repository:{repo}:pull,push",
            data=raw,
            headers={"Content-Type": media_type},
        )
        if status != 201:
            raise HarborPushError(status, body)
        return headers.get("Docker-Content-Digest", "")

    def push_image(
        self, repo: str, reference: str | None, *, seed: int = 0, annotations: dict[str, str] | None = None
    ) -> tuple[str, bytes]:
        """A tiny OCI image (one small layer, real config); returns (digest, manifest bytes).

        ``reference=None`` pushes it by digest only: an untagged artifact."""
        layer = json.dumps({"ferry-test-layer": seed}).encode()
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": "2024-01-02T03:04:05Z",
                "config": {"Labels": {"seed": str(seed)}},
                "rootfs": {"type": "layers", "diff_ids": []},
            }
        ).encode()
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": self.push_blob(repo, config), "size": len(config)},
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": self.push_blob(repo, layer),
                    "size": len(layer),
                }
            ],
        }
        if annotations:
            manifest["annotations"] = annotations
        raw = json.dumps(manifest).encode()
        reference = reference or "sha256:" + hashlib.sha256(raw).hexdigest()
        return self.push_manifest(repo, reference, raw, OCI_MANIFEST), raw

    def get_manifest(self, repo: str, reference: str) -> tuple[int, dict[str, str], bytes]:
        accept = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST, SCHEMA1_SIGNED])
        return self.request(
            "GET", f"/v2/{repo}/manifests/{reference}", scope=f"repository:{repo}:pull", headers={"Accept": accept}
        )


class HarborPushError(RuntimeError):
    """A push through ``/v2/`` was refused."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"{status}: {body[:500].decode(errors='replace')}")
        self.status = status
        self.body = body


def iter_pages(
    fetch: Callable[[str], tuple[int, dict[str, str], Any]], first: str
) -> Iterator[tuple[int, dict[str, str], Any]]:
    """Follow Harbor's ``Link: <…>; rel="next"`` from ``first`` (a path with query)."""
    url: str | None = first
    while url:
        status, headers, body = fetch(url)
        yield status, headers, body
        url = None
        for part in (headers.get("Link") or "").split(","):
            m = re.match(r'\s*<([^>]*)>\s*;\s*rel="next"', part)
            if m:
                url = m.group(1)
