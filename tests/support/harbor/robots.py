"""Robot accounts: ``/robots`` and ``/robots/{id}`` (v2 robots, system and project level).

As Harbor's robot.go and robot controller: the name must match ``^[a-z0-9]+(?:[._-][a-z0-9]+)*$``
and is stored as ``<project>+<name>`` for project robots, shown with the ``robot$`` prefix; the
secret is answered only on create and on a refresh that generated it (a given secret must be
8-128 characters with an upper, a lower case letter and a digit); a project robot has exactly one
permission, on its own project. Listing without ``q`` lists system robots; project robots need
``q=Level=project,ProjectID=<id>``. A robot logs in with Basic ``robot$…:<secret>`` (see
:meth:`HarborServer.caller`) and gets exactly its permissions."""

from __future__ import annotations

import re
import secrets
import string
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.harbor.common import HarborError, forbidden, ts, unauthorized
from tests.support.harbor.metadata import json_body, json_object
from tests.support.harbor.model import Caller, HarborRobot
from tests.support.harbor.query import page, paging, parse_q
from tests.support.harbor.rbac import ROBOT_PROJECT_ACCESS, ROBOT_SYSTEM_ACCESS
from tests.support.harbor.routes import Call, Route
from tests.support.harbor.users import valid_password

if TYPE_CHECKING:
    from tests.support.harbor.server import HarborServer

ROBOT_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
SECRET_RULE = ("the secret must be 8-128, inclusively, characters long with at least 1 uppercase letter, "
               "1 lowercase letter and 1 number")


def new_secret() -> str:
    """Harbor's CreateSec: a random 32-character string that passes IsValidSec."""
    alphabet = string.ascii_letters + string.digits
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(32))
        if valid_password(candidate):
            return candidate


def robot_json(r: HarborRobot) -> dict[str, Any]:
    """Swagger ``Robot`` (no secret)."""
    return {
        "creation_time": ts(r.created),
        "creator_ref": r.creator_ref,
        "creator_type": r.creator_type,
        "description": r.description,
        "disable": r.disabled,
        "duration": r.duration,
        "editable": True,
        "expires_at": r.expires_at,
        "id": r.robot_id,
        "level": r.level,
        "name": r.full_name,
        "permissions": [
            {"access": [dict(a) for a in p.get("access") or []] or None, "kind": p["kind"], "namespace": p["namespace"]}
            for p in r.permissions
        ] or None,
        "update_time": ts(r.updated),
    }


def validate(duration: Any, level: Any, permissions: Any) -> list[dict[str, Any]]:
    """Harbor's robotAPI.validate, with its messages."""
    if not isinstance(duration, int) or isinstance(duration, bool) or not (duration == -1 or 0 < duration < 2**31 - 1):
        raise HarborError(400, f"bad request error duration input: {duration}, duration must be either -1(Never) "
                               "or a positive integer")
    if level not in ("system", "project"):
        raise HarborError(400, f"bad request error level input: {level}")
    if not isinstance(permissions, list) or not permissions or not all(isinstance(p, dict) for p in permissions):
        raise HarborError(400, "bad request empty permission")
    for perm in permissions:
        access = perm.get("access")
        if not isinstance(access, list) or not access or not all(isinstance(a, dict) for a in access):
            raise HarborError(400, "bad request empty access")
    if level == "project" and len(permissions) > 1:
        raise HarborError(400, "bad request permission")
    clean = []
    for perm in permissions:
        catalogue = {"system": ROBOT_SYSTEM_ACCESS, "project": ROBOT_PROJECT_ACCESS}.get(perm.get("kind"))
        if catalogue is None:
            raise HarborError(400, f"bad request permission level: {perm.get('kind')}")
        for acc in perm["access"]:
            if acc.get("action") not in catalogue.get(acc.get("resource"), set()):
                raise HarborError(400, f"bad request permission: {acc.get('resource')}:{acc.get('action')}")
        access = [{k: a[k] for k in ("resource", "action", "effect") if a.get(k)} for a in perm["access"]]
        clean.append({"kind": perm["kind"], "namespace": str(perm.get("namespace") or ""), "access": access})
    return clean


