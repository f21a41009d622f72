"""Harbor API v2.0: recognise a Harbor, check credentials, list projects, repositories and
artifacts (with every tag and accessory), read quotas, create projects.

Pitfalls handled here (see the field notes): page_size is at most 100 and every list is followed
to its last page; repository names with ``/`` are URL-encoded twice in paths; wrong Basic
credentials are not refused but silently make the caller anonymous, so credentials are checked
with ``/users/current`` before anything else.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ferry.errors import AuthError, NotFoundError, ProtocolError
from ferry.http import RegistryHTTP

API = "/api/v2.0"
PAGE_SIZE = 100  # Harbor's maximum; above it answers 422


@dataclass(frozen=True, slots=True)
class Project:
    name: str
    project_id: int
    public: bool
    metadata: dict[str, str] = field(default_factory=dict)
    storage_limit: int | None = None  # bytes; -1 unlimited; None unknown


@dataclass(frozen=True, slots=True)
class Accessory:
    digest: str
    type: str  # signature.cosign, signature.notation, sbom.harbor, …
    subject_digest: str


@dataclass(frozen=True, slots=True)
class Artifact:
    repository: str  # full name, project included
    digest: str
    media_type: str
    size: int
    tags: tuple[str, ...]
    accessories: tuple[Accessory, ...] = ()
    references: tuple[str, ...] = ()  # child digests of an index


@dataclass(frozen=True, slots=True)
class User:
    username: str
    sysadmin: bool


def encode_repo(path_in_project: str) -> str:
    """Harbor wants ``a/b`` as ``a%252Fb`` in URL paths: encoded once here, once more on the wire."""
    return quote(quote(path_in_project, safe=""), safe="")


class HarborAPI:
    def __init__(self, http: RegistryHTTP) -> None:
        self.http = http
        self.host = http.registry
        self.requests_made = 0

    async def _get(self, path: str, *, params: dict[str, str] | None = None, allow: tuple[int, ...] = ()) -> Any:
        resp, raw = await self.http.fetch("GET", API + path, params=params, basic=True, allow=allow,
                                          headers={"Accept": "application/json"}, what=f"Harbor API {path}",
                                          limit=32 * 1024 * 1024)
        self.requests_made += 1
        if resp.status in allow:
            return resp.status
        try:
            return json.loads(raw)
        except ValueError:
            raise ProtocolError(f"{self.host}: Harbor API {path} answered something that is not JSON") from None

    async def _list(self, path: str, params: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        query = {"page": "1", "page_size": str(PAGE_SIZE), **(params or {})}
        async for page in self.http.pages(API + path, params=query, basic=True, what=f"Harbor API {path}",
                                          limit=32 * 1024 * 1024):
            self.requests_made += 1
            if not isinstance(page, list):
                raise ProtocolError(f"{self.host}: Harbor API {path} did not answer a list")
            for item in page:
                if not isinstance(item, dict):
                    raise ProtocolError(f"{self.host}: Harbor API {path} listed a non-object")
                yield item

    # -- identity ---------------------------------------------------------------------------

    async def is_harbor(self) -> bool:
        """Harbor answers ``/api/v2.0/systeminfo`` with its version; a plain registry does not."""
        try:
            info = await self._get("/systeminfo", allow=(404, 401, 403, 405))
        except (ProtocolError, NotFoundError):
            return False
        return isinstance(info, dict) and ("harbor_version" in info or "auth_mode" in info)

    async def systeminfo(self) -> dict[str, Any]:
        info = await self._get("/systeminfo")
        return info if isinstance(info, dict) else {}

    async def current_user(self) -> User | None:
        """The authenticated user, or None when Harbor sees an anonymous caller."""
        try:
            data = await self._get("/users/current", allow=(401, 403, 404))
        except AuthError:
            return None
        if not isinstance(data, dict):
            return None
        return User(str(data.get("username", "")), bool(data.get("sysadmin_flag")))

    async def check_credentials(self, side: str) -> User | None:
        """Refuse wrong credentials, which Harbor would silently downgrade to anonymous."""
        cred = self.http.access.credential
        user = await self.current_user()
        if cred is not None and user is None:
            raise AuthError(
                f"{side} Harbor {self.host} refused the credentials of user {cred.username!r}",
                hint="Harbor treats a wrong password as anonymous and would show only public projects; "
                "fix the password",
            )
        return user

    # -- inventory --------------------------------------------------------------------------

    async def projects(self) -> list[Project]:
        return [self._project(p) async for p in self._list("/projects")]

    async def project(self, name: str) -> Project | None:
        data = await self._get(f"/projects/{quote(name, safe='')}", allow=(404, 403))
        return self._project(data) if isinstance(data, dict) else None

    def _project(self, p: dict[str, Any]) -> Project:
        name = p.get("name")
        if not isinstance(name, str) or not name:
            raise ProtocolError(f"{self.host}: Harbor listed a project without a name")
        meta = p.get("metadata") if isinstance(p.get("metadata"), dict) else {}
        meta = {str(k): str(v) for k, v in meta.items()}
        return Project(name=name, project_id=int(p.get("project_id") or 0),
                       public=meta.get("public", "false").lower() == "true", metadata=meta)

    async def storage_limits(self) -> dict[str, int]:
        """Every project's storage quota in bytes (-1 unlimited) by project name, in one paged listing;
        empty when the caller may not read quotas (Harbor lets only administrators)."""
        limits: dict[str, int] = {}
        try:
            async for q in self._list("/quotas", {"reference": "project"}):
                ref = q.get("ref") if isinstance(q.get("ref"), dict) else {}
                hard = q.get("hard") if isinstance(q.get("hard"), dict) else {}
                storage = hard.get("storage")
                if isinstance(ref.get("name"), str) and isinstance(storage, int) and not isinstance(storage, bool):
                    limits[ref["name"]] = storage
        except (AuthError, NotFoundError):
            return {}
        return limits

    async def repositories(self, project: str) -> list[str]:
        names = []
        async for r in self._list(f"/projects/{quote(project, safe='')}/repositories"):
            name = r.get("name")
            if not isinstance(name, str) or not name.startswith(project + "/"):
                raise ProtocolError(f"{self.host}: repository {name!r} listed outside project {project!r}")
            names.append(name)
        return names

    async def artifacts(self, repository: str) -> list[Artifact]:
        project, _, path = repository.partition("/")
        url = f"/projects/{quote(project, safe='')}/repositories/{encode_repo(path)}/artifacts"
        params = {"with_tag": "true", "with_accessory": "true", "with_label": "false",
                  "with_scan_overview": "false"}
        out = []
        async for a in self._list(url, params):
            digest = a.get("digest")
            if not isinstance(digest, str):
                raise ProtocolError(f"{self.host}: artifact without digest in {repository}")
            tags = tuple(t["name"] for t in (a.get("tags") or []) if isinstance(t, dict) and t.get("name"))
            accessories = tuple(
                Accessory(str(x.get("digest")), str(x.get("type", "")), str(x.get("subject_artifact_digest") or digest))
                for x in (a.get("accessories") or []) if isinstance(x, dict) and x.get("digest")
            )
            refs = tuple(str(r.get("child_digest")) for r in (a.get("references") or [])
                         if isinstance(r, dict) and r.get("child_digest"))
            out.append(Artifact(repository, digest, str(a.get("manifest_media_type") or a.get("media_type") or ""),
                                int(a.get("size") or 0), tags, accessories, refs))
        return out

    # -- writes -----------------------------------------------------------------------------

    async def create_project(self, name: str, *, public: bool, storage_limit: int | None) -> bool:
        """Create a project; False when it already exists (409)."""
        body: dict[str, Any] = {"project_name": name, "metadata": {"public": "true" if public else "false"}}
        if storage_limit is not None:
            body["storage_limit"] = storage_limit
        resp = await self.http.request(
            "POST", API + "/projects", basic=True, ok=(201,), allow=(409,),
            headers={"Content-Type": "application/json"}, body=json.dumps(body).encode(),
            what=f"Harbor project creation ({name})",
        )
        self.requests_made += 1
        resp.release()
        return resp.status == 201
