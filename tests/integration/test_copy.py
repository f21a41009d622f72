"""``ferry copy`` registry → registry: every manifest shape byte for byte, children first, tag last;
``--platform``; nothing to do the second time; blobs already there skipped; blobs mounted across
repositories in a bulk run; a corrupted source blob never lands.

Copies run the real CLI in subprocesses; results are checked with skopeo and with raw HTTP against
the registries, whose access logs show what ferry asked for.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ferry.access import Access, AccessMap
from ferry.connect import Connections
from ferry.engine import Engine, EngineOptions
from ferry.plan.model import Job
from ferry.refs import parse_docker_ref
from tests.support import images as im
from tests.support.cli import FerryCLI, FerryResult
from tests.support.registry import Registry, RequestRecord, start_registry
from tests.support.skopeo import inspect_raw, list_tags, push_layout, push_schema1, schema1_digest

pytestmark = pytest.mark.integration

INSECURE = ["--src-tls-verify=false", "--dest-tls-verify=false"]
ACCEPT_ALL = ", ".join([
    im.OCI_INDEX, im.OCI_MANIFEST, im.DOCKER_LIST, im.DOCKER_MANIFEST,
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
])

SHAPES: dict[str, Callable[[im.Layout, str], str]] = {
    "docker-schema2": lambda lay, ref: im.docker_schema2_image(lay, ref, seed=1, layers=3),
    "docker-list": lambda lay, ref: im.docker_manifest_list(lay, ref, seed=2),
    "oci-image": lambda lay, ref: im.oci_image(lay, ref, seed=3, annotations={"org.ferry.test": "yes"}),
    "oci-index": lambda lay, ref: im.oci_index(lay, ref, seed=4),
    "oci-artifact": lambda lay, ref: im.oci_artifact(lay, ref, seed=5),
    "oci-artifact-empty-config": lambda lay, ref: im.oci_artifact(lay, ref, seed=6, config_media_type=None),
    "oci-referrer": lambda lay, ref: im.referrer(lay, im.oci_image(lay, f"{ref}-subject", seed=7), ref),
}


# -- helpers ---------------------------------------------------------------------------------------


def get_manifest(reg: Registry, repo: str, reference: str) -> tuple[int, bytes, str | None]:
    r = reg.request("GET", f"/v2/{repo}/manifests/{reference}", headers={"Accept": ACCEPT_ALL})
    return r.status, r.body, r.headers.get("Docker-Content-Digest")


def blob_status(reg: Registry, repo: str, digest: str) -> int:
    return reg.request("HEAD", f"/v2/{repo}/blobs/{digest}").status


def graph(lay: im.Layout, digest: str) -> tuple[list[str], set[str]]:
    """(child manifest digests, depth first; blob digests) of a manifest in a layout."""
    m = lay.manifest(digest)
    children: list[str] = []
    blobs = {d["digest"] for d in [*([m["config"]] if "config" in m else []), *m.get("layers", [])]}
    for child in m.get("manifests", []):
        sub_children, sub_blobs = graph(lay, child["digest"])
        children += [*sub_children, child["digest"]]
        blobs |= sub_blobs
    return children, blobs


def writes(reg: Registry, since: int, repo: str) -> list[RequestRecord]:
    """Requests that change ``repo`` (blob uploads and mounts, manifest pushes), in log order."""
    prefix = f"/v2/{repo}/"
    return [r for r in reg.requests(since) if r.path.startswith(prefix) and r.method in ("POST", "PUT", "PATCH")]


def manifest_puts(records: list[RequestRecord], repo: str) -> list[str]:
    prefix = f"/v2/{repo}/manifests/"
    return [r.path.removeprefix(prefix) for r in records if r.method == "PUT" and r.path.startswith(prefix)]


def uploaded_digests(records: list[RequestRecord]) -> list[str]:
    return [r.params["digest"][0] for r in records if r.method == "PUT" and "/blobs/uploads/" in r.path]


def derived_image(lay: im.Layout, base: str, ref: str, seed: int) -> str:
    """An OCI image made of ``base``'s layers plus one new layer (and its own config)."""
    base_m = lay.manifest(base)
    base_cfg = json.loads(lay.read_blob(base_m["config"]["digest"]))
    layer, diff_id = lay.add_layer({f"derived/{seed}.txt": f"derived {seed}\n".encode()}, im.OCI_LAYER)
    cfg = dict(base_cfg, rootfs={"type": "layers", "diff_ids": [*base_cfg["rootfs"]["diff_ids"], diff_id]},
               history=[*base_cfg["history"], {"created": im.CREATED, "created_by": f"derived {seed}"}])
    config = lay.add_json_blob(cfg, im.OCI_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": im.OCI_MANIFEST, "config": config,
                "layers": [*base_m["layers"], layer]}
    return lay.add_manifest(manifest, im.OCI_MANIFEST, ref)["digest"]