def require_robot_access(srv: HarborServer, caller: Caller, level: str, project_ref: str | int, action: str) -> int:
    """System robots need a sysadmin; project robots the project's robot permission. Returns
    the project id (0 for system level)."""
    if level == "system":
        if not caller.sysadmin:
            raise forbidden() if caller.authenticated else unauthorized()
        return 0
    project = srv.require_access(caller, str(project_ref), "robot", action)
    return project.project_id


def check_namespaces(srv: HarborServer, level: str, permissions: list[dict[str, Any]]) -> None:
    """Every project namespace must exist (the controller's toScope); system kind needs ``/``."""
    for perm in permissions:
        ns = perm["namespace"]
        if perm["kind"] == "system":
            if ns != "/":
                raise HarborError(400, "unknown namespace")
        elif ns != "*" and srv.find_project(ns) is None:
            raise HarborError(404, f"project {ns} not found")
        if level == "project" and ns == "*":
            raise HarborError(400, "bad request permission")


def create_robot(srv: HarborServer, call: Call) -> web.Response:
    body = json_object(call.body, "robot")
    name = body.get("name")
    if not isinstance(name, str) or not ROBOT_NAME.match(name):
        raise HarborError(400, "robot name is not in lower case or contains illegal characters")
    level = body.get("level")
    permissions = validate(body.get("duration", 0), level, body.get("permissions"))
    namespace = permissions[0]["namespace"]
    if not call.caller.authenticated:
        raise unauthorized()
    project_id = require_robot_access(srv, call.caller, level, namespace, "create")
    check_namespaces(srv, level, permissions)
    if call.caller.robot is not None and not within(permissions, call.caller.robot.permissions):
        raise HarborError(403, "permission scope is invalid. It must be equal to or more restrictive than the "
                               f"creator robot's permissions: {call.caller.robot.full_name}", "DENIED")
    secret = new_secret()
    duration = body["duration"]
    with srv.lock:
        project = next((p for p in srv.projects.values() if p.project_id == project_id), None)
        stored = f"{project.name}+{name}" if project else name
        if any(r.name == stored and r.project_id == project_id for r in srv.robots.values()):
            raise HarborError(409, f"robot account {project_id}:{stored} already exists")
        now = time.time()
        caller = call.caller
        robot = HarborRobot(
            robot_id=srv.next_id("robot"), name=stored, level=level, project_id=project_id,
            description=str(body.get("description") or ""), duration=duration,
            expires_at=-1 if duration == -1 else int(now) + duration * 86400, disabled=bool(body.get("disable")),
            permissions=permissions, secret=secret, created=now, updated=now,
            creator_type="robot" if caller.robot else "local",
            creator_ref=caller.robot.robot_id if caller.robot else (caller.user.user_id if caller.user else 0),
        )
        srv.robots[robot.robot_id] = robot
    created = {"creation_time": ts(robot.created), "expires_at": robot.expires_at, "id": robot.robot_id,
               "name": robot.full_name, "secret": secret}
    location = f"{call.request.path.rstrip('/')}/{robot.robot_id}"
    return web.json_response(created, status=201, headers={"Location": location})


def within(creating: list[dict[str, Any]], creator: list[dict[str, Any]]) -> bool:
    """isValidPermissionScope: every requested access is among the creator robot's own."""
    mine = {(p["kind"], p["namespace"]): {(a["resource"], a["action"]) for a in p["access"]} for p in creator}
    for perm in creating:
        own = mine.get((perm["kind"], perm["namespace"])) or mine.get((perm["kind"], "*"))
        if own is None or not {(a["resource"], a["action"]) for a in perm["access"]} <= own:
            return False
    return True


