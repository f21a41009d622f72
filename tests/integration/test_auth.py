"""Authentication against real registries: anonymous, Basic (htpasswd) and Bearer tokens from a
token server; refused pushes and wrong passwords; token expiry and renewal; where credentials come
from (flags, --authfile, the standard files, credential helpers); and that a password never goes
to a token realm on another host over plain HTTP, nor follows a redirect to another host (the one
test here that uses two small stand-in servers: distribution's filesystem storage never redirects).
"""

from __future__ import annotations

import base64
import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ferry.access import Access, AccessMap, Credential
from ferry.connect import Connections
from ferry.copy import ImageCopier
from ferry.engine import Engine, EngineOptions
from ferry.errors import AuthError
from ferry.plan.model import Job
from ferry.refs import parse_docker_ref
from tests.conftest import TOKEN_ISSUER, TOKEN_SERVICE
from tests.support import images as im
from tests.support.cli import FerryCLI, FerryResult
from tests.support.pki import TokenSigner
from tests.support.registry import ALICE, BOB, Registry, TokenAuth, start_registry
from tests.support.skopeo import inspect_raw, list_tags, push_layout, write_authfile
from tests.support.tokenserver import TokenRequest, TokenServer

pytestmark = pytest.mark.integration

INSECURE = ["--src-tls-verify=false", "--dest-tls-verify=false"]


def ok(r: FerryResult) -> FerryResult:
    assert r.returncode == 0, r
    assert "Traceback" not in r.stderr, r
    return r


def refused(r: FerryResult, code: int = 3) -> str:
    assert r.returncode == code, r
    assert "Traceback" not in r.stderr, r
    assert r.error.startswith("ferry: "), r
    return r.error


def scope_requests(server: TokenServer, scope: str) -> list[TokenRequest]:
    return [r for r in server.requests if scope in r.scopes]


@pytest.fixture
def cli(tmp_path: Path) -> FerryCLI:
    return FerryCLI(tmp_path / "cli")


# -- copying with each kind of auth ------------------------------------------------------------------


def test_basic_and_bearer_both_ways(basic_registry: Registry, token_registry: Registry, token_server: TokenServer,
                                    layout: im.Layout, cli: FerryCLI) -> None:
    """Basic source → Bearer destination (alice pushes), then Bearer source (bob, pull only) → Basic
    destination. Passwords from the environment or USER:PASS; tokens asked with service and scope."""
    digest = im.oci_index(layout, "img", seed=1)
    push_layout(layout.path, "img", basic_registry.ref("team/app:v1"), creds=ALICE)

    r = ok(cli.run("copy", *INSECURE, "--src-creds", "alice", "--dest-creds", "alice:secret",
                   f"docker://{basic_registry.ref('team/app:v1')}", f"docker://{token_registry.ref('mirror/app:v1')}",
                   env={"FERRY_SRC_PASSWORD": "secret"}))
    assert "--dest-creds" in r.stderr and "process list" in r.stderr  # a password on the command line is warned about
    assert "secret" not in r.stderr
    assert inspect_raw(token_registry.ref("mirror/app:v1"), creds=ALICE) == layout.manifest_bytes(digest)
    push = scope_requests(token_server, "repository:mirror/app:pull,push")
    assert push and all(t.username == "alice" and t.basic_auth and t.service == TOKEN_SERVICE for t in push)
    assert all(t.status == 200 and t.granted[0]["actions"] == ["pull", "push"] for t in push)
    assert len(push) <= 2, push  # one token for the whole push (plus at most one fresh one)

    token_server.clear()
    ok(cli.run("copy", *INSECURE, "--src-creds", "bob", "--dest-creds", "alice",
               f"docker://{token_registry.ref('mirror/app:v1')}", f"docker://{basic_registry.ref('back/app:v1')}",
               env={"FERRY_SRC_PASSWORD": BOB[1], "FERRY_DEST_PASSWORD": "secret"}))
    assert inspect_raw(basic_registry.ref("back/app:v1"), creds=ALICE) == layout.manifest_bytes(digest)
    assert {tuple(t.scopes) for t in token_server.requests} == {("repository:mirror/app:pull",)}
    assert all(t.username == "bob" and t.status == 200 for t in token_server.requests)


