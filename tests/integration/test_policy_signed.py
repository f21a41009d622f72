"""``--policy`` with ``signedBy``: ferry reads an image's simple signatures from the lookaside that
``--registries.d`` configures (or a ``dir:``'s ``signature-N`` files), verifies them with gpg against the
policy's keys and ``signedIdentity``, and copies only what one of them vouches for; skopeo, given the
same policy and signatures, decides every case the same way. The signatures are made by
``skopeo copy --sign-by`` with a key made here, so ferry reads what an independent tool wrote."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support import images as im
from tests.support.cli import FerryCLI, FerryResult
from tests.support.gpg import Keyring, make_keyring
from tests.support.harbor import HarborServer
from tests.support.harbor_seed import HarborSeeder
from tests.support.pki import CA
from tests.support.registry import Registry, start_registry
from tests.support.skopeo import SkopeoError, inspect_raw, manifest_digest, push_layout, skopeo

pytestmark = pytest.mark.integration

INSECURE = ["--src-tls-verify=false", "--dest-tls-verify=false"]


@dataclass(frozen=True)
class Signed:
    """One registry holding ``signed/app:v1`` (signed by ``keyring.fingerprint`` into a file:// lookaside),
    ``signed/app:v2`` (the same manifest, tagged later: the signature names v1), an unsigned
    ``signed/plain:v1``, ``mirror/signed/app:v1`` (a mirror, v1's signature beside it) and
    ``signed/swapped:v1`` (another image with v1's signature); ``dir`` is the signed image as skopeo's
    ``dir:`` with its ``signature-1``."""

    registry: Registry
    keyring: Keyring
    registries_d: Path
    lookaside: Path
    signer_key: Path
    other_key: Path
    digest: str
    dir: Path

    @property
    def host(self) -> str:
        return self.registry.host


@pytest.fixture(scope="module")
def keyring() -> Iterator[Keyring]:
    with make_keyring() as made:
        yield made


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, keyring: Keyring) -> Iterator[Signed]:
    root = tmp_path_factory.mktemp("signed")
    lookaside = root / "sigstore"
    registries_d = root / "registries.d"
    registries_d.mkdir()
    (registries_d / "default.yaml").write_text(f"default-docker:\n  lookaside: file://{lookaside}\n")
    layout = im.Layout(root / "layout")
    im.docker_schema2_image(layout, "v1", seed=161)
    im.docker_schema2_image(layout, "plain", seed=162)
    with start_registry(root / "registry") as registry:
        push_layout(layout.path, "v1", registry.ref("staging/app:v1"))
        push_layout(layout.path, "plain", registry.ref("signed/plain:v1"))
        sign = ["copy", "--insecure-policy", "--registries.d", str(registries_d), "--sign-by", keyring.fingerprint]
        made = keyring.skopeo(*sign, *INSECURE, f"docker://{registry.ref('staging/app:v1')}",
                              f"docker://{registry.ref('signed/app:v1')}")
        assert made.returncode == 0, made.stderr
        made = keyring.skopeo(*sign[:4], "--src-tls-verify=false", f"docker://{registry.ref('signed/app:v1')}",
                              f"dir:{root / 'dir'}")  # skopeo keeps the signature, as signature-1
        assert made.returncode == 0 and (root / "dir" / "signature-1").is_file(), made.stderr
        push_layout(layout.path, "v1", registry.ref("signed/app:v2"))
        push_layout(layout.path, "v1", registry.ref("mirror/signed/app:v1"))  # a mirror keeps the signatures
        digest = manifest_digest(registry.ref("signed/app:v1"))
        kept = f"app@sha256={digest.removeprefix('sha256:')}"
        shutil.copytree(lookaside / "signed" / kept, lookaside / "mirror" / "signed" / kept)
        push_layout(layout.path, "plain", registry.ref("signed/swapped:v1"))  # with v1's signature: wrong digest
        plain = manifest_digest(registry.ref("signed/swapped:v1")).removeprefix("sha256:")
        shutil.copytree(lookaside / "signed" / kept, lookaside / "signed" / f"swapped@sha256={plain}")
        yield Signed(registry, keyring, registries_d, lookaside,
                     keyring.export(keyring.fingerprint, root / "signer.gpg"),
                     keyring.export(keyring.protected, root / "other.gpg"), digest, root / "dir")


def _policy(path: Path, transport: str, scope: str, requirement: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}],
                                "transports": {transport: {scope: [requirement]}}}))
    return path


def _signed_by(key: Path, identity: dict[str, str] | None = None, **keys: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "signedBy", "keyType": "GPGKeys", **(keys or {"keyPath": str(key)})}
    if identity is not None:
        body["signedIdentity"] = identity
    return body


def _both_copy(s: Signed, tmp_path: Path, policy: Path, source: str, name: str,
               registries_d: Path | None = None, env: Mapping[str, str] | None = None) -> tuple[FerryResult, int]:
    """ferry's copy and skopeo's (at the same time), with the same policy and registries.d (and ``env``), to
    two destinations."""
    d = str(registries_d or s.registries_d)
    running = FerryCLI(tmp_path / "cli", env).start("copy", "--policy", str(policy), "--registries.d", d, *INSECURE,
                                                    source, f"docker://{s.registry.ref(f'ferry/{name}:v1')}")
    oracle = s.keyring.skopeo("copy", "--policy", str(policy), "--registries.d", d, "--remove-signatures",
                              *INSECURE, source, f"docker://{s.registry.ref(f'skopeo/{name}:v1')}", env=env)
    return running.wait(), oracle.returncode


def _accepted(s: Signed, r: FerryResult, skopeo_rc: int, name: str) -> None:
    assert skopeo_rc == 0
    assert r.returncode == 0, r
    assert manifest_digest(s.registry.ref(f"ferry/{name}:v1")) == s.digest


def _refused(s: Signed, r: FerryResult, skopeo_rc: int, name: str, *words: str) -> None:
    assert skopeo_rc != 0  # skopeo refuses it too
    assert r.returncode == 3, r
    assert len(r.lines) == 1 and r.lines[0].startswith("ferry: policy rejects "), r.stderr
    for word in words:
        assert word in r.lines[0], r.stderr
    assert skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{s.registry.ref(f'ferry/{name}:v1')}",
                  check=False).returncode != 0  # nothing was copied


CASES = {
    # name: (source, key, signedIdentity, accepted, words of ferry's refusal)
    "signed": ("signed/app:v1", "signer", None, True, ()),
    "other-key": ("signed/app:v1", "other", None, False, ("signature 1 is by key", "not one of", "other.gpg")),
    "unsigned": ("signed/plain:v1", "signer", None, False, ("no signature found", "signed/plain@sha256=")),
    "swapped": ("signed/swapped:v1", "signer", None, False, ("signature 1 is for digest", "not the manifest's")),
    "retagged": ("signed/app:v2", "signer", None, False, ("is for identity", "signed/app:v1",
                                                          "matchRepoDigestOrExact does not accept")),
    "exact-reference": ("signed/app:v2", "signer",
                        {"type": "exactReference", "dockerReference": "{host}/signed/app:v1"}, True, ()),
    "exact-reference-other": ("signed/app:v1", "signer",
                              {"type": "exactReference", "dockerReference": "{host}/signed/app:v2"}, False,
                              ("is for identity", "exactReference does not accept")),
    "match-repository": ("signed/app:v2", "signer", {"type": "matchRepository"}, True, ()),
    "by-digest": ("signed/app@{digest}", "signer", None, True, ()),
    "remap": ("mirror/signed/app:v1", "signer", {"type": "remapIdentity", "prefix": "{host}/mirror",
                                                 "signedPrefix": "{host}"}, True, ()),
    "mirror": ("mirror/signed/app:v1", "signer", None, False, ("is for identity", "signed/app:v1")),
}


@pytest.mark.parametrize("name", CASES)
def test_signed_by_decides_as_skopeo_does(signed: Signed, tmp_path: Path, name: str) -> None:
    source, key, identity, accepted, words = CASES[name]
    fill = {"host": signed.host, "digest": signed.digest}
    if identity is not None:
        identity = {k: v.format(**fill) for k, v in identity.items()}
    key_path = signed.signer_key if key == "signer" else signed.other_key
    policy = _policy(tmp_path / "policy.json", "docker", signed.host, _signed_by(key_path, identity))
    r, skopeo_rc = _both_copy(signed, tmp_path, policy, f"docker://{signed.host}/{source.format(**fill)}", name)
    if accepted:
        _accepted(signed, r, skopeo_rc, name)
    else:
        _refused(signed, r, skopeo_rc, name, *words)


def test_key_data_and_key_paths_name_the_keys_inline_or_several(signed: Signed, tmp_path: Path) -> None:
    source = f"docker://{signed.registry.ref('signed/app:v1')}"
    data = base64.b64encode(signed.signer_key.read_bytes()).decode()
    for name, keys in [("key-data", {"keyData": data}),
                       ("key-paths", {"keyPaths": [str(signed.other_key), str(signed.signer_key)]})]:
        policy = _policy(tmp_path / f"{name}.json", "docker", "", _signed_by(signed.signer_key, **keys))
        r, skopeo_rc = _both_copy(signed, tmp_path, policy, source, name)
        _accepted(signed, r, skopeo_rc, name)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_web_lookaside_is_read_until_its_first_404(signed: Signed, tmp_path: Path, scheme: str) -> None:
    """Over HTTPS the lookaside is verified against the system's CAs: here the test CA is the whole bundle
    (``SSL_CERT_FILE``, which OpenSSL and Go both read)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(signed.lookaside)))
    env = None
    if scheme == "https":
        ca = CA.create(tmp_path / "ca")
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(*ca.issue_server_cert())
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        (tmp_path / "no-cert-dir").mkdir()
        env = {"SSL_CERT_FILE": str(ca.cert_path), "SSL_CERT_DIR": str(tmp_path / "no-cert-dir")}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        registries_d = tmp_path / "registries.d"
        registries_d.mkdir()
        (registries_d / "web.yaml").write_text(  # a per-namespace entry, with the older key name
            f"docker:\n  {signed.host}/signed:\n    sigstore: {scheme}://127.0.0.1:{server.server_address[1]}\n")
        policy = _policy(tmp_path / "policy.json", "docker", "", _signed_by(signed.signer_key))
        r, skopeo_rc = _both_copy(signed, tmp_path, policy, f"docker://{signed.registry.ref('signed/app:v1')}",
                                  scheme, registries_d, env)
        _accepted(signed, r, skopeo_rc, scheme)
        r, skopeo_rc = _both_copy(signed, tmp_path, policy, f"docker://{signed.registry.ref('signed/plain:v1')}",
                                  f"{scheme}-unsigned", registries_d, env)
        _refused(signed, r, skopeo_rc, f"{scheme}-unsigned", "no signature found",
                 f"127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("name", "identity", "accepted"), [
    ("dir-exact", {"type": "exactReference", "dockerReference": "{host}/signed/app:v1"}, True),
    ("dir-default", None, False),  # a dir: has no docker reference to match the signature's against
])
def test_a_dir_source_is_checked_with_its_signature_files(signed: Signed, tmp_path: Path, name: str,
                                                          identity: dict[str, str] | None, accepted: bool) -> None:
    if identity is not None:
        identity = {k: v.format(host=signed.host) for k, v in identity.items()}
    policy = _policy(tmp_path / "policy.json", "dir", str(signed.dir), _signed_by(signed.signer_key, identity))
    r, skopeo_rc = _both_copy(signed, tmp_path, policy, f"dir:{signed.dir}", name)
    if accepted:
        _accepted(signed, r, skopeo_rc, name)
    else:
        _refused(signed, r, skopeo_rc, name, "is for identity", "has no docker reference")


