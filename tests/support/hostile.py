"""A small fake registry that breaks the protocol on purpose, and a listener that records what reaches it.

:class:`FakeRegistry` (aiohttp, background thread, 127.0.0.1 by default) serves one repository's images
from memory like a minimal, well-behaved registry — manifests, blobs, tag listing, uploads — until a
test installs a *hook* for one kind of request (``"manifest"``, ``"blob"``, ``"tags"``, ``"upload_start"``,
``"upload"``, ``"manifest_put"``, ``"ping"``): an async function of the request that answers instead
(return None to fall back to the normal answer). It is a hostile peer for the cases a real registry
cannot play (oversized or malformed answers, lying digests, endless blobs, foreign Locations and
realms), not a mock of the happy path: happy paths are tested against real registries.

Auth: ``basic=(user, password)`` requires that Basic credential on every ``/v2/`` request;
``bearer_realm=URL`` answers a Bearer challenge with that realm and then accepts any bearer token.
``ssl_context`` serves HTTPS.

:class:`Recorder` listens on another loopback address (``127.0.0.2``) and records every request's
method, path and headers; it answers 200 with ``body`` (a blob after a redirect, a token for a realm).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.faultproxy import Served, ServerThread

__all__ = ["FakeRegistry", "Hook", "Recorder", "Seen", "sha256", "tiny_image"]

Hook = Callable[[web.Request], Awaitable[web.StreamResponse | None]]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

_ROUTE = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags)/(?P<rest>.*)$")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tiny_image(seed: int = 0, layer_size: int = 2048) -> tuple[bytes, dict[str, bytes]]:
    """An OCI image manifest and its blobs (config, one layer of deterministic bytes)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                         "config": {"Labels": {"seed": str(seed)}}}).encode()
    layer = hashlib.shake_256(f"layer-{seed}".encode()).digest(layer_size)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}],
    }, indent=2).encode()
    return manifest, {sha256(config): config, sha256(layer): layer}


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body_bytes: int = 0


@dataclass
class _Upload:
    data: bytearray = field(default_factory=bytearray)