def copy_ok(r: FerryResult) -> None:
    assert r.returncode == 0, r
    assert "Traceback" not in r.stderr, r


# -- every shape, byte for byte ---------------------------------------------------------------------


@dataclass
class ShapeRun:
    src: Registry
    dst: Registry
    layout: im.Layout
    digests: dict[str, str]  # shape -> top manifest digest
    results: dict[str, FerryResult]
    marks: int  # dst access log position before the copies
    cli: FerryCLI


@pytest.fixture(scope="module")
def shape_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShapeRun]:
    """One source and one destination registry; every shape pushed with skopeo, then all copied by
    ferry at once (``shapes/NAME:v1`` → ``copied/NAME:v2``) to keep the module fast."""
    root = tmp_path_factory.mktemp("shapes")
    lay = im.Layout(root / "layout")
    digests = {name: make(lay, name) for name, make in SHAPES.items()}
    with start_registry(root / "src") as src, start_registry(root / "dst") as dst:
        for name in SHAPES:
            push_layout(lay.path, name, src.ref(f"shapes/{name}:v1"))
        cli = FerryCLI(root / "cli")
        mark = dst.mark()
        names = list(SHAPES)
        runs = cli.run_many([
            ["copy", *INSECURE, f"docker://{src.ref(f'shapes/{n}:v1')}", f"docker://{dst.ref(f'copied/{n}:v2')}"]
            for n in names
        ])
        yield ShapeRun(src, dst, lay, digests, dict(zip(names, runs, strict=True)), mark, cli)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_copy_shape_byte_exact(shape: str, shape_run: ShapeRun) -> None:
    run, src, dst, lay = shape_run, shape_run.src, shape_run.dst, shape_run.layout
    digest = run.digests[shape]
    copy_ok(run.results[shape])
    assert digest in run.results[shape].stderr  # the summary names the digest now at the destination

    src_raw = inspect_raw(src.ref(f"shapes/{shape}:v1"))
    dst_raw = inspect_raw(dst.ref(f"copied/{shape}:v2"))
    assert dst_raw == src_raw == lay.manifest_bytes(digest)
    status, body, stored = get_manifest(dst, f"copied/{shape}", "v2")
    assert (status, body, stored) == (200, src_raw, digest)

    children, blobs = graph(lay, digest)
    for child in children:  # every child, by digest, byte for byte
        status, body, stored = get_manifest(dst, f"copied/{shape}", child)
        assert (status, stored) == (200, child) and body == lay.read_blob(child), child
    for blob in blobs:
        assert blob_status(dst, f"copied/{shape}", blob) == 200, blob
    assert list_tags(dst.ref(f"copied/{shape}")) == ["v2"]  # nothing tagged but the tag asked for

    # children before their parent, the tag last, and nothing written after it
    log = writes(dst, run.marks, f"copied/{shape}")
    puts = manifest_puts(log, f"copied/{shape}")
    assert puts == [*children, "v2"] or (sorted(puts[:-1]) == sorted(children) and puts[-1] == "v2"), puts
    assert log[-1].method == "PUT" and log[-1].path.endswith("/manifests/v2")
    assert sorted(uploaded_digests(log)) == sorted(blobs)  # each blob sent exactly once


