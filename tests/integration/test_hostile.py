"""Hostile or broken registries: a fake registry (:mod:`tests.support.hostile`) breaks the protocol on
purpose, on the source or the destination side of a real ``ferry copy``; a second listener on another
loopback address (127.0.0.2) records whatever reaches it.

Each case ends with one ``ferry: …`` line and the exit code of its kind (6: the server broke the
protocol), nothing half-written at the real registry on the other side (no manifest; whatever is there
is whole), and no credential sent anywhere it does not belong.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.support import images as im
from tests.support.hostile import FakeRegistry, Recorder, sha256, tiny_image
from tests.support.invariants import assert_whole, catalog, manifest_digests, stored_manifests
from tests.support.pki import CA
from tests.support.registry import Registry
from tests.support.reliability import FAST, run_ferry
from tests.support.skopeo import inspect_raw, push_layout, write_authfile

pytestmark = pytest.mark.integration

USER, PASSWORD = "alice", "S3cr3t-Canary-hostile-7f3a"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
MiB = 1024 * 1024


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with FakeRegistry(basic=(USER, PASSWORD)) as reg:
        manifest, blobs = tiny_image(seed=1)
        reg.add_image("v1", manifest, blobs)
        yield reg


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with Recorder("127.0.0.2") as rec:
        yield rec


def copy(src: str, dst: str, tmp: Path, *extra: str, src_creds: bool = True, dst_creds: bool = False):  # type: ignore[no-untyped-def]
    env = dict(FAST)
    args = ["copy", "--src-tls-verify=false", "--dest-tls-verify=false", *extra]
    if src_creds:
        args += ["--src-creds", USER]
        env["FERRY_SRC_PASSWORD"] = PASSWORD
    if dst_creds:
        args += ["--dest-creds", USER]
        env["FERRY_DEST_PASSWORD"] = PASSWORD
    return run_ferry(*args, f"docker://{src}", f"docker://{dst}", home=tmp / "home", env=env, timeout=120)


def list_tags(fake: FakeRegistry, tmp: Path):  # type: ignore[no-untyped-def]
    auth = write_authfile(tmp / "auth.json", {fake.host: (USER, PASSWORD)})
    return run_ferry("list-tags", "--tls-verify=false", "--authfile", str(auth), f"docker://{fake.ref('team/app')}",
                     home=tmp / "home", env=FAST)


def one_line_error(run, code: int, *needles: str) -> str:  # type: ignore[no-untyped-def]
    assert run.returncode == code, run.stderr
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ferry: "), run.stderr
    for needle in needles:
        assert needle.lower() in lines[0].lower(), f"{needle!r} not in {lines[0]!r}"
    assert PASSWORD not in run.stderr + run.stdout and BASIC not in run.stderr
    return lines[0]


def nothing_written(dst: Registry) -> None:
    """No manifest at all at the destination (a complete blob may have arrived: it harms nothing)."""
    for repo in catalog(dst):
        assert manifest_digests(dst, repo) == {} and stored_manifests(dst, repo) == set(), repo
    assert_whole(dst)


def manifest_bytes(fake: FakeRegistry) -> bytes:
    return fake.manifests[fake.tags["v1"]][0]


def layer_digest(fake: FakeRegistry) -> str:
    return json.loads(manifest_bytes(fake))["layers"][0]["digest"]


# --------------------------------------------------------------------------------------------------
# Oversized and endless bodies

ENDLESS = 128 * MiB  # what an endless body sends a reader that never stops


def _socket_buffers() -> int:
    """The most a loopback connection's kernel buffers can hold (the receiver's autotuned window and the
    sender's buffer): bytes a server writes that no one has read."""
    try:
        rmem = int(Path("/proc/sys/net/ipv4/tcp_rmem").read_text().split()[2])
        wmem = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return 32 * MiB
    return min(rmem + wmem, ENDLESS // 2)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_manifest_over_4_mib_is_refused(fake: FakeRegistry, registry: Registry, tmp_path: Path,
                                        declared: bool) -> None:
    big = b'{"schemaVersion": 2, "padding": "' + b"x" * (5 * MiB) + b'"}'

    async def manifest(request: web.Request) -> web.StreamResponse | None:
        if request.method == "HEAD":
            return None
        if declared:
            return web.Response(body=big, content_type="application/vnd.oci.image.manifest.v1+json")
        resp = web.StreamResponse(headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            for _ in range(ENDLESS // MiB):  # if anyone keeps reading
                await resp.write(b"x" * MiB)
                fake.count_sent("manifest", MiB)
        except (ConnectionError, RuntimeError):
            pass
        return resp

    fake.hooks["manifest"] = manifest
    run = copy(fake.ref("team/app:v1"), registry.ref("team/app:v1"), tmp_path)
    one_line_error(run, 6, "exceeds", "4194304")
    if not declared:
        # What the server wrote includes what the kernel's buffers took before ferry closed the connection.
        assert fake.bytes_sent["manifest"] <= 4 * MiB + _socket_buffers(), "ferry kept reading past the limit"
    nothing_written(registry)


def test_blob_larger_than_its_descriptor_is_stopped_at_the_size(fake: FakeRegistry, registry: Registry,
                                                                tmp_path: Path) -> None:
    layer = layer_digest(fake)

    async def blob(request: web.Request) -> web.StreamResponse | None:
        if request.method == "HEAD" or not request.path.endswith(layer):
            return None
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.content_length = 1 << 30  # claims (and would send) 1 GiB for a 2 kB layer
        await resp.prepare(request)
        try:
            for _ in range(1024):
                await resp.write(b"\0" * MiB)
                fake.count_sent("layer", MiB)
        except (ConnectionError, RuntimeError):
            pass
        return resp

    fake.hooks["blob"] = blob
    run = copy(fake.ref("team/app:v1"), registry.ref("team/app:v1"), tmp_path)
    one_line_error(run, 6, layer, "larger than")
    assert fake.bytes_sent["layer"] < 64 * MiB, "ferry kept reading past the descriptor's size"
    assert registry.request("HEAD", f"/v2/team/app/blobs/{layer}").status == 404
    assert registry.request("HEAD", "/v2/team/app/manifests/v1").status == 404
    assert_whole(registry)


# --------------------------------------------------------------------------------------------------
# Malformed answers, wrong content types, digests that are missing or lie


def _serve(body: bytes, content_type: str, digest: str | None = "auto") -> web.Response:
    headers = {"Content-Type": content_type}
    if digest:
        headers["Docker-Content-Digest"] = sha256(body) if digest == "auto" else digest
    return web.Response(body=body, headers=headers)


def _head_and_get(body: bytes, content_type: str, digest: str | None = "auto"):  # type: ignore[no-untyped-def]
    async def hook(request: web.Request) -> web.StreamResponse:
        resp = _serve(body, content_type, digest)
        if request.method == "HEAD":
            return web.Response(headers={**resp.headers, "Content-Length": str(len(body))})
        return resp

    return hook


CASES = {
    "malformed-json": (_head_and_get(b'{"schemaVersion": 2, "layers": [', "application/vnd.oci.image.manifest.v1+json"),
                       6, ["not valid JSON"]),
    "html-login-page": (_head_and_get(b"<html><body>Please log in</body></html>", "text/html; charset=utf-8", None),
                        6, ["not valid JSON"]),
    "json-not-an-object": (_head_and_get(b'["a", "b"]', "application/json"), 6, ["not a JSON object"]),
    "bad-descriptor": (_head_and_get(b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",'
                                     b' "config": {"digest": "sha256:zz", "size": -1}, "layers": []}',
                                     "application/vnd.oci.image.manifest.v1+json"), 6, ["invalid digest"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_manifest_is_a_clear_protocol_error(fake: FakeRegistry, registry: Registry, tmp_path: Path,
                                                      case: str) -> None:
    hook, code, needles = CASES[case]
    fake.hooks["manifest"] = hook
    run = copy(fake.ref("team/app:v1"), registry.ref("team/app:v1"), tmp_path)
    one_line_error(run, code, *needles)
    nothing_written(registry)


def test_manifest_digest_header_that_lies(fake: FakeRegistry, registry: Registry, tmp_path: Path) -> None:
    """The content is right, the ``Docker-Content-Digest`` header names something else."""
    body = manifest_bytes(fake)
    fake.hooks["manifest"] = _head_and_get(body, "application/vnd.oci.image.manifest.v1+json", sha256(b"other"))
    run = copy(fake.ref("team/app:v1"), registry.ref("team/app:v1"), tmp_path)
    one_line_error(run, 6, "does not match")
    nothing_written(registry)


def test_manifest_content_that_lies_about_its_digest(fake: FakeRegistry, registry: Registry, tmp_path: Path) -> None:
    """Asked for a manifest by digest, the server returns other bytes (with a header matching them)."""
    other, blobs = tiny_image(seed=2)
    fake.blobs.update(blobs)

    async def manifest(request: web.Request) -> web.StreamResponse | None:
        return None if request.method == "HEAD" else _serve(other, "application/vnd.oci.image.manifest.v1+json")

    fake.hooks["manifest"] = manifest
    digest = fake.tags["v1"]
    run = copy(fake.ref(f"team/app@{digest}"), registry.ref("team/app:v1"), tmp_path)
    one_line_error(run, 6, "does not match", digest)
    nothing_written(registry)


def test_blob_content_that_lies_about_its_digest(fake: FakeRegistry, registry: Registry, tmp_path: Path) -> None:
    layer = layer_digest(fake)
    fake.blobs[layer] = b"\xff" * len(fake.blobs[layer])  # right size, wrong bytes
    run = copy(fake.ref("team/app:v1"), registry.ref("team/app:v1"), tmp_path)
    one_line_error(run, 6, "does not match", layer)
    assert registry.request("HEAD", f"/v2/team/app/blobs/{layer}").status == 404
    assert registry.request("HEAD", "/v2/team/app/manifests/v1").status == 404
    assert_whole(registry)


def test_missing_digest_headers_are_computed(fake: FakeRegistry, registry: Registry, tmp_path: Path) -> None:
    """No ``Docker-Content-Digest`` anywhere (allowed): ferry computes the digests, the copy is exact."""
    body = manifest_bytes(fake)
    fake.hooks["manifest"] = _head_and_get(body, "application/vnd.oci.image.manifest.v1+json", None)
    run = copy(fake.ref("team/app:v1"), registry.ref("team/app:v1"), tmp_path)
    assert run.returncode == 0, run.stderr
    assert inspect_raw(registry.ref("team/app:v1")) == body
    assert_whole(registry)


@pytest.mark.parametrize(("answer", "content_type", "needle"), [
    (b"<html>maintenance</html>", "text/html", "not JSON"),
    (b'{"name": "team/app", "tags": "v1"}', "application/json", "not a list of strings"),
], ids=["html", "tags-not-a-list"])
def test_tag_listing_that_is_not_a_listing(fake: FakeRegistry, tmp_path: Path, answer: bytes, content_type: str,
                                           needle: str) -> None:
    async def tags(request: web.Request) -> web.StreamResponse:
        return web.Response(body=answer, headers={"Content-Type": content_type})

    fake.hooks["tags"] = tags
    run = list_tags(fake, tmp_path)
    one_line_error(run, 6, needle)


def test_destination_that_stores_another_digest(registry: Registry, tmp_path: Path, layout: im.Layout) -> None:
    """A destination answering the manifest PUT with a different ``Docker-Content-Digest``."""
    im.oci_image(layout, "a", seed=5)
    push_layout(layout.path, "a", registry.ref("team/app:v1"))
    with FakeRegistry() as dst:
        async def put(request: web.Request) -> web.StreamResponse:
            await request.read()
            return web.Response(status=201, headers={"Docker-Content-Digest": sha256(b"something else")})

        dst.hooks["manifest_put"] = put
        run = copy(registry.ref("team/app:v1"), dst.ref("team/app:v1"), tmp_path, src_creds=False)
        one_line_error(run, 6, "stored manifest", "expected")


# --------------------------------------------------------------------------------------------------
# Credentials never leave for another host


def _no_secret(rec: Recorder) -> None:
    for headers in rec.headers_seen():
        text = json.dumps(headers)
        assert PASSWORD not in text and BASIC not in text, headers
        assert "authorization" not in {k.lower() for k in headers}, headers


def test_upload_location_on_another_host_gets_nothing(registry: Registry, recorder: Recorder, tmp_path: Path,
                                                      layout: im.Layout) -> None:
    im.oci_image(layout, "a", seed=6)
    push_layout(layout.path, "a", registry.ref("team/app:v1"))
    with FakeRegistry(basic=(USER, PASSWORD)) as dst:
        async def start(request: web.Request) -> web.StreamResponse:
            return web.Response(status=202, headers={"Location": f"{recorder.url}/v2/team/app/blobs/uploads/x?s=1"})

        dst.hooks["upload_start"] = start
        run = copy(registry.ref("team/app:v1"), dst.ref("team/app:v1"), tmp_path, src_creds=False, dst_creds=True)
        one_line_error(run, 6, "another host", recorder.host)
        assert recorder.seen == [], "the other host received a request"
        assert dst.tags == {}


def test_redirect_to_another_host_carries_no_credentials(fake: FakeRegistry, registry: Registry, recorder: Recorder,
                                                         tmp_path: Path) -> None:
    """A blob GET redirected to a storage host (as S3-backed registries do): followed without the
    ``Authorization`` header; the copy completes."""
    layer = layer_digest(fake)
    recorder.body = fake.blobs[layer]

    async def blob(request: web.Request) -> web.StreamResponse | None:
        if request.method == "GET" and request.path.endswith(layer):
            return web.Response(status=307, headers={"Location": f"{recorder.url}/storage/{layer}?sig=abc"})
        return None

    fake.hooks["blob"] = blob
    run = copy(fake.ref("team/app:v1"), registry.ref("team/app:v1"), tmp_path)
    assert run.returncode == 0, run.stderr
    assert [s.path for s in recorder.seen] == [f"/storage/{layer}"]
    _no_secret(recorder)
    assert inspect_raw(registry.ref("team/app:v1")) == manifest_bytes(fake)
    assert_whole(registry)


def test_redirect_from_https_to_plain_http_is_refused(registry: Registry, recorder: Recorder, tmp_path: Path,
                                                      ca: CA) -> None:
    cert, key = ca.issue_server_cert()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    with FakeRegistry(basic=(USER, PASSWORD), ssl_context=ctx) as src:
        manifest, blobs = tiny_image(seed=4)
        src.add_image("v1", manifest, blobs)
        layer = json.loads(manifest)["layers"][0]["digest"]
        recorder.body = blobs[layer]

        async def blob(request: web.Request) -> web.StreamResponse | None:
            if request.method == "GET" and request.path.endswith(layer):
                return web.Response(status=302, headers={"Location": f"{recorder.url}/storage/{layer}"})
            return None

        src.hooks["blob"] = blob
        cert_dir = ca.write_cert_dir(tmp_path / "certs")
        env = {**FAST, "FERRY_SRC_PASSWORD": PASSWORD}
        run = run_ferry("copy", "--src-cert-dir", str(cert_dir), "--src-creds", USER, "--dest-tls-verify=false",
                        f"docker://{src.ref('team/app:v1')}", f"docker://{registry.ref('team/app:v1')}",
                        home=tmp_path / "home", env=env)
        one_line_error(run, 6, "HTTPS to plain HTTP")
        assert recorder.seen == []
        nothing_written(registry)


def test_plain_http_token_realm_on_another_host_gets_no_password(registry: Registry, recorder: Recorder,
                                                                 tmp_path: Path) -> None:
    recorder.body = json.dumps({"token": "anonymous-token", "expires_in": 300}).encode()
    recorder.content_type = "application/json"
    with FakeRegistry(bearer_realm=f"{recorder.url}/token") as src:
        manifest, blobs = tiny_image(seed=3)
        src.add_image("v1", manifest, blobs)
        run = copy(src.ref("team/app:v1"), registry.ref("team/app:v1"), tmp_path)
        assert run.returncode == 0, run.stderr
        assert "not sending credentials to token realm" in run.stderr
        assert PASSWORD not in run.stderr
        assert recorder.seen and all(s.path == "/token" for s in recorder.seen)
        _no_secret(recorder)
        # the registry got the (anonymous) token, never the password
        for s in src.seen:
            assert PASSWORD not in json.dumps(s.headers) and BASIC not in json.dumps(s.headers)
        assert inspect_raw(registry.ref("team/app:v1")) == manifest


def test_link_header_that_loops_is_detected(fake: FakeRegistry, tmp_path: Path) -> None:
    """Pages a → b → a: the walk stops with an error instead of going round."""
    async def tags(request: web.Request) -> web.StreamResponse:
        nxt = {"": "a", "a": "b", "b": "a"}[request.query.get("last", "")]
        link = f'</v2/team/app/tags/list?n=1&last={nxt}>; rel="next"'
        return web.json_response({"name": "team/app", "tags": [f"v{nxt}"]}, headers={"Link": link})

    fake.hooks["tags"] = tags
    one_line_error(list_tags(fake, tmp_path), 6, "loops back")
    assert len([s for s in fake.seen if s.path.endswith("/tags/list")]) <= 6


def test_link_header_to_another_host_is_not_followed(fake: FakeRegistry, recorder: Recorder, tmp_path: Path) -> None:
    async def tags(request: web.Request) -> web.StreamResponse:
        link = f'<{recorder.url}/v2/team/app/tags/list?last=v1>; rel="next"'
        return web.json_response({"name": "team/app", "tags": ["v1"]}, headers={"Link": link})

    fake.hooks["tags"] = tags
    one_line_error(list_tags(fake, tmp_path), 6, "another host", recorder.host)
    assert recorder.seen == []
