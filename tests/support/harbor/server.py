"""The Harbor test server: its state (users, projects, sessions), seeding, lifecycle and the
HTTP front door that sends ``/v2/`` to the registry proxy, ``/service/token`` to the token
service and ``/api/v2.0/…`` through the routing table of the resource modules."""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.support.harbor import (
    allowlist,
    artifacts,
    chartmuseum,
    deletes,
    immutable,
    labels,
    members,
    metadata,
    projects,
    quotas,
    repositories,
    retention,
    robots,
    system,
    users,
    webhooks,
)
from tests.support.harbor.client import V2Client
from tests.support.harbor.common import (
    ADMIN_PASSWORD,
    API,
    HARBOR_VERSION,
    ISSUER,
    READ_ONLY,
    ROLES,
    SERVICE,
    WRITE_METHODS,
    HarborError,
    forbidden,
    unauthorized,
)
from tests.support.harbor.model import (
    ROBOT_PREFIX,
    Caller,
    HarborGroup,
    HarborProject,
    HarborRobot,
    HarborUser,
    RequestRecord,
)
from tests.support.harbor.proxy import proxy
from tests.support.harbor.routes import Router
from tests.support.harbor.storage import Storage
from tests.support.harbor.tokens import grant, mint, token_endpoint
from tests.support.pki import TokenSigner
from tests.support.registry import Registry, TokenAuth, start_registry

