"""Project members: ``/projects/{p}/members[/{mid}]``, users and groups with their roles.

As Harbor's member controller: a user given by name that is not in the database is searched in
the authenticator and onboarded; with ``db_auth`` the search finds nothing and the answer is
``404 user X is not found``; with ``ldap_auth``/``oidc_auth`` this fixture onboards it (the
directory is assumed to know every name). A duplicate member is ``409``, an invalid role ``400``."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.harbor.common import API, ROLES, HarborError
from tests.support.harbor.metadata import json_body
from tests.support.harbor.model import HarborProject, HarborUser
from tests.support.harbor.query import page, paging
from tests.support.harbor.routes import Call, Route

if TYPE_CHECKING:
    from tests.support.harbor.server import HarborServer

ROLE_NAMES = {v: k for k, v in ROLES.items()}
#: Harbor's role names as the member API shows them (the role table's ``name``).
ROLE_DISPLAY = {1: "projectAdmin", 2: "developer", 3: "guest", 4: "maintainer", 5: "limitedGuest"}


def member_rows(srv: HarborServer, project: HarborProject) -> list[dict[str, Any]]:
    """Swagger ``ProjectMemberEntity`` for every member, by member id."""
    with srv.lock:
        users = {u.user_id: u for u in srv.users.values()}
        rows = []
        for (kind, entity), mid in project.member_ids.items():
            if kind == "u" and entity in project.members and entity in users:
                name, role, etype = users[entity].username, project.members[entity], "u"
            elif kind == "g" and entity in project.group_members and entity in srv.groups:
                name, role, etype = srv.groups[entity].name, project.group_members[entity], "g"
            else:
                continue
            rows.append({
                "entity_id": entity, "entity_name": name, "entity_type": etype, "id": mid,
                "project_id": project.project_id, "role_id": role, "role_name": ROLE_DISPLAY[role],
            })
    return sorted(rows, key=lambda r: r["id"])


def list_members(srv: HarborServer, call: Call) -> web.Response:
    project = srv.require_access(call.caller, call.params["project"], "member", "list", is_name=call.is_name)
    paging(call.request)
    rows = member_rows(srv, project)
    if entity := call.request.query.get("entityname"):
        rows = [r for r in rows if entity in r["entity_name"]]
    if not rows:
        return web.json_response([], headers={"X-Total-Count": "0"})
    chosen, headers = page(call.request, rows)
    return web.json_response(chosen, headers=headers)


def find_member(srv: HarborServer, project: HarborProject, mid: str) -> dict[str, Any]:
    if not mid.isdigit():
        raise HarborError(422, f'mid in path must be of type int64: "{mid}"')
    row = next((r for r in member_rows(srv, project) if r["id"] == int(mid)), None)
    if row is None:
        raise HarborError(404, f"the project member of project_id:{project.project_id}, id:{mid} is not found")
    return row


def get_member(srv: HarborServer, call: Call) -> web.Response:
    project = srv.require_access(call.caller, call.params["project"], "member", "read", is_name=call.is_name)
    return web.json_response(find_member(srv, project, call.params["mid"]))


def onboard_user(srv: HarborServer, name: str) -> HarborUser:
    """The user ``name``: from the database, or onboarded from LDAP/OIDC (not with db_auth)."""
    with srv.lock:
        if name in srv.users:
            return srv.users[name]
    if srv.auth_mode == "db_auth":
        raise HarborError(404, f"user {name} is not found")
    return srv.add_user(name, secrets.token_urlsafe(16))


def create_member(srv: HarborServer, call: Call) -> web.Response:
    project = srv.require_access(call.caller, call.params["project"], "member", "create", is_name=call.is_name)
    body = json_body(call.body, "project member")
    if not isinstance(body, dict):
        raise HarborError(400, "the project member should provide")
    user = body.get("member_user") or {}
    group = body.get("member_group") or {}
    role = body.get("role_id")
    if not isinstance(user, dict) or not isinstance(group, dict) or (role is not None and not isinstance(role, int)):
        raise HarborError(422, "member_user, member_group must be objects and role_id an integer")
    if not (user.get("user_id") or user.get("username") or group.get("id") or group.get("group_name")
            or group.get("ldap_group_dn")):
        raise HarborError(400, "at least one of member_user or member_group must be provided")
    if user.get("user_id"):
        with srv.lock:
            found = next((u for u in srv.users.values() if u.user_id == user["user_id"]), None)
        if found is None:
            raise HarborError(400, f"User {user['user_id']} not found")
        key = ("u", found.user_id)
    elif user.get("username"):
        key = ("u", onboard_user(srv, str(user["username"])).user_id)
    elif group.get("id"):
        if group["id"] not in srv.groups:
            raise HarborError(400, f"Group {group['id']} not found")
        key = ("g", int(group["id"]))
    else:
        name = str(group.get("group_name") or group.get("ldap_group_dn"))
        gtype = group.get("group_type") or (1 if group.get("ldap_group_dn") else 0)
        with srv.lock:
            found_group = next((g for g in srv.groups.values() if name in (g.name, g.ldap_group_dn)
                                and (not gtype or g.group_type == gtype)), None)
        if found_group is None:
            if srv.auth_mode == "db_auth":
                raise HarborError(404, f"group {name} is not found")
            found_group = srv.add_group(name, gtype or (3 if srv.auth_mode == "oidc_auth" else 1),
                                        str(group.get("ldap_group_dn") or ""))
        key = ("g", found_group.group_id)
    with srv.lock:
        roles = project.members if key[0] == "u" else project.group_members
        if key[1] in roles:
            raise HarborError(409, "The project member specified already exist")
        if role not in ROLE_DISPLAY:
            raise HarborError(400, "Failed to update project member, role is not in 1,2,3")
        roles[key[1]] = role
        mid = project.member_ids.setdefault(key, srv.next_id("member"))
        project.updated = time.time()
    location = f"{API}/projects/{call.params['project']}/members/{mid}"
    return web.Response(status=201, headers={"Location": location})


def update_member(srv: HarborServer, call: Call) -> web.Response:
    project = srv.require_access(call.caller, call.params["project"], "member", "update", is_name=call.is_name)
    body = json_body(call.body, "role")
    if not isinstance(body, dict) or "role_id" not in body:
        raise HarborError(400, "role can not be empty")
    row = find_member(srv, project, call.params["mid"])
    if body["role_id"] not in ROLE_DISPLAY:
        raise HarborError(400, "Failed to update project member, role is not in 1,2,3")
    with srv.lock:
        roles = project.members if row["entity_type"] == "u" else project.group_members
        roles[row["entity_id"]] = body["role_id"]
    return web.Response(status=200)


def delete_member(srv: HarborServer, call: Call) -> web.Response:
    project = srv.require_access(call.caller, call.params["project"], "member", "delete", is_name=call.is_name)
    row = find_member(srv, project, call.params["mid"])
    with srv.lock:
        roles = project.members if row["entity_type"] == "u" else project.group_members
        roles.pop(row["entity_id"], None)
        project.member_ids.pop((row["entity_type"], row["entity_id"]), None)
    return web.Response(status=200)


ROUTES = [
    Route("projects/{project}/members", {"GET": list_members, "POST": create_member}),
    Route("projects/{project}/members/{mid}", {"GET": get_member, "PUT": update_member, "DELETE": delete_member}),
]
