"""The registry API ``/v2/…``, reverse-proxied (streaming both ways) to the ``docker-registry``
behind; Basic credentials on ``/v2/`` are exchanged for a token, as Harbor does, and
``/v2/<name>/referrers/<digest>`` is answered from the accessories (Harbor >= 2.8)."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import CIMultiDict

from tests.support.harbor.common import HOP_BY_HOP, OCI_INDEX, READ_ONLY, SERVICE, V2_NAME, HarborError
from tests.support.harbor.contenttrust import refuse_pull
from tests.support.harbor.immutable import refuse_delete, refuse_push
from tests.support.harbor.model import Caller
from tests.support.harbor.quotas import refuse_over_quota
from tests.support.harbor.tokens import bearer_access, grant, mint

if TYPE_CHECKING:
    from tests.support.harbor.server import HarborServer


def v2_scopes(request: web.Request, path: str) -> list[str]:
    """The scopes a request to ``/v2/`` needs (used for Basic credentials on ``/v2/``)."""
    if path == "/v2/_catalog":
        return ["registry:catalog:*"]
    m = V2_NAME.match(path)
    if not m:
        return []
    name = m["name"]
    if request.method in ("GET", "HEAD"):
        return [f"repository:{name}:pull"]
    if request.method == "DELETE":
        return [f"repository:{name}:delete"]
    scopes = [f"repository:{name}:pull,push"]
    if request.query.get("from"):
        scopes.append(f"repository:{request.query['from']}:pull")
    return scopes



async def proxy(srv: HarborServer, request: web.Request) -> web.StreamResponse:
    assert srv.registry is not None and srv.upstream is not None
    path = request.raw_path.split("?", 1)[0]
    caller = srv.caller(request)
    if srv.csrf_violation(request, caller):
        return HarborError(403, "CSRF token invalid").response()
    if srv.read_only_refuses(request, path):
        return READ_ONLY.response()
    hit = V2_NAME.match(path)
    manifest: bytes | None = None  # a manifest PUT's body, read for the quota check
    if hit and hit["kind"] == "manifests" and request.method in ("PUT", "DELETE") \
            and may_write(srv, request, caller, hit["name"], "push" if request.method == "PUT" else "delete"):
        check = refuse_push if request.method == "PUT" else refuse_delete
        refused = check(srv, hit["name"], urllib.parse.unquote(hit["rest"] or ""))
        if refused is None and request.method == "PUT":
            manifest = await request.read()  # manifests are small (the registry takes at most 4 MiB)
            refused = await asyncio.to_thread(refuse_over_quota, srv, hit["name"], manifest)  # storage scans
        if refused is not None:
            return refused.response()
    if hit and hit["kind"] == "manifests" and request.method == "GET" and may_pull(srv, request, caller, hit["name"]) \
            and (refused := refuse_pull(srv, hit["name"], urllib.parse.unquote(hit["rest"] or ""))) is not None:
        return refused.response()
    if hit and hit["kind"] == "referrers" and request.method in ("GET", "HEAD"):
        return referrers(srv, request, caller, hit["name"], urllib.parse.unquote(hit["rest"] or ""))
    # a multidict: Go clients (skopeo) send one Accept header per media type
    headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP | {"cookie"})
    auth = request.headers.get("Authorization", "")
    if auth[:6].lower() == "basic ":
        headers.popall("Authorization", None)
        scopes = v2_scopes(request, path)
        if caller.authenticated or scopes:
            headers["Authorization"] = "Bearer " + mint(srv, caller, grant(srv, caller, scopes))
    data: Any = None
    if request.method in ("POST", "PUT", "PATCH"):
        data = request.content if request.body_exists else b""
        if manifest is not None:
            data = manifest
    async with srv.upstream.request(
        request.method,
        srv.registry.url + request.raw_path,
        headers=headers,
        data=data,
        allow_redirects=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
    ) as upstream:
        resp = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for k, v in upstream.headers.items():
            lk = k.lower()
            if lk in HOP_BY_HOP or lk == "content-length":
                continue
            if lk == "location" and v.startswith(srv.registry.url):
                v = srv.url + v[len(srv.registry.url) :]
            resp.headers.add(k, v)
        if upstream.content_length is not None:
            resp.content_length = upstream.content_length
        await resp.prepare(request)
        if request.method != "HEAD":
            async for chunk in upstream.content.iter_chunked(1 << 16):
                await resp.write(chunk)
        await resp.write_eof()
        if request.method == "GET" and upstream.status == 200:
            note_pull(srv, path, upstream.headers.get("Docker-Content-Digest"))
    return resp

def may_write(srv: HarborServer, request: web.Request, caller: Caller, name: str, action: str) -> bool:
    """Whether the push or delete would pass authorization (Harbor checks immutability after it)."""
    if request.headers.get("Authorization", "")[:6].lower() == "basic ":
        project = srv.find_project(name.split("/", 1)[0], is_name=True) if "/" in name else None
        allowed = caller.can_push if action == "push" else caller.can_delete
        return project is not None and allowed(project)
    return any(
        a.get("type") == "repository" and a.get("name") == name and {action, "*"} & set(a.get("actions") or [])
        for a in bearer_access(srv, request)
    )


def may_pull(srv: HarborServer, request: web.Request, caller: Caller, name: str) -> bool:
    """Whether a pull from ``name`` would pass authorization (Harbor's policies are checked after it)."""
    if request.headers.get("Authorization", "")[:6].lower() == "basic ":
        project = srv.find_project(name.split("/", 1)[0], is_name=True) if "/" in name else None
        return project is not None and caller.can_read(project)
    return any(
        a.get("type") == "repository" and a.get("name") == name and {"pull", "*"} & set(a.get("actions") or [])
        for a in bearer_access(srv, request)
    )


def referrers(srv: HarborServer, request: web.Request, caller: Caller, name: str, reference: str) -> web.Response:
    """``GET /v2/<name>/referrers/<digest>``: Harbor (≥ 2.8) answers the OCI referrers API
    itself from its accessory table (src/server/registry/referrers.go); the registry behind it
    has none. Cosign tag-style signatures are accessories, so they are listed too."""
    if not may_pull(srv, request, caller, name):
        challenge = f'Bearer realm="{srv.url}/service/token",service="{SERVICE}",scope="repository:{name}:pull"'
        body = {"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized to list referrers"}]}
        return web.json_response(body, status=401, headers={"WWW-Authenticate": challenge})
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", reference):
        return HarborError(400, f"unsupported digest {reference}").response()
    artifact_type = request.query.get("artifactType")
    view = srv.storage.repo_view(name)
    accessories = [a for a in view.accessories.values() if a.subject == reference] if view else []
    manifests = []
    for acc in sorted(accessories, key=lambda a: view.artifacts[a.digest][1] if view else 0):
        assert view is not None
        m = view.artifacts[acc.digest][0]
        desc: dict[str, Any] = {"mediaType": m.media_type, "digest": acc.digest, "size": m.raw_size}
        if isinstance(m.doc.get("annotations"), dict) and m.doc["annotations"]:
            desc["annotations"] = m.doc["annotations"]
        if m.artifact_type:
            desc["artifactType"] = m.artifact_type
        if not artifact_type or m.artifact_type == artifact_type:
            manifests.append(desc)
    headers = {"X-Total-Count": str(len(accessories))}
    if artifact_type:
        headers["OCI-Filters-Applied"] = "artifactType"
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}) + "\n"
    return web.Response(body=body.encode(), headers=headers, content_type=OCI_INDEX)



def note_pull(srv: HarborServer, path: str, digest: str | None) -> None:
    m = V2_NAME.match(path)
    if not m or m["kind"] != "manifests" or not m["rest"]:
        return
    name, ref = m["name"], urllib.parse.unquote(m["rest"])
    now = time.time()
    srv.pull_counts[name] += 1
    if digest:
        srv.pull_times[(name, digest)] = now
    if not ref.startswith("sha256:"):
        srv.pull_times[(name, ref)] = now

