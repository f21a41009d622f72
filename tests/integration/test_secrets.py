"""Secrets never leak, and TLS is verified unless switched off.

Every command (login, copy, inspect, list-tags, delete, sync, migrate, logout), with and without
``--debug``, succeeding and failing, runs with a recognisable password against a Basic (htpasswd) and a
Bearer (token server) registry. stdout, stderr, the ``--report`` files, the journals (with their WAL)
and the ``--log`` file are scanned for the password, its Basic form and every bearer token the token
server issued. ``login`` writes its auth file 0600; a password in argv gets a warning.

TLS (``test_tls.py`` covers copy and inspect): the other commands — login, list-tags, delete, sync,
migrate — refuse a registry whose CA they do not know, work with its ``--*-cert-dir``, present a client
certificate to an mTLS registry, and need ``--*-tls-verify=false`` for plain HTTP.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import stat
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import images as im
from tests.support.invariants import ACCEPT
from tests.support.pki import CA, TokenSigner
from tests.support.registry import Htpasswd, Registry, TokenAuth, start_registry
from tests.support.reliability import run_ferry
from tests.support.skopeo import inspect_raw, push_layout
from tests.support.tokenserver import TokenServer

pytestmark = pytest.mark.integration

CANARY = f"S3cr3t-Canary-{secrets.token_hex(6)}"
BASIC = base64.b64encode(f"alice:{CANARY}".encode()).decode()
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+")


class RecordingSigner(TokenSigner):
    """Remembers every token it signs, to look for them in ferry's output."""

    issued: list[str]

    def issue(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        token = super().issue(*args, **kwargs)
        self.__dict__.setdefault("issued", []).append(token)
        return token


@dataclass
class World:
    basic: Registry  # htpasswd: alice / CANARY
    token: Registry  # bearer: alice / CANARY (everything), bob / other (pull)
    signer: RecordingSigner
    layout: im.Layout
    tmp: Path
    outputs: dict[str, bytes] = field(default_factory=dict)

    def tokens(self) -> list[str]:
        return list(self.signer.__dict__.get("issued", []))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("secrets")
    signer = RecordingSigner.create(tmp / "signer")
    perms = {"alice": {"*": ["pull", "push", "delete"], "registry:catalog": ["*"]}, "bob": {"*": ["pull"]}}
    with contextlib.ExitStack() as stack:
        tokens = stack.enter_context(TokenServer(signer, service="svc", issuer="iss",
                                                 users={"alice": CANARY, "bob": "other-pw"}, permissions=perms))
        token = stack.enter_context(start_registry(tmp / "token", auth=TokenAuth(tokens.realm, "svc", "iss", signer)))
        basic = stack.enter_context(start_registry(tmp / "basic", auth=Htpasswd(users={"alice": CANARY})))
        lay = im.Layout(tmp / "layout")
        for n, tag in enumerate(("v1", "v2")):
            im.oci_image(lay, tag, seed=70 + n)
            push_layout(lay.path, tag, basic.ref(f"team/app:{tag}"), creds=("alice", CANARY))
        yield World(basic, token, signer, lay, tmp)


def run_all(commands: Sequence[tuple[str, Sequence[str], dict[str, str], str | None]], home: Path) -> dict[str, Any]:
    """Run named commands side by side: name → CompletedProcess."""
    def one(c: tuple[str, Sequence[str], dict[str, str], str | None]) -> Any:
        return run_ferry(*c[1], home=home, env=c[2], input=c[3], timeout=180)

    with ThreadPoolExecutor(max_workers=6) as pool:
        return dict(zip([c[0] for c in commands], pool.map(one, commands), strict=True))


def leaks(text: bytes, tokens: list[str]) -> list[str]:
    found = [what for what, needle in (("password", CANARY), ("basic auth", BASIC)) if needle.encode() in text]
    found += ["issued bearer token" for t in tokens if t.encode() in text]
    found += [f"something like a JWT: {m[:24]}…" for m in JWT.findall(text.decode(errors="replace"))]
    return found


def test_no_command_leaks_a_secret(world: World) -> None:
    w, tmp = world, world.tmp / "all"
    home, out = tmp / "home", tmp / "out"
    out.mkdir(parents=True)
    auth = str(tmp / "auth.json")
    insecure = ["--src-tls-verify=false", "--dest-tls-verify=false"]
    src_env, dst_env = {"FERRY_SRC_PASSWORD": CANARY}, {"FERRY_DEST_PASSWORD": CANARY}
    b, t = w.basic, w.token
    phases: list[list[tuple[str, Sequence[str], dict[str, str], str | None]]] = [[
        ("login basic", ["login", "--tls-verify=false", "--authfile", auth, "-u", "alice", "--password-stdin",
                         b.host], {}, CANARY + "\n"),
        ("login wrong password", ["login", "--tls-verify=false", "--authfile", str(tmp / "other.json"), "-u",
                                  "bob", "--password-stdin", t.host], {}, CANARY + "\n"),
        ("login --debug wrong password", ["--debug", "login", "--tls-verify=false", "--authfile",
                                          str(tmp / "other.json"), "-u", "bob", "--password-stdin", t.host],
         {}, CANARY + "\n"),
        ("login -p (argv)", ["login", "--tls-verify=false", "--authfile", str(tmp / "argv.json"), "-u", "alice",
                             "-p", CANARY, b.host], {}, None),
        ("login default file", ["login", "--tls-verify=false", "-u", "alice", "--password-stdin", t.host], {},
         CANARY + "\n"),
    ], [
        ("login token", ["login", "--tls-verify=false", "--authfile", auth, "-u", "alice", "--password-stdin",
                         t.host], {}, CANARY + "\n"),
    ], [
        ("copy authfile", ["copy", *insecure, "--authfile", auth, f"docker://{b.ref('team/app:v1')}",
                           f"docker://{t.ref('team/app:v1')}"], {}, None),
        ("copy --debug env", ["--debug", "copy", *insecure, "--src-creds", "alice", "--dest-creds", "alice",
                              f"docker://{b.ref('team/app:v2')}", f"docker://{t.ref('team/app:v2')}"],
         {**src_env, **dst_env}, None),
        ("copy argv creds", ["copy", *insecure, "--src-creds", f"alice:{CANARY}", "--dest-creds",
                             f"alice:{CANARY}", f"docker://{b.ref('team/app:v1')}",
                             f"docker://{t.ref('argv/app:v1')}"], {}, None),
        ("copy missing tag", ["copy", *insecure, "--authfile", auth, f"docker://{b.ref('team/app:v9')}",
                              f"docker://{t.ref('team/app:v9')}"], {}, None),
        ("copy --debug wrong user", ["--debug", "copy", *insecure, "--src-creds", "alice", "--dest-creds", "bob",
                                     f"docker://{b.ref('team/app:v1')}", f"docker://{t.ref('bob/app:v1')}"],
         {**src_env, **dst_env}, None),
        ("sync", ["sync", "--src", "docker", "--dest", "docker", *insecure, "--authfile", auth, "--journal",
                  str(out / "sync.db"), "--report", str(out / "sync.json"), "--log", str(out / "sync.log"),
                  b.ref("team/app"), f"{t.host}/mirror"], {}, None),
        ("sync --debug failing", ["--debug", "sync", "--src", "docker", "--dest", "docker", *insecure,
                                  "--src-creds", "alice", "--dest-creds", "bob", "--retries", "0", "--journal",
                                  str(out / "sync-fail.db"), "--report", str(out / "sync-fail.json"),
                                  b.ref("team/app"), f"{t.host}/denied"], {**src_env, **dst_env}, None),
    ], [
        ("inspect", ["inspect", "--tls-verify=false", "--authfile", auth, f"docker://{t.ref('team/app:v1')}"], {},
         None),
        ("inspect --debug missing", ["--debug", "inspect", "--tls-verify=false", "--authfile", auth,
                                     f"docker://{t.ref('team/app:nope')}"], {}, None),
        ("list-tags", ["list-tags", "--tls-verify=false", "--authfile", auth, f"docker://{t.ref('team/app')}"], {},
         None),
        ("list-tags --debug wrong", ["--debug", "list-tags", "--tls-verify=false", "--creds", "bob:" + CANARY,
                                     f"docker://{t.ref('team/app')}"], {}, None),
        ("delete", ["delete", "--tls-verify=false", "--authfile", auth, f"docker://{t.ref('argv/app:v1')}"], {},
         None),
        ("delete --debug missing", ["--debug", "delete", "--tls-verify=false", "--authfile", auth,
                                    f"docker://{t.ref('argv/app:v7')}"], {}, None),
        ("migrate", ["migrate", f"http://{b.host}", f"http://{t.host}", "--authfile", auth, "--journal",
                     str(out / "migrate.db"), "--report", str(out / "migrate.json")], {}, None),
        ("migrate --debug wrong", ["--debug", "migrate", f"http://{b.host}", f"http://{t.host}", "--src-creds",
                                   "alice", "--dest-creds", "bob", "--journal", str(out / "migrate-fail.db"),
                                   "--report", str(out / "migrate-fail.json")], {**src_env, **dst_env}, None),
        ("reference with a password", ["copy", *insecure, f"docker://alice:{CANARY}@{b.host}/team/app:v1",
                                       f"docker://{t.ref('team/app:v1')}"], {}, None),
        ("migrate URL with a password", ["migrate", f"http://alice:{CANARY}@{b.host}/x", f"http://{t.host}"], {},
         None),
    ], [
        ("logout", ["logout", "--authfile", auth, b.host], {}, None),
    ]]
    results: dict[str, Any] = {}
    for phase in phases:
        results.update(run_all(phase, home))

    expected = {
        "login basic": 0, "login wrong password": 3, "login --debug wrong password": 3, "login -p (argv)": 0,
        "login default file": 0, "login token": 0, "copy authfile": 0, "copy --debug env": 0,
        "copy argv creds": 0, "copy missing tag": 5, "copy --debug wrong user": 3, "sync": 0,
        "sync --debug failing": 1, "inspect": 0, "inspect --debug missing": 5, "list-tags": 0,
        "list-tags --debug wrong": 3, "delete": 0, "delete --debug missing": 5, "migrate": 0,
        "migrate --debug wrong": 3, "reference with a password": 2, "migrate URL with a password": 2, "logout": 0,
    }
    assert {k: r.returncode for k, r in results.items()} == expected, {k: r.stderr[-600:] for k, r in results.items()
                                                                       if r.returncode != expected[k]}
    assert w.tokens(), "the token server issued tokens (else the scan proves little)"
    assert "Traceback" in results["copy --debug wrong user"].stderr  # --debug really printed more

    problems = []
    for name, r in results.items():
        for stream in ("stdout", "stderr"):
            problems += [f"{name} {stream}: {x}" for x in leaks(getattr(r, stream).encode(), w.tokens())]
    files = [p for p in out.iterdir()]
    files += [p for p in home.rglob("*") if p.is_file() and p.name != "auth.json"]
    assert any(p.name.endswith("-wal") for p in files) or any(p.suffix == ".db" for p in files)
    for p in files:
        problems += [f"{p.name}: {x}" for x in leaks(p.read_bytes(), w.tokens())]
    assert problems == []

    # argv passwords are warned about; stdin and the environment are not
    for name in ("login -p (argv)", "copy argv creds", "list-tags --debug wrong"):
        assert "warning: a password in" in results[name].stderr, name
    for name in ("login basic", "copy authfile", "copy --debug env", "sync"):
        assert "warning: a password" not in results[name].stderr, name
    # the auth files ferry wrote are private
    for path in (Path(auth), tmp / "argv.json", home / ".config" / "containers" / "auth.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # the scan itself finds what it looks for: the auth file holds the Basic form by design
    assert leaks(Path(auth).read_bytes(), w.tokens()) == ["basic auth"]
    assert {"sync.json", "sync.log", "sync.db", "migrate.json", "migrate.db"} <= {p.name for p in files}
    saved = json.loads(Path(auth).read_text())["auths"]
    assert set(saved) == {t.host}  # logout removed the other one
    assert inspect_raw(t.ref("mirror/team/app:v2"), creds=("alice", CANARY)) == w.layout.manifest_bytes("v2")


# --------------------------------------------------------------------------------------------------
# TLS for the commands test_tls.py does not cover


@pytest.fixture
def tls_image(tls_registry: Registry, layout: im.Layout) -> str:
    digest = im.oci_image(layout, "img", seed=90)
    push_layout(layout.path, "img", tls_registry.ref("secure/app:v1"), cert_dir=tls_registry.cert_dir)
    push_layout(layout.path, "img", tls_registry.ref("secure/gone:v1"), cert_dir=tls_registry.cert_dir)
    return digest


def _one_line(r: Any, code: int, *needles: str) -> str:
    assert r.returncode == code, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert "Traceback" not in r.stderr and len(lines) == 1 and lines[0].startswith("ferry: "), r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def test_tls_is_verified_by_every_command(tls_registry: Registry, registry: Registry, tls_image: str,
                                          tmp_path: Path, layout: im.Layout) -> None:
    reg, certs = tls_registry, str(tls_registry.cert_dir)
    home = tmp_path / "home"
    yaml_file = tmp_path / "sync.yaml"
    yaml_file.write_text(yaml.safe_dump({reg.host: {"images": {"secure/app": []}}}))
    yaml_ca = tmp_path / "sync-ca.yaml"
    yaml_ca.write_text(yaml.safe_dump({reg.host: {"cert-dir": certs, "images": {"secure/app": []}}}))
    sync = ["sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false", "--retries", "0", "--journal",
            str(tmp_path / "j.db")]
    refused = run_all([
        ("list-tags", ["list-tags", f"docker://{reg.ref('secure/app')}"], {}, None),
        ("delete", ["delete", f"docker://{reg.ref('secure/gone:v1')}"], {}, None),
        ("login", ["login", "-u", "x", "--password-stdin", "--authfile", str(tmp_path / "a.json"), reg.host], {},
         "pw\n"),
        ("sync", [*sync, str(yaml_file), f"{registry.host}/refused"], {}, None),
        ("migrate", ["migrate", f"https://{reg.host}", f"http://{registry.host}", "--journal",
                     str(tmp_path / "m.db")], {}, None),
    ], home)
    for name in ("list-tags", "delete", "login"):
        line = _one_line(refused[name], 4, reg.host, "--cert-dir")
        assert "certificate" in line.lower() or "tls" in line.lower()
    # sync fails the rule whose source cannot be listed, not the whole run: exit 1, the reason in the summary
    assert refused["sync"].returncode == 1, refused["sync"].stderr
    assert "TLS verification failed" in refused["sync"].stderr and "--cert-dir" in refused["sync"].stderr
    assert reg.host in refused["sync"].stderr
    _one_line(refused["migrate"], 4, reg.host, "--cert-dir")
    assert not (tmp_path / "a.json").exists()
    assert registry.request("GET", "/v2/_catalog").body.count(b"secure") == 0
    assert reg.request("HEAD", "/v2/secure/gone/manifests/v1", headers={"Accept": ACCEPT}).status == 200

    works = run_all([
        ("list-tags", ["list-tags", "--cert-dir", certs, f"docker://{reg.ref('secure/app')}"], {}, None),
        ("delete", ["delete", "--cert-dir", certs, f"docker://{reg.ref('secure/gone:v1')}"], {}, None),
        ("login", ["login", "-u", "x", "--password-stdin", "--cert-dir", certs, "--authfile",
                   str(tmp_path / "a.json"), reg.host], {}, "pw\n"),
        ("sync", [*sync, str(yaml_ca), f"{registry.host}/synced"], {}, None),
        # not secure/gone, which the delete beside it removes while the migration runs
        ("migrate", ["migrate", f"https://{reg.host}", f"http://{registry.host}", "--src-cert-dir", certs,
                     "--project", "secure", "--repo", "secure/app", "--journal", str(tmp_path / "m.db")], {}, None),
    ], home)
    for name, r in works.items():
        assert r.returncode == 0, (name, r.stderr)
    assert json.loads(works["list-tags"].stdout)["Tags"] == ["v1"]
    assert reg.request("HEAD", "/v2/secure/gone/manifests/v1", headers={"Accept": ACCEPT}).status == 404
    assert inspect_raw(registry.ref("synced/secure/app:v1")) == layout.manifest_bytes("img")
    assert inspect_raw(registry.ref("secure/app:v1")) == layout.manifest_bytes("img")


def test_client_certificates_for_sync_and_migrate(mtls_registry: Registry, registry: Registry, ca: CA,
                                                  layout: im.Layout, tmp_path: Path) -> None:
    reg, full = mtls_registry, str(mtls_registry.cert_dir)
    ca_only = str(ca.write_cert_dir(tmp_path / "ca-only"))
    im.oci_image(layout, "img", seed=91)
    push_layout(layout.path, "img", reg.ref("secure/app:v1"), cert_dir=reg.cert_dir)
    base = ["sync", "--src", "docker", "--dest", "docker", "--dest-tls-verify=false", "--retries", "0"]
    r = run_all([
        ("sync", [*base, "--src-cert-dir", full, "--journal", str(tmp_path / "1.db"), reg.ref("secure/app"),
                  f"{registry.host}/m"], {}, None),
        ("sync without client cert", [*base, "--src-cert-dir", ca_only, "--journal", str(tmp_path / "2.db"),
                                      reg.ref("secure/app"), f"{registry.host}/n"], {}, None),
        ("migrate", ["migrate", f"https://{reg.host}", f"http://{registry.host}", "--src-cert-dir", full,
                     "--journal", str(tmp_path / "3.db")], {}, None),
        ("migrate to mtls", ["migrate", f"http://{registry.host}", f"https://{reg.host}", "--dest-cert-dir", full,
                             "--journal", str(tmp_path / "4.db"), "--project", "nothing"], {}, None),
    ], tmp_path / "home")
    assert r["sync"].returncode == 0, r["sync"].stderr
    assert r["migrate"].returncode == 0, r["migrate"].stderr
    assert r["migrate to mtls"].returncode == 0, r["migrate to mtls"].stderr
    assert r["sync without client cert"].returncode == 1
    assert "client.cert" in r["sync without client cert"].stderr
    assert inspect_raw(registry.ref("m/secure/app:v1")) == layout.manifest_bytes("img")
    assert inspect_raw(registry.ref("secure/app:v1")) == layout.manifest_bytes("img")


def test_plain_http_needs_tls_verify_false(registry: Registry, layout: im.Layout, tmp_path: Path) -> None:
    im.oci_image(layout, "img", seed=92)
    push_layout(layout.path, "img", registry.ref("plain/app:v1"))
    r = run_all([
        ("list-tags", ["list-tags", f"docker://{registry.ref('plain/app')}"], {}, None),
        ("sync", ["sync", "--src", "docker", "--dest", "docker", "--dest-tls-verify=false", "--retries", "0",
                  "--journal", str(tmp_path / "j.db"), registry.ref("plain/app"), f"{registry.host}/copy"], {}, None),
        ("migrate", ["migrate", f"https://{registry.host}", "http://127.0.0.1:9", "--journal",
                     str(tmp_path / "m.db")], {}, None),
        ("list-tags insecure", ["list-tags", "--tls-verify=false", f"docker://{registry.ref('plain/app')}"], {}, None),
    ], tmp_path / "home")
    _one_line(r["list-tags"], 4, registry.host, "HTTPS", "--tls-verify=false")
    assert r["sync"].returncode == 1 and "--src-tls-verify=false" in r["sync"].stderr, r["sync"].stderr
    assert "does not speak HTTPS" in r["sync"].stderr
    _one_line(r["migrate"], 4, registry.host, "HTTPS")
    assert json.loads(r["list-tags insecure"].stdout)["Tags"] == ["v1"]
    assert registry.request("GET", "/v2/copy/plain/app/tags/list").status == 404