def test_sync_refuses_only_the_images_whose_signatures_fail(signed: Signed, tmp_path: Path) -> None:
    policy = _policy(tmp_path / "policy.json", "docker", f"{signed.host}/signed", _signed_by(signed.signer_key))
    report = tmp_path / "report.json"
    r = FerryCLI(tmp_path / "cli").run(
        "sync", "--policy", str(policy), "--registries.d", str(signed.registries_d), "--src", "docker",
        "--dest", "docker", *INSECURE, "--report", str(report), signed.registry.ref("signed/app"),
        signed.registry.ref("synced"))
    assert r.returncode == 1, (r, report.read_text())
    assert manifest_digest(signed.registry.ref("synced/signed/app:v1")) == signed.digest  # signed as v1: copied
    assert skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{signed.registry.ref('synced/signed/app:v2')}",
                  check=False).returncode != 0  # the retag's signature names v1: refused, nothing pushed
    failed = [j for j in json.loads(report.read_text())["jobs"] if j["status"] == "failed"]
    assert [j["source"] for j in failed] == [signed.registry.ref("signed/app:v2")], failed
    assert "is for identity" in failed[0]["error"], failed


@pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is not installed")
def test_migrate_refuses_only_the_images_whose_signatures_fail(keyring: Keyring, tmp_path: Path) -> None:
    """Harbor to Harbor: the signed image (``skopeo standalone-sign``, put in a file:// lookaside) arrives,
    the unsigned one is a failed job with the reason in the report."""
    with HarborServer(tmp_path / "src") as src, HarborServer(tmp_path / "dst") as dst:
        seeder = HarborSeeder(src, tmp_path)
        seeder.project("proj", public=True)
        signed_digest = seeder.image("proj/app:v1", seed=163, docker=True)
        seeder.image("proj/plain:v1", seed=164, docker=True)
        lookaside = tmp_path / "sigstore"
        kept = lookaside / "proj" / f"app@sha256={signed_digest.removeprefix('sha256:')}"
        kept.mkdir(parents=True)
        manifest = tmp_path / "manifest.json"
        manifest.write_bytes(seeder.seeded.manifests[signed_digest][0])
        made = keyring.skopeo("standalone-sign", str(manifest), src.ref("proj/app:v1"), keyring.fingerprint,
                              "-o", str(kept / "signature-1"))
        assert made.returncode == 0, made.stderr
        registries_d = tmp_path / "registries.d"
        registries_d.mkdir()
        (registries_d / "src.yaml").write_text(f"docker:\n  {src.host}:\n    lookaside: file://{lookaside}\n")
        policy = _policy(tmp_path / "policy.json", "docker", src.host,
                         _signed_by(keyring.export(keyring.fingerprint, tmp_path / "signer.gpg")))
        report = tmp_path / "report.json"
        r = FerryCLI(tmp_path / "cli").run(
            "migrate", src.url, dst.url, "--src-creds", "admin", "--dest-creds", "admin", "--no-config",
            "--journal", str(tmp_path / "journal.db"), "--report", str(report), "--policy", str(policy),
            "--registries.d", str(registries_d),
            env={"FERRY_SRC_PASSWORD": src.admin_creds[1], "FERRY_DEST_PASSWORD": dst.admin_creds[1]}, timeout=300)
        assert r.returncode == 1, r
        assert manifest_digest(dst.ref("proj/app:v1"), creds=dst.admin_creds) == signed_digest
        with pytest.raises(SkopeoError):  # refused: never pushed
            inspect_raw(dst.ref("proj/plain:v1"), creds=dst.admin_creds)
        assert "no signature found" in report.read_text() and "proj/plain" in report.read_text()