#: Every API route, module by module (a resource kind adds its module here).
ROUTES = [
    *system.ROUTES,
    *projects.ROUTES,
    *repositories.ROUTES,
    *deletes.ROUTES,
    *artifacts.ROUTES,
    *quotas.ROUTES,
    *metadata.ROUTES,
    *members.ROUTES,
    *users.ROUTES,
    *robots.ROUTES,
    *retention.ROUTES,
    *immutable.ROUTES,
    *labels.ROUTES,
    *webhooks.ROUTES,
    *allowlist.ROUTES,
]


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
        auth_mode: str = "db_auth",
        sid_cookie: bool = True,
        token_expires_in: int = 1800,
        harbor_version: str = HARBOR_VERSION,
    ) -> None:
        self.workdir = Path(workdir)
        # -- charts (issue 11): a Harbor before 2.8 has ChartMuseum; seed it with self.chartmuseum.add(…)
        self.harbor_version = harbor_version
        self.chartmuseum = chartmuseum.ChartMuseum() if chartmuseum.has_chartmuseum(harbor_version) else None
        # -- end charts
        self.project_creation_restriction = project_creation_restriction
        self.auth_mode = auth_mode
        self.read_only = False
        self.sid_cookie = sid_cookie
        self.token_expires_in = token_expires_in
        self.request_counts: collections.Counter[str] = collections.Counter()
        self.request_log: list[RequestRecord] = []
        self.registry: Registry | None = None
        self.signer: TokenSigner | None = None
        self.port = 0
        self.host = ""
        self.url = ""
        self.lock = threading.RLock()
        self.users: dict[str, HarborUser] = {}
        self.projects: dict[str, HarborProject] = {}
        self.groups: dict[int, HarborGroup] = {}
        self.robots: dict[int, HarborRobot] = {}
        self.labels: dict[int, dict[str, Any]] = {}  # id → {name, description, color, scope, project_id…}
        self.artifact_labels: dict[tuple[str, str], list[int]] = {}  # (repository, digest) → label ids
        self.retentions: dict[int, dict[str, Any]] = {}  # id → RetentionPolicy JSON (without id)
        self.immutable_rules: dict[int, list[dict[str, Any]]] = {}  # project id → ImmutableRule JSON
        self.webhooks: dict[int, dict[str, Any]] = {}  # id → WebhookPolicy JSON
        self.descriptions: dict[str, str] = {}  # repository → description
        self.system_allowlist: dict[str, Any] = {"items": [], "expires_at": None, "updated": 0.0}
        self._sessions: dict[str, str | None] = {}  # sid → username
        self._csrf = secrets.token_urlsafe(24)
        self._ids: dict[tuple[str, ...], int] = {}
        self._counters: collections.Counter[str] = collections.Counter()
        # start_registry keeps its storage in <workdir>/storage
        self.storage = Storage(self.workdir / "registry" / "storage" / "docker" / "registry" / "v2")
        self.pull_counts: collections.Counter[str] = collections.Counter()
        self.pull_times: dict[tuple[str, str], float] = {}
        self._router = Router(ROUTES)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.upstream: aiohttp.ClientSession | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None

        self.add_user("admin", ADMIN_PASSWORD, sysadmin=True)
        for name, (password, sysadmin) in (users or {}).items():
            if name == "admin":
                with self.lock:
                    self.users["admin"].password = password
                    self.users["admin"].sysadmin = sysadmin
            else:
                self.add_user(name, password, sysadmin=sysadmin)
        if library:
            self.create_project("library", public=True)
        for name, kwargs in (projects or {}).items():
            self.create_project(name, **kwargs)

    # -- seeding (Python API) -----------------------------------------------------------------
    def add_user(self, name: str, password: str, *, sysadmin: bool = False) -> HarborUser:
        """Add a local (db_auth) user."""
        with self.lock:
            if name in self.users:
                raise ValueError(f"user {name} exists")
            user = HarborUser(self.next_id("user"), name, password, sysadmin, time.time())
            self.users[name] = user
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
        with self.lock:
            if name in self.projects:
                raise ValueError(f"project {name} exists")
            owner_user = self.users[owner]
            md = {"public": "true" if public else "false", **(metadata or {})}
            project = HarborProject(
                project_id=self.next_id("project"),
                name=name,
                owner=owner_user,
                metadata=md,
                storage_limit=storage_limit,
                created=time.time(),
                quota_id=self.next_id("quota"),
            )
            project.members[owner_user.user_id] = ROLES["projectAdmin"]
            project.member_ids[("u", owner_user.user_id)] = self.next_id("member")
            self.projects[name] = project
        for user, role in (members or {}).items():
            self.add_member(name, user, role)
        return project

    def add_member(self, project: str, user: str, role: str) -> None:
        """Make ``user`` a member of ``project`` with ``role`` (projectAdmin, maintainer,
        developer, guest, limitedGuest)."""
        with self.lock:
            p, u = self.projects[project], self.users[user]
            p.members[u.user_id] = ROLES[role]
            p.member_ids.setdefault(("u", u.user_id), self.next_id("member"))

    def add_group(self, name: str, group_type: int = 1, ldap_group_dn: str = "") -> HarborGroup:
        """Add a user group (1 LDAP, 2 HTTP, 3 OIDC)."""
        with self.lock:
            if any(g.name == name and g.group_type == group_type for g in self.groups.values()):
                raise ValueError(f"group {name} exists")
            group = HarborGroup(self.next_id("group"), name, group_type, ldap_group_dn)
            self.groups[group.group_id] = group
            return group

    def add_user_to_group(self, user: str, group: str) -> None:
        """Put ``user`` in the group named ``group`` (as LDAP/OIDC would): group roles apply to it."""
        with self.lock:
            self.users[user].group_ids.add(next(g.group_id for g in self.groups.values() if g.name == group))

    def add_group_member(self, project: str, group: str, role: str) -> None:
        """Make the user group named ``group`` a member of ``project`` with ``role``."""
        with self.lock:
            g = next(g for g in self.groups.values() if g.name == group)
            p = self.projects[project]
            p.group_members[g.group_id] = ROLES[role]
            p.member_ids.setdefault(("g", g.group_id), self.next_id("member"))

    def add_robot(
        self,
        name: str,
        secret: str,
        *,
        project: str | None = None,
        access: Iterable[tuple[str, str]] = (("repository", "pull"),),
        permissions: list[dict[str, Any]] | None = None,
        description: str = "",
        duration: int = -1,
        disabled: bool = False,
        expires_at: int | None = None,
    ) -> HarborRobot:
        """Add a robot account with a known secret: project level when ``project`` is given
        (``access`` pairs on that project), else system level (``permissions`` as the API takes
        them, default: ``access`` on every project, namespace ``*``)."""
        if permissions is None:
            acc = [{"resource": r, "action": a} for r, a in access]
            permissions = [{"kind": "project", "namespace": project or "*", "access": acc}]
        now = time.time()
        with self.lock:
            pid = self.projects[project].project_id if project else 0
            stored = f"{project}+{name}" if project else name
            if expires_at is None:
                expires_at = -1 if duration == -1 else int(now) + duration * 86400
            robot = HarborRobot(
                robot_id=self.next_id("robot"), name=stored, level="project" if project else "system",
                project_id=pid, description=description, duration=duration, expires_at=expires_at,
                disabled=disabled, permissions=permissions, secret=secret, created=now, updated=now,
                creator_type="local", creator_ref=self.users["admin"].user_id,
            )
            self.robots[robot.robot_id] = robot
            return robot

    def robot(self, full_name: str) -> HarborRobot:
        """A robot by the name it logs in with (``robot$team+ci``)."""
        with self.lock:
            return next(r for r in self.robots.values() if r.full_name == full_name)

    def add_label(
        self, name: str, *, project: str | None = None, color: str = "", description: str = ""
    ) -> int:
        """A global label, or a project label when ``project`` is given; returns its id."""
        now = time.time()
        with self.lock:
            label_id = self.next_id("label")
            self.labels[label_id] = {
                "name": name, "description": description, "color": color,
                "scope": "p" if project else "g",
                "project_id": self.projects[project].project_id if project else 0,
                "created": now, "updated": now,
            }
            return label_id

    def attach_label(self, repository: str, digest: str, label_id: int) -> None:
        """Put a label on the artifact ``repository@digest``."""
        with self.lock:
            ids = self.artifact_labels.setdefault((repository, digest), [])
            if label_id not in ids:
                ids.append(label_id)

    def set_retention(self, project: str, policy: dict[str, Any]) -> int:
        """Give ``project`` a retention policy (swagger ``RetentionPolicy``, without id/scope)."""
        with self.lock:
            p = self.projects[project]
            rid = self.next_id("retention")
            rules = [{**r, "id": i + 1} for i, r in enumerate(policy.get("rules") or [])]
            self.retentions[rid] = {
                "algorithm": policy.get("algorithm", "or"),
                "rules": rules,
                "trigger": policy.get("trigger") or {"kind": "Schedule", "settings": {"cron": ""}, "references": {}},
                "scope": {"level": "project", "ref": p.project_id},
            }
            p.metadata["retention_id"] = str(rid)
            return rid

    def add_immutable_rule(
        self, project: str, *, repositories: str = "**", tags: str = "**", disabled: bool = False
    ) -> int:
        """An immutable tag rule on ``project`` (doublestar patterns, as the UI creates them)."""
        with self.lock:
            p = self.projects[project]
            rule_id = self.next_id("immutable")
            rules = self.immutable_rules.setdefault(p.project_id, [])
            rules.append({
                "id": rule_id, "priority": 0, "disabled": disabled, "action": "immutable",
                "template": "immutable_template", "params": {},
                "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": tags}],
                "scope_selectors": {
                    "repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": repositories}]
                },
            })
            return rule_id

    def add_webhook(self, project: str, name: str, address: str, *, event_types: Iterable[str] = ("PUSH_ARTIFACT",),
                    auth_header: str = "", enabled: bool = True) -> int:
        """A webhook policy on ``project`` with one http target."""
        now = time.time()
        with self.lock:
            wid = self.next_id("webhook")
            self.webhooks[wid] = {
                "name": name, "description": "", "project_id": self.projects[project].project_id,
                "targets": [{"type": "http", "address": address, "auth_header": auth_header,
                             "skip_cert_verify": False, "payload_format": "Default"}],
                "event_types": list(event_types), "creator": "admin", "enabled": enabled,
                "created": now, "updated": now,
            }
            return wid

    def project(self, name: str) -> HarborProject:
        with self.lock:
            return self.projects[name]

    def user(self, name: str) -> HarborUser:
        with self.lock:
            return self.users[name]

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
        with self.lock:
            user = self.users.get(username) if username else None
        return mint(self, Caller(user), grant(self, Caller(user), scopes))

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
        assert self.registry.root == self.workdir / "registry" / "storage"
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
        self.upstream = aiohttp.ClientSession(
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
        if self.upstream is not None:
            await self.upstream.close()

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
    def next_id(self, kind: str) -> int:
        with self.lock:
            self._counters[kind] += 1
            return self._counters[kind]

    def id_of(self, *key: str) -> int:
        """A stable integer ID for an object first seen now (repositories, artifacts, tags…)."""
        with self.lock:
            if key not in self._ids:
                self._ids[key] = self.next_id(key[0])
            return self._ids[key]

    def caller(self, request: web.Request) -> Caller:
        """Basic credentials first (wrong ones silently mean anonymous, as on Harbor), then a
        session cookie."""
        sid = request.cookies.get("sid")
        with self.lock:
            session = sid if sid in self._sessions else None
            auth = request.headers.get("Authorization", "")
            if auth[:6].lower() == "basic ":
                try:
                    name, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    return Caller(None, session)
                if name.startswith(ROBOT_PREFIX):
                    return Caller(None, session, self._robot_login(name, password))
                user = self.users.get(name)
                if user is not None and secrets.compare_digest(user.password, password):
                    return Caller(user, session)
                return Caller(None, session)
            if session is not None and self._sessions[session]:
                return Caller(self.users.get(self._sessions[session] or ""), session)
            return Caller(None, session)

    def _robot_login(self, name: str, secret: str) -> HarborRobot | None:
        """Harbor's robot security generator: a wrong secret, a disabled or an expired robot
        is no identity at all (the request goes on as anonymous)."""
        robot = next((r for r in self.robots.values() if r.full_name == name), None)
        if robot is None or not secrets.compare_digest(robot.secret, secret) or robot.disabled:
            return None
        if robot.expires_at != -1 and robot.expires_at <= time.time():
            return None
        return robot

    def require_access(self, caller: Caller, name_or_id: str, resource: str, action: str, *,
                       is_name: bool = False) -> HarborProject:
        """Harbor's RequireProjectAccess: the project must exist and be visible (see
        :meth:`require_project`) and the caller's role or robot policies allow the action."""
        project = self.require_project(caller, name_or_id, is_name=is_name)
        if not caller.allows(project, resource, action) and not (
            action in ("read", "list") and project.public and resource in ("project", "metadata", "repository",
                                                                         "label", "immutable-tag")
        ):
            raise forbidden() if caller.authenticated else unauthorized()
        return project

    def find_project(self, name_or_id: str, *, is_name: bool = False) -> HarborProject | None:
        with self.lock:
            if not is_name and name_or_id.isdigit():
                return next((p for p in self.projects.values() if p.project_id == int(name_or_id)), None)
            return self.projects.get(name_or_id)

    def require_project(self, caller: Caller, name_or_id: str, *, is_name: bool = False) -> HarborProject:
        """Harbor's RequireProjectAccess with handleProjectNotFound: a missing project is 404
        only for sysadmins; others get the same 401/403 as for a private project they cannot
        see, so project names cannot be probed."""
        project = self.find_project(name_or_id, is_name=is_name)
        if project is None:
            if caller.sysadmin:
                raise HarborError(404, f"project {name_or_id} not found")
            raise forbidden() if caller.authenticated else unauthorized()
        if not caller.can_read(project):
            raise forbidden() if caller.authenticated else unauthorized()
        return project

    # -- what handlers share -------------------------------------------------------------------
    def visible_projects(self, caller: Caller) -> list[HarborProject]:
        with self.lock:
            return [p for p in self.projects.values() if caller.can_read(p)]

    def repo_names(self, project: str | None = None) -> list[str]:
        """Repositories with at least one manifest, under existing projects."""
        with self.lock:
            projects = [project] if project else list(self.projects)
        return self.storage.repo_names(projects)

    # -- HTTP ----------------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.raw_path.split("?", 1)[0]
        self.request_counts[path] += 1
        status = 500
        try:
            if path == "/v2" or path.startswith("/v2/"):
                resp = await proxy(self, request)
            elif path == "/service/token":
                resp = token_endpoint(self, request)
            elif path.startswith(API + "/"):
                resp = await self._api(request, path)
            elif path.startswith((chartmuseum.API_PREFIX, chartmuseum.REPO_PREFIX)):  # charts (issue 11)
                resp = await chartmuseum.handle(self, request, path)
            else:
                resp = HarborError(404, f"path {path} was not found").response()
            status = resp.status
            return resp
        finally:
            self.request_log.append(RequestRecord(request.method, path, request.query_string, status))

    def read_only_refuses(self, request: web.Request, path: str) -> bool:
        """Harbor's readonly middleware: every write but ``PUT /configurations`` is refused
        while ``read_only`` is set (the token service is a GET)."""
        if not self.read_only or request.method not in WRITE_METHODS:
            return False
        return not (request.method == "PUT" and path.rstrip("/") == API + "/configurations")

    def csrf_violation(self, request: web.Request, caller: Caller) -> bool:
        return (
            request.method in WRITE_METHODS
            and caller.session is not None
            and request.headers.get("X-Harbor-CSRF-Token") != self._csrf
        )

    async def _api(self, request: web.Request, path: str) -> web.StreamResponse:
        caller = self.caller(request)
        try:
            if self.csrf_violation(request, caller):
                raise HarborError(403, "CSRF token invalid")
            if self.read_only_refuses(request, path):
                raise READ_ONLY
            body = await request.read() if request.method in ("POST", "PUT", "PATCH") else b""
            # storage scans run off the loop, so /v2/ streams are not stalled by inventory calls
            resp = await asyncio.to_thread(self._router.dispatch, self, request, path, caller, body)
        except HarborError as e:
            resp = e.response()
        if self.sid_cookie:
            if caller.session is None:
                sid = secrets.token_hex(16)
                with self.lock:
                    self._sessions[sid] = caller.username or None
                resp.set_cookie("sid", sid, path="/", httponly=True)
            if request.method == "GET":
                resp.headers["X-Harbor-CSRF-Token"] = self._csrf
        resp.headers["X-Request-Id"] = request.headers.get("X-Request-Id") or secrets.token_hex(16)
        return resp

