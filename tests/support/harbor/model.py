"""Users, projects and callers: the state Harbor keeps in its database, and its permission rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.harbor.common import DELETE_ROLES, PUSH_ROLES, ts


@dataclass
class HarborUser:
    user_id: int
    username: str
    password: str
    sysadmin: bool
    created: float

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

    @property
    def public(self) -> bool:
        return self.metadata.get("public") == "true"


@dataclass(frozen=True)
class Caller:
    """Harbor's security context, reduced to what this fixture needs."""

    user: HarborUser | None = None
    session: str | None = None  # the sid the request carried, when it maps to a session

    @property
    def authenticated(self) -> bool:
        return self.user is not None

    @property
    def sysadmin(self) -> bool:
        return self.user is not None and self.user.sysadmin

    @property
    def username(self) -> str:
        return self.user.username if self.user else ""

    def role(self, project: HarborProject) -> int | None:
        return project.members.get(self.user.user_id) if self.user else None

    def can_read(self, project: HarborProject) -> bool:
        return self.sysadmin or project.public or self.role(project) is not None

    def can_push(self, project: HarborProject) -> bool:
        return self.sysadmin or self.role(project) in PUSH_ROLES

    def can_delete(self, project: HarborProject) -> bool:
        return self.sysadmin or self.role(project) in DELETE_ROLES


@dataclass(frozen=True)
class RequestRecord:
    """One request the server answered."""

    method: str
    path: str  # raw path, without the query string
    query: str
    status: int