def test_copy_index_children_before_parents(shape_run: ShapeRun) -> None:
    """For an index every child manifest lands before the index (the registry would refuse it
    otherwise), and each child's blobs land before that child."""
    repo = "copied/oci-index"
    log = writes(shape_run.dst, shape_run.marks, repo)
    position = {rec.path.rsplit("/", 1)[1]: i for i, rec in enumerate(log) if "/manifests/" in rec.path}
    uploads = {r.params["digest"][0]: i for i, r in enumerate(log) if "/blobs/uploads/" in r.path and r.method == "PUT"}
    lay = shape_run.layout
    for child in lay.manifest(shape_run.digests["oci-index"])["manifests"]:
        assert position[child["digest"]] < position["v2"]
        m = lay.manifest(child["digest"])
        for blob in [m["config"], *m["layers"]]:
            assert uploads[blob["digest"]] < position[child["digest"]]


def test_second_copy_is_a_noop(shape_run: ShapeRun) -> None:
    src, dst, cli = shape_run.src, shape_run.dst, shape_run.cli
    again = ["oci-index", "oci-artifact"]
    mark = dst.mark()
    results = cli.run_many([
        ["copy", *INSECURE, f"docker://{src.ref(f'shapes/{n}:v1')}", f"docker://{dst.ref(f'copied/{n}:v2')}"]
        for n in again
    ])
    for name, r in zip(again, results, strict=True):
        copy_ok(r)
        assert "nothing copied" in r.stderr and shape_run.digests[name] in r.stderr, r
    changed = [r for r in dst.requests(mark) if r.method not in ("GET", "HEAD")]
    assert changed == []
    # one HEAD per side and image: the destination tag is checked, nothing else is asked
    heads = [r for r in dst.requests(mark) if r.path.startswith("/v2/copied/")]
    assert len(heads) == len(again) and all(r.method == "HEAD" for r in heads), heads


# -- schema 1 ---------------------------------------------------------------------------------------


def test_copy_schema1_as_read(tmp_path: Path, layout: im.Layout) -> None:
    """A signed schema1 manifest is pushed as read and keeps its digest (that of the payload without
    signatures). distribution signs schema1 anew on every GET (the signature's ``time`` changes), so
    bytes are compared without the signatures."""
    im.docker_schema2_image(layout, "img", seed=11, layers=2)
    with start_registry(tmp_path / "s1-src", schema1=True) as src, \
            start_registry(tmp_path / "s1-dst", schema1=True) as dst:
        push_schema1(layout.path, "img", src.ref("old/app:v1"))
        raw = inspect_raw(src.ref("old/app:v1"))
        digest = schema1_digest(raw)
        r = FerryCLI(tmp_path / "cli").run(
            "copy", *INSECURE, f"docker://{src.ref('old/app:v1')}", f"docker://{dst.ref('new/app:v1')}")
        copy_ok(r)
        assert digest in r.stderr
        copied = inspect_raw(dst.ref("new/app:v1"))
        assert schema1_digest(copied) == digest
        assert _unsigned(copied) == _unsigned(raw)
        status, body, stored = get_manifest(dst, "new/app", digest)
        assert (status, stored) == (200, digest) and _unsigned(body) == _unsigned(raw)
        for layer in {fs["blobSum"] for fs in json.loads(raw)["fsLayers"]}:
            assert blob_status(dst, "new/app", layer) == 200


def _unsigned(raw: bytes) -> bytes:
    """Signed schema1 bytes up to the signatures (``formatLength`` of the JWS header)."""
    header = json.loads(raw)["signatures"][0]["protected"]
    return raw[: json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["formatLength"]]


# -- --platform -------------------------------------------------------------------------------------


