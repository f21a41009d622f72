"""A Docker-registry token server for tests (stdlib HTTP server on 127.0.0.1, background thread).

``GET /token?service=S&scope=repository:NAME:pull,push&scope=…`` with optional Basic auth.
A permission table decides what is granted::

    {"alice": {"*": ["pull", "push", "delete"]}, "bob": {"*": ["pull"]}, "anonymous": {"public/*": ["pull"]}}

Keys are user names or ``"anonymous"``; inner keys are ``fnmatch`` globs on the repository name
(other scope types match ``"TYPE:NAME"``, e.g. ``"registry:catalog"``); ``"*"`` as an action grants
every requested action. Requested actions that are not allowed are dropped silently (like
Harbor and Docker Hub); a wrong password (or unknown user) is 401. Every request is recorded
as a :class:`TokenRequest` (never the password).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fnmatch
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.pki import TokenSigner

__all__ = ["TokenRequest", "TokenServer", "parse_scope"]

Permissions = dict[str, dict[str, list[str]]]


def parse_scope(scope: str) -> dict[str, Any] | None:
    """``"repository:a/b:pull,push"`` → ``{"type","name","actions"}`` (None when malformed)."""
    type_, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not (sep and sep2 and type_ and name):
        return None
    return {"type": type_, "name": name, "actions": [a for a in actions.split(",") if a]}


@dataclass
class TokenRequest:
    """What one request to the token server asked for and got."""

    method: str
    path: str
    service: str | None
    scopes: list[str]
    account: str | None  # the ``account`` query parameter
    basic_auth: bool  # an ``Authorization: Basic`` header was present
    username: str | None  # user from Basic auth (password never kept)
    status: int = 0
    granted: list[dict[str, Any]] = field(default_factory=list)


class TokenServer:
    """Issues JWTs signed by ``signer`` for registries configured with a matching ``TokenAuth``.

    Use as a context manager or call :meth:`start`/:meth:`stop`. ``expires_in`` and
    ``force_status`` may be changed while running (e.g. short-lived tokens, token-service outage).
    Note: distribution 2.8 accepts tokens up to 60 s past ``exp`` (clock-skew leeway); mint
    ``expires_in <= -61`` for a token the registry refuses as expired.
    """

    def __init__(
        self,
        signer: TokenSigner,
        *,
        service: str = "ferry-test-registry",
        issuer: str = "ferry-test-issuer",
        users: dict[str, str] | None = None,
        permissions: Permissions | None = None,
        expires_in: int = 300,
        header: str = "x5c",
    ) -> None:
        self.signer = signer
        self.service = service
        self.issuer = issuer
        self.users = dict(users or {})
        self.permissions: Permissions = dict(permissions or {})
        self.expires_in = expires_in
        self.header = header
        self.force_status: int | None = None
        self.requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> TokenServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._handle(self)

            def do_POST(self) -> None:  # Harbor's token endpoint is GET only
                server._record(self, None, [], None, False, None, 405, [])
                server._reply(self, 405, {"errors": [{"code": "METHOD_NOT_ALLOWED"}]})

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="token-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "token server not started"
        return self._httpd.server_address[1]

    @property
    def realm(self) -> str:
        """The ``auth.token.realm`` URL for the registry config."""
        return f"http://127.0.0.1:{self.port}/token"

    def clear(self) -> None:
        """Forget recorded requests."""
        with self._lock:
            self.requests.clear()

    # -- policy ------------------------------------------------------------------------------
    def allowed(self, user: str, type_: str, name: str) -> set[str]:
        """Actions ``user`` (or ``"anonymous"``) may perform on resource ``type_:name``."""
        subject = name if type_ == "repository" else f"{type_}:{name}"
        allowed: set[str] = set()
        for pattern, actions in self.permissions.get(user, {}).items():
            if fnmatch.fnmatchcase(subject, pattern):
                allowed.update(actions)
        return allowed

    def grant(self, user: str, scopes: list[str]) -> list[dict[str, Any]]:
        granted: list[dict[str, Any]] = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            allowed = self.allowed(user, parsed["type"], parsed["name"])
            actions = [a for a in parsed["actions"] if "*" in allowed or a in allowed]
            if actions:
                granted.append({**parsed, "actions": actions})
        return granted

    # -- HTTP --------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(h.path)
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        service = q.get("service", [None])[0]
        scopes = [s for value in q.get("scope", []) for s in value.split(" ") if s]
        account = q.get("account", [None])[0]
        auth = h.headers.get("Authorization", "")
        basic = auth[:6].lower() == "basic "
        username: str | None = None
        password: str | None = None
        if basic:
            try:
                username, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                username, password = "", None

        def done(status: int, granted: list[dict[str, Any]]) -> None:
            self._record(h, service, scopes, account, basic, username, status, granted)

        # Each request is recorded before it is answered: a client may assert on it as soon as it has
        # the answer.
        if url.path != "/token":
            done(404, [])
            return self._reply(h, 404, {"errors": [{"code": "NOT_FOUND"}]})
        if self.force_status is not None:
            done(self.force_status, [])
            return self._reply(h, self.force_status, {"errors": [{"code": "FORCED", "message": "forced by test"}]})
        if basic and (username not in self.users or self.users[username] != password):
            done(401, [])
            return self._reply(h, 401, {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})
        user = username if basic and username else "anonymous"
        granted = self.grant(user, scopes)
        now = dt.datetime.now(dt.UTC)
        token = self.signer.issue(
            user if user != "anonymous" else "",
            service or self.service,
            granted,
            expires_in=self.expires_in,
            issuer=self.issuer,
            header=self.header,
        )
        done(200, granted)
        return self._reply(
            h,
            200,
            {
                "token": token,
                "access_token": token,
                "expires_in": self.expires_in,
                "issued_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )

    def _record(
        self,
        h: BaseHTTPRequestHandler,
        service: str | None,
        scopes: list[str],
        account: str | None,
        basic: bool,
        username: str | None,
        status: int,
        granted: list[dict[str, Any]],
    ) -> None:
        rec = TokenRequest(
            h.command, h.path.split("?", 1)[0], service, scopes, account, basic, username, status, granted
        )
        with self._lock:
            self.requests.append(rec)

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        if status == 401:
            h.send_header("WWW-Authenticate", 'Basic realm="ferry-test-token-server"')
        h.end_headers()
        h.wfile.write(data)
