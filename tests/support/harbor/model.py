"""Users, projects and callers: the state Harbor keeps in its database, and its permission rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.harbor.common import DELETE_ROLES, PUSH_ROLES, ts
from tests.support.harbor.rbac import role_allows


@dataclass
class HarborUser:
    user_id: int
    username: str
    password: str
    sysadmin: bool
    created: float
    group_ids: set[int] = field(default_factory=set)  # the user groups the directory puts the user in

    def to_json(self) -> dict[str, Any]:
        """Swagger ``UserResp``."""
        return {
            "admin_role_in_auth": False,
            "creation_time": ts(self.created),
            "email": f"{self.username}@example.test",
            "realname": self.username,
            "sysadmin_flag": self.sysadmin,
            "update_time": ts(self.created),
            "user_id": self.user_id,
            "username": self.username,
        }



@dataclass
class HarborProject:
    project_id: int
    name: str
    owner: HarborUser
    metadata: dict[str, str]
    storage_limit: int  # -1: unlimited
    created: float
    quota_id: int
    members: dict[int, int] = field(default_factory=dict)  # user_id → role id
    group_members: dict[int, int] = field(default_factory=dict)  # group id → role id
    member_ids: dict[tuple[str, int], int] = field(default_factory=dict)  # ("u"|"g", entity id) → member id
    cve_allowlist: list[str] = field(default_factory=list)
    cve_allowlist_expires: int | None = None
    updated: float = 0.0

    @property
    def public(self) -> bool:
        return self.metadata.get("public") == "true"


@dataclass
class HarborGroup:
    """A user group (``group_type`` 1 LDAP, 2 HTTP, 3 OIDC)."""

    group_id: int
    name: str
    group_type: int
    ldap_group_dn: str = ""

    def to_json(self) -> dict[str, Any]:
        """Swagger ``UserGroup``."""
        return {"group_name": self.name, "group_type": self.group_type, "id": self.group_id,
                "ldap_group_dn": self.ldap_group_dn}


@dataclass
class HarborRobot:
    """A robot account. ``name`` is as stored (``<project>+<name>`` for project level), the API
    shows it with the ``robot$`` prefix; the secret is kept only to check logins."""

    robot_id: int
    name: str
    level: str  # "system" | "project"
    project_id: int  # 0 for system robots
    description: str
    duration: int  # days, -1 never expires
    expires_at: int  # Unix time, -1 never
    disabled: bool
    permissions: list[dict[str, Any]]  # [{kind, namespace, access: [{resource, action, effect?}]}]
    secret: str
    created: float
    updated: float
    creator_type: str
    creator_ref: int

    @property
    def full_name(self) -> str:
        return ROBOT_PREFIX + self.name

    def allows(self, project: HarborProject | None, resource: str, action: str) -> bool:
        """The robot's own policies: a project permission names the project (or ``*``)."""
        for perm in self.permissions:
            if perm.get("kind") == "project" and project is not None:
                if perm.get("namespace") not in (project.name, "*"):
                    continue
            elif perm.get("kind") != "system" or project is not None:
                continue
            for acc in perm.get("access") or []:
                if acc.get("resource") == resource and acc.get("action") == action \
                        and acc.get("effect", "allow") != "deny":
                    return True
        return False


ROBOT_PREFIX = "robot$"  # Harbor's robot_name_prefix default
ROLE_RANK = [1, 4, 2, 3, 5]  # projectAdmin, maintainer, developer, guest, limitedGuest


@dataclass(frozen=True)
class Caller:
    """Harbor's security context, reduced to what this fixture needs: a local user, a robot
    account, or anonymous."""

    user: HarborUser | None = None
    session: str | None = None  # the sid the request carried, when it maps to a session
    robot: HarborRobot | None = None

    @property
    def authenticated(self) -> bool:
        return self.user is not None or self.robot is not None

    @property
    def sysadmin(self) -> bool:
        return self.user is not None and self.user.sysadmin

    @property
    def username(self) -> str:
        if self.robot is not None:
            return self.robot.full_name
        return self.user.username if self.user else ""

    def role(self, project: HarborProject) -> int | None:
        """The user's own role or, if higher, one of its groups' (Harbor's most privileged role)."""
        if self.user is None:
            return None
        roles = [project.members.get(self.user.user_id), *(project.group_members.get(g) for g in self.user.group_ids)]
        return min((r for r in roles if r is not None), key=ROLE_RANK.index, default=None)

    def allows(self, project: HarborProject, resource: str, action: str) -> bool:
        """Harbor's RBAC for one project resource: sysadmin, the member's role, a robot's
        policies; public projects give everyone the read actions of their resources."""
        if self.sysadmin:
            return True
        if self.robot is not None:
            return self.robot.allows(project, resource, action)
        role = self.role(project)
        return role is not None and role_allows(role, resource, action)

    def can_read(self, project: HarborProject) -> bool:
        if self.robot is not None:
            return project.public or any(
                p.get("kind") == "project" and p.get("namespace") in (project.name, "*") for p in self.robot.permissions
            )
        return self.sysadmin or project.public or self.role(project) is not None

    def can_push(self, project: HarborProject) -> bool:
        if self.robot is not None:
            return self.robot.allows(project, "repository", "push")
        return self.sysadmin or self.role(project) in PUSH_ROLES

    def can_delete(self, project: HarborProject) -> bool:
        if self.robot is not None:
            return self.robot.allows(project, "repository", "delete")
        return self.sysadmin or self.role(project) in DELETE_ROLES

    def can_pull(self, project: HarborProject) -> bool:
        if self.robot is not None:
            return project.public or self.robot.allows(project, "repository", "pull")
        return self.can_read(project)


@dataclass(frozen=True)
class RequestRecord:
    """One request the server answered."""

    method: str
    path: str  # raw path, without the query string
    query: str
    status: int


