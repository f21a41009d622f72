"""Webhook policies: ``/projects/{p}/webhook/policies[/{id}]`` and ``/projects/{p}/webhook/events``.

As Harbor's webhook.go: event types and target types are checked against the supported lists,
an http target without ``payload_format`` gets ``Default`` (slack may not set one), the address
is kept as scheme://host/path, a duplicate name is ``409``. ``auth_header`` is stored and
answered as given: Harbor's WebhookPolicy.ToTargets returns it unmasked."""

from __future__ import annotations

import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.harbor.common import HarborError, ts
from tests.support.harbor.metadata import json_object
from tests.support.harbor.query import page, paging
from tests.support.harbor.routes import Call, Route

if TYPE_CHECKING:
    from tests.support.harbor.model import HarborProject
    from tests.support.harbor.server import HarborServer

EVENT_TYPES = [
    "DELETE_ARTIFACT", "PULL_ARTIFACT", "PUSH_ARTIFACT", "QUOTA_EXCEED", "QUOTA_WARNING", "REPLICATION",
    "SCANNING_FAILED", "SCANNING_STOPPED", "SCANNING_COMPLETED", "TAG_RETENTION",
]
NOTIFY_TYPES = ["http", "slack"]
PAYLOAD_FORMATS = ["CloudEvents", "Default"]


def policy_json(wid: int, p: dict[str, Any]) -> dict[str, Any]:
    """Swagger ``WebhookPolicy``."""
    return {
        "creation_time": ts(p["created"]), "creator": p["creator"], "description": p["description"],
        "enabled": p["enabled"], "event_types": list(p["event_types"]) or None, "id": wid, "name": p["name"],
        "project_id": p["project_id"], "targets": [dict(t) for t in p["targets"]] or None,
        "update_time": ts(p["updated"]),
    }


def parse_policy(raw: bytes) -> dict[str, Any]:
    body = json_object(raw, "webhook policy")
    name = body.get("name") or ""
    events = body.get("event_types") or []
    if not isinstance(events, list) or not events:
        raise HarborError(400, "empty event type")
    for e in events:
        if e not in EVENT_TYPES:
            raise HarborError(400, f"unsupported event type {e}")
    targets = body.get("targets") or []
    if not isinstance(targets, list) or not targets or not all(isinstance(t, dict) for t in targets):
        raise HarborError(400, f"empty notification target with policy {name}")
    clean = []
    for t in targets:
        url = urllib.parse.urlsplit(str(t.get("address") or ""))
        if url.scheme not in ("http", "https") or not url.netloc:
            raise HarborError(400, f"invalid endpoint: {t.get('address')}")
        if t.get("type") not in NOTIFY_TYPES:
            raise HarborError(400, f"unsupported target type {t.get('type')} with policy {name}")
        fmt = t.get("payload_format") or ""
        if fmt and t["type"] == "slack":
            raise HarborError(400, "set payload format is not allowed for slack")
        if fmt and fmt not in PAYLOAD_FORMATS:
            raise HarborError(400, f"unsupported payload format type: {fmt}")
        target = {"address": f"{url.scheme}://{url.netloc}{url.path}", "auth_header": str(t.get("auth_header") or ""),
                  "skip_cert_verify": bool(t.get("skip_cert_verify")), "type": t["type"]}
        if fmt or t["type"] == "http":
            target["payload_format"] = fmt or "Default"
        clean.append(target)
    return {"name": str(name), "description": str(body.get("description") or ""), "event_types": list(events),
            "targets": clean, "enabled": bool(body.get("enabled"))}


def project_policies(srv: HarborServer, project: HarborProject) -> list[tuple[int, dict[str, Any]]]:
    with srv.lock:
        return [(i, p) for i, p in sorted(srv.webhooks.items()) if p["project_id"] == project.project_id]


def check_name(srv: HarborServer, project: HarborProject, name: str, own: int = 0) -> None:
    if any(p["name"] == name and i != own for i, p in project_policies(srv, project)):
        raise HarborError(409, f"notification policy named {name} already exists")


def list_policies(srv: HarborServer, call: Call) -> web.Response:
    project = srv.require_access(call.caller, call.params["project"], "notification-policy", "list",
                                 is_name=call.is_name)
    paging(call.request)
    chosen, headers = page(call.request, project_policies(srv, project))
    return web.json_response([policy_json(i, p) for i, p in chosen], headers=headers)


def create_policy(srv: HarborServer, call: Call) -> web.Response:
    project = srv.require_access(call.caller, call.params["project"], "notification-policy", "create",
                                 is_name=call.is_name)
    policy = parse_policy(call.body)
    now = time.time()
    with srv.lock:
        check_name(srv, project, policy["name"])
        wid = srv.next_id("webhook")
        srv.webhooks[wid] = {**policy, "project_id": project.project_id, "creator": call.caller.username,
                             "created": now, "updated": now}
    return web.Response(status=201, headers={"Location": f"{call.request.path.rstrip('/')}/{wid}"})


def require_policy(srv: HarborServer, call: Call, action: str) -> tuple[int, dict[str, Any], HarborProject]:
    project = srv.require_access(call.caller, call.params["project"], "notification-policy", action,
                                 is_name=call.is_name)
    raw = call.params["policy_id"]
    with srv.lock:
        policy = srv.webhooks.get(int(raw)) if raw.isdigit() else None
    if policy is None or policy["project_id"] != project.project_id:
        raise HarborError(404, f"webhook policy {raw} not found")
    return int(raw), policy, project


def get_policy(srv: HarborServer, call: Call) -> web.Response:
    wid, policy, _ = require_policy(srv, call, "read")
    return web.json_response(policy_json(wid, policy))


def update_policy(srv: HarborServer, call: Call) -> web.Response:
    wid, policy, project = require_policy(srv, call, "update")
    new = parse_policy(call.body)
    with srv.lock:
        check_name(srv, project, new["name"], wid)
        policy.update({**new, "updated": time.time()})
    return web.Response(status=200)


def delete_policy(srv: HarborServer, call: Call) -> web.Response:
    wid, _, _ = require_policy(srv, call, "delete")
    with srv.lock:
        del srv.webhooks[wid]
    return web.Response(status=200)


def event_types(srv: HarborServer, call: Call) -> web.Response:
    srv.require_access(call.caller, call.params["project"], "notification-policy", "read", is_name=call.is_name)
    return web.json_response({
        "event_type": EVENT_TYPES, "notify_type": NOTIFY_TYPES,
        "payload_formats": [{"formats": PAYLOAD_FORMATS, "notify_type": "http"}],
    })


ROUTES = [
    Route("projects/{project}/webhook/policies", {"GET": list_policies, "POST": create_policy}),
    Route("projects/{project}/webhook/policies/{policy_id}", {
        "GET": get_policy, "PUT": update_policy, "DELETE": delete_policy,
    }),
    Route("projects/{project}/webhook/events", {"GET": event_types}),
]
