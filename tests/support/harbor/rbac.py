"""Harbor's RBAC, reduced to the resources this fixture serves: what each project role may do
(src/common/rbac/project/rbac_role.go) and which ``resource:action`` pairs a robot permission
may name (src/common/rbac/const.go, the permission provider's project and system scopes)."""

from __future__ import annotations

_READ = {"read", "list"}
_CRUD = {"create", "read", "update", "delete", "list"}

_ADMIN: dict[str, set[str]] = {
    "project": {"read", "update", "delete"},
    "metadata": _CRUD,
    "member": _CRUD,
    "robot": _CRUD,
    "immutable-tag": _CRUD,
    "tag-retention": _CRUD,
    "notification-policy": _CRUD,
    "label": _CRUD,
    "repository": {*_CRUD, "pull", "push"},
    "artifact-label": {"create", "delete"},
}
_READER = {"project": {"read"}, "metadata": _READ, "member": _READ, "robot": _READ}
_GUEST = {**_READER, "immutable-tag": {"list"}, "tag-retention": _READ, "label": _READ,
          "repository": {"read", "list", "pull"}}

#: role id → resource → actions (1 projectAdmin, 4 maintainer, 2 developer, 3 guest, 5 limitedGuest)
ROLE_POLICIES: dict[int, dict[str, set[str]]] = {
    1: _ADMIN,
    4: {**_ADMIN, **_READER, "notification-policy": _READ},
    2: {**_GUEST, "repository": {"read", "list", "pull", "push"}, "artifact-label": {"create", "delete"}},
    3: _GUEST,
    5: {"project": {"read"}, "metadata": _READ, "repository": {"read", "list", "pull"}},
}

#: ``resource → actions`` a project-kind robot permission may name.
ROBOT_PROJECT_ACCESS: dict[str, set[str]] = {
    "repository": {"list", "pull", "push", "delete", "read", "update"},
    "artifact": {"read", "list", "delete", "create"},
    "tag": {"create", "delete", "list"},
    "artifact-label": {"create", "delete"},
    "accessory": {"list"},
    "scan": {"create", "stop", "read"},
    "sbom": {"create", "stop", "read"},
    "label": _CRUD,
    "metadata": _CRUD,
    "immutable-tag": _CRUD,
    "tag-retention": _CRUD,
    "notification-policy": _CRUD,
    "member": _CRUD,
    "log": {"list"},
    "project": {"read", "update", "delete"},
    "quota": {"read"},
    "robot": _CRUD,
    "preheat-policy": _CRUD,
    "artifact-addition": {"read"},
}

#: ``resource → actions`` a system-kind robot permission may name.
ROBOT_SYSTEM_ACCESS: dict[str, set[str]] = {
    "audit-log": {"list"},
    "preheat-instance": _CRUD,
    "project": {"list", "create"},
    "registry": _CRUD,
    "replication": {"read", "list", "create", "update"},
    "replication-policy": _CRUD,
    "garbage-collection": {"read", "list", "create", "update", "stop"},
    "scan-all": {"read", "create", "update", "stop"},
    "system-volumes": {"read"},
    "jobservice-monitor": {"list", "stop"},
    "scanner": _CRUD,
    "label": _CRUD,
    "export-cve": {"read", "create"},
    "security-hub": {"read", "list"},
    "catalog": {"read"},
    "quota": {"read", "list", "update"},
    "robot": _CRUD,
    "user": _CRUD,
    "user-group": _CRUD,
    "ldap-user": {"create", "list"},
    "configuration": {"read", "update"},
    "purge-audit": {"read", "list", "create", "update", "stop"},
}


def role_allows(role: int, resource: str, action: str) -> bool:
    return action in ROLE_POLICIES.get(role, {}).get(resource, set())