def test_anonymous_bearer_pull(token_registry: Registry, token_server: TokenServer, layout: im.Layout,
                               cli: FerryCLI) -> None:
    """Anonymous tokens where the server grants them; a clear 'authentication required' where not."""
    token_server.permissions["anonymous"] = {"public/*": ["pull"]}
    digest = im.oci_image(layout, "img", seed=2)
    push_layout(layout.path, "img", token_registry.ref("public/app:v1"), creds=ALICE)
    push_layout(layout.path, "img", token_registry.ref("private/app:v1"), creds=ALICE)
    token_server.clear()
    public, private = cli.run_many([
        ["inspect", "--raw", "--tls-verify=false", f"docker://{token_registry.ref('public/app:v1')}"],
        ["inspect", "--raw", "--tls-verify=false", f"docker://{token_registry.ref('private/app:v1')}"],
    ])
    assert ok(public).stdout == layout.manifest_bytes(digest)
    line = refused(private)
    assert "authentication required" in line and "--creds" in line, line
    assert all(not t.basic_auth for t in token_server.requests)


def test_push_refused_for_pull_only_user(token_registry: Registry, token_server: TokenServer, layout: im.Layout,
                                         cli: FerryCLI) -> None:
    """bob may only pull: the push fails with exit 3 naming bob and the refused operation, after one
    fresh token for the refused scope, not a loop; nothing is tagged."""
    im.oci_image(layout, "img", seed=3)
    push_layout(layout.path, "img", token_registry.ref("team/app:v1"), creds=ALICE)
    token_server.clear()
    r = cli.run("copy", *INSECURE, "--src-creds", "bob", "--dest-creds", "bob",
                f"docker://{token_registry.ref('team/app:v1')}", f"docker://{token_registry.ref('bob/app:v1')}",
                env={"FERRY_SRC_PASSWORD": BOB[1], "FERRY_DEST_PASSWORD": BOB[1]})
    line = refused(r)
    assert "'bob'" in line and "permission" in line and "bob/app" in line, line
    assert len(r.lines) == 1, r
    # each refused upload is tried once with the cached token and once with a fresh one, no more
    posts = [q for q in token_registry.requests() if q.method == "POST" and q.path.startswith("/v2/bob/app/")]
    assert posts and all(q.status == 401 for q in posts), posts
    attempts = len(posts)
    assert attempts <= 2 * 3, posts  # at most the image's three blobs, twice each
    push = scope_requests(token_server, "repository:bob/app:pull,push")
    assert 1 <= len(push) <= 1 + attempts // 2, push  # one cached token, one fresh per refused request
    assert list_tags(token_registry.ref("team/app"), creds=ALICE) == ["v1"]
    assert token_registry.request("GET", "/v2/bob/app/manifests/v1", creds=ALICE).status == 404


def test_wrong_password(basic_registry: Registry, token_registry: Registry, cli: FerryCLI) -> None:
    """Exit 3 with a line that says the credentials were refused and what to check; never the password."""
    basic, token, no_creds = cli.run_many([
        ["list-tags", "--tls-verify=false", "--creds", "alice:hunter2", f"docker://{basic_registry.ref('a/b')}"],
        ["list-tags", "--tls-verify=false", "--creds", "alice:hunter2", f"docker://{token_registry.ref('a/b')}"],
        ["list-tags", "--tls-verify=false", f"docker://{basic_registry.ref('a/b')}"],
    ])
    for r in (basic, token):
        line = refused(r)
        assert "credentials" in line and "password" in line.lower(), line
        assert "hunter2" not in r.stderr
    assert "alice" in basic.error and basic_registry.host in basic.error
    assert token_registry.host in token.error and "token service" in token.error
    line = refused(no_creds)
    assert "authentication required" in line and "--creds" in line, line


# -- token lifetime ----------------------------------------------------------------------------------


