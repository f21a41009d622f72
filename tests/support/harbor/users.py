"""Users (``/users``, ``/users/search``, ``/users/{id}``), user groups (``/usergroups[/{id}]``) and
the configuration items ferry reads and sets (``/configurations``: ``auth_mode``, ``read_only``,
``project_creation_restriction``, ``self_registration``, ``robot_name_prefix``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.harbor.common import API, HarborError, forbidden, unauthorized
from tests.support.harbor.metadata import json_body, json_object
from tests.support.harbor.model import ROBOT_PREFIX, Caller, HarborGroup
from tests.support.harbor.query import match, page, paging, parse_q
from tests.support.harbor.routes import Call, Route

if TYPE_CHECKING:
    from tests.support.harbor.server import HarborServer

AUTH_MODES = {"db_auth", "ldap_auth", "uaa_auth", "http_auth", "oidc_auth"}
GROUP_TYPES = {1: "ldap", 2: "http", 3: "oidc"}


def require_sysadmin(caller: Caller) -> None:
    if not caller.sysadmin:
        raise forbidden() if caller.authenticated else unauthorized()


def valid_password(pw: str) -> bool:
    """Harbor's password rule: 8-128 characters with a lower, an upper case letter and a digit."""
    return 8 <= len(pw) <= 128 and bool(re.search("[a-z]", pw) and re.search("[A-Z]", pw) and re.search(r"\d", pw))


def list_users(srv: HarborServer, call: Call) -> web.Response:
    require_sysadmin(call.caller)
    paging(call.request)
    conds = parse_q(call.request.query.get("q"))
    with srv.lock:
        users = sorted(srv.users.values(), key=lambda u: u.user_id)
    for key in ("username", "email"):
        if key in conds:
            users = [u for u in users if match(conds[key], u.to_json()[key])]
    chosen, headers = page(call.request, users)
    return web.json_response([u.to_json() for u in chosen], headers=headers)


def create_user(srv: HarborServer, call: Call) -> web.Response:
    if srv.auth_mode != "db_auth":
        raise HarborError(403, f"creating local user is not allowed when auth mode is {srv.auth_mode}")
    require_sysadmin(call.caller)
    body = json_object(call.body, "user")
    name, password = body.get("username"), body.get("password")
    if not isinstance(name, str) or not name or len(name) > 255 or re.search(r"[,~#$%]", name):
        raise HarborError(400, "username is invalid")
    if not isinstance(password, str) or not valid_password(password):
        raise HarborError(400, "password is invalid")
    with srv.lock:
        if name in srv.users:
            raise HarborError(409, f"username {name} is already used")
        user = srv.add_user(name, password)
    return web.Response(status=201, headers={"Location": f"{API}/users/{user.user_id}"})


def search_users(srv: HarborServer, call: Call) -> web.Response:
    if not call.caller.authenticated:
        raise unauthorized()
    paging(call.request)
    name = call.request.query.get("username")
    if not name:
        raise HarborError(422, "username in query is required")
    with srv.lock:
        users = sorted((u for u in srv.users.values() if name in u.username), key=lambda u: u.user_id)
    chosen, headers = page(call.request, users)
    return web.json_response([{"user_id": u.user_id, "username": u.username} for u in chosen], headers=headers)


def get_user(srv: HarborServer, call: Call) -> web.Response:
    uid = call.params["user_id"]
    caller = call.caller
    if not caller.authenticated:
        raise unauthorized()
    if not caller.sysadmin and not (caller.user and str(caller.user.user_id) == uid):
        raise forbidden()
    with srv.lock:
        user = next((u for u in srv.users.values() if str(u.user_id) == uid), None)
    if user is None:
        raise HarborError(404, f"user {uid} not found")
    return web.json_response(user.to_json())


def group_body(raw: bytes) -> tuple[str, int, str]:
    body = json_object(raw, "user group")
    name, gtype, dn = body.get("group_name") or "", body.get("group_type"), body.get("ldap_group_dn") or ""
    if gtype not in GROUP_TYPES:
        raise HarborError(400, f"invalid group type: {gtype}")
    if gtype == 1 and not dn:
        raise HarborError(400, "the ldap group DN must not be empty for an LDAP group")
    if not isinstance(name, str) or not name:
        raise HarborError(400, "the group name must not be empty")
    return name, gtype, dn


