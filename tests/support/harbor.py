"""A Harbor API v2.0 test server in front of a real ``docker-registry`` (CNCF distribution 2.8).

Harbor itself cannot run here, so this fixture plays its part wherever a migration tool depends on
it. One aiohttp server on ``127.0.0.1:<port>`` serves

- Harbor's REST API under ``/api/v2.0/…`` (projects, repositories, artifacts with tags, references
  and accessories, users/current, systeminfo, ping, quotas), with Harbor's pagination (``page``,
  ``page_size`` ≤ 100 else 422, ``X-Total-Count``, ``Link: <…>; rel="prev" , <…>; rel="next"``),
  its visibility rules (private projects answer 401/403, never leak), its double-encoded
  repository names and its JSON shapes (go-swagger: empty arrays are ``null``, zero times are
  ``0001-01-01T00:00:00.000Z``);
- Harbor's token service ``GET /service/token`` (denied actions are dropped silently);
- the registry API ``/v2/…``, reverse-proxied (streaming both ways) to a ``docker-registry``
  configured for token auth with realm ``<this server>/service/token`` and service
  ``harbor-registry``. Basic credentials on ``/v2/`` are accepted too, as Harbor does, and
  ``/v2/<name>/referrers/<digest>`` is answered from the accessories (Harbor ≥ 2.8).

The artifact inventory is not bookkept: every API call reads the registry's storage directory
(``docker/registry/v2/repositories/<name>/_manifests/{tags,revisions}``, manifests from the blob
store), so whatever is pushed through ``/v2/`` shows up. Users, projects, memberships and quotas
live in memory and are seeded through the Python API (:meth:`HarborServer.add_user`,
:meth:`HarborServer.create_project`, :meth:`HarborServer.add_member`).

Behaviour read in Harbor's source (``src/server/v2.0/handler``, ``src/core/service/token``,
``src/server/middleware/cosign``, ``src/pkg/artifact/dao``) is noted where it is not obvious.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import jwt
from aiohttp import web
from cryptography import x509
from multidict import CIMultiDict

from tests.support.pki import TokenSigner
from tests.support.registry import Registry, TokenAuth, start_registry

__all__ = [
    "ADMIN_PASSWORD",
    "ROLES",
    "HarborError",
    "HarborProject",
    "HarborPushError",
    "HarborServer",
    "HarborUser",
    "RequestRecord",
    "V2Client",
    "iter_pages",
]

ADMIN_PASSWORD = "Harbor12345"
SERVICE = "harbor-registry"
ISSUER = "harbor-token-issuer"
API = "/api/v2.0"
HARBOR_VERSION = "v2.13.1-ferry-test"

#: Harbor's project roles by the names used in its API, with their role IDs.
ROLES: dict[str, int] = {"projectAdmin": 1, "developer": 2, "guest": 3, "maintainer": 4, "limitedGuest": 5}
_PUSH_ROLES = {1, 2, 4}  # projectAdmin, developer, maintainer
_DELETE_ROLES = {1, 4}  # projectAdmin, maintainer

ZERO_TIME = "0001-01-01T00:00:00.000Z"  # Go's zero time.Time as strfmt.DateTime renders it
IMAGE_ICON = "sha256:0048162a053eef4d4ce3fe7518615bef084403614f8bca43b40ae2e762e11e06"

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
COSIGN_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"
_INDEX_TYPES = {OCI_INDEX, DOCKER_LIST}
_TYPE_BY_CONFIG = {
    OCI_CONFIG: "IMAGE",
    DOCKER_CONFIG: "IMAGE",
    "application/vnd.cncf.helm.config.v1+json": "CHART",
    "application/vnd.cnab.manifest.v1": "CNAB",
    "application/vnd.wasm.config.v1+json": "WASM",
}
#: Accessory types Harbor's subject middleware derives from a referrer's artifactType.
_ACCESSORY_TYPE_BY_ARTIFACT_TYPE = {
    "application/vnd.dev.cosign.artifact.sig.v1+json": "signature.cosign",
    "application/vnd.cncf.notary.signature": "signature.notation",
    "application/vnd.goharbor.harbor.sbom.v1": "sbom.harbor",
}
_COSIGN_TAG = re.compile(r"^sha256-([0-9a-f]{64})\.sig$")
_PROJECT_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_V2_NAME = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags|referrers)(?:/(?P<rest>.*))?$")
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
}
_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _ts(t: float | None) -> str:
    """A Unix time as Harbor renders ``strfmt.DateTime`` (milliseconds, ``Z``); None → zero time."""
    if not t:
        return ZERO_TIME
    d = dt.datetime.fromtimestamp(t, dt.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


class HarborError(Exception):
    """An API error, rendered as Harbor's ``{"errors":[{"code","message"}]}``."""

    CODES: ClassVar[dict[int, str]] = {
        400: "BAD_REQUEST",
        401: "UNAUTHORIZED",
        403: "FORBIDDEN",
        404: "NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
        409: "CONFLICT",
        412: "PRECONDITION",
        422: "UNPROCESSABLE_ENTITY",
        500: "UNKNOWN",
    }

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or self.CODES.get(status, "UNKNOWN")
        self.message = message

    def response(self) -> web.Response:
        return web.json_response({"errors": [{"code": self.code, "message": self.message}]}, status=self.status)


def _unauthorized() -> HarborError:
    return HarborError(401, "UnAuthorized")


def _forbidden() -> HarborError:
    return HarborError(403, "forbidden")


# --------------------------------------------------------------------------------------------
# users, projects, callers
# --------------------------------------------------------------------------------------------


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
            "creation_time": _ts(self.created),
            "email": f"{self.username}@example.test",
            "realname": self.username,
            "sysadmin_flag": self.sysadmin,
            "update_time": _ts(self.created),
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
class _Caller:
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
        return self.sysadmin or self.role(project) in _PUSH_ROLES

    def can_delete(self, project: HarborProject) -> bool:
        return self.sysadmin or self.role(project) in _DELETE_ROLES


@dataclass(frozen=True)
class RequestRecord:
    """One request the server answered."""

    method: str
    path: str  # raw path, without the query string
    query: str
    status: int


# --------------------------------------------------------------------------------------------
# inventory read from the registry's storage
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Manifest:
    digest: str
    raw_size: int
    doc: dict[str, Any]

    @property
    def media_type(self) -> str:
        mt = self.doc.get("mediaType")
        if isinstance(mt, str) and mt:
            return mt
        if self.doc.get("schemaVersion") == 1:
            return SCHEMA1_SIGNED
        return OCI_INDEX if "manifests" in self.doc else OCI_MANIFEST

    @property
    def is_index(self) -> bool:
        return self.media_type in _INDEX_TYPES

    @property
    def config(self) -> dict[str, Any] | None:
        c = self.doc.get("config")
        return c if isinstance(c, dict) else None

    @property
    def layers(self) -> list[dict[str, Any]]:
        return [x for x in self.doc.get("layers") or [] if isinstance(x, dict)]

    @property
    def children(self) -> list[dict[str, Any]]:
        return [x for x in self.doc.get("manifests") or [] if isinstance(x, dict) and "digest" in x]

    @property
    def subject(self) -> str | None:
        s = self.doc.get("subject")
        return s.get("digest") if isinstance(s, dict) else None

    @property
    def artifact_type(self) -> str:
        at = self.doc.get("artifactType")
        if isinstance(at, str) and at:
            return at
        return self.config.get("mediaType", "") if self.config and not self.is_index else ""


@dataclass
class _Accessory:
    digest: str
    subject: str
    type: str


