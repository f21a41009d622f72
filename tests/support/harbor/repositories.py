"""Repositories: ``/repositories`` (all visible) and a project's ``/repositories[/{name}]``."""

from __future__ import annotations

import json
import urllib.parse
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.harbor.common import HarborError, forbidden, ts, unauthorized
from tests.support.harbor.model import Caller, HarborProject
from tests.support.harbor.query import match, page, paging, parse_q, sort_key, sorted_rows
from tests.support.harbor.routes import Call, Route
from tests.support.harbor.storage import RepoView

if TYPE_CHECKING:
    from tests.support.harbor.server import HarborServer


def repository_param(call: Call) -> str:
    """The ``{repository}`` segment: Harbor's Prepare() unescapes it once more (a%252Fb → a%2Fb → a/b)."""
    return urllib.parse.unquote(call.params["repository"])


def repository_json(srv: HarborServer, view: RepoView, project: HarborProject) -> dict[str, Any]:
    out = {
        "artifact_count": len(view.listed(base_all=False)),
        "creation_time": ts(view.created),
        "id": srv.id_of("repository", view.name),
        "name": view.name,
        "project_id": project.project_id,
        "pull_count": srv.pull_counts[view.name],
        "update_time": ts(view.updated),
    }
    with srv.lock:
        if description := srv.descriptions.get(view.name):
            out["description"] = description
    return dict(sorted(out.items()))


def repo_rows(srv: HarborServer, names: list[str]) -> list[dict[str, Any]]:
    """Sortable rows from cheap stats only (the first manifest's link time); the full views,
    which read manifests, are built for the page that is answered."""
    rows = []
    for name in names:
        first = srv.storage.first_push(name)
        if first is not None:
            rows.append({"name": name, "creation_time": first, "id": srv.id_of("repository", name)})
    return rows



def repositories_page(
    srv: HarborServer, request: web.Request, rows: list[dict[str, Any]], projects: dict[str, HarborProject]
) -> web.Response:
    conds = parse_q(request.query.get("q"))
    if "name" in conds:
        rows = [r for r in rows if match(conds["name"], r["name"])]
    rows = sorted_rows(rows, sort_key(request.query.get("sort"), [("creation_time", True), ("id", True)]))
    chosen, headers = page(request, rows)
    body = []
    for row in chosen:
        view = srv.storage.repo_view(row["name"])
        if view is not None:
            body.append(repository_json(srv, view, projects[view.project]))
    return web.json_response(body, headers=headers)



def list_repositories(srv: HarborServer, request: web.Request, caller: Caller, project_name: str) -> web.Response:
    project = srv.require_project(caller, project_name, is_name=True)
    paging(request)
    rows = repo_rows(srv, srv.repo_names(project.name))
    return repositories_page(srv, request, rows, {project.name: project})



def list_all_repositories(srv: HarborServer, request: web.Request, caller: Caller) -> web.Response:
    paging(request)
    projects = {p.name: p for p in srv.visible_projects(caller)}
    rows = []
    for p in projects:
        rows.extend(repo_rows(srv, srv.repo_names(p)))
    return repositories_page(srv, request, rows, projects)



def require_repo(
    srv: HarborServer, caller: Caller, project_name: str, repo_path: str
) -> tuple[HarborProject, RepoView]:
    project = srv.require_project(caller, project_name, is_name=True)
    name = f"{project.name}/{repo_path}"
    view = srv.storage.repo_view(name) if repo_path and ".." not in repo_path.split("/") else None
    if view is None:
        raise HarborError(404, f"repository {name} not found")
    return project, view


def resolve(view: RepoView, reference: str) -> str:
    if reference.startswith("sha256:"):
        if reference in view.artifacts:
            return reference
    elif reference in view.tags:
        return view.tags[reference][0]
    sep = "@" if reference.startswith("sha256:") else ":"
    raise HarborError(404, f"artifact {view.name}{sep}{reference} not found")


def get_repository(srv: HarborServer, caller: Caller, project_name: str, path: str) -> web.Response:
    project, view = require_repo(srv, caller, project_name, path)
    return web.json_response(repository_json(srv, view, project))


def update_repository(srv: HarborServer, call: Call) -> web.Response:
    """``PUT /projects/{p}/repositories/{r}``: only ``description`` is changed, as on Harbor."""
    project, view = require_repo(srv, call.caller, call.params["project"], repository_param(call))
    if not call.caller.allows(project, "repository", "update"):
        raise forbidden() if call.caller.authenticated else unauthorized()
    try:
        body = json.loads(call.body)
    except ValueError as e:
        raise HarborError(400, f'parsing repository body from "" failed, because {e}') from None
    if not isinstance(body, dict) or not isinstance(body.get("description", ""), str):
        raise HarborError(422, "description in body must be of type string")
    with srv.lock:
        srv.descriptions[view.name] = body.get("description", "")
    return web.Response(status=200)


ROUTES = [
    Route("repositories", {"GET": lambda srv, call: list_all_repositories(srv, call.request, call.caller)}),
    Route("projects/{project}/repositories", {
        "GET": lambda srv, call: list_repositories(srv, call.request, call.caller, call.params["project"]),
    }),
    Route("projects/{project}/repositories/{repository}", {
        "GET": lambda srv, call: get_repository(srv, call.caller, call.params["project"], repository_param(call)),
        "PUT": update_repository,
    }),
]
