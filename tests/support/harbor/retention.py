"""Tag retention: ``/retentions``, ``/retentions/{id}``, ``/retentions/metadatas``.

As Harbor's retention.go: a policy's scope is one project (``{"level": "project", "ref": id}``),
creating it sets the project's ``retention_id`` metadata (a second one is ``400 project X already
has retention policy Y``), at most 15 rules, two identical rules are ``409``, and deleting it
removes the metadata. No execution is run: the policy is stored as given."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.harbor.common import HarborError
from tests.support.harbor.metadata import json_object
from tests.support.harbor.routes import Call, Route

if TYPE_CHECKING:
    from tests.support.harbor.model import HarborProject
    from tests.support.harbor.server import HarborServer


def _template(name: str, text: str, unit: str | None) -> dict[str, Any]:
    params = [{"required": True, "type": "int", "unit": unit}] if unit else None
    return {"action": "retain", "display_text": text, "params": params, "rule_template": name}


METADATA = {
    "scope_selectors": [{"decorations": ["repoMatches", "repoExcludes"], "display_text": "Repositories",
                         "kind": "doublestar"}],
    "tag_selectors": [{"decorations": ["matches", "excludes"], "display_text": "Tags", "kind": "doublestar"}],
    "templates": [
        _template("latestPushedK", "the most recently pushed # artifacts", "COUNT"),
        _template("latestPulledN", "the most recently pulled # artifacts", "COUNT"),
        _template("nDaysSinceLastPush", "pushed within the last # days", "DAYS"),
        _template("nDaysSinceLastPull", "pulled within the last # days", "DAYS"),
        _template("always", "always", None),
    ],
}
TEMPLATES = {t["rule_template"] for t in METADATA["templates"]}


def policy_json(rid: int, policy: dict[str, Any]) -> dict[str, Any]:
    """Swagger ``RetentionPolicy``."""
    return {"id": rid, **policy}


def parse_policy(srv: HarborServer, raw: bytes) -> tuple[dict[str, Any], HarborProject]:
    body = json_object(raw, "retention policy")
    rules = body.get("rules") or []
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise HarborError(422, "rules in body must be of type array")
    if len(rules) > 15:
        raise HarborError(400, "only 15 rules are allowed at most")
    seen: dict[str, int] = {}
    for n, rule in enumerate(rules):
        key = json.dumps({k: v for k, v in rule.items() if k != "id"}, sort_keys=True)
        if key in seen:
            raise HarborError(409, f"rule {n} is conflict with rule {seen[key]}")
        seen[key] = n
        if rule.get("template") not in TEMPLATES:
            raise HarborError(400, f"invalid rule template: {rule.get('template')}")
    scope = body.get("scope") or {}
    if not isinstance(scope, dict) or scope.get("level") != "project":
        raise HarborError(400, f"scope {scope.get('level') if isinstance(scope, dict) else scope} is not support")
    ref = scope.get("ref")
    project = srv.find_project(str(ref)) if isinstance(ref, int) and ref > 0 else None
    if project is None:
        raise HarborError(400, f"invalid Project id {ref}")
    policy = {
        "algorithm": body.get("algorithm") or "or",
        "rules": [{**r, "id": i + 1} for i, r in enumerate(rules)],
        "scope": {"level": "project", "ref": project.project_id},
        "trigger": body.get("trigger") or {"kind": "Schedule", "references": {}, "settings": {"cron": ""}},
    }
    return policy, project


def require_policy(srv: HarborServer, call: Call, action: str) -> tuple[int, dict[str, Any]]:
    rid = call.params["id"]
    with srv.lock:
        policy = srv.retentions.get(int(rid)) if rid.isdigit() else None
    if policy is None:
        raise HarborError(404, f"retention policy {rid} not found")
    srv.require_access(call.caller, str(policy["scope"]["ref"]), "tag-retention", action)
    return int(rid), policy


def get_retention(srv: HarborServer, call: Call) -> web.Response:
    rid, policy = require_policy(srv, call, "read")
    return web.json_response(policy_json(rid, policy))


def create_retention(srv: HarborServer, call: Call) -> web.Response:
    policy, project = parse_policy(srv, call.body)
    srv.require_access(call.caller, str(project.project_id), "tag-retention", "create")
    with srv.lock:
        if project.metadata.get("retention_id"):
            raise HarborError(400, f"project {project.project_id} already has retention policy "
                                   f"{project.metadata['retention_id']}")
        rid = srv.next_id("retention")
        srv.retentions[rid] = policy
        project.metadata["retention_id"] = str(rid)
    return web.Response(status=201, headers={"Location": f"{call.request.path.rstrip('/')}/{rid}"})


def update_retention(srv: HarborServer, call: Call) -> web.Response:
    policy, project = parse_policy(srv, call.body)
    srv.require_access(call.caller, str(project.project_id), "tag-retention", "update")
    rid = call.params["id"]
    if project.metadata.get("retention_id") != rid:
        raise HarborError(404, f"the retention policy id {rid} does not match")
    with srv.lock:
        srv.retentions[int(rid)] = policy
    return web.Response(status=200)


def delete_retention(srv: HarborServer, call: Call) -> web.Response:
    rid, policy = require_policy(srv, call, "delete")
    with srv.lock:
        del srv.retentions[rid]
        project = srv.find_project(str(policy["scope"]["ref"]))
        if project is not None:
            project.metadata.pop("retention_id", None)
    return web.Response(status=200)


ROUTES = [
    Route("retentions/metadatas", {"GET": lambda srv, call: web.json_response(METADATA)}),
    Route("retentions", {"POST": create_retention}),
    Route("retentions/{id}", {"GET": get_retention, "PUT": update_retention, "DELETE": delete_retention}),
]