class ExpiredFirst:
    """Signs with ``signer``, but the next ``count`` tokens are already expired for the registry
    (past its 60 s leeway) while the token response still promises ``expires_in`` seconds: the
    registry refuses a token ferry believes valid, as after a revocation or a clock jump."""

    def __init__(self, signer: TokenSigner, count: int) -> None:
        self.signer = signer
        self.count = count

    def issue(self, *args: Any, **kwargs: Any) -> str:
        if self.count > 0:
            self.count -= 1
            kwargs["expires_in"] = -120
        return self.signer.issue(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.signer, name)


@pytest.fixture
def alice_conns(token_registry: Registry) -> Iterator[Connections]:
    access = Access(credential=Credential(*ALICE), tls_verify=False)
    yield Connections(AccessMap(entries={token_registry.host: access}, default=access))


async def test_token_renewed_when_it_expires(token_registry: Registry, token_server: TokenServer, layout: im.Layout,
                                             alice_conns: Connections) -> None:
    """Tokens live 11 s (ferry keeps a 10 s margin): a copy, a pause, then more work on the same
    repository asks the token server again, and everything succeeds."""
    import asyncio

    digest = im.oci_index(layout, "img", seed=4)
    push_layout(layout.path, "img", token_registry.ref("src/app:v1"), creds=ALICE)
    token_server.expires_in = 11
    token_server.clear()
    conns = alice_conns
    try:
        src = conns.repository(parse_docker_ref(token_registry.ref("src/app:v1")))
        dst = conns.repository(parse_docker_ref(token_registry.ref("dst/app:v1")))
        first = await ImageCopier().copy(src, dst, "v1", "v1")
        await asyncio.sleep(1.5)
        again = await ImageCopier().copy(src, dst, "v1", "v2")
        client = conns.client(token_registry.host)
        assert sorted(await client.list_tags("dst/app")) == ["v1", "v2"]
    finally:
        await conns.close()
    assert first.digest == again.digest == digest and not first.skipped
    pulls = scope_requests(token_server, "repository:src/app:pull")
    pushes = scope_requests(token_server, "repository:dst/app:pull,push")
    assert len(pulls) >= 2 and len(pushes) >= 2, token_server.requests  # renewed after the pause
    assert all(t.status == 200 and t.username == "alice" for t in token_server.requests)
    assert inspect_raw(token_registry.ref("dst/app:v2"), creds=ALICE) == layout.manifest_bytes(digest)


async def test_token_refused_by_registry_is_renewed_once(token_registry: Registry, token_server: TokenServer,
                                                         token_signer: TokenSigner, layout: im.Layout,
                                                         alice_conns: Connections) -> None:
    """A token the registry refuses (401 invalid_token, although ferry's clock says it is valid)
    gets exactly one fresh token and the request succeeds; if the fresh one is refused too, ferry
    stops with exit 3 and a line that blames the token, not the password."""
    digest = im.oci_image(layout, "img", seed=5)
    push_layout(layout.path, "img", token_registry.ref("src/app:v1"), creds=ALICE)
    push_layout(layout.path, "img", token_registry.ref("src/other:v1"), creds=ALICE)
    client = alice_conns.client(token_registry.host)
    try:
        assert await client.list_tags("src/app") == ["v1"]  # learns the challenge, caches a good token
        token_server.clear()
        token_server.signer = ExpiredFirst(token_signer, 1)  # type: ignore[assignment]
        manifest = await client.get_manifest("src/other", "v1")
        assert manifest.digest == digest
        assert [t.status for t in scope_requests(token_server, "repository:src/other:pull")] == [200, 200]

        token_server.signer = ExpiredFirst(token_signer, 1000)  # type: ignore[assignment]
        token_server.clear()
        with pytest.raises(AuthError) as err:
            await client.list_tags("src/third")
        assert err.value.exit_code == 3
        assert len(scope_requests(token_server, "repository:src/third:pull")) == 2  # one renewal, no loop
        assert "token" in str(err.value) and "password" not in str(err.value), err.value
    finally:
        await alice_conns.close()