class FakeRegistry(Served):
    """See the module docstring. Use as a context manager."""

    def __init__(self, repo: str = "team/app", *, host: str = "127.0.0.1", basic: tuple[str, str] | None = None,
                 bearer_realm: str | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        self.repo = repo
        self.basic = basic
        self.bearer_realm = bearer_realm
        self.tags: dict[str, str] = {}
        self.manifests: dict[str, tuple[bytes, str]] = {}
        self.blobs: dict[str, bytes] = {}
        self.uploads: dict[str, _Upload] = {}
        self.hooks: dict[str, Hook] = {}
        self.seen: list[Seen] = []
        self.bytes_sent: dict[str, int] = {}
        self._lock = threading.Lock()
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = ServerThread(app, host, ssl_context=ssl_context)

    # -- content and lifecycle --------------------------------------------------------------------
    def add_image(self, tag: str, manifest: bytes, blobs: dict[str, bytes], media_type: str = OCI_MANIFEST) -> str:
        digest = sha256(manifest)
        self.manifests[digest] = (manifest, media_type)
        self.tags[tag] = digest
        self.blobs.update(blobs)
        return digest


    def count_sent(self, key: str, n: int) -> None:
        with self._lock:
            self.bytes_sent[key] = self.bytes_sent.get(key, 0) + n

    # -- HTTP ----------------------------------------------------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        if self.basic is not None:
            expected = "Basic " + base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
            return auth == expected
        if self.bearer_realm is not None:
            return auth.startswith("Bearer ") and len(auth) > 7
        return True

    def _challenge(self) -> web.Response:
        if self.basic is not None:
            header = 'Basic realm="fake"'
        else:
            header = f'Bearer realm="{self.bearer_realm}",service="fake",scope="repository:{self.repo}:pull"'
        return web.json_response({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                                 status=401, headers={"WWW-Authenticate": header})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.seen.append(Seen(request.method, request.path, request.query_string, dict(request.headers)))
        if not self._authorized(request):
            return self._challenge()
        path = request.path
        if path in ("/v2/", "/v2"):
            return await self._hooked("ping", request) or web.json_response({})
        m = _ROUTE.match(path)
        if m is None:
            return web.json_response({"errors": [{"code": "NAME_UNKNOWN"}]}, status=404)
        kind, rest = m["kind"], m["rest"]
        if kind == "tags":
            return await self._hooked("tags", request) or web.json_response(
                {"name": m["name"], "tags": sorted(self.tags)})
        if kind == "manifests":
            if request.method == "PUT":
                return await self._hooked("manifest_put", request) or await self._put_manifest(request, rest)
            return await self._hooked("manifest", request) or self._manifest(request, rest)
        if rest.startswith("uploads/"):
            uid = rest[len("uploads/"):]
            if request.method == "POST" and not uid:
                return await self._hooked("upload_start", request) or self._start_upload(m["name"])
            return await self._hooked("upload", request) or await self._upload(request, m["name"], uid)
        return await self._hooked("blob", request) or self._blob(request, rest)

    async def _hooked(self, kind: str, request: web.Request) -> web.StreamResponse | None:
        hook = self.hooks.get(kind)
        return await hook(request) if hook is not None else None

    def _manifest(self, request: web.Request, ref: str) -> web.StreamResponse:
        digest = self.tags.get(ref, ref)
        if digest not in self.manifests:
            return web.json_response({"errors": [{"code": "MANIFEST_UNKNOWN"}]}, status=404)
        body, media_type = self.manifests[digest]
        headers = {"Docker-Content-Digest": digest, "Content-Type": media_type}
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(len(body))})
        return web.Response(body=body, headers=headers)

    def _blob(self, request: web.Request, digest: str) -> web.StreamResponse:
        data = self.blobs.get(digest)
        if data is None:
            return web.json_response({"errors": [{"code": "BLOB_UNKNOWN"}]}, status=404)
        headers = {"Docker-Content-Digest": digest, "Content-Type": "application/octet-stream"}
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(len(data))})
        self.count_sent(request.path, len(data))
        return web.Response(body=data, headers=headers)

    def _start_upload(self, name: str) -> web.Response:
        uid = f"u{len(self.uploads) + 1}"
        self.uploads[uid] = _Upload()
        return web.Response(status=202, headers={"Location": f"/v2/{name}/blobs/uploads/{uid}",
                                                 "Docker-Upload-UUID": uid, "Range": "0-0"})

    async def _upload(self, request: web.Request, name: str, uid: str) -> web.Response:
        up = self.uploads.get(uid)
        if up is None:
            return web.json_response({"errors": [{"code": "BLOB_UPLOAD_UNKNOWN"}]}, status=404)
        up.data += await request.read()
        if request.method == "PUT":
            digest = request.query.get("digest", "")
            if sha256(bytes(up.data)) != digest:
                return web.json_response({"errors": [{"code": "DIGEST_INVALID"}]}, status=400)
            self.blobs[digest] = bytes(up.data)
            return web.Response(status=201, headers={"Docker-Content-Digest": digest,
                                                     "Location": f"/v2/{name}/blobs/{digest}"})
        return web.Response(status=202, headers={"Location": f"/v2/{name}/blobs/uploads/{uid}",
                                                 "Range": f"0-{len(up.data) - 1}"})

    async def _put_manifest(self, request: web.Request, ref: str) -> web.Response:
        body = await request.read()
        digest = sha256(body)
        self.manifests[digest] = (body, request.headers.get("Content-Type", OCI_MANIFEST))
        if not ref.startswith("sha256:"):
            self.tags[ref] = digest
        return web.Response(status=201, headers={"Docker-Content-Digest": digest})


class Recorder(Served):
    """Records every request on ``host`` (default 127.0.0.2); answers 200 with ``body``."""

    def __init__(self, host: str = "127.0.0.2", body: bytes = b"", content_type: str = "application/octet-stream"):
        self.body = body
        self.content_type = content_type
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = ServerThread(app, host)

    async def _handle(self, request: web.Request) -> web.Response:
        data = await request.read()
        with self._lock:
            self.seen.append(Seen(request.method, request.path, request.query_string, dict(request.headers),
                                  len(data)))
        return web.Response(body=self.body, content_type=self.content_type)


    def headers_seen(self) -> list[dict[str, Any]]:
        with self._lock:
            return [s.headers for s in self.seen]
