"""Start real CNCF distribution registries (Debian ``docker-registry`` 2.8) for tests.

:func:`start_registry` writes a config, starts ``docker-registry serve`` bound to
``127.0.0.1:<free port>`` and waits until ``/v2/`` answers. The registry's Apache-style access
log (stdout) goes to ``access_log_path`` and is parsed by :meth:`Registry.requests`; its JSON
application log (stderr, level info) goes to ``log_path``.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import re
import secrets
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

import bcrypt
import yaml

from tests.support.images import OCI_MANIFEST, Layout
from tests.support.pki import CA, TokenSigner

__all__ = [
    "ALICE",
    "BOB",
    "HTTPReply",
    "Htpasswd",
    "Registry",
    "RegistryStartError",
    "RequestRecord",
    "TokenAuth",
    "start_registry",
]

REGISTRY_BIN = "docker-registry"
LOOPBACK = "127.0.0.1"
READINESS_UA = "ferry-test-readiness-probe"
#: Every answer of a registry started here carries its own value of this header, so that the readiness
#: probe knows it reached this process and not another one that took the port first (parallel workers).
INSTANCE_HEADER = "X-Ferry-Test-Instance"

#: Credentials the conftest fixtures configure: ``basic_registry`` knows alice; the token server
#: knows alice (pull/push/delete everywhere, catalog) and bob (pull only).
ALICE: tuple[str, str] = ("alice", "secret")
BOB: tuple[str, str] = ("bob", "bobpass")


class RegistryStartError(RuntimeError):
    """The registry process exited or never answered ``/v2/``."""


@dataclass(frozen=True)
class Htpasswd:
    """htpasswd (bcrypt) auth with these users and passwords."""

    users: dict[str, str] = field(default_factory=lambda: {"alice": "secret"})
    realm: str = "ferry-test-registry"

    def write(self, path: Path) -> Path:
        """Write the bcrypt htpasswd file (cost 5: fast, still accepted by distribution)."""
        lines = [
            f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=5, prefix=b'2a')).decode()}"
            for user, pw in self.users.items()
        ]
        path.write_text("\n".join(lines) + "\n")
        return path


@dataclass(frozen=True)
class TokenAuth:
    """Bearer token auth: the registry trusts tokens signed by ``signer`` for ``service``/``issuer``."""

    realm: str
    service: str
    issuer: str
    signer: TokenSigner


@dataclass(frozen=True)
class RequestRecord:
    """One line of the registry access log."""

    method: str
    path: str  # without the query string
    query: str
    status: int
    size: int
    user_agent: str

    @property
    def params(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.query, keep_blank_values=True)


# 127.0.0.1 - - [28/Nov/2026:10:05:03 +0000] "GET /v2/ HTTP/1.1" 401 87 "" "Python-urllib/3.11"
_ACCESS_RE = re.compile(
    r'^\S+ \S+ \S+ \[[^\]]*\] "(?P<method>[A-Z]+) (?P<uri>\S+) [^"]*" (?P<status>\d{3}) (?P<size>\d+|-)'
    r'(?: "(?P<referer>[^"]*)" "(?P<ua>[^"]*)")?'
)


@dataclass
class Registry:
    """A running registry process and where its files are."""

    host: str
    url: str
    root: Path
    workdir: Path
    config_path: Path
    log_path: Path
    access_log_path: Path
    process: subprocess.Popen[bytes]
    auth: Htpasswd | TokenAuth | None = None
    ca: CA | None = None
    cert_dir: Path | None = None  # certs.d-style dir for skopeo --cert-dir (with client cert under mTLS)
    client_cert: tuple[Path, Path] | None = None  # (cert, key) accepted under mTLS
    instance: str = ""  # the value of INSTANCE_HEADER in this registry's answers

    @property
    def port(self) -> int:
        return int(self.host.rsplit(":", 1)[1])

    @property
    def tls(self) -> bool:
        return self.ca is not None

    def ref(self, name: str) -> str:
        """``host:port/name`` (``name`` may carry ``:tag`` or ``@digest``)."""
        return f"{self.host}/{name}"

    def ssl_context(self, *, client: bool = True) -> ssl.SSLContext | None:
        """A client SSL context trusting the test CA (and presenting the client cert under mTLS)."""
        if self.ca is None:
            return None
        ctx = ssl.create_default_context(cafile=str(self.ca.cert_path))
        if client and self.client_cert is not None:
            ctx.load_cert_chain(str(self.client_cert[0]), str(self.client_cert[1]))
        return ctx

    def requests(self, since: int = 0) -> list[RequestRecord]:
        """Parsed access log, oldest first, without readiness probes; ``since`` skips that many (see :meth:`mark`)."""
        records = []
        try:
            text = self.access_log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        for line in text.splitlines():
            m = _ACCESS_RE.match(line)
            if not m or m["ua"] == READINESS_UA:
                continue
            path, _, query = m["uri"].partition("?")
            size = m["size"]
            records.append(
                RequestRecord(
                    method=m["method"],
                    path=path,
                    query=query,
                    status=int(m["status"]),
                    size=0 if size == "-" else int(size),
                    user_agent=m["ua"] or "",
                )
            )
        return records[since:]

    def log_records(self) -> list[dict]:
        """The registry's JSON application log (level info and up), one dict per line."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def mark(self) -> int:
        """Number of requests logged so far; pass it to :meth:`requests` to see only later ones."""
        return len(self.requests())

    def blob_upload_puts(self, since: int = 0) -> list[RequestRecord]:
        """Successful blob upload completions (``PUT …/blobs/uploads/…`` answered 201)."""
        return [
            r for r in self.requests(since) if r.method == "PUT" and "/blobs/uploads/" in r.path and r.status == 201
        ]

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        creds: tuple[str, str] | None = None,
    ) -> HTTPReply:
        """One raw HTTP request to the registry (``path`` like ``/v2/…``), answering Basic or Bearer
        challenges with ``creds`` (token fetched from the realm; scope from the challenge or the path).

        Never raises for HTTP status codes; look at ``.status``.
        """
        url = path if path.startswith(("http://", "https://")) else self.url + path
        hdrs = dict(headers or {})
        reply = _send(method, url, body, hdrs, self.ssl_context())
        if reply.status != 401:
            return reply
        challenge = reply.headers.get("WWW-Authenticate", "")
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            if creds is None:
                return reply
            hdrs["Authorization"] = "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
        elif scheme.lower() == "bearer":
            fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
            scope = fields.get("scope") or _scope_for(method, urllib.parse.urlsplit(url).path)
            query = {"service": fields.get("service", "")}
            if scope:
                query["scope"] = scope
            token_headers = {}
            if creds is not None:
                token_headers["Authorization"] = "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
            tok = _send("GET", fields["realm"] + "?" + urllib.parse.urlencode(query), None, token_headers, None)
            if tok.status != 200:
                return tok
            answer = json.loads(tok.body)
            hdrs["Authorization"] = "Bearer " + (answer.get("token") or answer["access_token"])
        else:
            return reply
        return _send(method, url, body, hdrs, self.ssl_context())

    def push_exact(
        self,
        layout: Layout | Path,
        ref: str,
        repo: str,
        tag: str | None = None,
        *,
        creds: tuple[str, str] | None = None,
    ) -> str:
        """Push one tagged image/index of an OCI layout with plain HTTP requests, byte-exact.

        For what skopeo 1.9 cannot push unchanged (index descriptors carrying ``artifactType``,
        e.g. a referrers fallback index). Children go by digest, the top manifest by ``tag``
        (default ``ref``). Returns the top manifest digest.
        """
        lay = layout if isinstance(layout, Layout) else Layout(Path(layout))
        top = lay.descriptor(ref)

        def push_manifest(digest: str, reference: str) -> None:
            data = lay.read_blob(digest)
            m = json.loads(data)
            for child in m.get("manifests", []):
                push_manifest(child["digest"], child["digest"])
            for blob in [*([m["config"]] if "config" in m else []), *m.get("layers", [])]:
                self._push_blob(repo, blob["digest"], lay.blob_path(blob["digest"]), creds)
            media_type = m.get("mediaType") or (top["mediaType"] if digest == top["digest"] else OCI_MANIFEST)
            r = self.request(
                "PUT", f"/v2/{repo}/manifests/{reference}", body=data, headers={"Content-Type": media_type}, creds=creds
            )
            if r.status != 201:
                raise RuntimeError(f"PUT manifest {reference}: {r.status} {r.body[:500]!r}")

        push_manifest(top["digest"], tag or ref)
        return top["digest"]

    def _push_blob(self, repo: str, digest: str, path: Path, creds: tuple[str, str] | None) -> None:
        if self.request("HEAD", f"/v2/{repo}/blobs/{digest}", creds=creds).status == 200:
            return
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/", creds=creds)
        if r.status != 202:
            raise RuntimeError(f"POST upload {digest}: {r.status} {r.body[:500]!r}")
        location = urllib.parse.urljoin(self.url + "/", r.headers["Location"])
        sep = "&" if "?" in location else "?"
        r = self.request(
            "PUT",
            f"{location}{sep}digest={urllib.parse.quote(digest)}",
            body=path.read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
            creds=creds,
        )
        if r.status != 201:
            raise RuntimeError(f"PUT blob {digest}: {r.status} {r.body[:500]!r}")

    def stop(self, timeout: float = 10) -> None:
        """Terminate by pid, wait, then kill. Idempotent."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class HTTPReply:
    """Status, headers and body of one raw HTTP exchange."""

    status: int
    headers: Message
    body: bytes


def _send(method: str, url: str, body: bytes | None, headers: dict[str, str], ctx: ssl.SSLContext | None) -> HTTPReply:
    """One request, redirects not followed, HTTP errors returned as replies."""
    opener = urllib.request.build_opener(_NoRedirect(), urllib.request.HTTPSHandler(context=ctx))
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with opener.open(req, timeout=30) as resp:
            return HTTPReply(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as e:
        return HTTPReply(e.code, e.headers, e.read())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _scope_for(method: str, path: str) -> str:
    m = re.match(r"^/v2/(.+?)/(manifests|blobs|tags)/", path)
    if not m:
        return "registry:catalog:*" if path.startswith("/v2/_catalog") else ""
    actions = "pull" if method in ("GET", "HEAD") else ("delete" if method == "DELETE" else "pull,push")
    return f"repository:{m[1]}:{actions}"


_LIVE: weakref.WeakSet[subprocess.Popen[bytes]] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    """Safety net: terminate registries a crashed or interrupted test run did not stop."""
    for proc in list(_LIVE):
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _config(
    port: int,
    instance: str,
    root: Path,
    workdir: Path,
    *,
    auth: Htpasswd | TokenAuth | None,
    tls: CA | None,
    server_cert: tuple[Path, Path] | None,
    mtls: bool,
    delete: bool,
    schema1: bool,
    relative_urls: bool,
) -> dict:
    http: dict = {
        "addr": f"{LOOPBACK}:{port}",
        "secret": secrets.token_hex(16),
        "relativeurls": relative_urls,
        "headers": {"X-Content-Type-Options": ["nosniff"], INSTANCE_HEADER: [instance]},
    }
    if tls is not None:
        assert server_cert is not None
        http["tls"] = {"certificate": str(server_cert[0]), "key": str(server_cert[1])}
        if mtls:
            http["tls"]["clientcas"] = [str(tls.cert_path)]
    config: dict = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "json", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(root)},
            "delete": {"enabled": delete},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": http,
    }
    if isinstance(auth, Htpasswd):
        config["auth"] = {"htpasswd": {"realm": auth.realm, "path": str(auth.write(workdir / "htpasswd"))}}
    elif isinstance(auth, TokenAuth):
        config["auth"] = {
            "token": {
                "realm": auth.realm,
                "service": auth.service,
                "issuer": auth.issuer,
                "rootcertbundle": str(auth.signer.cert_path),
            }
        }
    if schema1:
        config["compatibility"] = {"schema1": {"enabled": True}}
    return config


def _wait_ready(reg: Registry, deadline: float) -> None:
    ctx = reg.ssl_context()
    while True:
        if reg.process.poll() is not None:
            raise RegistryStartError(
                f"registry exited with {reg.process.returncode}: {reg.log_path.read_text()[-2000:]}"
            )
        try:
            probe = urllib.request.Request(f"{reg.url}/v2/", headers={"User-Agent": READINESS_UA})
            with urllib.request.urlopen(probe, timeout=2, context=ctx) as resp:
                answered = resp.headers
        except urllib.error.HTTPError as e:
            answered = e.headers if e.code == 401 else None
        except OSError:
            answered = None
        if answered is not None:
            if answered.get(INSTANCE_HEADER) == reg.instance:
                return
            # another process holds the port; ours cannot bind it and exits (then retried on another)
            reg.stop()
            raise RegistryStartError(f"address already in use: {reg.host} answered by another server")
        if time.monotonic() > deadline:
            reg.stop()
            raise RegistryStartError(f"registry not ready at {reg.url}: {reg.log_path.read_text()[-2000:]}")
        time.sleep(0.05)


def start_registry(
    workdir: Path,
    *,
    auth: Htpasswd | TokenAuth | None = None,
    tls: CA | None = None,
    mtls: bool = False,
    delete: bool = True,
    schema1: bool = False,
    relative_urls: bool = False,
    timeout: float = 15,
) -> Registry:
    """Start ``docker-registry serve`` on 127.0.0.1 with fresh storage under ``workdir``.

    ``tls`` serves HTTPS with a server cert from that CA (SANs 127.0.0.1, localhost); ``mtls``
    additionally requires client certs signed by it (one is issued as ``Registry.client_cert``).
    The caller must :meth:`Registry.stop` it (or use it as a context manager).
    """
    if mtls and tls is None:
        raise ValueError("mtls needs tls=CA")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "storage"
    root.mkdir(exist_ok=True)
    server_cert = tls.issue_server_cert() if tls is not None else None
    client_cert = tls.issue_client_cert("ferry-test-client") if (tls is not None and mtls) else None
    cert_dir = tls.write_cert_dir(workdir / "certs.d", client_cert) if tls is not None else None
    last_error: Exception | None = None
    for attempt in range(5):  # a free port may be taken between probing and binding
        port = free_port()
        instance = secrets.token_hex(8)
        config = _config(
            port,
            instance,
            root,
            workdir,
            auth=auth,
            tls=tls,
            server_cert=server_cert,
            mtls=mtls,
            delete=delete,
            schema1=schema1,
            relative_urls=relative_urls,
        )
        config_path = workdir / "config.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        log_path = workdir / f"registry-{attempt}.log"
        access_log_path = workdir / f"access-{attempt}.log"
        with open(access_log_path, "wb") as out, open(log_path, "wb") as err:
            proc = subprocess.Popen(
                [REGISTRY_BIN, "serve", str(config_path)],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=workdir,
            )
        _LIVE.add(proc)
        host = f"{LOOPBACK}:{port}"
        reg = Registry(
            host=host,
            url=f"{'https' if tls else 'http'}://{host}",
            root=root,
            workdir=workdir,
            config_path=config_path,
            log_path=log_path,
            access_log_path=access_log_path,
            process=proc,
            auth=auth,
            ca=tls,
            cert_dir=cert_dir,
            client_cert=client_cert,
            instance=instance,
        )
        try:
            _wait_ready(reg, time.monotonic() + timeout)
            return reg
        except RegistryStartError as e:
            reg.stop()
            last_error = e
            if "address already in use" not in str(e):
                raise
    raise RegistryStartError(f"could not start registry: {last_error}")