@dataclass
class _RepoView:
    """One repository as Harbor would see it, derived from the registry storage."""

    name: str
    project: str
    artifacts: dict[str, tuple[_Manifest, float]]  # digest → (manifest, push time)
    tags: dict[str, tuple[str, float]]  # tag → (digest, push time)
    children: set[str]  # digests referenced by an index of this repository
    accessories: dict[str, _Accessory]  # accessory digest → accessory

    @property
    def path(self) -> str:
        """The repository name without its project (what goes into the API path)."""
        return self.name.split("/", 1)[1]

    @property
    def created(self) -> float:
        return min(t for _, t in self.artifacts.values())

    @property
    def updated(self) -> float:
        return max([t for _, t in self.artifacts.values()] + [t for _, t in self.tags.values()])

    def tags_of(self, digest: str) -> list[tuple[str, float]]:
        return sorted(((t, pt) for t, (d, pt) in self.tags.items() if d == digest), key=lambda x: (-x[1], x[0]))

    def listed(self, *, base_all: bool) -> list[str]:
        """Top-level artifacts: Harbor lists tagged ones and those no index references (all with
        ``q=base=*``); accessories are never listed on their own (only as ``accessories``)."""
        tagged = {d for d, _ in self.tags.values()}
        return [
            d
            for d in self.artifacts
            if d not in self.accessories and (base_all or d in tagged or d not in self.children)
        ]


# --------------------------------------------------------------------------------------------
# query parameters
# --------------------------------------------------------------------------------------------


def _parse_q(q: str | None) -> dict[str, tuple[str, Any]]:
    """Harbor's ``q`` syntax: ``k=v`` (exact), ``k=~v`` (fuzzy), ``k=[a~b]`` (range),
    ``k={a b}`` (or-list), ``k=(a b)`` (and-list), separated by commas."""
    out: dict[str, tuple[str, Any]] = {}
    if not q:
        return out
    for part in q.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise HarborError(400, f"invalid query string: {part}")
        if value.startswith("~"):
            out[key] = ("fuzzy", value[1:].strip("'\""))
        elif value.startswith("[") and value.endswith("]"):
            lo, _, hi = value[1:-1].partition("~")
            out[key] = ("range", (lo.strip("'\" "), hi.strip("'\" ")))
        elif value.startswith("{") and value.endswith("}"):
            out[key] = ("or", [v.strip("'\"") for v in value[1:-1].split()])
        elif value.startswith("(") and value.endswith(")"):
            out[key] = ("and", [v.strip("'\"") for v in value[1:-1].split()])
        else:
            out[key] = ("exact", value.strip("'\""))
    return out


def _match(cond: tuple[str, Any], value: Any) -> bool:
    kind, want = cond
    s = str(value).lower() if isinstance(value, bool) else str(value)
    if kind == "exact":
        return s == want
    if kind == "fuzzy":
        return want in s
    if kind == "or":
        return s in want
    if kind == "range":
        lo, hi = want
        return (not lo or s >= lo) and (not hi or s <= hi)
    return s in want  # and-list on a scalar: membership


def _bool_param(request: web.Request, name: str, default: bool) -> bool:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1", "t"):
        return True
    if raw.lower() in ("false", "0", "f"):
        return False
    raise HarborError(422, f'{name} in query must be of type boolean: "{raw}"')


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise HarborError(422, f'{name} in query must be of type int64: "{raw}"') from None


def _paging(request: web.Request) -> tuple[int, int]:
    """``page`` and ``page_size`` as go-swagger validates them before Harbor's handler runs."""
    page = _int_param(request, "page", 1)
    size = _int_param(request, "page_size", 10)
    if size > 100:
        raise HarborError(422, "page_size in query should be less than or equal to 100")
    return max(page, 1), size


def _link_header(request: web.Request, total: int, page: int, size: int) -> str:
    """Harbor's ``Links`` (src/server/v2.0/handler/base.go): the request URL with ``page`` and
    ``page_size`` set, query keys sorted (Go's ``url.Values.Encode``) and then unescaped."""
    if size <= 0:
        return ""
    path = request.raw_path.split("?", 1)[0]

    def url(p: int) -> str:
        params: dict[str, list[str]] = {}
        for k, v in request.query.items():
            params.setdefault(k, []).append(v)
        params["page"] = [str(p)]
        params["page_size"] = [str(size)]
        query = "&".join(f"{k}={v}" for k in sorted(params) for v in params[k])
        return f"{path}?{query}"

    links = []
    if page > 1 and (page - 1) * size < total:
        links.append(f'<{url(page - 1)}>; rel="prev"')
    if size * page < total:
        links.append(f'<{url(page + 1)}>; rel="next"')
    return " , ".join(links)


