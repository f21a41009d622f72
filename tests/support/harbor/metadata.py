"""Project metadata (``/projects/{p}/metadatas[/{name}]``) and the settings ``PUT /projects/{p}``
changes: metadata, the project CVE allowlist (``storage_limit`` is ignored there, as on Harbor:
quotas are changed through ``/quotas``). Values are checked as Harbor's project_metadata.go
validateProjectMetadata does."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.harbor.common import HarborError
from tests.support.harbor.routes import Call, Route

if TYPE_CHECKING:
    from tests.support.harbor.model import HarborProject
    from tests.support.harbor.server import HarborServer

BOOL_KEYS = {
    "public",
    "enable_content_trust",
    "enable_content_trust_cosign",
    "auto_sbom_generation",
    "prevent_vul",
    "auto_scan",
    "reuse_sys_cve_allowlist",
    "proxy_cache_local_on_not_found",
    "proxy_referrer_api",
}
SEVERITIES = {"none", "low", "medium", "high", "critical"}


def json_body(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError as e:
        raise HarborError(400, f'parsing {what} body from "" failed, because {e}') from None


def validate_pair(key: str, value: Any) -> str:
    """One metadata key/value as Harbor stores it (booleans normalised to ``true``/``false``)."""
    if not isinstance(value, str):
        raise HarborError(422, f"{key} in body must be of type string")
    if key in BOOL_KEYS:
        low = value.lower()
        if low in ("1", "t", "true"):
            return "true"
        if low in ("0", "f", "false"):
            return "false"
        raise HarborError(400, f"invalid value: {value}")
    if key == "severity":
        if value.lower() not in SEVERITIES:
            raise HarborError(400, f"invalid value: {value}")
        return value.lower()
    if key == "retention_id":
        if not value.isdigit():
            raise HarborError(400, f"invalid value: {value}")
        return value
    raise HarborError(400, f"invalid key: {key}")


def json_object(raw: bytes, what: str) -> dict[str, Any]:
    """A JSON object body; anything else is ``400 the <what> should be provided``."""
    body = json_body(raw, what)
    if not isinstance(body, dict):
        raise HarborError(400, f"the {what} should be provided")
    return body


def require_metadata(srv: HarborServer, call: Call, action: str) -> tuple[HarborProject, str]:
    project = srv.require_access(call.caller, call.params["project"], "metadata", action, is_name=call.is_name)
    name = call.params["name"]
    if name not in project.metadata:
        raise HarborError(404, f"metadata {name} of project {project.project_id} not found")
    return project, name


def list_metadata(srv: HarborServer, call: Call) -> web.Response:
    project = srv.require_access(call.caller, call.params["project"], "metadata", "list", is_name=call.is_name)
    return web.json_response(dict(project.metadata))


def add_metadata(srv: HarborServer, call: Call) -> web.Response:
    project = srv.require_access(call.caller, call.params["project"], "metadata", "create", is_name=call.is_name)
    body = json_object(call.body, "metadata")
    clean = {k: validate_pair(k, v) for k, v in body.items()}
    with srv.lock:
        project.metadata.update(clean)
        project.updated = time.time()
    return web.Response(status=200)


def get_metadata(srv: HarborServer, call: Call) -> web.Response:
    project, name = require_metadata(srv, call, "read")
    return web.json_response({name: project.metadata[name]})


def update_metadata(srv: HarborServer, call: Call) -> web.Response:
    project, name = require_metadata(srv, call, "update")
    body = json_object(call.body, "metadata")
    if len(body) != 1:
        raise HarborError(400, "only allow one key/value pair")
    key, value = next(iter(body.items()))
    if key != name:
        raise HarborError(400, "the metadata name in path must be the same as the one in body")
    with srv.lock:
        project.metadata[name] = validate_pair(key, value)
    return web.Response(status=200)


def delete_metadata(srv: HarborServer, call: Call) -> web.Response:
    project, name = require_metadata(srv, call, "delete")
    with srv.lock:
        del project.metadata[name]
    return web.Response(status=200)


def allowlist_items(body: Any, where: str) -> tuple[list[str], int | None]:
    """A ``CVEAllowlist`` request body → (CVE ids, expires_at)."""
    if not isinstance(body, dict):
        raise HarborError(422, f"{where} in body must be of type object")
    items = body.get("items") or []
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("cve_id"), str) for i in items):
        raise HarborError(422, f"{where}.items in body must be a list of {{cve_id}}")
    ids: list[str] = []
    for item in items:
        cve = item["cve_id"].strip()
        if not cve:
            raise HarborError(400, "empty CVE ID in allowlist")
        if cve in ids:
            raise HarborError(400, f"duplicated CVE ID in allowlist: {cve}")
        ids.append(cve)
    expires = body.get("expires_at")
    if expires is not None and (not isinstance(expires, int) or isinstance(expires, bool)):
        raise HarborError(422, f"{where}.expires_at in body must be of type int64")
    return ids, expires


def update_project(srv: HarborServer, call: Call) -> web.Response:
    """``PUT /projects/{p}`` (ProjectReq): metadata merged in, the CVE allowlist replaced when
    given; ``project_name`` and ``storage_limit`` are ignored as Harbor's UpdateProject does."""
    project: HarborProject = srv.require_access(
        call.caller, call.params["project"], "project", "update", is_name=call.is_name
    )
    body = json_object(call.body, "project")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise HarborError(422, "metadata in body must be of type object")
    clean = {k: validate_pair(k, v) for k, v in metadata.items() if v is not None}
    allowlist = allowlist_items(body["cve_allowlist"], "cve_allowlist") if body.get("cve_allowlist") else None
    with srv.lock:
        project.metadata.update(clean)
        if allowlist is not None:
            project.cve_allowlist, project.cve_allowlist_expires = allowlist
        project.updated = time.time()
    return web.Response(status=200)


ROUTES = [
    Route("projects/{project}/metadatas", {"GET": list_metadata, "POST": add_metadata}),
    Route("projects/{project}/metadatas/{name}", {
        "GET": get_metadata, "PUT": update_metadata, "DELETE": delete_metadata,
    }),
]