async def test_mount_token_names_every_scope(token_registry: Registry, token_server: TokenServer,
                                             layout: im.Layout, alice_conns: Connections) -> None:
    """A cross-repository mount asks one token for push on the target and pull on the source
    repository; the registry mounts (201) instead of receiving the blob again."""
    im.oci_image(layout, "img", seed=6, layers=2)
    push_layout(layout.path, "img", token_registry.ref("src/app:v1"), creds=ALICE)
    jobs = [
        Job(parse_docker_ref(token_registry.ref("src/app:v1")), parse_docker_ref(token_registry.ref("m/one:v1"))),
        Job(parse_docker_ref(token_registry.ref("src/app:v1")), parse_docker_ref(token_registry.ref("m/two:v1"))),
    ]
    mark = token_registry.mark()
    token_server.clear()
    try:
        result = await Engine(alice_conns, EngineOptions(proc=1, retries=0)).run(jobs)
    finally:
        await alice_conns.close()
    assert [r.status for r in result.records] == ["copied", "copied"], result.records
    mounts = [r for r in token_registry.requests(mark) if r.method == "POST" and "mount" in r.params
              and r.path != f"/v2/{r.params['from'][0]}/blobs/uploads/"]  # not an upload's own start
    assert mounts and all(m.status == 201 and m.params["from"] == ["m/one"] for m in mounts), mounts
    both = {"repository:m/two:pull,push", "repository:m/one:pull"}
    assert any(set(t.scopes) == both and t.status == 200 for t in token_server.requests), token_server.requests


# -- where credentials come from ----------------------------------------------------------------------


CRED_HELPER = """#!/bin/sh
# docker credential helper protocol: the server on stdin, JSON on stdout
read -r server
echo "$0 $1 $server" >> "{log}"
if [ "$1" = get ] && [ "$server" = "{server}" ]; then
  printf '{{"ServerURL":"%s","Username":"alice","Secret":"secret"}}' "$server"
else
  echo "credentials not found in native keychain"
  exit 1
fi
"""


def test_credential_sources(basic_registry: Registry, layout: im.Layout, tmp_path: Path, cli: FerryCLI) -> None:
    """Each place a credential can come from, and their order: flag, --authfile (alone), then
    REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json,
    ~/.docker/config.json (auths, credHelpers, credsStore); the longest matching key wins."""
    host = basic_registry.host
    im.oci_image(layout, "img", seed=7)
    push_layout(layout.path, "img", basic_registry.ref("priv/app:v1"), creds=ALICE)
    good, bad = ("alice", "secret"), ("alice", "wrong")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper_log = tmp_path / "helper.log"
    helper = bin_dir / "docker-credential-test"
    helper.write_text(CRED_HELPER.format(log=helper_log, server=host))
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)

    def home(name: str, files: dict[str, Any]) -> dict[str, str]:
        """A home directory holding ``files`` (relative path -> JSON); its environment."""
        h = tmp_path / "homes" / name
        for rel, content in files.items():
            (h / rel).parent.mkdir(parents=True, exist_ok=True)
            (h / rel).write_text(json.dumps(content))
        return {"HOME": str(h), "PATH": f"{bin_dir}:{cli.env['PATH']}"}

    def auths(creds: tuple[str, str], key: str = host) -> dict[str, Any]:
        path = tmp_path / "scratch.json"
        write_authfile(path, {key: creds})
        return json.loads(path.read_text())

    separate = tmp_path / "separate.json"
    write_authfile(separate, {host: good})
    wrong_file = tmp_path / "wrong.json"
    write_authfile(wrong_file, {host: bad})
    docker_good = ".docker/config.json"
    cases: dict[str, tuple[list[str], dict[str, str], bool]] = {
        "--authfile": (["--authfile", str(separate)], home("authfile", {}), True),
        "REGISTRY_AUTH_FILE": ([], {**home("env", {}), "REGISTRY_AUTH_FILE": str(separate)}, True),
        "XDG_RUNTIME_DIR": ([], {**home("xdg", {"run/containers/auth.json": auths(good)}),
                                 "XDG_RUNTIME_DIR": str(tmp_path / "homes" / "xdg" / "run")}, True),
        "containers auth.json": ([], home("containers", {".config/containers/auth.json": auths(good)}), True),
        "docker config.json": ([], home("docker", {docker_good: auths(good)}), True),
        "credHelpers": ([], home("helpers", {docker_good: {"credHelpers": {host: "test"}}}), True),
        "credsStore": ([], home("store", {docker_good: {"auths": {}, "credsStore": "test"}}), True),
        "namespace key wins": ([], home("ns", {docker_good: {"auths": {
            **auths(bad)["auths"], **auths(good, f"{host}/priv")["auths"]}}}), True),
        "flag beats --authfile": (["--creds", "alice:secret", "--authfile", str(wrong_file)], home("flag", {}), True),
        "--authfile alone": (["--authfile", str(wrong_file)], home("alone", {docker_good: auths(good)}), False),
        "first file wins": ([], {**home("first", {docker_good: auths(good)}),
                                 "REGISTRY_AUTH_FILE": str(wrong_file)}, False),
    }
    running = {
        name: cli.start("inspect", "--raw", "--tls-verify=false", *args, f"docker://{basic_registry.ref('priv/app:v1')}",
                        env=env)
        for name, (args, env, _) in cases.items()
    }
    for name, run in running.items():
        r, should_work = run.wait(), cases[name][2]
        if should_work:
            assert r.returncode == 0 and r.stdout == layout.manifest_bytes("img"), (name, str(r))
        else:
            assert r.returncode == 3 and "refused" in r.error and "wrong" not in r.stderr, (name, str(r))
    calls = helper_log.read_text().splitlines()
    assert f"{helper} get {host}" in calls and len(calls) == 2, calls  # credHelpers and credsStore, one each