def test_platform_copies_only_that_child(shape_run: ShapeRun) -> None:
    src, dst, lay, cli = shape_run.src, shape_run.dst, shape_run.layout, shape_run.cli
    oci_children = lay.manifest(shape_run.digests["oci-index"])["manifests"]
    docker_children = lay.manifest(shape_run.digests["docker-list"])["manifests"]
    arm64 = next(c for c in oci_children if c["platform"]["architecture"] == "arm64")
    amd64 = next(c for c in docker_children if c["platform"]["architecture"] == "amd64")
    oci_run, docker_run, missing = cli.run_many([
        ["copy", *INSECURE, "--platform", "linux/arm64/v8",
         f"docker://{src.ref('shapes/oci-index:v1')}", f"docker://{dst.ref('platform/oci:arm64')}"],
        ["copy", *INSECURE, "--platform", "linux/amd64",
         f"docker://{src.ref('shapes/docker-list:v1')}", f"docker://{dst.ref('platform/docker:amd64')}"],
        ["copy", *INSECURE, "--platform", "windows/amd64",
         f"docker://{src.ref('shapes/oci-index:v1')}", f"docker://{dst.ref('platform/none:v1')}"],
    ])
    for r, repo, tag, chosen, all_children in (
        (oci_run, "platform/oci", "arm64", arm64, oci_children),
        (docker_run, "platform/docker", "amd64", amd64, docker_children),
    ):
        copy_ok(r)
        child_raw = lay.read_blob(chosen["digest"])
        # the child under the tag asked for, and under its own digest, with its exact bytes
        assert inspect_raw(dst.ref(f"{repo}:{tag}")) == child_raw
        assert get_manifest(dst, repo, chosen["digest"]) == (200, child_raw, chosen["digest"])
        _, blobs = graph(lay, chosen["digest"])
        assert all(blob_status(dst, repo, b) == 200 for b in blobs)
        for other in all_children:
            if other["digest"] != chosen["digest"]:
                assert get_manifest(dst, repo, other["digest"])[0] == 404
                _, other_blobs = graph(lay, other["digest"])
                assert all(blob_status(dst, repo, b) == 404 for b in other_blobs - blobs)
        assert list_tags(dst.ref(repo)) == [tag]
    assert missing.returncode == 5, missing
    assert "windows/amd64" in missing.error and "linux/arm64/v8" in missing.error, missing  # lists what exists
    assert dst.request("GET", "/v2/platform/none/tags/list").status == 404


# -- blobs already there, mounts, verification -------------------------------------------------------


def test_copy_into_repo_that_has_some_layers(registry_pair: tuple[Registry, Registry], layout: im.Layout,
                                             tmp_path: Path) -> None:
    """Only the blobs the destination lacks are sent; the others are found by mounting them from the
    repository itself (answered 201: it holds them) and skipped, one request each."""
    src, dst = registry_pair
    base = im.oci_image(layout, "base", seed=21, layers=3, layer_size=512 * 1024)
    derived = derived_image(layout, base, "derived", seed=22)
    push_layout(layout.path, "base", dst.ref("app/svc:base"))
    push_layout(layout.path, "derived", src.ref("app/svc:derived"))
    base_m, derived_m = layout.manifest(base), layout.manifest(derived)
    base_blobs = {d["digest"] for d in [base_m["config"], *base_m["layers"]]}
    derived_blobs = {d["digest"] for d in [derived_m["config"], *derived_m["layers"]]}
    new_blobs = derived_blobs - base_blobs
    assert len(new_blobs) == 2 and len(derived_blobs & base_blobs) == 3  # config + new layer; 3 shared

    mark = dst.mark()
    r = FerryCLI(tmp_path / "cli").run(
        "copy", *INSECURE, f"docker://{src.ref('app/svc:derived')}", f"docker://{dst.ref('app/svc:derived')}")
    copy_ok(r)
    assert "2 blobs" in r.stderr and "3 already present" in r.stderr, r
    log = writes(dst, mark, "app/svc")
    assert sorted(uploaded_digests(log)) == sorted(new_blobs)
    assert manifest_puts(log, "app/svc") == ["derived"]
    starts = [r for r in log if r.method == "POST"]
    assert all(r.params["from"] == ["app/svc"] for r in starts)
    assert {r.params["mount"][0] for r in starts if r.status == 201} == base_blobs & derived_blobs
    assert {r.params["mount"][0] for r in starts if r.status == 202} == new_blobs
    assert [r for r in dst.requests(mark) if r.method == "HEAD" and "/blobs/" in r.path] == []
    assert inspect_raw(dst.ref("app/svc:derived")) == layout.manifest_bytes(derived)
    # the layers of the base were never read from the source
    src_reads = {r.path.rsplit("/", 1)[1] for r in src.requests() if r.method == "GET" and "/blobs/" in r.path}
    assert src_reads == new_blobs


