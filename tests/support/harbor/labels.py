"""Labels: ``/labels[/{id}]`` (global ``g`` and project ``p`` scope) and the labels an artifact
carries (``POST/DELETE /projects/{p}/repositories/{r}/artifacts/{ref}/labels[/{id}]``).

As Harbor's label.go: listing needs ``scope`` (``g`` lists global labels for anyone, ``p`` needs
``project_id`` and the project's label permission), global labels are managed by sysadmins, a
duplicate name in one scope is ``409 label X already exists``; attaching a label twice is ``409``,
a project label only fits artifacts of its own project."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.harbor.common import HarborError, forbidden, ts, unauthorized
from tests.support.harbor.metadata import json_body, json_object
from tests.support.harbor.query import int_param, page, paging, parse_q
from tests.support.harbor.repositories import repository_param, require_repo, resolve
from tests.support.harbor.routes import Call, Route

if TYPE_CHECKING:
    from tests.support.harbor.model import Caller
    from tests.support.harbor.server import HarborServer


def label_json(label_id: int, label: dict[str, Any]) -> dict[str, Any]:
    """Swagger ``Label``."""
    return {
        "color": label["color"], "creation_time": ts(label["created"]), "description": label["description"],
        "id": label_id, "name": label["name"], "project_id": label["project_id"], "scope": label["scope"],
        "update_time": ts(label["updated"]),
    }


def labels_of(srv: HarborServer, repository: str, digest: str) -> list[dict[str, Any]] | None:
    """The ``labels`` of an artifact JSON (null when none)."""
    with srv.lock:
        ids = srv.artifact_labels.get((repository, digest), [])
        return [label_json(i, srv.labels[i]) for i in ids if i in srv.labels] or None


def require_label_access(srv: HarborServer, caller: Caller, label: dict[str, Any], action: str) -> None:
    if label["scope"] == "g":
        if action not in ("read", "list") and not caller.sysadmin:
            raise forbidden() if caller.authenticated else unauthorized()
        return
    srv.require_access(caller, str(label["project_id"]), "label", action)


def parse_label(raw: bytes) -> dict[str, Any]:
    body = json_object(raw, "label")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise HarborError(400, "label name is required")
    scope = body.get("scope") or "g"
    if scope not in ("g", "p"):
        raise HarborError(400, f"invalid scope: {scope}")
    project_id = body.get("project_id") or 0 if scope == "p" else 0
    if scope == "p" and not project_id:
        raise HarborError(400, "must with project ID when to create project labels")
    return {"name": name, "description": str(body.get("description") or ""), "color": str(body.get("color") or ""),
            "scope": scope, "project_id": int(project_id)}


def check_unique(srv: HarborServer, label: dict[str, Any], own_id: int = 0) -> None:
    for lid, other in srv.labels.items():
        if lid != own_id and (other["name"], other["scope"], other["project_id"]) == (
                label["name"], label["scope"], label["project_id"]):
            raise HarborError(409, f"label {label['name']} already exists")


def list_labels(srv: HarborServer, call: Call) -> web.Response:
    paging(call.request)
    scope = call.request.query.get("scope", "g")
    if scope not in ("g", "p"):
        raise HarborError(400, f"invalid scope: {scope}")
    project_id = int_param(call.request, "project_id", 0)
    if scope == "p":
        if not project_id:
            raise HarborError(400, "must with project ID when to query project labels")
        srv.require_access(call.caller, str(project_id), "label", "list")
    name = call.request.query.get("name") or ""
    conds = parse_q(call.request.query.get("q"))
    with srv.lock:
        rows = [(i, lb) for i, lb in sorted(srv.labels.items())
                if lb["scope"] == scope and (scope == "g" or lb["project_id"] == project_id) and name in lb["name"]]
    if "name" in conds:
        rows = [(i, lb) for i, lb in rows if str(conds["name"][1]) in lb["name"]]
    chosen, headers = page(call.request, rows)
    return web.json_response([label_json(i, lb) for i, lb in chosen], headers=headers)


def create_label(srv: HarborServer, call: Call) -> web.Response:
    label = parse_label(call.body)
    require_label_access(srv, call.caller, label, "create")
    now = time.time()
    with srv.lock:
        check_unique(srv, label)
        label_id = srv.next_id("label")
        srv.labels[label_id] = {**label, "created": now, "updated": now}
    return web.Response(status=201, headers={"Location": f"{call.request.path.rstrip('/')}/{label_id}"})


def require_label(srv: HarborServer, call: Call, action: str) -> tuple[int, dict[str, Any]]:
    raw = call.params["label_id"]
    with srv.lock:
        label = srv.labels.get(int(raw)) if raw.isdigit() else None
    if label is None:
        raise HarborError(404, f"label {raw} not found")
    require_label_access(srv, call.caller, label, action)
    return int(raw), label


def get_label(srv: HarborServer, call: Call) -> web.Response:
    label_id, label = require_label(srv, call, "read")
    return web.json_response(label_json(label_id, label))


def update_label(srv: HarborServer, call: Call) -> web.Response:
    label_id, label = require_label(srv, call, "update")
    new = parse_label(call.body)
    new["scope"], new["project_id"] = label["scope"], label["project_id"]  # scope and project never change
    with srv.lock:
        check_unique(srv, new, label_id)
        label.update({**new, "updated": time.time()})
    return web.Response(status=200)


def delete_label(srv: HarborServer, call: Call) -> web.Response:
    label_id, _ = require_label(srv, call, "delete")
    with srv.lock:
        del srv.labels[label_id]
        for ids in srv.artifact_labels.values():
            if label_id in ids:
                ids.remove(label_id)
    return web.Response(status=200)


def artifact_target(srv: HarborServer, call: Call, action: str) -> tuple[str, str, int]:
    """(repository, digest, artifact id) after the artifact-label permission check."""
    project, view = require_repo(srv, call.caller, call.params["project"], repository_param(call))
    if not call.caller.allows(project, "artifact-label", action):
        raise forbidden() if call.caller.authenticated else unauthorized()
    digest = resolve(view, call.params["reference"])
    return view.name, digest, srv.id_of("artifact", view.name, digest)


def add_artifact_label(srv: HarborServer, call: Call) -> web.Response:
    repository, digest, art_id = artifact_target(srv, call, "create")
    body = json_body(call.body, "label")
    label_id = body.get("id") if isinstance(body, dict) else None
    with srv.lock:
        label = srv.labels.get(label_id) if isinstance(label_id, int) else None
        if label is None:
            raise HarborError(404, f"label {label_id} not found")
        project = srv.find_project(repository.split("/", 1)[0], is_name=True)
        if label["scope"] == "p" and (project is None or label["project_id"] != project.project_id):
            raise HarborError(400, f"the label {label_id} is not in the project of the artifact")
        ids = srv.artifact_labels.setdefault((repository, digest), [])
        if label_id in ids:
            raise HarborError(409, f"label {label_id} is already added to the artifact {art_id}")
        ids.append(label_id)
    return web.Response(status=200)


def remove_artifact_label(srv: HarborServer, call: Call) -> web.Response:
    repository, digest, art_id = artifact_target(srv, call, "delete")
    raw = call.params["label_id"]
    with srv.lock:
        ids = srv.artifact_labels.get((repository, digest), [])
        if not raw.isdigit() or int(raw) not in ids:
            raise HarborError(404, f"reference with label {raw} and artifact {art_id} not found")
        ids.remove(int(raw))
    return web.Response(status=200)


_ARTIFACT_LABELS = "projects/{project}/repositories/{repository}/artifacts/{reference}/labels"
ROUTES = [
    Route("labels", {"GET": list_labels, "POST": create_label}),
    Route("labels/{label_id}", {"GET": get_label, "PUT": update_label, "DELETE": delete_label}),
    Route(_ARTIFACT_LABELS, {"POST": add_artifact_label}),
    Route(_ARTIFACT_LABELS + "/{label_id}", {"DELETE": remove_artifact_label}),
]