# -- credentials stay home ---------------------------------------------------------------------------


def test_no_credentials_to_plain_http_realm_on_another_host(tmp_path: Path, token_server: TokenServer,
                                                             token_signer: TokenSigner, cli: FerryCLI) -> None:
    """The registry (127.0.0.1) names a realm on another host (localhost) over plain HTTP: ferry asks
    it for a token without the password, so the pull is refused (exit 3) and the token server never
    saw alice's credentials."""
    realm = f"http://localhost:{token_server.port}/token"
    auth = TokenAuth(realm=realm, service=TOKEN_SERVICE, issuer=TOKEN_ISSUER, signer=token_signer)
    with start_registry(tmp_path / "registry-foreign-realm", auth=auth) as reg:
        token_server.clear()
        r = cli.run("inspect", "--raw", "--tls-verify=false", "--creds", "alice:secret",
                    f"docker://{reg.ref('team/app:v1')}")
        refused(r)
        assert "localhost" in r.stderr and "not sending credentials" in r.stderr, r
        assert token_server.requests, "the realm was never asked"
        assert all(not t.basic_auth and t.username is None for t in token_server.requests), token_server.requests
        assert 1 <= len(token_server.requests) <= 2


class _Recorder(BaseHTTPRequestHandler):
    """Answers 200 and records the Authorization header of every request (class attribute ``seen``)."""

    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        body = b'{"name": "team/app", "tags": ["v1"]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


async def test_redirect_to_another_host_drops_credentials() -> None:
    """A registry (Basic auth) redirecting a request to another host: the credentials stay with the
    registry, the other host gets the request without them."""
    target = type("Target", (_Recorder,), {"seen": []})
    other = _serve(target)
    basic = "Basic " + base64.b64encode(b"alice:secret").decode()

    class Registry(BaseHTTPRequestHandler):
        seen: ClassVar[list[str | None]] = []

        def do_GET(self) -> None:
            type(self).seen.append(self.headers.get("Authorization"))
            if self.headers.get("Authorization") != basic:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="test"')
                self.send_header("Content-Length", "0")
            else:
                self.send_response(307)
                self.send_header("Location", f"http://localhost:{other.server_address[1]}{self.path}")
                self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    registry = _serve(Registry)
    host = f"127.0.0.1:{registry.server_address[1]}"
    conns = Connections(AccessMap(default=Access(credential=Credential(*ALICE), tls_verify=False)))
    try:
        assert await conns.client(host).list_tags("team/app") == ["v1"]
    finally:
        await conns.close()
        registry.shutdown()
        other.shutdown()
    assert Registry.seen == [None, basic]  # challenged, then answered with the credentials
    assert target.seen == [None]  # the redirect target never saw them