async def test_engine_mounts_shared_blobs_across_repositories(
    registry_pair: tuple[Registry, Registry], layout: im.Layout
) -> None:
    """Two jobs into different repositories sharing layers: each blob is uploaded once, the
    shared ones are mounted (``POST ?mount=&from=`` the other repository, answered 201) into the second
    repository. Every other upload starts with a mount from its own repository (202: not there yet)."""
    src, dst = registry_pair
    base = im.oci_image(layout, "base", seed=31, layers=3)
    derived = derived_image(layout, base, "derived", seed=32)
    push_layout(layout.path, "base", src.ref("lib/base:v1"))
    push_layout(layout.path, "derived", src.ref("lib/derived:v1"))
    base_m, derived_m = layout.manifest(base), layout.manifest(derived)
    base_blobs = {d["digest"] for d in [base_m["config"], *base_m["layers"]]}
    derived_blobs = {d["digest"] for d in [derived_m["config"], *derived_m["layers"]]}
    shared = base_blobs & derived_blobs
    assert len(shared) == 3

    jobs = [
        Job(parse_docker_ref(src.ref("lib/base:v1")), parse_docker_ref(dst.ref("mirror/base:v1"))),
        Job(parse_docker_ref(src.ref("lib/derived:v1")), parse_docker_ref(dst.ref("mirror/derived:v1"))),
    ]
    insecure = Access(tls_verify=False)
    conns = Connections(AccessMap(entries={src.host: insecure, dst.host: insecure}, default=insecure))
    mark = dst.mark()
    try:
        result = await Engine(conns, EngineOptions(proc=2, retries=0)).run(jobs)
    finally:
        await conns.close()
    assert [r.status for r in result.records] == ["copied", "copied"], result.records

    log = dst.requests(mark)
    uploads = uploaded_digests(log)
    assert sorted(uploads) == sorted(base_blobs | derived_blobs)  # every distinct blob sent once
    posts = [r for r in log if r.method == "POST"]
    cross = [r for r in posts if r.path.removeprefix("/v2/").removesuffix("/blobs/uploads/") != r.params["from"][0]]
    assert sorted(r.params["mount"][0] for r in cross) == sorted(shared)
    for m in cross:
        assert m.params["from"][0] in ("mirror/base", "mirror/derived") and m.status == 201
    assert all(r.status == 202 for r in posts if r not in cross)  # self-mounts of blobs not yet there
    assert len(posts) == len(base_blobs | derived_blobs) + len(shared)
    for repo, digest in (("mirror/base", base), ("mirror/derived", derived)):
        assert inspect_raw(dst.ref(f"{repo}:v1")) == layout.manifest_bytes(digest)
        assert all(blob_status(dst, repo, b) == 200 for b in graph(layout, digest)[1])


def _storage_blob(reg: Registry, digest: str) -> Path:
    hexd = digest.split(":", 1)[1]
    return reg.root / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexd[:2] / hexd / "data"


def test_corrupted_source_blob_never_lands(registry_pair: tuple[Registry, Registry], layout: im.Layout,
                                          tmp_path: Path) -> None:
    """A source serving bytes that do not match the digest: exit 6 naming the blob; the destination
    neither keeps the blob nor gets the manifest."""
    src, dst = registry_pair
    digest = im.oci_image(layout, "img", seed=41, layers=2, layer_size=256 * 1024)
    push_layout(layout.path, "img", src.ref("app/x:v1"))
    layer = layout.manifest(digest)["layers"][-1]["digest"]
    data = _storage_blob(src, layer)
    content = bytearray(data.read_bytes())
    content[len(content) // 2] ^= 0xFF  # same size, different bytes
    data.write_bytes(bytes(content))
    assert "sha256:" + hashlib.sha256(content).hexdigest() != layer

    r = FerryCLI(tmp_path / "cli").run(
        "copy", *INSECURE, f"docker://{src.ref('app/x:v1')}", f"docker://{dst.ref('app/x:v1')}")
    assert r.returncode == 6, r
    assert layer in r.error and "Traceback" not in r.stderr, r
    assert blob_status(dst, "app/x", layer) == 404
    assert get_manifest(dst, "app/x", "v1")[0] == 404
    assert get_manifest(dst, "app/x", digest)[0] == 404
