"""Project quotas: ``/quotas`` and ``/quotas/{id}`` (system administrators only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.harbor.common import HarborError, forbidden, ts, unauthorized
from tests.support.harbor.model import Caller, HarborProject
from tests.support.harbor.query import page, paging
from tests.support.harbor.routes import Route

if TYPE_CHECKING:
    from tests.support.harbor.server import HarborServer


def quota_json(srv: HarborServer, p: HarborProject) -> dict[str, Any]:
    used: dict[str, int] = {}
    for name in srv.repo_names(p.name):
        view = srv.storage.repo_view(name)
        if view is None:
            continue
        for digest, (m, _) in view.artifacts.items():
            used[digest] = m.raw_size
            for d in [m.config, *m.layers] if m.config else m.layers:
                if d and "digest" in d:
                    used[d["digest"]] = int(d.get("size") or 0)
    return {
        "creation_time": ts(p.created),
        "hard": {"storage": p.storage_limit},
        "id": p.quota_id,
        "ref": {"id": p.project_id, "name": p.name, "owner_name": p.owner.username},
        "update_time": ts(p.created),
        "used": {"storage": sum(used.values())},
    }



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
]