def list_groups(srv: HarborServer, call: Call) -> web.Response:
    require_sysadmin(call.caller)
    paging(call.request)
    name = call.request.query.get("group_name")
    dn = call.request.query.get("ldap_group_dn")
    with srv.lock:
        groups = sorted(srv.groups.values(), key=lambda g: g.group_id)
    if name:
        groups = [g for g in groups if name in g.name]
    if dn:
        groups = [g for g in groups if g.ldap_group_dn == dn]
    chosen, headers = page(call.request, groups)
    return web.json_response([g.to_json() for g in chosen], headers=headers)


def create_group(srv: HarborServer, call: Call) -> web.Response:
    require_sysadmin(call.caller)
    name, gtype, dn = group_body(call.body)
    with srv.lock:
        if any(g.name == name and g.group_type == gtype for g in srv.groups.values()):
            raise HarborError(409, f"user group {name} with type {gtype} already exists")
        group = srv.add_group(name, gtype, dn)
    return web.Response(status=201, headers={"Location": f"{API}/usergroups/{group.group_id}"})


def require_group(srv: HarborServer, call: Call) -> HarborGroup:
    require_sysadmin(call.caller)
    gid = call.params["group_id"]
    with srv.lock:
        group = srv.groups.get(int(gid)) if gid.isdigit() else None
    if group is None:
        raise HarborError(404, f"the user group with id {gid} is not found")
    return group


def get_group(srv: HarborServer, call: Call) -> web.Response:
    return web.json_response(require_group(srv, call).to_json())


def update_group(srv: HarborServer, call: Call) -> web.Response:
    group = require_group(srv, call)
    body = json_body(call.body, "usergroup")
    if not isinstance(body, dict) or not body.get("group_name"):
        raise HarborError(400, "the group name must not be empty")
    with srv.lock:
        group.name = str(body["group_name"])
    return web.Response(status=200)


def delete_group(srv: HarborServer, call: Call) -> web.Response:
    group = require_group(srv, call)
    with srv.lock:
        del srv.groups[group.group_id]
        for p in srv.projects.values():
            p.group_members.pop(group.group_id, None)
            p.member_ids.pop(("g", group.group_id), None)
    return web.Response(status=200)


def configurations(srv: HarborServer) -> dict[str, Any]:
    """Swagger ``ConfigurationsResponse`` for the items this fixture has."""
    with srv.lock:
        auth_editable = len(srv.users) <= 1
    return {
        "auth_mode": {"editable": auth_editable, "value": srv.auth_mode},
        "primary_auth_mode": {"editable": True, "value": False},
        "project_creation_restriction": {"editable": True, "value": srv.project_creation_restriction},
        "read_only": {"editable": True, "value": srv.read_only},
        "robot_name_prefix": {"editable": True, "value": ROBOT_PREFIX},
        "robot_token_duration": {"editable": True, "value": 30},
        "self_registration": {"editable": True, "value": False},
    }


def get_configurations(srv: HarborServer, call: Call) -> web.Response:
    require_sysadmin(call.caller)
    return web.json_response(configurations(srv))


def put_configurations(srv: HarborServer, call: Call) -> web.Response:
    require_sysadmin(call.caller)
    body = json_object(call.body, "configurations")
    current = configurations(srv)
    for key, value in body.items():
        if key not in current:
            continue  # items this fixture does not model are accepted and ignored
        if not current[key]["editable"]:
            raise HarborError(403, f"the configuration {key} is not editable")
        if key == "read_only" and not isinstance(value, bool):
            raise HarborError(400, f"{key} must be a boolean")
        if key == "auth_mode" and value not in AUTH_MODES:
            raise HarborError(400, f"invalid {key}: {value}")
        if key == "project_creation_restriction" and value not in ("everyone", "adminonly"):
            raise HarborError(400, f"invalid {key}: {value}")
    with srv.lock:
        srv.read_only = body.get("read_only", srv.read_only)
        srv.auth_mode = body.get("auth_mode", srv.auth_mode)
        srv.project_creation_restriction = body.get("project_creation_restriction", srv.project_creation_restriction)
    return web.Response(status=200)


ROUTES = [
    Route("users", {"GET": list_users, "POST": create_user}),
    Route("users/search", {"GET": search_users}),
    Route("users/{user_id}", {"GET": get_user}),
    Route("usergroups", {"GET": list_groups, "POST": create_group}),
    Route("usergroups/{group_id}", {"GET": get_group, "PUT": update_group, "DELETE": delete_group}),
    Route("configurations", {"GET": get_configurations, "PUT": put_configurations}),
]
