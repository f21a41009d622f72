"""Harbor projects: list, read, create, and every project's storage quota."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ferry.errors import AuthError, NotFoundError, ProtocolError
from ferry.harbor.client import HarborAPI, project_path

#: Project metadata Harbor sets itself: never sent when creating a project.
READ_ONLY_METADATA = frozenset({"retention_id"})


@dataclass(frozen=True, slots=True)
class Project:
    name: str
    project_id: int
    public: bool
    metadata: dict[str, str] = field(default_factory=dict)
    storage_limit: int | None = None  # bytes; -1 unlimited; None unknown


def _project(api: HarborAPI, p: dict[str, Any]) -> Project:
    name = p.get("name")
    if not isinstance(name, str) or not name:
        raise ProtocolError(f"{api.host}: Harbor listed a project without a name")
    meta = p.get("metadata") if isinstance(p.get("metadata"), dict) else {}
    meta = {str(k): str(v) for k, v in meta.items()}
    return Project(name=name, project_id=int(p.get("project_id") or 0),
                   public=meta.get("public", "false").lower() == "true", metadata=meta)


async def list_projects(api: HarborAPI) -> list[Project]:
    return [_project(api, p) async for p in api.list("/projects")]


async def get_project(api: HarborAPI, name: str) -> Project | None:
    data = await api.get(project_path(name), allow=(404, 403))
    return _project(api, data) if isinstance(data, dict) else None


async def storage_limits(api: HarborAPI) -> dict[str, int]:
    """Every project's storage quota in bytes (-1 unlimited) by project name, in one paged listing;
    empty when the caller may not read quotas (Harbor lets only administrators)."""
    limits: dict[str, int] = {}
    try:
        async for q in api.list("/quotas", {"reference": "project"}):
            ref = q.get("ref") if isinstance(q.get("ref"), dict) else {}
            hard = q.get("hard") if isinstance(q.get("hard"), dict) else {}
            storage = hard.get("storage")
            if isinstance(ref.get("name"), str) and isinstance(storage, int) and not isinstance(storage, bool):
                limits[ref["name"]] = storage
    except (AuthError, NotFoundError):
        return {}
    return limits


async def create_project(api: HarborAPI, name: str, *, public: bool, storage_limit: int | None,
                         metadata: dict[str, str] | None = None) -> bool:
    """Create a project (with the settings of ``metadata``, Harbor's ``ProjectMetadata`` strings);
    False when it already exists (409)."""
    settings = {k: v for k, v in (metadata or {}).items() if k not in READ_ONLY_METADATA}
    body: dict[str, Any] = {"project_name": name,
                            "metadata": {**settings, "public": "true" if public else "false"}}
    if storage_limit is not None:
        body["storage_limit"] = storage_limit
    status = await api.send("POST", "/projects", body, ok=(201,), allow=(409,),
                            what=f"Harbor project creation ({name})")
    return status == 201
