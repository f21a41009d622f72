"""What a destination Harbor would refuse, asked before a copy: the caller's push right on a project,
a project's quota headroom, and the tags an immutable rule protects (Harbor evaluates its rules
itself when asked ``with_immutable_status``)."""

from __future__ import annotations

from dataclasses import dataclass

from ferry.errors import AuthError, NotFoundError
from ferry.harbor.client import HarborAPI, project_path, repository_path
from ferry.harbor.members import ROLE_IDS

#: Roles that may push (Harbor's rbac_role.go): project admin, maintainer, developer.
PUSH_ROLES = frozenset(ROLE_IDS[r] for r in ("projectAdmin", "maintainer", "developer"))


@dataclass(frozen=True, slots=True)
class Quota:
    hard: int  # bytes, -1 unlimited
    used: int

    @property
    def headroom(self) -> int | None:
        """Bytes left, None when unlimited."""
        return None if self.hard < 0 else max(self.hard - self.used, 0)


async def project_roles(api: HarborAPI, project: str) -> set[int] | None:
    """The caller's roles in a project (its groups' included); None when the project is invisible."""
    data = await api.get(project_path(project), allow=(401, 403, 404))
    if not isinstance(data, dict):
        return None
    ids = data.get("current_user_role_ids") or [data.get("current_user_role_id")]
    return {int(r) for r in ids if isinstance(r, int) and not isinstance(r, bool)}


async def project_quota(api: HarborAPI, project: str) -> Quota | None:
    """A project's storage quota from its summary (members may read it); None when not readable."""
    data = await api.get(f"{project_path(project)}/summary", allow=(401, 403, 404))
    quota = data.get("quota") if isinstance(data, dict) else None
    if not isinstance(quota, dict):
        return None
    hard, used = (quota.get(k) if isinstance(quota.get(k), dict) else {} for k in ("hard", "used"))
    limit, spent = hard.get("storage"), used.get("storage", 0)
    if not isinstance(limit, int) or not isinstance(spent, int):
        return None
    return Quota(limit, spent)


async def immutable_tags(api: HarborAPI, repository: str) -> dict[str, str]:
    """Tag → digest of every tag of ``repository`` that an immutable rule protects."""
    out: dict[str, str] = {}
    try:
        async for a in api.list(f"{repository_path(repository)}/artifacts",
                                {"with_tag": "true", "with_immutable_status": "true"}):
            for t in a.get("tags") or []:
                if isinstance(t, dict) and t.get("immutable") is True and t.get("name"):
                    out[str(t["name"])] = str(a.get("digest") or "")
    except (NotFoundError, AuthError):  # no such repository yet, or not readable: nothing to refuse
        return {}
    return out