def _page(request: web.Request, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
    page, size = _paging(request)
    total = len(items)
    chosen = items if size <= 0 else items[(page - 1) * size : page * size]
    headers = {"X-Total-Count": str(total)}
    link = _link_header(request, total, page, size)
    if link:
        headers["Link"] = link
    return chosen, headers


def _sort_key(sort: str | None, default: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """``sort=field1,-field2`` → [(field, descending)]."""
    if not sort:
        return default
    keys = []
    for part in sort.split(","):
        part = part.strip()
        if part:
            keys.append((part.lstrip("-"), part.startswith("-")))
    return keys or default


def _sorted(rows: list[dict[str, Any]], keys: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    for k, desc in reversed(keys):
        rows = sorted(rows, key=lambda r, k=k: (r.get(k) is None, 0 if r.get(k) is None else r.get(k)), reverse=desc)
    return rows


# --------------------------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------------------------


class HarborServer:
    """Harbor's API and registry front end on ``127.0.0.1``, backed by a real ``docker-registry``.

    Usable from sync code (:meth:`start`/:meth:`stop` or ``with``) and async code
    (``async with``); the aiohttp app always runs in a background thread with its own loop.

    ``users`` maps names to ``(password, sysadmin)``; ``admin`` (password ``Harbor12345``,
    sysadmin) is added unless given. ``projects`` maps names to keyword arguments of
    :meth:`create_project` (e.g. ``{"team": {"public": False, "members": {"bob": "developer"}}}``).
    ``library`` creates Harbor's default public ``library`` project. ``project_creation_restriction``
    is ``"adminonly"`` (only sysadmins may ``POST /projects``) or ``"everyone"``. ``sid_cookie``
    makes API responses set Harbor's ``sid`` session cookie; writes that carry it back fail
    ``403 CSRF token invalid`` as on Harbor.

    After :meth:`start`: ``url`` (``http://127.0.0.1:PORT``), ``host`` (``127.0.0.1:PORT``, for
    image references), ``port``, ``registry`` (the backing :class:`~tests.support.registry.Registry`:
    its storage is ``registry.root``), ``signer`` (the token key). ``request_counts`` counts
    answered requests by raw path; ``request_log`` keeps ``(method, path, query, status)``;
    :meth:`count` sums by path prefix and :meth:`reset_counts` clears both.
    """

    def __init__(
        self,
        workdir: Path | str,
        *,
        users: dict[str, tuple[str, bool]] | None = None,
        projects: dict[str, dict[str, Any]] | None = None,
        library: bool = True,
        project_creation_restriction: str = "adminonly",
        sid_cookie: bool = True,
        token_expires_in: int = 1800,
    ) -> None:
        self.workdir = Path(workdir)
        self.project_creation_restriction = project_creation_restriction
        self.sid_cookie = sid_cookie
        self.token_expires_in = token_expires_in
        self.request_counts: collections.Counter[str] = collections.Counter()
        self.request_log: list[RequestRecord] = []
        self.registry: Registry | None = None
        self.signer: TokenSigner | None = None
        self.port = 0
        self.host = ""
        self.url = ""
        self._lock = threading.RLock()
        self._users: dict[str, HarborUser] = {}
        self._projects: dict[str, HarborProject] = {}
        self._sessions: dict[str, str | None] = {}  # sid → username
        self._csrf = secrets.token_urlsafe(24)
        self._ids: dict[tuple[str, ...], int] = {}
        self._counters: collections.Counter[str] = collections.Counter()
        self._manifests: dict[str, _Manifest | None] = {}
        self._configs: dict[str, dict[str, Any] | None] = {}
        self._pull_counts: collections.Counter[str] = collections.Counter()
        self._pull_times: dict[tuple[str, str], float] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None

        self.add_user("admin", ADMIN_PASSWORD, sysadmin=True)
        for name, (password, sysadmin) in (users or {}).items():
            if name == "admin":
                with self._lock:
                    self._users["admin"].password = password
                    self._users["admin"].sysadmin = sysadmin
            else:
                self.add_user(name, password, sysadmin=sysadmin)
        if library:
            self.create_project("library", public=True)
        for name, kwargs in (projects or {}).items():
            self.create_project(name, **kwargs)

    # -- seeding (Python API) -----------------------------------------------------------------
    def add_user(self, name: str, password: str, *, sysadmin: bool = False) -> HarborUser:
        """Add a local (db_auth) user."""
        with self._lock:
            if name in self._users:
                raise ValueError(f"user {name} exists")
            user = HarborUser(self._next("user"), name, password, sysadmin, time.time())
            self._users[name] = user
            return user

    def create_project(
        self,
        name: str,
        *,
        public: bool = False,
        storage_limit: int = -1,
        owner: str = "admin",
        members: dict[str, str] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> HarborProject:
        """Create a project directly (no API call). ``members`` maps user names to role names
        (:data:`ROLES`); the owner becomes its projectAdmin as on Harbor."""
        with self._lock:
            if name in self._projects:
                raise ValueError(f"project {name} exists")
            owner_user = self._users[owner]
            md = {"public": "true" if public else "false", **(metadata or {})}
            project = HarborProject(
                project_id=self._next("project"),
                name=name,
                owner=owner_user,
                metadata=md,
                storage_limit=storage_limit,
                created=time.time(),
                quota_id=self._next("quota"),
            )
            project.members[owner_user.user_id] = ROLES["projectAdmin"]
            self._projects[name] = project
        for user, role in (members or {}).items():
            self.add_member(name, user, role)
        return project

    def add_member(self, project: str, user: str, role: str) -> None:
        """Make ``user`` a member of ``project`` with ``role`` (projectAdmin, maintainer,
        developer, guest, limitedGuest)."""
        with self._lock:
            self._projects[project].members[self._users[user].user_id] = ROLES[role]

    def project(self, name: str) -> HarborProject:
        with self._lock:
            return self._projects[name]

    def user(self, name: str) -> HarborUser:
        with self._lock:
            return self._users[name]

    @property
    def admin_creds(self) -> tuple[str, str]:
        u = self.user("admin")
        return (u.username, u.password)

    def creds(self, name: str) -> tuple[str, str]:
        u = self.user(name)
        return (u.username, u.password)

    def ref(self, name: str) -> str:
        """``127.0.0.1:PORT/name`` for skopeo and registry clients."""
        return f"{self.host}/{name}"

    def issue_token(self, username: str | None, scopes: Iterable[str]) -> str:
        """A registry token as ``/service/token`` would issue it (denied actions dropped)."""
        with self._lock:
            user = self._users.get(username) if username else None
        return self._mint(_Caller(user), self._grant(_Caller(user), scopes))

    def reset_counts(self) -> None:
        self.request_counts.clear()
        self.request_log.clear()

    def count(self, prefix: str = API + "/", method: str | None = None) -> int:
        """Requests answered whose raw path starts with ``prefix`` (optionally of one method)."""
        return sum(1 for r in list(self.request_log) if r.path.startswith(prefix) and (method in (None, r.method)))

    def client(self, creds: tuple[str, str] | None = None) -> V2Client:
        """A small synchronous registry client through this server's ``/v2/`` (for seeding)."""
        return V2Client(self.url, creds)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> HarborServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.signer = TokenSigner.create(self.workdir / "token-signer")
        try:
            self.registry = start_registry(
                self.workdir / "registry",
                auth=TokenAuth(realm=f"{self.url}/service/token", service=SERVICE, issuer=ISSUER, signer=self.signer),
                relative_urls=True,
                delete=True,
            )
        except BaseException:
            sock.close()
            raise
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, args=(sock,), name=f"harbor-{self.port}", daemon=True)
        self._thread.start()
        self._started.wait(30)
        if self._start_error is not None or not self._started.is_set():
            self.stop()
            raise RuntimeError(f"harbor test server did not start: {self._start_error}")
        return self

    def _serve(self, sock: socket.socket) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._astart(sock))
        except BaseException as e:  # reported to start()
            self._start_error = e
            self._started.set()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._astop())
            loop.close()

    async def _astart(self, sock: socket.socket) -> None:
        app = web.Application(client_max_size=8 << 20)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def _astop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()

    def stop(self) -> None:
        """Stop the server thread and the registry. Idempotent."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
        self._thread = None
        if self.registry is not None:
            self.registry.stop()

    def __enter__(self) -> HarborServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> HarborServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    # -- helpers -------------------------------------------------------------------------------
    def _next(self, kind: str) -> int:
        with self._lock:
            self._counters[kind] += 1
            return self._counters[kind]

    def _id(self, *key: str) -> int:
        """A stable integer ID for an object first seen now (repositories, artifacts, tags…)."""
        with self._lock:
            if key not in self._ids:
                self._ids[key] = self._next(key[0])
            return self._ids[key]

    def _caller(self, request: web.Request) -> _Caller:
        """Basic credentials first (wrong ones silently mean anonymous, as on Harbor), then a
        session cookie."""
        sid = request.cookies.get("sid")
        with self._lock:
            session = sid if sid in self._sessions else None
            auth = request.headers.get("Authorization", "")
            if auth[:6].lower() == "basic ":
                try:
                    name, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    return _Caller(None, session)
                user = self._users.get(name)
                if user is not None and secrets.compare_digest(user.password, password):
                    return _Caller(user, session)
                return _Caller(None, session)
            if session is not None and self._sessions[session]:
                return _Caller(self._users.get(self._sessions[session] or ""), session)
            return _Caller(None, session)

    def _find_project(self, name_or_id: str, *, is_name: bool = False) -> HarborProject | None:
        with self._lock:
            if not is_name and name_or_id.isdigit():
                return next((p for p in self._projects.values() if p.project_id == int(name_or_id)), None)
            return self._projects.get(name_or_id)

    def _require_project(self, caller: _Caller, name_or_id: str, *, is_name: bool = False) -> HarborProject:
        """Harbor's RequireProjectAccess with handleProjectNotFound: a missing project is 404
        only for sysadmins; others get the same 401/403 as for a private project they cannot
        see, so project names cannot be probed."""
        project = self._find_project(name_or_id, is_name=is_name)
        if project is None:
            if caller.sysadmin:
                raise HarborError(404, f"project {name_or_id} not found")
            raise _forbidden() if caller.authenticated else _unauthorized()
        if not caller.can_read(project):
            raise _forbidden() if caller.authenticated else _unauthorized()
        return project

    # -- storage inventory -----------------------------------------------------------------------
    @property
    def _v2root(self) -> Path:
        assert self.registry is not None
        return self.registry.root / "docker" / "registry" / "v2"

    def _blob(self, digest: str) -> bytes | None:
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64:
            return None
        try:
            return (self._v2root / "blobs" / "sha256" / hexd[:2] / hexd / "data").read_bytes()
        except OSError:
            return None

    def _manifest(self, digest: str) -> _Manifest | None:
        if digest in self._manifests and self._manifests[digest] is not None:
            return self._manifests[digest]
        raw = self._blob(digest)
        m = None
        if raw is not None:
            try:
                doc = json.loads(raw)
                if isinstance(doc, dict):
                    m = _Manifest(digest, len(raw), doc)
            except ValueError:
                m = None
        self._manifests[digest] = m
        return m

    def _config(self, digest: str) -> dict[str, Any] | None:
        if digest not in self._configs:
            raw = self._blob(digest)
            try:
                doc = json.loads(raw) if raw is not None else None
            except ValueError:
                doc = None
            self._configs[digest] = doc if isinstance(doc, dict) else None
        return self._configs[digest]

    def _repo_names(self, project: str | None = None) -> list[str]:
        """Repositories with at least one manifest, under existing projects."""
        base = self._v2root / "repositories"
        with self._lock:
            projects = [project] if project else list(self._projects)
        names = []
        for p in projects:
            top = base / p
            if not top.is_dir():
                continue
            for dirpath, dirnames, _ in os.walk(top):
                if "_manifests" in dirnames:
                    rel = Path(dirpath).relative_to(base).as_posix()
                    if "/" in rel and self._has_revisions(Path(dirpath)):
                        names.append(rel)
                dirnames[:] = [d for d in dirnames if d not in ("_manifests", "_layers", "_uploads")]
        return names

    @staticmethod
    def _has_revisions(repo_dir: Path) -> bool:
        rev = repo_dir / "_manifests" / "revisions" / "sha256"
        try:
            return any((Path(e.path) / "link").exists() for e in os.scandir(rev))
        except OSError:
            return False

    def _repo_view(self, name: str) -> _RepoView | None:
        base = self._v2root / "repositories" / name / "_manifests"
        artifacts: dict[str, tuple[_Manifest, float]] = {}
        try:
            entries = list(os.scandir(base / "revisions" / "sha256"))
        except OSError:
            return None
        for e in entries:
            try:
                mtime = os.stat(Path(e.path) / "link").st_mtime
            except OSError:
                continue
            digest = "sha256:" + e.name
            m = self._manifest(digest)
            if m is not None:
                artifacts[digest] = (m, mtime)
        if not artifacts:
            return None
        tags: dict[str, tuple[str, float]] = {}
        try:
            tag_entries = list(os.scandir(base / "tags"))
        except OSError:
            tag_entries = []
        for e in tag_entries:
            link = Path(e.path) / "current" / "link"
            try:
                digest = link.read_text().strip()
                mtime = os.stat(link).st_mtime
            except OSError:
                continue
            if digest in artifacts:
                tags[e.name] = (digest, mtime)
        children = {c["digest"] for m, _ in artifacts.values() if m.is_index for c in m.children} & set(artifacts)
        accessories: dict[str, _Accessory] = {}
        for digest, (m, _) in artifacts.items():
            if m.subject:  # OCI 1.1 referrer: Harbor's subject middleware
                acc_type = _ACCESSORY_TYPE_BY_ARTIFACT_TYPE.get(m.artifact_type, "subject.accessory")
                accessories[digest] = _Accessory(digest, m.subject, acc_type)
        for tag, (digest, _) in tags.items():
            hit = _COSIGN_TAG.match(tag)
            if hit and digest not in accessories:  # Harbor's cosign middleware: tag + signature layer
                m = artifacts[digest][0]
                if any(layer.get("mediaType") == COSIGN_LAYER for layer in m.layers):
                    accessories[digest] = _Accessory(digest, "sha256:" + hit.group(1), "signature.cosign")
        return _RepoView(name, name.split("/", 1)[0], artifacts, tags, children, accessories)

    def _artifact_size(self, view: _RepoView, digest: str, seen: frozenset[str] = frozenset()) -> int:
        m = view.artifacts[digest][0]
        if m.is_index:
            total = m.raw_size
            for c in m.children:
                if c["digest"] in view.artifacts and c["digest"] not in seen:
                    total += self._artifact_size(view, c["digest"], seen | {digest})
            return total
        size = m.raw_size
        if m.config:
            size += int(m.config.get("size") or 0)
        return size + sum(int(x.get("size") or 0) for x in m.layers)

    def _artifact_kind(self, m: _Manifest) -> tuple[str, str]:
        """(type, media_type) as Harbor's artifact processors set them."""
        if m.is_index:
            return "IMAGE", m.media_type
        if m.media_type == SCHEMA1_SIGNED or m.doc.get("schemaVersion") == 1:
            return "IMAGE", DOCKER_CONFIG
        cfg_type = (m.config or {}).get("mediaType", "")
        return _TYPE_BY_CONFIG.get(cfg_type, "UNKNOWN"), cfg_type

    # -- JSON shapes (swagger definitions, go-swagger serialisation) ---------------------------
    def _project_json(self, p: HarborProject, caller: _Caller, repo_count: int | None = None) -> dict[str, Any]:
        role = caller.role(p)
        out: dict[str, Any] = {
            "creation_time": _ts(p.created),
            "current_user_role_ids": [role] if role else None,
            "cve_allowlist": {
                "creation_time": _ts(p.created),
                "id": p.project_id,
                "items": [],
                "project_id": p.project_id,
                "update_time": _ts(p.created),
            },
            "metadata": dict(p.metadata),
            "name": p.name,
            "owner_id": p.owner.user_id,
            "owner_name": p.owner.username,
            "project_id": p.project_id,
            "repo_count": len(self._repo_names(p.name)) if repo_count is None else repo_count,
            "update_time": _ts(p.created),
        }
        if role:
            out["current_user_role_id"] = role
        if caller.sysadmin or role == ROLES["projectAdmin"]:
            out["togglable"] = True
        return dict(sorted(out.items()))

    def _repository_json(self, view: _RepoView, project: HarborProject) -> dict[str, Any]:
        return {
            "artifact_count": len(view.listed(base_all=False)),
            "creation_time": _ts(view.created),
            "id": self._id("repository", view.name),
            "name": view.name,
            "project_id": project.project_id,
            "pull_count": self._pull_counts[view.name],
            "update_time": _ts(view.updated),
        }

    def _tag_json(self, view: _RepoView, digest: str, tag: str, pushed: float) -> dict[str, Any]:
        return {
            "artifact_id": self._id("artifact", view.name, digest),
            "id": self._id("tag", view.name, tag),
            "immutable": False,
            "name": tag,
            "pull_time": _ts(self._pull_times.get((view.name, tag))),
            "push_time": _ts(pushed),
            "repository_id": self._id("repository", view.name),
        }

    def _accessory_json(self, view: _RepoView, acc: _Accessory) -> dict[str, Any]:
        out = {
            "artifact_id": self._id("artifact", view.name, acc.digest),
            "creation_time": _ts(view.artifacts[acc.digest][1]),
            "digest": acc.digest,
            "icon": "",
            "id": self._id("accessory", view.name, acc.digest),
            "size": self._artifact_size(view, acc.digest),
            "subject_artifact_digest": acc.subject,
            "subject_artifact_repo": view.name,
            "type": acc.type,
        }
        if acc.subject in view.artifacts:
            out["subject_artifact_id"] = self._id("artifact", view.name, acc.subject)
        return dict(sorted(out.items()))

    def _artifact_json(
        self, view: _RepoView, project: HarborProject, digest: str, *, with_tag: bool, with_accessory: bool
    ) -> dict[str, Any]:
        m, pushed = view.artifacts[digest]
        art_type, media_type = self._artifact_kind(m)
        art_id = self._id("artifact", view.name, digest)
        out: dict[str, Any] = {
            "accessories": None,
            "digest": digest,
            "id": art_id,
            "labels": None,
            "manifest_media_type": m.media_type,
            "media_type": media_type,
            "project_id": project.project_id,
            "pull_time": _ts(self._pull_times.get((view.name, digest))),
            "push_time": _ts(pushed),
            "references": None,
            "repository_id": self._id("repository", view.name),
            "repository_name": view.name,
            "size": self._artifact_size(view, digest),
            "tags": None,
            "type": art_type,
        }
        if m.artifact_type:
            out["artifact_type"] = m.artifact_type
        annotations = m.doc.get("annotations")
        if isinstance(annotations, dict) and annotations:
            out["annotations"] = {str(k): str(v) for k, v in annotations.items()}
        if art_type == "IMAGE":
            out["icon"] = IMAGE_ICON
        if art_type == "IMAGE" and not m.is_index and m.config:
            cfg = self._config(m.config.get("digest", "")) or {}
            extra = {k: cfg.get(k) for k in ("architecture", "author", "created", "os") if k in cfg}
            if isinstance(cfg.get("config"), dict):
                extra["config"] = cfg["config"]
            if extra:
                out["extra_attrs"] = extra
            repo_escaped = urllib.parse.quote(urllib.parse.quote(view.path, safe=""), safe="")
            prefix = f"{API}/projects/{view.project}/repositories/{repo_escaped}/artifacts/{digest}/additions"
            out["addition_links"] = {
                "build_history": {"absolute": False, "href": f"{prefix}/build_history"},
                "vulnerabilities": {"absolute": False, "href": f"{prefix}/vulnerabilities"},
            }
        if m.is_index:
            refs = []
            for c in m.children:
                ref: dict[str, Any] = {
                    "child_digest": c["digest"],
                    "child_id": self._id("artifact", view.name, c["digest"]) if c["digest"] in view.artifacts else 0,
                    "parent_id": art_id,
                    "urls": c.get("urls") or None,
                }
                if isinstance(c.get("platform"), dict):
                    pf = c["platform"]
                    platform: dict[str, Any] = {"'os.features'": pf.get("os.features") or None}
                    for key, out_key in (
                        ("architecture", "architecture"),
                        ("os", "os"),
                        ("variant", "variant"),
                        ("os.version", "'os.version'"),
                    ):
                        if pf.get(key):
                            platform[out_key] = pf[key]
                    ref["platform"] = platform
                if isinstance(c.get("annotations"), dict) and c["annotations"]:
                    ref["annotations"] = c["annotations"]
                if not ref["child_id"]:
                    del ref["child_id"]
                refs.append(dict(sorted(ref.items())))
            out["references"] = refs or None
        if with_tag:
            out["tags"] = [self._tag_json(view, digest, t, pt) for t, pt in view.tags_of(digest)] or None
        if with_accessory:
            accs = [a for a in view.accessories.values() if a.subject == digest]
            accs.sort(key=lambda a: -view.artifacts[a.digest][1])
            out["accessories"] = [self._accessory_json(view, a) for a in accs] or None
        return dict(sorted(out.items()))

    def _quota_json(self, p: HarborProject) -> dict[str, Any]:
        used: dict[str, int] = {}
        for name in self._repo_names(p.name):
            view = self._repo_view(name)
            if view is None:
                continue
            for digest, (m, _) in view.artifacts.items():
                used[digest] = m.raw_size
                for d in [m.config, *m.layers] if m.config else m.layers:
                    if d and "digest" in d:
                        used[d["digest"]] = int(d.get("size") or 0)
        return {
            "creation_time": _ts(p.created),
            "hard": {"storage": p.storage_limit},
            "id": p.quota_id,
            "ref": {"id": p.project_id, "name": p.name, "owner_name": p.owner.username},
            "update_time": _ts(p.created),
            "used": {"storage": sum(used.values())},
        }

    # -- HTTP ----------------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.raw_path.split("?", 1)[0]
        self.request_counts[path] += 1
        status = 500
        try:
            if path == "/v2" or path.startswith("/v2/"):
                resp = await self._proxy(request)
            elif path == "/service/token":
                resp = self._token(request)
            elif path.startswith(API + "/"):
                resp = await self._api(request, path)
            else:
                resp = HarborError(404, f"path {path} was not found").response()
            status = resp.status
            return resp
        finally:
            self.request_log.append(RequestRecord(request.method, path, request.query_string, status))

    def _csrf_violation(self, request: web.Request, caller: _Caller) -> bool:
        return (
            request.method in _WRITE_METHODS
            and caller.session is not None
            and request.headers.get("X-Harbor-CSRF-Token") != self._csrf
        )

    async def _api(self, request: web.Request, path: str) -> web.StreamResponse:
        caller = self._caller(request)
        try:
            if self._csrf_violation(request, caller):
                raise HarborError(403, "CSRF token invalid")
            body = await request.read() if request.method in ("POST", "PUT") else b""
            # storage scans run off the loop, so /v2/ streams are not stalled by inventory calls
            resp = await asyncio.to_thread(self._route, request, path, caller, body)
        except HarborError as e:
            resp = e.response()
        if self.sid_cookie:
            if caller.session is None:
                sid = secrets.token_hex(16)
                with self._lock:
                    self._sessions[sid] = caller.username or None
                resp.set_cookie("sid", sid, path="/", httponly=True)
            if request.method == "GET":
                resp.headers["X-Harbor-CSRF-Token"] = self._csrf
        resp.headers["X-Request-Id"] = request.headers.get("X-Request-Id") or secrets.token_hex(16)
        return resp

    def _route(self, request: web.Request, path: str, caller: _Caller, body: bytes) -> web.StreamResponse:
        # Like go-swagger's router: the path is unescaped once before matching, so a repository
        # name escaped once (a%2Fb) becomes two segments and matches nothing.
        segs = urllib.parse.unquote(path[len(API) + 1 :]).rstrip("/").split("/")
        method = request.method
        n = len(segs)

        def allow(*methods: str) -> None:
            if method not in methods:
                raise HarborError(405, f"method {method} is not allowed, but [{','.join(methods)}] are")

        if segs == ["ping"]:
            allow("GET")
            return web.Response(text="Pong", content_type="text/plain")
        if segs == ["systeminfo"]:
            allow("GET")
            return web.json_response(self._systeminfo(caller))
        if segs == ["users", "current"]:
            allow("GET")
            if caller.user is None:
                raise _unauthorized()
            return web.json_response(caller.user.to_json())
        if segs == ["repositories"]:
            allow("GET")
            return self._list_all_repositories(request, caller)
        if segs == ["quotas"]:
            allow("GET")
            return self._list_quotas(request, caller)
        if n == 2 and segs[0] == "quotas":
            allow("GET")
            return self._get_quota(segs[1], caller)
        if segs[0] != "projects":
            raise HarborError(404, f"path {path} was not found")
        if n == 1:
            allow("GET", "HEAD", "POST")
            if method == "POST":
                return self._create_project(request, caller, body)
            if method == "HEAD":
                return self._head_project(request, caller)
            return self._list_projects(request, caller)
        is_name = request.headers.get("X-Is-Resource-Name", "").lower() == "true"
        if n == 2:
            allow("GET", "DELETE")
            if method == "DELETE":
                return self._delete_project(segs[1], caller, is_name=is_name)
            project = self._require_project(caller, segs[1], is_name=is_name)
            return web.json_response(self._project_json(project, caller))
        if segs[2] != "repositories":
            raise HarborError(404, f"path {path} was not found")
        if n == 3:
            allow("GET")
            return self._list_repositories(request, caller, segs[1])
        # Harbor's Prepare() unescapes repository_name once more: a%252Fb → a%2Fb → a/b.
        repo_path = urllib.parse.unquote(segs[3])
        if n == 4:
            allow("GET")
            project, view = self._require_repo(caller, segs[1], repo_path)
            return web.json_response(self._repository_json(view, project))
        if segs[4] != "artifacts" or n > 7:
            raise HarborError(404, f"path {path} was not found")
        if n == 5:
            allow("GET")
            return self._list_artifacts(request, caller, segs[1], repo_path)
        reference = segs[5]
        if n == 6:
            allow("GET")
            return self._get_artifact(request, caller, segs[1], repo_path, reference)
        if segs[6] == "tags":
            allow("GET")
            return self._list_tags(request, caller, segs[1], repo_path, reference)
        if segs[6] == "accessories":
            allow("GET")
            return self._list_accessories(request, caller, segs[1], repo_path, reference)
        raise HarborError(404, f"path {path} was not found")

    # -- handlers ------------------------------------------------------------------------------
    def _systeminfo(self, caller: _Caller) -> dict[str, Any]:
        info: dict[str, Any] = {
            "auth_mode": "db_auth",
            "banner_message": "",
            "primary_auth_mode": False,
            "self_registration": False,
        }
        if caller.authenticated:  # Harbor hides the rest from anonymous callers
            info.update(
                {
                    "current_time": _ts(time.time()),
                    "external_url": self.url,
                    "harbor_version": HARBOR_VERSION,
                    "has_ca_root": False,
                    "notification_enable": True,
                    "project_creation_restriction": self.project_creation_restriction,
                    "read_only": False,
                    "registry_storage_provider_name": "filesystem",
                    "registry_url": self.host,
                }
            )
        return dict(sorted(info.items()))

    def _visible_projects(self, caller: _Caller) -> list[HarborProject]:
        with self._lock:
            return [p for p in self._projects.values() if caller.can_read(p)]

    def _list_projects(self, request: web.Request, caller: _Caller) -> web.Response:
        _paging(request)
        conds = _parse_q(request.query.get("q"))
        public = _bool_param(request, "public", False) if request.query.get("public") else None
        if not caller.authenticated and public is False:
            return web.json_response([], headers={"X-Total-Count": "0"})
        projects = self._visible_projects(caller)
        if name := request.query.get("name"):
            projects = [p for p in projects if name in p.name]
        if owner := request.query.get("owner"):
            projects = [p for p in projects if p.owner.username == owner]
        if public is not None:
            projects = [p for p in projects if p.public == public]
        fields: dict[str, Callable[[HarborProject], Any]] = {
            "name": lambda p: p.name,
            "project_id": lambda p: p.project_id,
            "public": lambda p: p.public,
            "owner_id": lambda p: p.owner.user_id,
        }
        for key, cond in conds.items():
            if key in fields:
                projects = [p for p in projects if _match(cond, fields[key](p))]
        rows = [{"name": p.name, "project_id": p.project_id, "creation_time": p.created, "_p": p} for p in projects]
        rows = _sorted(rows, _sort_key(request.query.get("sort"), [("name", False)]))
        if not rows:
            return web.json_response([], headers={"X-Total-Count": "0"})
        chosen, headers = _page(request, rows)
        return web.json_response([self._project_json(r["_p"], caller) for r in chosen], headers=headers)

    def _head_project(self, request: web.Request, caller: _Caller) -> web.Response:
        name = request.query.get("project_name")
        if not name:
            raise HarborError(422, "project_name in query is required")
        self._require_project(caller, name, is_name=True)
        return web.Response(status=200)

    def _create_project(self, request: web.Request, caller: _Caller, raw: bytes) -> web.Response:
        if not caller.authenticated:
            raise _unauthorized()
        if self.project_creation_restriction == "adminonly" and not caller.sysadmin:
            raise HarborError(403, "Only system admin can create project")
        try:
            body = json.loads(raw)
        except ValueError as e:
            raise HarborError(400, f'parsing project body from "" failed, because {e}') from None
        if not isinstance(body, dict):
            raise HarborError(400, "parsing project body failed: not an object")
        name = body.get("project_name")
        if not isinstance(name, str):
            raise HarborError(422, "project_name in body must be of type string")
        if len(name) > 255:
            raise HarborError(422, "project_name in body should be at most 255 chars long")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise HarborError(422, "metadata in body must be of type object")
        for k, v in metadata.items():
            if v is not None and not isinstance(v, str):
                raise HarborError(422, f'metadata.{k} in body must be of type string: "{type(v).__name__}"')
        metadata = {k: v for k, v in metadata.items() if v is not None}
        if isinstance(body.get("public"), bool) and not metadata.get("public"):
            metadata["public"] = "true" if body["public"] else "false"
        metadata.setdefault("public", "false")
        if metadata["public"] not in ("true", "false"):
            raise HarborError(400, f"metadata.public should only be 'true' or 'false', but got: '{metadata['public']}'")
        limit = body.get("storage_limit")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
            raise HarborError(422, "storage_limit in body must be of type int64")
        if limit is None or limit == 0 or not caller.sysadmin:
            limit = -1
        if limit < -1:
            raise HarborError(400, f"invalid storage limit {limit}: it should be -1 or greater than 0")
        if not _PROJECT_NAME.match(name):
            raise HarborError(400, "project name is not in lower case or contains illegal characters!")
        assert caller.user is not None
        with self._lock:
            if name in self._projects:
                raise HarborError(409, f"The project named {name} already exists")
            project = self.create_project(
                name,
                public=metadata["public"] == "true",
                storage_limit=limit,
                owner=caller.user.username,
                metadata={k: v for k, v in metadata.items() if k != "retention_id"},
            )
        in_location = request.headers.get("X-Resource-Name-In-Location", "").lower() == "true"
        location = f"{API}/projects/{project.name if in_location else project.project_id}"
        return web.Response(status=201, headers={"Location": location})

    def _delete_project(self, name_or_id: str, caller: _Caller, *, is_name: bool) -> web.Response:
        project = self._require_project(caller, name_or_id, is_name=is_name)
        if not caller.can_delete(project):
            raise _forbidden() if caller.authenticated else _unauthorized()
        if self._repo_names(project.name):
            raise HarborError(412, "the project contains repositories, can not be deleted")
        with self._lock:
            del self._projects[project.name]
        return web.Response(status=200)

    def _repo_rows(self, names: list[str]) -> list[dict[str, Any]]:
        """Sortable rows from cheap stats only (the first manifest's link time); the full views,
        which read manifests, are built for the page that is answered."""
        rows = []
        for name in names:
            rev = self._v2root / "repositories" / name / "_manifests" / "revisions" / "sha256"
            times = []
            with contextlib.suppress(OSError):
                for e in os.scandir(rev):
                    with contextlib.suppress(OSError):
                        times.append(os.stat(Path(e.path) / "link").st_mtime)
            if times:
                rows.append({"name": name, "creation_time": min(times), "id": self._id("repository", name)})
        return rows

    def _repositories_page(
        self, request: web.Request, rows: list[dict[str, Any]], projects: dict[str, HarborProject]
    ) -> web.Response:
        conds = _parse_q(request.query.get("q"))
        if "name" in conds:
            rows = [r for r in rows if _match(conds["name"], r["name"])]
        rows = _sorted(rows, _sort_key(request.query.get("sort"), [("creation_time", True), ("id", True)]))
        chosen, headers = _page(request, rows)
        body = []
        for row in chosen:
            view = self._repo_view(row["name"])
            if view is not None:
                body.append(self._repository_json(view, projects[view.project]))
        return web.json_response(body, headers=headers)

    def _list_repositories(self, request: web.Request, caller: _Caller, project_name: str) -> web.Response:
        project = self._require_project(caller, project_name, is_name=True)
        _paging(request)
        rows = self._repo_rows(self._repo_names(project.name))
        return self._repositories_page(request, rows, {project.name: project})

    def _list_all_repositories(self, request: web.Request, caller: _Caller) -> web.Response:
        _paging(request)
        projects = {p.name: p for p in self._visible_projects(caller)}
        rows = []
        for p in projects:
            rows.extend(self._repo_rows(self._repo_names(p)))
        return self._repositories_page(request, rows, projects)

    def _require_repo(self, caller: _Caller, project_name: str, repo_path: str) -> tuple[HarborProject, _RepoView]:
        project = self._require_project(caller, project_name, is_name=True)
        name = f"{project.name}/{repo_path}"
        view = self._repo_view(name) if repo_path and ".." not in repo_path.split("/") else None
        if view is None:
            raise HarborError(404, f"repository {name} not found")
        return project, view

    def _resolve(self, view: _RepoView, reference: str) -> str:
        if reference.startswith("sha256:"):
            if reference in view.artifacts:
                return reference
        elif reference in view.tags:
            return view.tags[reference][0]
        sep = "@" if reference.startswith("sha256:") else ":"
        raise HarborError(404, f"artifact {view.name}{sep}{reference} not found")

    def _list_artifacts(self, request: web.Request, caller: _Caller, project_name: str, repo_path: str) -> web.Response:
        _paging(request)
        with_tag = _bool_param(request, "with_tag", True)
        with_accessory = _bool_param(request, "with_accessory", False)
        for flag in ("with_label", "with_scan_overview", "with_sbom_overview", "with_immutable_status"):
            _bool_param(request, flag, False)
        conds = _parse_q(request.query.get("q"))
        project, view = self._require_repo(caller, project_name, repo_path)
        base = conds.pop("base", None)
        if base is not None and base != ("exact", "*"):
            raise HarborError(400, 'the value of "base" query can only be exact match value with "*"')
        digests = view.listed(base_all=base is not None)
        tagged = {d for d, _ in view.tags.values()}
        if "tags" in conds:
            kind, value = conds["tags"]
            if kind == "exact" and value == "*":
                digests = [d for d in digests if d in tagged]
            elif kind == "exact" and value == "nil":
                digests = [d for d in digests if d not in tagged]
            elif kind in ("exact", "fuzzy"):
                digests = [d for d in digests if any(_match((kind, value), t) for t, _ in view.tags_of(d))]
            else:
                raise HarborError(
                    400,
                    'the value of "tags" query can only be fuzzy match value or exact match value with "*" and "nil"',
                )
        rows = []
        for d in digests:
            m, pushed = view.artifacts[d]
            art_type, media_type = self._artifact_kind(m)
            rows.append(
                {
                    "digest": d,
                    "id": self._id("artifact", view.name, d),
                    "push_time": pushed,
                    "type": art_type,
                    "media_type": media_type,
                    "manifest_media_type": m.media_type,
                    "artifact_type": m.artifact_type,
                }
            )
        for key, cond in conds.items():
            if key in ("digest", "type", "media_type", "manifest_media_type", "artifact_type"):
                rows = [r for r in rows if _match(cond, r[key])]
        rows = _sorted(rows, _sort_key(request.query.get("sort"), [("push_time", True), ("id", True)]))
        chosen, headers = _page(request, rows)
        body = [
            self._artifact_json(view, project, r["digest"], with_tag=with_tag, with_accessory=with_accessory)
            for r in chosen
        ]
        return web.json_response(body, headers=headers)

    def _get_artifact(
        self, request: web.Request, caller: _Caller, project_name: str, repo_path: str, reference: str
    ) -> web.Response:
        _paging(request)
        with_tag = _bool_param(request, "with_tag", True)
        with_accessory = _bool_param(request, "with_accessory", False)
        project, view = self._require_repo(caller, project_name, repo_path)
        digest = self._resolve(view, reference)
        return web.json_response(
            self._artifact_json(view, project, digest, with_tag=with_tag, with_accessory=with_accessory)
        )

    def _list_tags(
        self, request: web.Request, caller: _Caller, project_name: str, repo_path: str, reference: str
    ) -> web.Response:
        _paging(request)
        _, view = self._require_repo(caller, project_name, repo_path)
        digest = self._resolve(view, reference)
        tags = [self._tag_json(view, digest, t, pt) for t, pt in view.tags_of(digest)]
        chosen, headers = _page(request, tags)
        return web.json_response(chosen, headers=headers)

    def _list_accessories(
        self, request: web.Request, caller: _Caller, project_name: str, repo_path: str, reference: str
    ) -> web.Response:
        _paging(request)
        _, view = self._require_repo(caller, project_name, repo_path)
        digest = self._resolve(view, reference)
        accs = [self._accessory_json(view, a) for a in view.accessories.values() if a.subject == digest]
        chosen, headers = _page(request, accs)
        return web.json_response(chosen, headers=headers)

    def _list_quotas(self, request: web.Request, caller: _Caller) -> web.Response:
        _paging(request)
        if not caller.sysadmin:  # Harbor: system-level quota list permission
            raise _forbidden() if caller.authenticated else _unauthorized()
        reference = request.query.get("reference")
        reference_id = request.query.get("reference_id")
        with self._lock:
            projects = sorted(self._projects.values(), key=lambda p: p.quota_id)
        if reference and reference != "project":
            projects = []
        if reference_id:
            projects = [p for p in projects if str(p.project_id) == reference_id]
        chosen, headers = _page(request, projects)
        return web.json_response([self._quota_json(p) for p in chosen], headers=headers)

    def _get_quota(self, quota_id: str, caller: _Caller) -> web.Response:
        if not caller.sysadmin:
            raise _forbidden() if caller.authenticated else _unauthorized()
        with self._lock:
            project = next((p for p in self._projects.values() if str(p.quota_id) == quota_id), None)
        if project is None:
            raise HarborError(404, f"quota {quota_id} not found")
        return web.json_response(self._quota_json(project))

    # -- token service ---------------------------------------------------------------------------
    def _grant(self, caller: _Caller, scopes: Iterable[str]) -> list[dict[str, Any]]:
        """Harbor's access filters: requested actions that the caller may not do are dropped
        (never an error). Push needs an existing project and a developer-or-higher role."""
        access: list[dict[str, Any]] = []
        for scope in scopes:
            type_, sep, rest = scope.partition(":")
            name, sep2, actions_s = rest.rpartition(":")
            if not (sep and sep2 and type_ and name):
                continue
            wanted = [a for a in actions_s.split(",") if a]
            granted: list[str] = []
            if type_ == "repository":
                project = self._find_project(name.split("/", 1)[0], is_name=True) if "/" in name else None
                if project is not None:
                    allowed = set()
                    if caller.can_read(project):
                        allowed.add("pull")
                    if caller.can_push(project):
                        allowed.add("push")
                    if caller.can_delete(project):
                        allowed.update(("delete", "*"))
                    granted = [a for a in wanted if a in allowed]
            elif type_ == "registry" and name == "catalog" and caller.sysadmin:
                granted = wanted
            access.append({"type": type_, "name": name, "actions": granted})
        return access

    def _mint(self, caller: _Caller, access: list[dict[str, Any]]) -> str:
        assert self.signer is not None
        return self.signer.issue(
            caller.username, SERVICE, access, expires_in=self.token_expires_in, issuer=ISSUER, header="x5c"
        )

    def _token(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            return web.Response(status=405, text="Method Not Allowed")
        service = request.query.get("service", "")
        if service != SERVICE:
            return web.Response(status=400, text=f"Unable to handle service: {service}")
        caller = self._caller(request)
        scopes = [s for sector in request.query.getall("scope", []) for s in sector.split(" ") if s]
        if not caller.authenticated and not scopes:  # Harbor: "for docker login"
            return web.Response(status=401, text="Unauthorized")
        token = self._mint(caller, self._grant(caller, scopes))
        body = {
            "token": token,
            "expires_in": self.token_expires_in,
            "issued_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return web.json_response(body)

    # -- registry proxy --------------------------------------------------------------------------
    def _v2_scopes(self, request: web.Request, path: str) -> list[str]:
        """The scopes a request to ``/v2/`` needs (used for Basic credentials on ``/v2/``)."""
        if path == "/v2/_catalog":
            return ["registry:catalog:*"]
        m = _V2_NAME.match(path)
        if not m:
            return []
        name = m["name"]
        if request.method in ("GET", "HEAD"):
            return [f"repository:{name}:pull"]
        if request.method == "DELETE":
            return [f"repository:{name}:delete"]
        scopes = [f"repository:{name}:pull,push"]
        if request.query.get("from"):
            scopes.append(f"repository:{request.query['from']}:pull")
        return scopes

    async def _proxy(self, request: web.Request) -> web.StreamResponse:
        assert self.registry is not None and self._client is not None
        path = request.raw_path.split("?", 1)[0]
        caller = self._caller(request)
        if self._csrf_violation(request, caller):
            return HarborError(403, "CSRF token invalid").response()
        hit = _V2_NAME.match(path)
        if hit and hit["kind"] == "referrers" and request.method in ("GET", "HEAD"):
            return self._referrers(request, caller, hit["name"], urllib.parse.unquote(hit["rest"] or ""))
        # a multidict: Go clients (skopeo) send one Accept header per media type
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP | {"cookie"})
        auth = request.headers.get("Authorization", "")
        if auth[:6].lower() == "basic ":
            headers.popall("Authorization", None)
            scopes = self._v2_scopes(request, path)
            if caller.authenticated or scopes:
                headers["Authorization"] = "Bearer " + self._mint(caller, self._grant(caller, scopes))
        data: Any = None
        if request.method in ("POST", "PUT", "PATCH"):
            data = request.content if request.body_exists else b""
        async with self._client.request(
            request.method,
            self.registry.url + request.raw_path,
            headers=headers,
            data=data,
            allow_redirects=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        ) as upstream:
            resp = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for k, v in upstream.headers.items():
                lk = k.lower()
                if lk in _HOP_BY_HOP or lk == "content-length":
                    continue
                if lk == "location" and v.startswith(self.registry.url):
                    v = self.url + v[len(self.registry.url) :]
                resp.headers.add(k, v)
            if upstream.content_length is not None:
                resp.content_length = upstream.content_length
            await resp.prepare(request)
            if request.method != "HEAD":
                async for chunk in upstream.content.iter_chunked(1 << 16):
                    await resp.write(chunk)
            await resp.write_eof()
            if request.method == "GET" and upstream.status == 200:
                self._note_pull(path, upstream.headers.get("Docker-Content-Digest"))
        return resp

    def _bearer_access(self, request: web.Request) -> list[dict[str, Any]]:
        """The ``access`` claim of a valid bearer token this server issued ([] otherwise)."""
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() != "bearer " or self.signer is None:
            return []
        key = x509.load_pem_x509_certificate(self.signer.cert_path.read_bytes()).public_key()
        try:
            claims = jwt.decode(auth[7:].strip(), key, algorithms=["ES256"], audience=SERVICE, issuer=ISSUER)  # type: ignore[arg-type]
        except jwt.PyJWTError:
            return []
        return [a for a in claims.get("access") or [] if isinstance(a, dict)]

    def _referrers(self, request: web.Request, caller: _Caller, name: str, reference: str) -> web.Response:
        """``GET /v2/<name>/referrers/<digest>``: Harbor (≥ 2.8) answers the OCI referrers API
        itself from its accessory table (src/server/registry/referrers.go); the registry behind it
        has none. Cosign tag-style signatures are accessories, so they are listed too."""
        if request.headers.get("Authorization", "")[:6].lower() == "basic ":
            project = self._find_project(name.split("/", 1)[0], is_name=True) if "/" in name else None
            allowed = project is not None and caller.can_read(project)
        else:
            allowed = any(
                a.get("type") == "repository" and a.get("name") == name and {"pull", "*"} & set(a.get("actions") or [])
                for a in self._bearer_access(request)
            )
        if not allowed:
            challenge = f'Bearer realm="{self.url}/service/token",service="{SERVICE}",scope="repository:{name}:pull"'
            body = {"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized to list referrers"}]}
            return web.json_response(body, status=401, headers={"WWW-Authenticate": challenge})
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", reference):
            return HarborError(400, f"unsupported digest {reference}").response()
        artifact_type = request.query.get("artifactType")
        view = self._repo_view(name)
        accessories = [a for a in view.accessories.values() if a.subject == reference] if view else []
        manifests = []
        for acc in sorted(accessories, key=lambda a: view.artifacts[a.digest][1] if view else 0):
            assert view is not None
            m = view.artifacts[acc.digest][0]
            desc: dict[str, Any] = {"mediaType": m.media_type, "digest": acc.digest, "size": m.raw_size}
            if isinstance(m.doc.get("annotations"), dict) and m.doc["annotations"]:
                desc["annotations"] = m.doc["annotations"]
            if m.artifact_type:
                desc["artifactType"] = m.artifact_type
            if not artifact_type or m.artifact_type == artifact_type:
                manifests.append(desc)
        headers = {"X-Total-Count": str(len(accessories))}
        if artifact_type:
            headers["OCI-Filters-Applied"] = "artifactType"
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}) + "\n"
        return web.Response(body=body.encode(), headers=headers, content_type=OCI_INDEX)

    def _note_pull(self, path: str, digest: str | None) -> None:
        m = _V2_NAME.match(path)
        if not m or m["kind"] != "manifests" or not m["rest"]:
            return
        name, ref = m["name"], urllib.parse.unquote(m["rest"])
        now = time.time()
        self._pull_counts[name] += 1
        if digest:
            self._pull_times[(name, digest)] = now
        if not ref.startswith("sha256:"):
            self._pull_times[(name, ref)] = now