def list_robots(srv: HarborServer, call: Call) -> web.Response:
    if not call.caller.authenticated:
        raise unauthorized()
    paging(call.request)
    conds = parse_q(call.request.query.get("q"))
    level = conds.get("Level", ("exact", "system"))[1]
    if level not in ("system", "project"):
        raise HarborError(400, "bad request error level input")
    project_id = 0
    if level == "project":
        if "ProjectID" not in conds:
            raise HarborError(400, "must with project ID when to query project robots")
        raw = str(conds["ProjectID"][1])
        if not raw.isdigit() or int(raw) <= 0:
            raise HarborError(400, "ProjectID must be a positive integer")
        project_id = int(raw)
    require_robot_access(srv, call.caller, level, project_id, "list")
    with srv.lock:
        robots = sorted((r for r in srv.robots.values() if r.project_id == project_id), key=lambda r: r.robot_id)
    if "name" in conds:
        kind, value = conds["name"]
        robots = [r for r in robots if (value in r.name if kind == "fuzzy" else r.name == value)]
    chosen, headers = page(call.request, robots)
    return web.json_response([robot_json(r) for r in chosen], headers=headers)


def require_robot(srv: HarborServer, call: Call, action: str) -> HarborRobot:
    if not call.caller.authenticated:
        raise unauthorized()
    rid = call.params["robot_id"]
    if not rid.isdigit():
        raise HarborError(422, f'robot_id in path must be of type int64: "{rid}"')
    with srv.lock:
        robot = srv.robots.get(int(rid))
    if robot is None:
        raise HarborError(404, f"robot {rid} not found")
    require_robot_access(srv, call.caller, robot.level, robot.project_id, action)
    return robot


def get_robot(srv: HarborServer, call: Call) -> web.Response:
    return web.json_response(robot_json(require_robot(srv, call, "read")))


def update_robot(srv: HarborServer, call: Call) -> web.Response:
    robot = require_robot(srv, call, "update")
    body = json_object(call.body, "robot")
    duration = body.get("duration", robot.duration)
    permissions = validate(duration, body.get("level"), body.get("permissions"))
    if robot.level == "project":
        target = srv.find_project(permissions[0]["namespace"])
        if target is None or target.project_id != robot.project_id:
            raise HarborError(400, "cannot update the project id of robot")
    if body.get("level") != robot.level or body.get("name") != robot.full_name:
        raise HarborError(400, "cannot update the level or name of robot")
    check_namespaces(srv, robot.level, permissions)
    with srv.lock:
        if duration != robot.duration:
            robot.duration = duration
            robot.expires_at = -1 if duration == -1 else int(robot.created) + duration * 86400
        robot.description = str(body.get("description") or "")
        robot.disabled = bool(body.get("disable"))
        robot.permissions = permissions
        robot.updated = time.time()
    return web.Response(status=200)


def refresh_secret(srv: HarborServer, call: Call) -> web.Response:
    robot = require_robot(srv, call, "update")
    body = json_body(call.body, "robot secret")
    given = body.get("secret") if isinstance(body, dict) else None
    if given:
        if not isinstance(given, str) or not valid_password(given):
            raise HarborError(400, SECRET_RULE)
        secret, shown = given, ""
    else:
        secret = shown = new_secret()
    with srv.lock:
        robot.secret = secret
        robot.updated = time.time()
    return web.json_response({"secret": shown} if shown else {})


def delete_robot(srv: HarborServer, call: Call) -> web.Response:
    robot = require_robot(srv, call, "delete")
    with srv.lock:
        srv.robots.pop(robot.robot_id, None)
    return web.Response(status=200)


ROUTES = [
    Route("robots", {"GET": list_robots, "POST": create_robot}),
    Route("robots/{robot_id}", {"GET": get_robot, "PUT": update_robot, "PATCH": refresh_secret,
                                "DELETE": delete_robot}),
]
