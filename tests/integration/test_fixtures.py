"""The test infrastructure itself, checked with skopeo and raw HTTP only (no ferry code)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import images as im
from tests.support.pki import CA, TokenSigner
from tests.support.registry import ALICE, BOB, Registry, TokenAuth, start_registry
from tests.support.skopeo import SkopeoError, inspect_raw, list_tags, manifest_digest, push_layout, push_schema1
from tests.support.tokenserver import TokenServer

pytestmark = pytest.mark.integration


ACCEPT_ALL = ", ".join(
    [
        im.OCI_INDEX,
        im.OCI_MANIFEST,
        im.DOCKER_LIST,
        im.DOCKER_MANIFEST,
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v1+json",
    ]
)

SHAPES: dict[str, Callable[[im.Layout], str]] = {
    "docker-schema2": lambda lay: im.docker_schema2_image(lay, "img", seed=1),
    "oci-image": lambda lay: im.oci_image(lay, "img", seed=2, annotations={"a": "b"}),
    "oci-index": lambda lay: im.oci_index(lay, "img", seed=3),
    "docker-list": lambda lay: im.docker_manifest_list(lay, "img", seed=4),
    "oci-artifact": lambda lay: im.oci_artifact(lay, "img", seed=5),
    "oci-artifact-empty-config": lambda lay: im.oci_artifact(lay, "img", seed=6, config_media_type=None),
    "referrer": lambda lay: im.referrer(lay, im.oci_image(lay, "subject", seed=7), "img"),
}


def _all_blobs(lay: im.Layout, digest: str) -> set[str]:
    m = lay.manifest(digest)
    blobs = {d["digest"] for d in [*([m["config"]] if "config" in m else []), *m.get("layers", [])]}
    for child in m.get("manifests", []):
        blobs |= _all_blobs(lay, child["digest"])
    return blobs


# -- image generators ------------------------------------------------------------------------


def test_generators_are_deterministic(tmp_path: Path) -> None:
    for name, make in SHAPES.items():
        a, b = make(im.Layout(tmp_path / name / "a")), make(im.Layout(tmp_path / name / "b"))
        assert a == b, name
    assert im.oci_image(tmp_path / "s", "x", seed=1) != im.oci_image(tmp_path / "s", "y", seed=2)


def test_generated_content_is_well_formed(layout: im.Layout) -> None:
    digest = im.oci_index(layout, "idx", seed=9)
    index = layout.manifest(digest)
    assert index["mediaType"] == im.OCI_INDEX
    assert [c["platform"]["architecture"] for c in index["manifests"]] == ["amd64", "arm64", "arm"]
    for child in index["manifests"]:
        raw = layout.read_blob(child["digest"])
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == child["digest"] and len(raw) == child["size"]
        m = json.loads(raw)
        cfg = json.loads(layout.read_blob(m["config"]["digest"]))
        assert cfg["architecture"] == child["platform"]["architecture"]
        assert cfg["os"] == "linux" and cfg["created"] and cfg["config"]["Env"] and cfg["config"]["Labels"]
        assert len(cfg["rootfs"]["diff_ids"]) == len(m["layers"])
    assert index["manifests"][1]["platform"]["variant"] == "v8"


def test_big_layer_is_streamed_and_sized(layout: im.Layout) -> None:
    size = 3 * 1024 * 1024 + 17
    m = layout.manifest(im.oci_image(layout, "big", seed=1, layers=1, layer_size=size))
    assert m["layers"][0]["size"] > size  # random bytes do not compress
    assert layout.blob_path(m["layers"][0]["digest"]).stat().st_size == m["layers"][0]["size"]


# -- plain registry ----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", list(SHAPES))
def test_push_each_shape_byte_exact(shape: str, registry: Registry, layout: im.Layout) -> None:
    digest = SHAPES[shape](layout)
    push_layout(layout.path, "img", registry.ref("proj/app:v1"))
    raw = inspect_raw(registry.ref("proj/app:v1"))
    assert raw == layout.manifest_bytes(digest)
    assert manifest_digest(registry.ref(f"proj/app@{digest}")) == digest
    r = registry.request("GET", f"/v2/proj/app/manifests/{digest}", headers={"Accept": ACCEPT_ALL})
    assert r.status == 200 and r.body == raw
    assert r.headers["Content-Type"] == json.loads(raw)["mediaType"]
    for child in json.loads(raw).get("manifests", []):
        assert manifest_digest(registry.ref(f"proj/app@{child['digest']}")) == child["digest"]
    for blob in _all_blobs(layout, digest):
        assert registry.request("HEAD", f"/v2/proj/app/blobs/{blob}").status == 200
    assert list_tags(registry.ref("proj/app")) == ["v1"]


def test_referrers_fallback_index_push_exact(registry: Registry, layout: im.Layout) -> None:
    subject = im.oci_image(layout, "subject", seed=1)
    sig = im.referrer(layout, subject, seed=2)
    fallback = im.referrers_index(layout, subject, [sig])
    tag = subject.replace(":", "-")
    # skopeo 1.9 cannot keep an index whose descriptors carry artifactType ...
    with pytest.raises(SkopeoError):
        push_layout(layout.path, tag, registry.ref(f"proj/app:{tag}"))
    # ... the raw pusher can.
    push_layout(layout.path, "subject", registry.ref("proj/app:v1"))
    assert registry.push_exact(layout, tag, "proj/app") == fallback
    assert inspect_raw(registry.ref(f"proj/app:{tag}")) == layout.manifest_bytes(fallback)
    assert manifest_digest(registry.ref(f"proj/app@{sig}")) == sig
    assert json.loads(inspect_raw(registry.ref(f"proj/app@{sig}")))["subject"]["digest"] == subject


@pytest.mark.parametrize("make", [im.oci_image, im.oci_index])
def test_push_via_oci_transport(make: Callable[..., str], registry: Registry, layout: im.Layout) -> None:
    digest = make(layout, "img", seed=8)
    push_layout(layout.path, "img", registry.ref("proj/app:v1"), transport="oci")
    assert inspect_raw(registry.ref("proj/app:v1")) == layout.manifest_bytes(digest)


def test_request_log_counts_blob_uploads(registry: Registry, layout: im.Layout) -> None:
    digest = im.oci_image(layout, "img", seed=3, layers=3)
    mark = registry.mark()
    push_layout(layout.path, "img", registry.ref("proj/app:v1"))
    assert len(registry.blob_upload_puts(mark)) == 4  # 3 layers + config
    manifest_puts = [r for r in registry.requests(mark) if r.method == "PUT" and "/manifests/" in r.path]
    assert [(r.path, r.status) for r in manifest_puts] == [("/v2/proj/app/manifests/v1", 201)]
    mark = registry.mark()
    push_layout(layout.path, "img", registry.ref("proj/app:v2"))  # blobs already there
    assert registry.blob_upload_puts(mark) == []
    assert any(r.method == "HEAD" and r.status == 200 for r in registry.requests(mark))
    assert all(r.path != "/v2/" or r.user_agent != "ferry-test-readiness-probe" for r in registry.requests())
    assert manifest_digest(registry.ref("proj/app:v2")) == digest
    assert any(rec.get("http.request.method") == "PUT" for rec in registry.log_records())


def test_registry_pair_independent_and_stopped(registry_pair: tuple[Registry, Registry], layout: im.Layout) -> None:
    src, dst = registry_pair
    assert src.host != dst.host and src.host.startswith("127.0.0.1:")
    im.oci_image(layout, "img")
    push_layout(layout.path, "img", src.ref("a:v1"))
    assert list_tags(src.ref("a")) == ["v1"]
    assert dst.request("GET", "/v2/a/tags/list").status == 404
    src.stop()
    assert src.process.poll() is not None


def test_relative_urls_and_delete(tmp_path: Path, layout: im.Layout) -> None:
    with start_registry(tmp_path / "rel", relative_urls=True) as reg:
        r = reg.request("POST", "/v2/proj/app/blobs/uploads/")
        assert r.status == 202 and r.headers["Location"].startswith("/v2/proj/app/blobs/uploads/")
        digest = im.oci_image(layout, "img")
        push_layout(layout.path, "img", reg.ref("proj/app:v1"))
        assert reg.request("DELETE", "/v2/proj/app/manifests/v1").status == 400  # by tag: DIGEST_INVALID
        assert reg.request("DELETE", f"/v2/proj/app/manifests/{digest}").status == 202
    with start_registry(tmp_path / "nodel", delete=False) as reg:
        push_layout(layout.path, "img", reg.ref("proj/app:v1"))
        assert reg.request("DELETE", f"/v2/proj/app/manifests/{digest}").status == 405


def test_schema1(tmp_path: Path, layout: im.Layout) -> None:
    im.docker_schema2_image(layout, "img", seed=11)
    with start_registry(tmp_path / "s1", schema1=True) as reg:
        push_schema1(layout.path, "img", reg.ref("old/app:v1"))
        raw = inspect_raw(reg.ref("old/app:v1"))
        m = json.loads(raw)
        assert m["schemaVersion"] == 1 and m["signatures"] and m["fsLayers"]
        digest = manifest_digest(reg.ref("old/app:v1"))
        r = reg.request("GET", "/v2/old/app/manifests/v1", headers={"Accept": ACCEPT_ALL})
        assert r.headers["Content-Type"] == "application/vnd.docker.distribution.manifest.v1+prettyjws"
        # the digest of signed schema1 is that of the payload without signatures, not of the bytes
        assert r.headers["Docker-Content-Digest"] == digest != "sha256:" + hashlib.sha256(raw).hexdigest()
        assert manifest_digest(reg.ref(f"old/app@{digest}")) == digest


# -- auth ------------------------------------------------------------------------------------


def test_basic_auth(basic_registry: Registry, layout: im.Layout) -> None:
    digest = im.oci_image(layout, "img")
    push_layout(layout.path, "img", basic_registry.ref("proj/app:v1"), creds=ALICE)
    assert manifest_digest(basic_registry.ref("proj/app:v1"), creds=ALICE) == digest
    with pytest.raises(SkopeoError, match=r"(?i)unauthorized|authentication required"):
        inspect_raw(basic_registry.ref("proj/app:v1"), creds=("alice", "wrong"))
    with pytest.raises(SkopeoError):
        push_layout(layout.path, "img", basic_registry.ref("proj/app:v2"), creds=("alice", "wrong"))
    with pytest.raises(SkopeoError):
        inspect_raw(basic_registry.ref("proj/app:v1"))
    assert basic_registry.request("GET", "/v2/").status == 401
    assert basic_registry.request("GET", "/v2/", creds=ALICE).status == 200


def test_token_auth(token_registry: Registry, token_server: TokenServer, layout: im.Layout) -> None:
    digest = im.oci_image(layout, "img")
    push_layout(layout.path, "img", token_registry.ref("proj/app:v1"), creds=ALICE)
    assert manifest_digest(token_registry.ref("proj/app:v1"), creds=BOB) == digest
    with pytest.raises(SkopeoError):
        push_layout(layout.path, "img", token_registry.ref("proj/app:v2"), creds=BOB)
    assert list_tags(token_registry.ref("proj/app"), creds=ALICE) == ["v1"]
    with pytest.raises(SkopeoError):
        inspect_raw(token_registry.ref("proj/app:v1"))  # anonymous: no rights
    with pytest.raises(SkopeoError):
        inspect_raw(token_registry.ref("proj/app:v1"), creds=("bob", "wrong"))

    reqs = token_server.requests
    bob_push = [r for r in reqs if r.username == "bob" and any("push" in s for s in r.scopes)]
    assert bob_push and all(r.status == 200 for r in bob_push)
    assert all("push" not in a["actions"] for r in bob_push for a in r.granted)  # dropped silently
    alice_push = [r for r in reqs if r.username == "alice" and r.granted and "push" in r.granted[0]["actions"]]
    assert alice_push and alice_push[0].basic_auth and alice_push[0].service == "ferry-test-registry"
    assert any(r.status == 401 and r.username == "bob" for r in reqs)
    assert any(not r.basic_auth and r.username is None for r in reqs)
    assert "secret" not in repr(reqs) and "bobpass" not in repr(reqs)


def test_token_server_protocol(token_registry: Registry, token_server: TokenServer) -> None:
    assert token_registry.request("GET", "/v2/_catalog", creds=ALICE).status == 200
    assert token_registry.request("GET", "/v2/_catalog", creds=BOB).status == 401  # no catalog for bob
    r = token_registry.request("POST", token_server.realm)
    assert r.status == 405
    reply = token_registry.request(
        "GET", f"{token_server.realm}?service=ferry-test-registry&scope=repository:a/b:pull,push"
    )
    body = json.loads(reply.body)
    assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
    assert TokenSigner.decode_unverified(body["token"])["access"] == []  # anonymous gets nothing
    token_server.expires_in = -30  # distribution allows 60 s of clock skew: still accepted
    assert token_registry.request("GET", "/v2/a/b/tags/list", creds=ALICE).status == 404
    token_server.expires_in = -61  # expired beyond the leeway
    assert token_registry.request("GET", "/v2/a/b/tags/list", creds=ALICE).status == 401
    token_server.expires_in = 300
    token_server.force_status = 503
    assert token_registry.request("GET", "/v2/a/b/tags/list", creds=ALICE).status == 503


def test_token_signer_kid_header(tmp_path: Path, token_signer: TokenSigner, token_server: TokenServer) -> None:
    token_server.header = "kid"
    auth = TokenAuth(token_server.realm, "ferry-test-registry", "ferry-test-issuer", token_signer)
    with start_registry(tmp_path / "kid", auth=auth) as reg:
        assert reg.request("GET", "/v2/", creds=ALICE).status == 200
        other = TokenSigner.create(tmp_path / "other")
        token_server.signer = other  # untrusted key
        assert reg.request("GET", "/v2/", creds=ALICE).status == 401


# -- TLS -------------------------------------------------------------------------------------


def test_tls(tls_registry: Registry, layout: im.Layout, tmp_path: Path) -> None:
    assert tls_registry.url.startswith("https://127.0.0.1:") and tls_registry.cert_dir is not None
    assert (tls_registry.cert_dir / "ca.crt").read_bytes() == tls_registry.ca.cert_path.read_bytes()
    digest = im.oci_image(layout, "img")
    push_layout(layout.path, "img", tls_registry.ref("proj/app:v1"), cert_dir=tls_registry.cert_dir)
    assert manifest_digest(tls_registry.ref("proj/app:v1"), cert_dir=tls_registry.cert_dir) == digest
    with pytest.raises(SkopeoError, match=r"x509|certificate"):
        inspect_raw(tls_registry.ref("proj/app:v1"), tls_verify=True)
    stranger = CA.create(tmp_path / "stranger").write_cert_dir(tmp_path / "stranger-certs")
    with pytest.raises(SkopeoError, match=r"x509|certificate"):
        inspect_raw(tls_registry.ref("proj/app:v1"), cert_dir=stranger)
    assert tls_registry.request("GET", "/v2/").status == 200


def test_mtls(mtls_registry: Registry, ca: CA, layout: im.Layout, tmp_path: Path) -> None:
    assert mtls_registry.client_cert is not None
    assert (mtls_registry.cert_dir / "client.cert").exists()
    digest = im.oci_image(layout, "img")
    push_layout(layout.path, "img", mtls_registry.ref("proj/app:v1"), cert_dir=mtls_registry.cert_dir)
    assert manifest_digest(mtls_registry.ref("proj/app:v1"), cert_dir=mtls_registry.cert_dir) == digest
    ca_only = ca.write_cert_dir(tmp_path / "ca-only")
    with pytest.raises(SkopeoError):
        inspect_raw(mtls_registry.ref("proj/app:v1"), cert_dir=ca_only)
    other = ca.issue_client_cert("someone-else")
    assert (
        manifest_digest(mtls_registry.ref("proj/app:v1"), cert_dir=ca.write_cert_dir(tmp_path / "other", other))
        == digest
    )