# --------------------------------------------------------------------------------------------
# a minimal synchronous registry client (for seeding content through /v2/)
# --------------------------------------------------------------------------------------------


class V2Client:
    """Pushes and reads through a Harbor-style ``/v2/`` with the token dance (urllib, sync).

    Meant for seeding tests quickly (many small manifests); images with real layers are easier
    with skopeo (:mod:`tests.support.skopeo`). ``creds`` are Basic credentials for the token
    service; ``None`` is anonymous.
    """

    def __init__(self, base_url: str, creds: tuple[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.creds = creds
        self._tokens: dict[str, str] = {}

    def token(self, scope: str) -> str:
        if scope not in self._tokens:
            query = urllib.parse.urlencode({"service": SERVICE, "scope": scope})
            req = urllib.request.Request(f"{self.base_url}/service/token?{query}")
            if self.creds:
                raw = base64.b64encode(f"{self.creds[0]}:{self.creds[1]}".encode()).decode()
                req.add_header("Authorization", f"Basic {raw}")
            with urllib.request.urlopen(req, timeout=30) as r:
                self._tokens[scope] = json.loads(r.read())["token"]
        return self._tokens[scope]

    def request(
        self, method: str, path: str, *, scope: str, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One request with a bearer token for ``scope``; returns (status, headers, body)."""
        url = path if path.startswith("http") else self.base_url + path
        req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
        req.add_header("Authorization", f"Bearer {self.token(scope)}")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, dict(r.headers.items()), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers.items()), e.read()

    def push_blob(self, repo: str, data: bytes) -> str:
        """Upload a blob (skipped when present); returns its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        scope = f"repository:{repo}:pull,push"
        status, _, _ = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=scope)
        if status == 200:
            return digest
        status, headers, body = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope, data=b"")
        if status != 202:
            raise HarborPushError(status, body)
        location = headers["Location"]
        sep = "&" if "?" in location else "?"
        status, _, body = self.request(
            "PUT",
            f"{location}{sep}digest={urllib.parse.quote(digest)}",
            scope=scope,
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if status != 201:
            raise HarborPushError(status, body)
        return digest

    def push_manifest(self, repo: str, reference: str, raw: bytes, media_type: str) -> str:
        """PUT a manifest by tag or digest; returns its digest."""
        status, headers, body = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            scope=f"repository:{repo}:pull,push",
            data=raw,
            headers={"Content-Type": media_type},
        )
        if status != 201:
            raise HarborPushError(status, body)
        return headers.get("Docker-Content-Digest", "")

    def push_image(
        self, repo: str, reference: str | None, *, seed: int = 0, annotations: dict[str, str] | None = None
    ) -> tuple[str, bytes]:
        """A tiny OCI image (one small layer, real config); returns (digest, manifest bytes).

        ``reference=None`` pushes it by digest only: an untagged artifact."""
        layer = json.dumps({"ferry-test-layer": seed}).encode()
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": "2024-01-02T03:04:05Z",
                "config": {"Labels": {"seed": str(seed)}},
                "rootfs": {"type": "layers", "diff_ids": []},
            }
        ).encode()
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": self.push_blob(repo, config), "size": len(config)},
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": self.push_blob(repo, layer),
                    "size": len(layer),
                }
            ],
        }
        if annotations:
            manifest["annotations"] = annotations
        raw = json.dumps(manifest).encode()
        reference = reference or "sha256:" + hashlib.sha256(raw).hexdigest()
        return self.push_manifest(repo, reference, raw, OCI_MANIFEST), raw

    def get_manifest(self, repo: str, reference: str) -> tuple[int, dict[str, str], bytes]:
        accept = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST, SCHEMA1_SIGNED])
        return self.request(
            "GET", f"/v2/{repo}/manifests/{reference}", scope=f"repository:{repo}:pull", headers={"Accept": accept}
        )


class HarborPushError(RuntimeError):
    """A push through ``/v2/`` was refused."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"{status}: {body[:500].decode(errors='replace')}")
        self.status = status
        self.body = body


def iter_pages(
    fetch: Callable[[str], tuple[int, dict[str, str], Any]], first: str
) -> Iterator[tuple[int, dict[str, str], Any]]:
    """Follow Harbor's ``Link: <…>; rel="next"`` from ``first`` (a path with query)."""
    url: str | None = first
    while url:
        status, headers, body = fetch(url)
        yield status, headers, body
        url = None
        for part in (headers.get("Link") or "").split(","):
            m = re.match(r'\s*<([^>]*)>\s*;\s*rel="next"', part)
            if m:
                url = m.group(1)
