"""Project quotas: ``/quotas`` and ``/quotas/{id}`` (system administrators only), the quota in
``/projects/{p}/summary`` (members), and their enforcement on a manifest push.

Harbor's quota middleware (server/middleware/quota/put_manifest.go, controller/quota) asks for the
manifest's size plus the blobs it references that the project does not hold yet, and refuses with
``403 DENIED`` "Quota exceeded when processing the request of adding … of storage resource, which when
updated to current usage of … will exceed the configured upper limit of …." Harbor also checks on
blob upload completion; this fixture checks once, on the manifest, with the same answer."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.harbor.common import HarborError, forbidden, ts, unauthorized
from tests.support.harbor.model import Caller, HarborProject
from tests.support.harbor.query import page, paging
from tests.support.harbor.routes import Call, Route

if TYPE_CHECKING:
    from tests.support.harbor.server import HarborServer


def _referenced(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """A manifest's config and layers (Harbor's ``References()`` less index children, pushed before)."""
    refs = [doc.get("config"), *(doc.get("layers") or [])]
    return [d for d in refs if isinstance(d, dict) and "digest" in d]


def usage(srv: HarborServer, p: HarborProject) -> dict[str, int]:
    """digest → size of every manifest and blob the project's repositories hold."""
    used: dict[str, int] = {}
    for name in srv.repo_names(p.name):
        view = srv.storage.repo_view(name)
        if view is None:
            continue
        for digest, (m, _) in view.artifacts.items():
            used[digest] = m.raw_size
            for d in _referenced(m.doc):
                used[d["digest"]] = int(d.get("size") or 0)
    return used


def _size(n: int) -> str:
    """Harbor's storage format (pkg/quota/types): 2.1 MiB, 10.0 KiB."""
    value, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{value:.1f} {unit}"


def refuse_over_quota(srv: HarborServer, name: str, body: bytes) -> HarborError | None:
    """The quota middleware on ``PUT /v2/<name>/manifests/<ref>``."""
    project = srv.find_project(name.split("/", 1)[0], is_name=True)
    if project is None or project.storage_limit < 0:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None  # the registry refuses it as MANIFEST_INVALID
    used = usage(srv, project)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    if digest in used or not isinstance(doc, dict):
        return None
    adding = len(body) + sum(int(d.get("size") or 0) for d in _referenced(doc) if d["digest"] not in used)
    current = sum(used.values())
    if current + adding <= project.storage_limit:
        return None
    return HarborError(403, f"Quota exceeded when processing the request of adding {_size(adding)} of storage "
                       f"resource, which when updated to current usage of {_size(current)} will exceed the "
                       f"configured upper limit of {_size(project.storage_limit)}.", "DENIED")


def quota_body(srv: HarborServer, p: HarborProject) -> dict[str, Any]:
    return {"hard": {"storage": p.storage_limit}, "used": {"storage": sum(usage(srv, p).values())}}


def quota_json(srv: HarborServer, p: HarborProject) -> dict[str, Any]:
    return {
        "creation_time": ts(p.created),
        "id": p.quota_id,
        "ref": {"id": p.project_id, "name": p.name, "owner_name": p.owner.username},
        "update_time": ts(p.created),
        **quota_body(srv, p),
    }


def project_summary(srv: HarborServer, call: Call) -> web.Response:
    """``GET /projects/{p}/summary``: Harbor adds the quota for callers who may read it (members,
    administrators; src/server/v2.0/handler/project.go)."""
    project = srv.require_project(call.caller, call.params["project"], is_name=call.is_name)
    with srv.lock:
        members = list(project.members.values())
    counts = {f"{role}_count": members.count(rid) for role, rid in
              (("project_admin", 1), ("maintainer", 4), ("developer", 2), ("guest", 3), ("limited_guest", 5))}
    out: dict[str, Any] = {"repo_count": len(srv.repo_names(project.name)), **counts}
    if call.caller.sysadmin or call.caller.role(project) is not None:
        out["quota"] = quota_body(srv, project)
    return web.json_response(out)



def list_quotas(srv: HarborServer, request: web.Request, caller: Caller) -> web.Response:
    paging(request)
    if not caller.sysadmin:  # Harbor: system-level quota list permission
        raise forbidden() if caller.authenticated else unauthorized()
    reference = request.query.get("reference")
    reference_id = request.query.get("reference_id")
    with srv.lock:
        projects = sorted(srv.projects.values(), key=lambda p: p.quota_id)
    if reference and reference != "project":
        projects = []
    if reference_id:
        projects = [p for p in projects if str(p.project_id) == reference_id]
    chosen, headers = page(request, projects)
    return web.json_response([quota_json(srv, p) for p in chosen], headers=headers)



def get_quota(srv: HarborServer, quota_id: str, caller: Caller) -> web.Response:
    if not caller.sysadmin:
        raise forbidden() if caller.authenticated else unauthorized()
    with srv.lock:
        project = next((p for p in srv.projects.values() if str(p.quota_id) == quota_id), None)
    if project is None:
        raise HarborError(404, f"quota {quota_id} not found")
    return web.json_response(quota_json(srv, project))


ROUTES = [
    Route("quotas", {"GET": lambda srv, call: list_quotas(srv, call.request, call.caller)}),
    Route("quotas/{id}", {"GET": lambda srv, call: get_quota(srv, call.params["id"], call.caller)}),
    Route("projects/{project}/summary", {"GET": project_summary}),
]
