"""Local transports (oci:, dir:, docker-archive:) checked against skopeo 1.9 as the independent reader/writer.

Images come from :mod:`tests.support.images` (real gzip'd layers, real configs) written as OCI layouts;
skopeo converts them to the other formats and reads back what ferry writes.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ferry.connect import open_destination, open_source
from ferry.copy import ImageCopier
from ferry.errors import DigestMismatchError, NotFoundError, ProtocolError, UsageError
from ferry.media import Descriptor, Manifest
from ferry.refs import PathRef, parse_image_ref
from ferry.transports.archive import ArchiveDestination, ArchiveSource
from ferry.transports.directory import DirDestination, DirSource
from ferry.transports.layout import LayoutDestination, LayoutSource
from tests.support import images as im
from tests.support.skopeo import skopeo

pytestmark = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is the reference implementation")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def raw_of(ref: str) -> bytes:
    """What skopeo reads as the manifest of ``ref`` (exact bytes)."""
    return skopeo("inspect", "--raw", ref).stdout


def ref(text: str) -> PathRef:
    parsed = parse_image_ref(text)
    assert isinstance(parsed, PathRef)
    return parsed


async def blob_digest(src: object, desc: Descriptor) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    async for chunk in src.read_blob(desc):  # type: ignore[attr-defined]
        h.update(chunk)
        n += len(chunk)
    return "sha256:" + h.hexdigest(), n


async def check_blobs(src: object, m: Manifest) -> None:
    """Every blob of ``m`` (and of its children) streams with the digest and size its descriptor says."""
    for child in m.children:
        await check_blobs(src, await src.get_manifest(child.digest))  # type: ignore[attr-defined]
    for b in m.blobs:
        assert await blob_digest(src, b) == (b.digest, b.size)


async def mini_copy(src: object, dst: object, reference: str = "", dst_reference: str = "") -> Manifest:
    """The smallest honest copy loop: blobs, then children by digest, then the image under its reference."""

    async def image(m: Manifest) -> None:
        for b in m.blobs:
            if not await dst.has_blob(b):  # type: ignore[attr-defined]
                await dst.put_blob(b, lambda b=b: src.read_blob(b))  # type: ignore[attr-defined]

    top: Manifest = await src.get_manifest(reference)  # type: ignore[attr-defined]
    for child in top.children:
        cm = await src.get_manifest(child.digest)  # type: ignore[attr-defined]
        await image(cm)
        await dst.put_manifest(cm, cm.digest)  # type: ignore[attr-defined]
    await image(top)
    await dst.put_manifest(top, dst_reference)  # type: ignore[attr-defined]
    await dst.commit()  # type: ignore[attr-defined]
    await dst.close()  # type: ignore[attr-defined]
    await src.close()  # type: ignore[attr-defined]
    return top


async def copy_image(src_text: str, dst_text: str) -> str:
    """Copy with the real copy algorithm, the way ``ferry copy`` calls it; the digest at the destination."""
    src_ref, dst_ref = ref(src_text), ref(dst_text)
    src, dst = open_source(src_ref), open_destination(dst_ref)
    try:
        result = await ImageCopier().copy(src, dst, src_ref.name or "", dst_ref.name)
    finally:
        await src.close()
        await dst.close()
    return result.digest


def files(path: Path) -> set[str]:
    return {p.name for p in path.iterdir()}


# --- Sources: ferry reads what skopeo wrote -------------------------------------------------------


async def test_oci_source_matches_skopeo(layout: im.Layout) -> None:
    digest = im.oci_image(layout, "v1", layers=3)
    src = open_source(ref(f"oci:{layout.path}:v1"))
    m = await src.get_manifest("")
    assert m.raw == raw_of(f"oci:{layout.path}:v1") and m.digest == digest
    assert (await src.get_manifest(digest)).raw == m.raw
    await check_blobs(src, m)
    # no NAME and a single image: that image (skopeo semantics)
    assert (await open_source(ref(f"oci:{layout.path}")).get_manifest("")).digest == digest


async def test_dir_source_reads_skopeo_dir(layout: im.Layout, tmp_path: Path) -> None:
    im.oci_image(layout, "v1", layers=2)
    skopeo("copy", f"oci:{layout.path}:v1", f"dir:{tmp_path / 'd'}")
    src = open_source(ref(f"dir:{tmp_path / 'd'}"))
    m = await src.get_manifest("")
    assert m.raw == raw_of(f"dir:{tmp_path / 'd'}")
    assert (await src.get_manifest(m.digest)).digest == m.digest
    await check_blobs(src, m)


async def test_dir_source_reads_skopeo_index(layout: im.Layout, tmp_path: Path) -> None:
    digest = im.oci_index(layout, "multi")
    skopeo("copy", "--all", f"oci:{layout.path}:multi", f"dir:{tmp_path / 'd'}")
    src = DirSource(ref(f"dir:{tmp_path / 'd'}"))
    m = await src.get_manifest("")
    assert m.digest == digest and m.is_index and len(m.children) == 3
    for child in m.children:
        cm = await src.get_manifest(child.digest)
        assert cm.raw == layout.manifest_bytes(child.digest)
    await check_blobs(src, m)


async def test_archive_source_matches_skopeo_generated_manifest(layout: im.Layout, tmp_path: Path) -> None:
    im.oci_image(layout, "v1", layers=3)
    archive = tmp_path / "a.tar"
    skopeo("copy", f"oci:{layout.path}:v1", f"docker-archive:{archive}:example.com/app:v1")
    for text in (f"docker-archive:{archive}", f"docker-archive:{archive}:example.com/app:v1",
                 f"docker-archive:{archive}:@0"):
        src = open_source(ref(text))
        m = await src.get_manifest("")
        assert m.raw == raw_of(f"docker-archive:{archive}")
        await check_blobs(src, m)  # layers stream uncompressed: their digests are the diffIDs
        await src.close()


def _docker_save_archive(path: Path, *, compress_layers: bool, compress_archive: bool = False) -> list[str]:
    """A ``docker save``-style archive made by hand: layers under ``<id>/layer.tar`` (a repeated layer
    as a symlink), optionally gzip'd layers or a gzip'd archive. Returns the diffIDs."""
    layers = []
    for i in range(2):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            data = f"layer {i}\n".encode() * 1000
            info = tarfile.TarInfo(f"file{i}.txt")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        layers.append(buf.getvalue())
    diff_ids = [sha(layer) for layer in layers]
    diff_ids.append(diff_ids[0])  # the first layer again
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))

        for i, layer in enumerate(layers):
            add(f"id{i}/layer.tar", gzip.compress(layer, mtime=0) if compress_layers else layer)
        link = tarfile.TarInfo("id2/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../id0/layer.tar"
        t.addfile(link)
        add("cfg.json", config)
        add("manifest.json", json.dumps([{"Config": "cfg.json", "RepoTags": ["app:1", "example.com/other:2"],
                                          "Layers": ["id0/layer.tar", "id1/layer.tar", "id2/layer.tar"]}]).encode())
    data = out.getvalue()
    path.write_bytes(gzip.compress(data) if compress_archive else data)
    if compress_archive:  # skopeo 1.9.3 fails on compressed archives ("unexpected EOF"): a plain twin for it
        path.with_name(path.name + ".plain").write_bytes(data)
    return diff_ids


@pytest.mark.parametrize(("compress_layers", "compress_archive"), [(False, False), (True, False), (True, True)])
async def test_archive_source_docker_save_layouts(
    tmp_path: Path, compress_layers: bool, compress_archive: bool
) -> None:
    archive = tmp_path / "save.tar"
    diff_ids = _docker_save_archive(archive, compress_layers=compress_layers, compress_archive=compress_archive)
    src = open_source(ref(f"docker-archive:{archive}:docker.io/library/app:1"))
    m = await src.get_manifest("")
    assert m.raw == raw_of(f"docker-archive:{archive}{'.plain' if compress_archive else ''}")
    assert [layer.digest for layer in m.layers] == diff_ids
    await check_blobs(src, m)
    assert (await src.get_manifest("example.com/other:2")).digest == m.digest  # another RepoTag, same item
    await src.close()


async def test_archive_digest_is_what_skopeo_preserve_digests_copies(layout: im.Layout, tmp_path: Path) -> None:
    """``skopeo copy --preserve-digests`` keeps the generated manifest; ferry presents the same one
    (a registry round trip of the same claim is in tests/integration/test_local_transports_registry.py)."""
    im.oci_image(layout, "v1")
    archive = tmp_path / "a.tar"
    skopeo("copy", f"oci:{layout.path}:v1", f"docker-archive:{archive}")
    skopeo("copy", "--preserve-digests", f"docker-archive:{archive}", f"dir:{tmp_path / 'sk'}")
    digest = await copy_image(f"docker-archive:{archive}", f"dir:{tmp_path / 'fe'}")
    assert digest == sha((tmp_path / "sk" / "manifest.json").read_bytes())
    assert files(tmp_path / "fe") == files(tmp_path / "sk")


# --- Destinations: skopeo reads what ferry wrote --------------------------------------------------


async def test_oci_destination_is_byte_identical_to_skopeo(layout: im.Layout, tmp_path: Path) -> None:
    im.oci_image(layout, "v1", layers=2)
    out, sk = tmp_path / "out", tmp_path / "sk"
    await mini_copy(LayoutSource(ref(f"oci:{layout.path}:v1")), LayoutDestination(ref(f"oci:{out}:v1")))
    skopeo("copy", f"oci:{layout.path}:v1", f"oci:{sk}:v1")
    for name in ("index.json", "oci-layout"):
        assert (out / name).read_bytes() == (sk / name).read_bytes(), name
    assert sorted(os.listdir(out / "blobs" / "sha256")) == sorted(os.listdir(sk / "blobs" / "sha256"))
    assert raw_of(f"oci:{out}:v1") == layout.manifest_bytes("v1")
    skopeo("copy", f"oci:{out}:v1", f"dir:{tmp_path / 'back'}")  # skopeo verifies every blob
    assert sha((tmp_path / "back" / "manifest.json").read_bytes()) == layout.descriptor("v1")["digest"]


async def test_dir_destination_matches_skopeo_dir(layout: im.Layout, tmp_path: Path) -> None:
    digest = im.oci_image(layout, "v1", layers=2)
    out, sk = tmp_path / "out", tmp_path / "sk"
    assert await copy_image(f"oci:{layout.path}:v1", f"dir:{out}") == digest
    skopeo("copy", f"oci:{layout.path}:v1", f"dir:{sk}")
    assert files(out) == files(sk)
    for name in files(sk):
        assert (out / name).read_bytes() == (sk / name).read_bytes(), name
    skopeo("copy", f"dir:{out}", f"oci:{tmp_path / 'back'}:x")
    assert sha(raw_of(f"oci:{tmp_path / 'back'}:x")) == digest


async def test_archive_destination_readable_by_skopeo(layout: im.Layout, tmp_path: Path) -> None:
    im.oci_image(layout, "v1", layers=3)
    out, sk = tmp_path / "out.tar", tmp_path / "sk.tar"
    await copy_image(f"oci:{layout.path}:v1", f"docker-archive:{out}:example.com/app:v1")
    skopeo("copy", f"oci:{layout.path}:v1", f"docker-archive:{sk}:example.com/app:v1")
    # skopeo builds the same manifest from either archive (same config, same diffIDs and sizes)
    assert raw_of(f"docker-archive:{out}") == raw_of(f"docker-archive:{sk}")
    with tarfile.open(out) as t:
        items = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert items[0]["RepoTags"] == ["example.com/app:v1"]
    skopeo("copy", f"docker-archive:{out}:example.com/app:v1", f"oci:{tmp_path / 'back'}:x")
    # and ferry reads its own archive like skopeo's
    assert (await open_source(ref(f"docker-archive:{out}")).get_manifest("")).raw == raw_of(f"docker-archive:{sk}")


async def test_archive_destination_normalizes_repo_tags(layout: im.Layout, tmp_path: Path) -> None:
    im.oci_image(layout, "v1")
    out = tmp_path / "out.tar"
    await copy_image(f"oci:{layout.path}:v1", f"docker-archive:{out}:busybox")
    with tarfile.open(out) as t:
        assert json.load(t.extractfile("manifest.json"))[0]["RepoTags"] == [  # type: ignore[arg-type]
            "docker.io/library/busybox:latest"
        ]
    skopeo("inspect", "--raw", f"docker-archive:{out}:busybox:latest")


async def test_docker_schema2_image_through_all_three(layout: im.Layout, tmp_path: Path) -> None:
    digest = im.docker_schema2_image(layout, "d")
    assert await copy_image(f"oci:{layout.path}:d", f"dir:{tmp_path / 'd'}") == digest
    assert sha(raw_of(f"dir:{tmp_path / 'd'}")) == digest
    assert await copy_image(f"dir:{tmp_path / 'd'}", f"oci:{tmp_path / 'o'}") == digest
    assert sha(raw_of(f"oci:{tmp_path / 'o'}")) == digest  # unnamed: skopeo takes the only entry
    await copy_image(f"dir:{tmp_path / 'd'}", f"docker-archive:{tmp_path / 'a.tar'}")
    skopeo("copy", f"docker-archive:{tmp_path / 'a.tar'}", f"dir:{tmp_path / 'back'}")


# --- multi-platform indexes ----------------------------------------------------------------------


async def test_index_round_trips_through_oci_and_dir(layout: im.Layout, tmp_path: Path) -> None:
    digest = im.oci_index(layout, "multi")
    o1, d1, o2 = tmp_path / "o1", tmp_path / "d1", tmp_path / "o2"
    assert await copy_image(f"oci:{layout.path}:multi", f"oci:{o1}:m") == digest
    assert raw_of(f"oci:{o1}:m") == layout.manifest_bytes("multi")
    assert await copy_image(f"oci:{o1}:m", f"dir:{d1}") == digest
    assert await copy_image(f"dir:{d1}", f"oci:{o2}:m") == digest
    # skopeo lays out the same index identically, and reads ferry's copies back
    skopeo("copy", "--all", f"oci:{layout.path}:multi", f"dir:{tmp_path / 'skd'}")
    assert files(d1) == files(tmp_path / "skd")
    skopeo("copy", "--all", f"oci:{layout.path}:multi", f"oci:{tmp_path / 'sko'}:m")
    assert (o2 / "index.json").read_bytes() == (tmp_path / "sko" / "index.json").read_bytes()
    skopeo("copy", "--all", f"dir:{d1}", f"oci:{tmp_path / 'back'}:x")
    skopeo("copy", "--all", f"oci:{o2}:m", f"dir:{tmp_path / 'back2'}")
    assert sha((tmp_path / "back2" / "manifest.json").read_bytes()) == digest
    await check_blobs(open_source(ref(f"oci:{o2}:m")), await open_source(ref(f"oci:{o2}:m")).get_manifest(""))


async def test_index_into_archive_is_refused(layout: im.Layout, tmp_path: Path) -> None:
    im.oci_index(layout, "multi")
    out = tmp_path / "out.tar"
    with pytest.raises(UsageError, match=r"single image.*multi-platform index|single image.*second"):
        await copy_image(f"oci:{layout.path}:multi", f"docker-archive:{out}")
    assert not out.exists() and os.listdir(tmp_path) == ["layout"]
    # with one platform chosen it works
    src, dst = open_source(ref(f"oci:{layout.path}:multi")), open_destination(ref(f"docker-archive:{out}"))
    await ImageCopier().copy(src, dst, "multi", None, platform="linux/arm64")
    await dst.close()
    assert json.loads(skopeo("inspect", "--config", "--raw", f"docker-archive:{out}").stdout)["architecture"] == "arm64"


# --- failures ------------------------------------------------------------------------------------


async def _corrupt_stream(desc: Descriptor, data: bytes) -> AsyncIterator[bytes]:
    yield data[: len(data) // 2]
    yield b"X" * (len(data) - len(data) // 2)


@pytest.mark.parametrize("transport", ["oci", "dir", "docker-archive"])
async def test_corrupt_blob_is_refused_and_leaves_nothing(layout: im.Layout, tmp_path: Path, transport: str) -> None:
    im.oci_image(layout, "v1")
    src = LayoutSource(ref(f"oci:{layout.path}:v1"))
    m = await src.get_manifest("")
    layer = m.layers[0]
    good = layout.read_blob(layer.digest)
    target = tmp_path / ("out.tar" if transport == "docker-archive" else "out")
    dst = open_destination(ref(f"{transport}:{target}"))
    before = _snapshot(tmp_path)
    with pytest.raises(DigestMismatchError, match=layer.digest):
        await dst.put_blob(layer, lambda: _corrupt_stream(layer, good))
    assert not await dst.has_blob(layer)
    if transport == "docker-archive":
        await mini_copy(src, dst)  # the cut-off member left no trace: the archive is still valid
        skopeo("copy", f"docker-archive:{target}", f"dir:{tmp_path / 'back'}")
    else:
        assert _snapshot(tmp_path) == before  # no temp file, no blob file
        await dst.close()


async def test_short_and_long_streams_are_refused(layout: im.Layout, tmp_path: Path) -> None:
    im.oci_image(layout, "v1")
    m = await LayoutSource(ref(f"oci:{layout.path}:v1")).get_manifest("")
    layer = m.layers[0]
    data = layout.read_blob(layer.digest)
    dst = DirDestination(ref(f"dir:{tmp_path / 'd'}"))

    async def stream(payload: bytes) -> AsyncIterator[bytes]:
        yield payload

    for payload in (data[:-1], data + b"x"):
        with pytest.raises(ProtocolError, match=r"bytes"):
            await dst.put_blob(layer, lambda p=payload: stream(p))
    assert files(tmp_path / "d") == {"version"}


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()}


async def test_missing_names_say_what_exists(layout: im.Layout, tmp_path: Path) -> None:
    im.oci_image(layout, "v1")
    im.oci_image(layout, "v2", seed=1)
    with pytest.raises(NotFoundError, match=r"no image named 'nope' in oci layout .*names present: v1, v2"):
        await open_source(ref(f"oci:{layout.path}:nope")).get_manifest("")
    with pytest.raises(UsageError, match=r"holds 2 images; name one"):
        await open_source(ref(f"oci:{layout.path}")).get_manifest("")
    archive = tmp_path / "a.tar"
    skopeo("copy", f"oci:{layout.path}:v1", f"docker-archive:{archive}:app:v1")
    missing = r"no image tagged docker.io/library/app:v9 .*present: docker.io/library/app:v1"
    with pytest.raises(NotFoundError, match=missing):
        await open_source(ref(f"docker-archive:{archive}:app:v9")).get_manifest("")
    with pytest.raises(NotFoundError, match=r"does not exist"):
        open_source(ref(f"oci:{tmp_path / 'nothing'}"))
    with pytest.raises(NotFoundError, match=r"manifest.json is missing"):
        (tmp_path / "empty").mkdir()
        await open_source(ref(f"dir:{tmp_path / 'empty'}")).get_manifest("")
    with pytest.raises(NotFoundError, match=r"blob .* is missing"):
        await blob_digest(open_source(ref(f"oci:{layout.path}:v1")), Descriptor("x", sha(b"absent"), 6))


async def test_broken_inputs_are_protocol_errors(layout: im.Layout, tmp_path: Path) -> None:
    im.oci_image(layout, "v1")
    (layout.path / "index.json").write_text("{not json")
    with pytest.raises(ProtocolError, match=r"index.json is not valid JSON"):
        await open_source(ref(f"oci:{layout.path}:v1")).get_manifest("")
    with pytest.raises(ProtocolError, match=r"index.json"):
        open_destination(ref(f"oci:{layout.path}:v1"))
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(ProtocolError, match=r"tar"):
        await open_source(ref(f"docker-archive:{tmp_path / 'junk.tar'}")).get_manifest("")


async def test_destinations_refuse_to_overwrite_foreign_data(layout: im.Layout, tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "important.txt").write_text("keep me")
    with pytest.raises(UsageError, match=r"not an image directory"):
        open_destination(ref(f"dir:{tmp_path / 'notes'}"))
    (tmp_path / "exists.tar").write_bytes(b"x")
    with pytest.raises(UsageError, match=r"already exists"):
        open_destination(ref(f"docker-archive:{tmp_path / 'exists.tar'}"))
    with pytest.raises(UsageError, match=r"does not exist"):
        open_destination(ref(f"docker-archive:{tmp_path / 'no' / 'such' / 'dir.tar'}"))
    with pytest.raises(UsageError, match=r"has a digest"):
        open_destination(ref(f"docker-archive:{tmp_path / 'x.tar'}:app@{sha(b'')}"))


# --- idempotence and layout bookkeeping ----------------------------------------------------------


async def test_recopying_a_name_replaces_its_entry(layout: im.Layout, tmp_path: Path) -> None:
    d1 = im.oci_image(layout, "v1")
    d2 = im.oci_image(layout, "v2", seed=1)
    out = tmp_path / "out"
    await copy_image(f"oci:{layout.path}:v1", f"oci:{out}:latest")
    await copy_image(f"oci:{layout.path}:v2", f"oci:{out}:latest")
    entries = json.loads((out / "index.json").read_bytes())["manifests"]
    assert [(e["digest"], e["annotations"]) for e in entries] == [
        (d2, {"org.opencontainers.image.ref.name": "latest"})]
    assert sha(raw_of(f"oci:{out}:latest")) == d2
    # a second copy of the same image is a no-op
    before = (out / "index.json").read_bytes()
    assert await copy_image(f"oci:{layout.path}:v2", f"oci:{out}:latest") == d2
    assert (out / "index.json").read_bytes() == before
    assert d1 != d2


async def test_concurrent_names_into_one_layout_keep_every_entry(layout: im.Layout, tmp_path: Path) -> None:
    digests = {f"t{i}": im.oci_image(layout, f"t{i}", seed=i) for i in range(6)}
    out = tmp_path / "out"
    await asyncio.gather(*(copy_image(f"oci:{layout.path}:{t}", f"oci:{out}:{t}") for t in digests))
    for t, d in digests.items():
        assert sha(raw_of(f"oci:{out}:{t}")) == d


async def test_dir_rewrite_keeps_only_the_new_image(layout: im.Layout, tmp_path: Path) -> None:
    im.oci_index(layout, "multi")
    d2 = im.oci_image(layout, "single", seed=7)
    out = tmp_path / "d"
    await copy_image(f"oci:{layout.path}:multi", f"dir:{out}")
    (out / "unrelated-notes.txt").write_text("not ours")  # a file of no known shape is left alone
    await copy_image(f"oci:{layout.path}:single", f"dir:{out}")
    skopeo("copy", f"oci:{layout.path}:single", f"dir:{tmp_path / 'sk'}")
    assert files(out) == files(tmp_path / "sk") | {"unrelated-notes.txt"}
    assert sha(raw_of(f"dir:{out}")) == d2


async def test_unfinished_dir_copy_is_resumed_not_skipped(layout: im.Layout, tmp_path: Path) -> None:
    digest = im.oci_image(layout, "v1")
    out = tmp_path / "d"
    src, dst = LayoutSource(ref(f"oci:{layout.path}:v1")), DirDestination(ref(f"dir:{out}"))
    m = await src.get_manifest("")
    for b in m.blobs:
        await dst.put_blob(b, lambda b=b: src.read_blob(b))
    await dst.put_manifest(m, m.digest)  # then "crash" before commit()
    assert await DirDestination(ref(f"dir:{out}")).has_manifest(m.digest) is None
    assert await copy_image(f"oci:{layout.path}:v1", f"dir:{out}") == digest
    assert sha(raw_of(f"dir:{out}")) == digest
    assert not any(name.endswith(".manifest.json") for name in files(out))


async def test_archive_close_without_commit_removes_partial_file(layout: im.Layout, tmp_path: Path) -> None:
    im.oci_image(layout, "v1")
    src = LayoutSource(ref(f"oci:{layout.path}:v1"))
    m = await src.get_manifest("")
    dst = ArchiveDestination(ref(f"docker-archive:{tmp_path / 'a.tar'}"))
    await dst.put_blob(m.blobs[0], lambda: src.read_blob(m.blobs[0]))
    await dst.close()
    assert sorted(os.listdir(tmp_path)) == ["layout"]


async def test_archive_source_temp_copy_is_removed(tmp_path: Path) -> None:
    archive = tmp_path / "save.tar.gz"
    _docker_save_archive(archive, compress_layers=False, compress_archive=True)
    src = ArchiveSource(ref(f"docker-archive:{archive}"))
    with pytest.raises(NotFoundError, match=r"no image @5; the archive holds 1"):
        await ArchiveSource(ref(f"docker-archive:{archive}:@5")).get_manifest("")
    m = await src.get_manifest("")
    tmp = src._plain
    assert tmp and tmp != str(archive) and os.path.exists(tmp) and m.digest
    await src.close()
    assert not os.path.exists(tmp)


async def _read_all(src: object, desc: Descriptor, offset: int = 0) -> bytes:
    return b"".join([c async for c in src.read_blob(desc, offset)])  # type: ignore[attr-defined]


@pytest.mark.parametrize("compress_layers", [False, True])
async def test_read_blob_from_an_offset(layout: im.Layout, tmp_path: Path, compress_layers: bool) -> None:
    """Resuming a transfer reads from an offset: every source gives exactly the tail."""
    im.oci_image(layout, "v1", layer_size=3 << 20)
    skopeo("copy", f"oci:{layout.path}:v1", f"dir:{tmp_path / 'd'}")
    archive = tmp_path / "save.tar"
    _docker_save_archive(archive, compress_layers=compress_layers)
    for text in (f"oci:{layout.path}:v1", f"dir:{tmp_path / 'd'}", f"docker-archive:{archive}"):
        src = open_source(ref(text))
        m = await src.get_manifest("")
        for desc in m.blobs:
            whole = await _read_all(src, desc)
            assert sha(whole) == desc.digest
            for offset in (0, 1, desc.size // 2, desc.size - 1, desc.size):
                assert await _read_all(src, desc, offset) == whole[offset:], (text, desc.digest, offset)
        await src.close()
