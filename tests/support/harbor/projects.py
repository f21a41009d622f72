"""Projects: list, head, create, read, delete."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.harbor.common import API, PROJECT_NAME, ROLES, HarborError, forbidden, ts, unauthorized
from tests.support.harbor.metadata import allowlist_items, update_project, validate_pair
from tests.support.harbor.model import Caller, HarborProject
from tests.support.harbor.query import bool_param, match, page, paging, parse_q, sort_key, sorted_rows
from tests.support.harbor.routes import Route

if TYPE_CHECKING:
    from tests.support.harbor.server import HarborServer


def allowlist_json(
    list_id: int, project_id: int, items: list[str], expires: int | None, created: float, updated: float
) -> dict[str, Any]:
    """Swagger ``CVEAllowlist`` (``expires_at`` omitted when it never expires)."""
    out: dict[str, Any] = {
        "creation_time": ts(created),
        "id": list_id,
        "items": [{"cve_id": c} for c in items] or None,
        "project_id": project_id,
        "update_time": ts(updated),
    }
    if expires is not None:
        out["expires_at"] = expires
    return out


def project_json(srv: HarborServer, p: HarborProject, caller: Caller, repo_count: int | None = None) -> dict[str, Any]:
    role = caller.role(p)
    out: dict[str, Any] = {
        "creation_time": ts(p.created),
        "current_user_role_ids": [role] if role else None,
        "cve_allowlist": allowlist_json(p.project_id, p.project_id, p.cve_allowlist, p.cve_allowlist_expires,
                                        p.created, p.updated or p.created),
        "metadata": dict(p.metadata),
        "name": p.name,
        "owner_id": p.owner.user_id,
        "owner_name": p.owner.username,
        "project_id": p.project_id,
        "repo_count": len(srv.repo_names(p.name)) if repo_count is None else repo_count,
        "update_time": ts(p.updated or p.created),
    }
    if role:
        out["current_user_role_id"] = role
    if caller.sysadmin or role == ROLES["projectAdmin"]:
        out["togglable"] = True
    return dict(sorted(out.items()))



def list_projects(srv: HarborServer, request: web.Request, caller: Caller) -> web.Response:
    paging(request)
    conds = parse_q(request.query.get("q"))
    public = bool_param(request, "public", False) if request.query.get("public") else None
    if not caller.authenticated and public is False:
        return web.json_response([], headers={"X-Total-Count": "0"})
    projects = srv.visible_projects(caller)
    if name := request.query.get("name"):
        projects = [p for p in projects if name in p.name]
    if owner := request.query.get("owner"):
        projects = [p for p in projects if p.owner.username == owner]
    if public is not None:
        projects = [p for p in projects if p.public == public]
    fields: dict[str, Callable[[HarborProject], Any]] = {
        "name": lambda p: p.name,
        "project_id": lambda p: p.project_id,
        "public": lambda p: p.public,
        "owner_id": lambda p: p.owner.user_id,
    }
    for key, cond in conds.items():
        if key in fields:
            projects = [p for p in projects if match(cond, fields[key](p))]
    rows = [{"name": p.name, "project_id": p.project_id, "creation_time": p.created, "_p": p} for p in projects]
    rows = sorted_rows(rows, sort_key(request.query.get("sort"), [("name", False)]))
    if not rows:
        return web.json_response([], headers={"X-Total-Count": "0"})
    chosen, headers = page(request, rows)
    return web.json_response([project_json(srv, r["_p"], caller) for r in chosen], headers=headers)



def head_project(srv: HarborServer, request: web.Request, caller: Caller) -> web.Response:
    name = request.query.get("project_name")
    if not name:
        raise HarborError(422, "project_name in query is required")
    srv.require_project(caller, name, is_name=True)
    return web.Response(status=200)



def create_project(srv: HarborServer, request: web.Request, caller: Caller, raw: bytes) -> web.Response:
    if not caller.authenticated:
        raise unauthorized()
    if srv.project_creation_restriction == "adminonly" and not caller.sysadmin:
        raise HarborError(403, "Only system admin can create project")
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise HarborError(400, f'parsing project body from "" failed, because {e}') from None
    if not isinstance(body, dict):
        raise HarborError(400, "parsing project body failed: not an object")
    name = body.get("project_name")
    if not isinstance(name, str):
        raise HarborError(422, "project_name in body must be of type string")
    if len(name) > 255:
        raise HarborError(422, "project_name in body should be at most 255 chars long")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise HarborError(422, "metadata in body must be of type object")
    for k, v in metadata.items():
        if v is not None and not isinstance(v, str):
            raise HarborError(422, f'metadata.{k} in body must be of type string: "{type(v).__name__}"')
    metadata = {k: v for k, v in metadata.items() if v is not None}
    if isinstance(body.get("public"), bool) and not metadata.get("public"):
        metadata["public"] = "true" if body["public"] else "false"
    metadata.setdefault("public", "false")
    if metadata["public"] not in ("true", "false"):
        raise HarborError(400, f"metadata.public should only be 'true' or 'false', but got: '{metadata['public']}'")
    limit = body.get("storage_limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
        raise HarborError(422, "storage_limit in body must be of type int64")
    if limit is None or limit == 0 or not caller.sysadmin:
        limit = -1
    if limit < -1:
        raise HarborError(400, f"invalid storage limit {limit}: it should be -1 or greater than 0")
    if not PROJECT_NAME.match(name):
        raise HarborError(400, "project name is not in lower case or contains illegal characters!")
    metadata = {k: validate_pair(k, v) for k, v in metadata.items()}
    allowlist = allowlist_items(body["cve_allowlist"], "cve_allowlist") if body.get("cve_allowlist") else None
    if caller.user is None:
        raise forbidden()  # robots do not own projects here
    with srv.lock:
        if name in srv.projects:
            raise HarborError(409, f"The project named {name} already exists")
        project = srv.create_project(
            name,
            public=metadata["public"] == "true",
            storage_limit=limit,
            owner=caller.user.username,
            metadata={k: v for k, v in metadata.items() if k != "retention_id"},
        )
        if allowlist is not None:
            project.cve_allowlist, project.cve_allowlist_expires = allowlist
    in_location = request.headers.get("X-Resource-Name-In-Location", "").lower() == "true"
    location = f"{API}/projects/{project.name if in_location else project.project_id}"
    return web.Response(status=201, headers={"Location": location})



def delete_project(srv: HarborServer, name_or_id: str, caller: Caller, *, is_name: bool) -> web.Response:
    project = srv.require_project(caller, name_or_id, is_name=is_name)
    if not caller.can_delete(project):
        raise forbidden() if caller.authenticated else unauthorized()
    if srv.repo_names(project.name):
        raise HarborError(412, "the project contains repositories, can not be deleted")
    with srv.lock:
        del srv.projects[project.name]
    return web.Response(status=200)


def get_project(srv: HarborServer, name_or_id: str, caller: Caller, *, is_name: bool) -> web.Response:
    project = srv.require_project(caller, name_or_id, is_name=is_name)
    return web.json_response(project_json(srv, project, caller))


ROUTES = [
    Route("projects", {
        "GET": lambda srv, call: list_projects(srv, call.request, call.caller),
        "HEAD": lambda srv, call: head_project(srv, call.request, call.caller),
        "POST": lambda srv, call: create_project(srv, call.request, call.caller, call.body),
    }),
    Route("projects/{project}", {
        "GET": lambda srv, call: get_project(srv, call.params["project"], call.caller, is_name=call.is_name),
        "PUT": update_project,
        "DELETE": lambda srv, call: delete_project(srv, call.params["project"], call.caller, is_name=call.is_name),
    }),
]
