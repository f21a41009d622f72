"""Immutable tag rules: ``/projects/{p}/immutabletagrules[/{id}]``, and their enforcement.

A push of a manifest to an existing tag that an enabled rule matches is refused with ``412
PRECONDITION`` "Failed to process request due to '<repo>:<tag>' configured as immutable." as
Harbor's immutable middleware does (src/server/middleware/immutable/pushmf.go), and deleting a
manifest that carries such a tag with "the tag X configured as immutable, cannot be deleted" (the
tag controller); tags answer
``"immutable": true`` in the artifact API. Patterns are doublestar globs (``**``, ``*``, ``?``,
``{a,b}``) with the decorations ``repoMatches``/``repoExcludes`` and ``matches``/``excludes``."""

from __future__ import annotations

import functools
import json
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.harbor.common import HarborError
from tests.support.harbor.metadata import json_object
from tests.support.harbor.query import page, paging
from tests.support.harbor.routes import Call, Route

if TYPE_CHECKING:
    from tests.support.harbor.model import HarborProject
    from tests.support.harbor.server import HarborServer


@functools.lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "{":
            end = pattern.find("}", i)
            if end < 0:
                out.append(re.escape(c))
            else:
                out.append("(?:" + "|".join(re.escape(a) for a in pattern[i + 1 : end].split(",")) + ")")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def selected(selectors: list[dict[str, Any]], value: str) -> bool:
    """All selectors agree (an empty list selects everything)."""
    for sel in selectors:
        hit = bool(_glob(str(sel.get("pattern") or "")).match(value))
        if sel.get("decoration") in ("excludes", "repoExcludes"):
            hit = not hit
        if not hit:
            return False
    return True


def is_immutable(srv: HarborServer, project: HarborProject, repo_path: str, tag: str) -> bool:
    """Whether an enabled rule of ``project`` protects ``<project>/<repo_path>:<tag>``."""
    with srv.lock:
        rules = list(srv.immutable_rules.get(project.project_id, []))
    return any(
        not r.get("disabled")
        and selected((r.get("scope_selectors") or {}).get("repository") or [], repo_path)
        and selected(r.get("tag_selectors") or [], tag)
        for r in rules
    )


def refuse_push(srv: HarborServer, name: str, tag: str) -> HarborError | None:
    """The immutable middleware: pushing to an existing protected tag is refused."""
    project_name, _, repo_path = name.partition("/")
    project = srv.find_project(project_name, is_name=True)
    if project is None or tag.startswith("sha256:"):
        return None
    view = srv.storage.repo_view(name)
    if view is None or tag not in view.tags or not is_immutable(srv, project, repo_path, tag):
        return None
    return HarborError(412, f"Failed to process request due to '{repo_path}:{tag}' configured as immutable.")


def refuse_delete(srv: HarborServer, name: str, reference: str) -> HarborError | None:
    """Deleting a manifest deletes its tags, and Harbor's tag controller refuses protected ones."""
    project_name, _, repo_path = name.partition("/")
    project = srv.find_project(project_name, is_name=True)
    view = srv.storage.repo_view(name) if project is not None else None
    if view is None or project is None:
        return None
    digest = reference if reference.startswith("sha256:") else (view.tags.get(reference) or ("",))[0]
    for tag, _ in view.tags_of(digest):
        if is_immutable(srv, project, repo_path, tag):
            return HarborError(412, f"the tag {tag} configured as immutable, cannot be deleted")
    return None


def parse_rule(raw: bytes) -> dict[str, Any]:
    body = json_object(raw, "immutable rule")
    tags = body.get("tag_selectors") or []
    scopes = body.get("scope_selectors") or {}
    if not isinstance(tags, list) or not isinstance(scopes, dict):
        raise HarborError(422, "tag_selectors must be an array and scope_selectors an object")
    for sel in [*tags, *(scopes.get("repository") or [])]:
        if not isinstance(sel, dict) or sel.get("kind") != "doublestar" or not sel.get("pattern"):
            raise HarborError(400, f"invalid selector: {json.dumps(sel)}")
    return {
        "action": body.get("action") or "immutable",
        "disabled": bool(body.get("disabled")),
        "params": body.get("params") or {},
        "priority": int(body.get("priority") or 0),
        "scope_selectors": {"repository": scopes.get("repository") or []},
        "tag_selectors": tags,
        "template": body.get("template") or "immutable_template",
        "id": body.get("id") or 0,
    }


def same_rule(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("tag_selectors", "scope_selectors")
    return all(a[k] == b[k] for k in keys)


def list_rules(srv: HarborServer, call: Call) -> web.Response:
    project = srv.require_access(call.caller, call.params["project"], "immutable-tag", "list", is_name=call.is_name)
    paging(call.request)
    with srv.lock:
        rules = [dict(r) for r in srv.immutable_rules.get(project.project_id, [])]
    chosen, headers = page(call.request, rules)
    return web.json_response(chosen, headers=headers)


def create_rule(srv: HarborServer, call: Call) -> web.Response:
    project = srv.require_access(call.caller, call.params["project"], "immutable-tag", "create",
                                 is_name=call.is_name)
    rule = parse_rule(call.body)
    with srv.lock:
        rules = srv.immutable_rules.setdefault(project.project_id, [])
        if any(same_rule(r, rule) for r in rules):
            raise HarborError(409, "immutable rule already exists")
        rule["id"] = srv.next_id("immutable")
        rules.append(rule)
    return web.Response(status=201, headers={"Location": f"{call.request.path.rstrip('/')}/{rule['id']}"})


def find_rule(srv: HarborServer, project: HarborProject, rule_id: str) -> dict[str, Any]:
    rule = next((r for r in srv.immutable_rules.get(project.project_id, []) if str(r["id"]) == rule_id), None)
    if rule is None:
        raise HarborError(404, f"immutable rule {rule_id} not found")
    return rule


def update_rule(srv: HarborServer, call: Call) -> web.Response:
    project = srv.require_access(call.caller, call.params["project"], "immutable-tag", "update",
                                 is_name=call.is_name)
    rule_id = call.params["rule_id"]
    new = parse_rule(call.body)
    if new["id"] and str(new["id"]) != rule_id:
        raise HarborError(400, "the immutable_rule_id doesn't match the id in the payload body of ImmutableRule")
    with srv.lock:
        rule = find_rule(srv, project, rule_id)
        rule.update({**new, "id": rule["id"]})
    return web.Response(status=200)


def delete_rule(srv: HarborServer, call: Call) -> web.Response:
    project = srv.require_access(call.caller, call.params["project"], "immutable-tag", "delete",
                                 is_name=call.is_name)
    with srv.lock:
        rule = find_rule(srv, project, call.params["rule_id"])
        srv.immutable_rules[project.project_id].remove(rule)
    return web.Response(status=200)


ROUTES = [
    Route("projects/{project}/immutabletagrules", {"GET": list_rules, "POST": create_rule}),
    Route("projects/{project}/immutabletagrules/{rule_id}", {"PUT": update_rule, "DELETE": delete_rule}),
]
