"""The Harbor API v2.0 client: JSON requests, every page of a listing, recognising a Harbor and
checking credentials.

Pitfalls handled here (see the field notes): page_size is at most 100 and every list is followed
to its last page; repository names with ``/`` are URL-encoded twice in paths; wrong Basic
credentials are not refused but silently make the caller anonymous, so credentials are checked
with ``/users/current`` before anything else.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ferry.errors import AuthError, NotFoundError, ProtocolError
from ferry.http import RegistryHTTP

API = "/api/v2.0"
PAGE_SIZE = 100  # Harbor's maximum; above it answers 422
_ANSWER_LIMIT = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class User:
    username: str
    sysadmin: bool


def encode_repo(path_in_project: str) -> str:
    """Harbor wants ``a/b`` as ``a%252Fb`` in URL paths: encoded once here, once more on the wire."""
    return quote(quote(path_in_project, safe=""), safe="")


def project_path(project: str) -> str:
    """``/projects/<name>`` with the name escaped for a path."""
    return f"/projects/{quote(project, safe='')}"


def repository_path(repository: str) -> str:
    """``/projects/<p>/repositories/<r>`` for a full repository name (``p/a/b``)."""
    project, _, path = repository.partition("/")
    return f"{project_path(project)}/repositories/{encode_repo(path)}"


class HarborAPI:
    def __init__(self, http: RegistryHTTP) -> None:
        self.http = http
        self.host = http.registry

    async def get(self, path: str, *, params: dict[str, str] | None = None, allow: tuple[int, ...] = ()) -> Any:
        """The JSON answer of ``GET /api/v2.0<path>``; the status instead when it is one of ``allow``."""
        return await self.get_json(API + path, params=params, allow=allow, what=f"Harbor API {path}")

    async def get_json(self, full_path: str, *, params: dict[str, str] | None = None, allow: tuple[int, ...] = (),
                       what: str) -> Any:
        """The JSON answer of ``GET full_path`` (any path of the Harbor); the status when one of ``allow``."""
        resp, raw = await self.http.fetch("GET", full_path, params=params, basic=True, allow=allow,
                                          headers={"Accept": "application/json"}, what=what, limit=_ANSWER_LIMIT)
        if resp.status in allow:
            return resp.status
        try:
            return json.loads(raw)
        except ValueError:
            raise ProtocolError(f"{self.host}: {what} answered something that is not JSON") from None

    async def list(self, path: str, params: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        """Every object of a paged listing, page after page."""
        async for page in self.pages(path, params):
            for item in page:
                yield item

    async def pages(self, path: str, params: dict[str, str] | None = None) -> AsyncIterator[list[dict[str, Any]]]:
        """The pages of a paged listing, each a list of objects (a million rows cost no step of an
        async generator each)."""
        query = {"page": "1", "page_size": str(PAGE_SIZE), **(params or {})}
        async for page in self.http.pages(API + path, params=query, basic=True, what=f"Harbor API {path}",
                                          limit=_ANSWER_LIMIT):
            if not isinstance(page, list):
                raise ProtocolError(f"{self.host}: Harbor API {path} did not answer a list")
            if not all(isinstance(item, dict) for item in page):
                raise ProtocolError(f"{self.host}: Harbor API {path} listed a non-object")
            yield page

    async def send(self, method: str, path: str, body: Any, *, ok: tuple[int, ...], allow: tuple[int, ...] = (),
                   what: str) -> int:
        """A JSON write (POST, PUT, DELETE); the answer's status, one of ``ok`` or ``allow``."""
        resp = await self.http.request(
            method, API + path, basic=True, ok=ok, allow=allow,
            headers={"Content-Type": "application/json"},
            body=None if body is None else json.dumps(body).encode(), what=what,
        )
        resp.release()
        return resp.status

    async def send_for_answer(self, method: str, path: str, body: Any, *, ok: tuple[int, ...], what: str) -> Any:
        """A JSON write whose answer is needed (a new robot's secret): the parsed answer, None if empty."""
        _, raw = await self.http.fetch(method, API + path, basic=True, ok=ok, what=what, limit=_ANSWER_LIMIT,
                                       headers={"Content-Type": "application/json", "Accept": "application/json"},
                                       body=json.dumps(body).encode())
        try:
            return json.loads(raw) if raw.strip() else None
        except ValueError:
            raise ProtocolError(f"{self.host}: {what} answered something that is not JSON") from None

    # -- identity ---------------------------------------------------------------------------

    async def is_harbor(self) -> bool:
        """Harbor answers ``/api/v2.0/systeminfo`` with its version; a plain registry does not."""
        try:
            info = await self.get("/systeminfo", allow=(404, 401, 403, 405))
        except (ProtocolError, NotFoundError):
            return False
        return isinstance(info, dict) and ("harbor_version" in info or "auth_mode" in info)

    async def systeminfo(self) -> dict[str, Any]:
        info = await self.get("/systeminfo")
        return info if isinstance(info, dict) else {}

    async def current_user(self) -> User | None:
        """The authenticated user, or None when Harbor sees an anonymous caller."""
        try:
            data = await self.get("/users/current", allow=(401, 403, 404))
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
