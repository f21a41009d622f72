"""Deterministic image content for tests, written as OCI image layouts on disk.

Every generator takes a layout directory (created when missing; several images may share one
layout), a ``ref`` (the ``org.opencontainers.image.ref.name`` that ``skopeo copy oci:DIR:REF``
selects) and a ``seed``: the same arguments always yield the same bytes and the same digest,
different seeds yield different blobs. Each returns the digest of the manifest it tagged.

Layers are real gzip'd tarballs with a few small files; ``layer_size=N`` adds one file of N
seeded pseudo-random bytes, streamed to disk (never held in memory). Configs are real image
configs (architecture, os, created, Env, Labels, rootfs diff_ids, history).

The layout may hold Docker media types too (schema2, manifest list); push them with
``skopeo copy --preserve-digests`` (see :mod:`tests.support.skopeo`) so the registry keeps
the exact bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "OCI_CONFIG",
    "OCI_EMPTY",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_MANIFEST",
    "Layout",
    "Platform",
    "docker_manifest_list",
    "docker_schema2_image",
    "oci_artifact",
    "oci_image",
    "oci_index",
    "referrer",
    "referrers_index",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

REF_ANNOTATION = "org.opencontainers.image.ref.name"
CREATED = "2024-01-02T03:04:05Z"
_MTIME = 1704164645  # CREATED as a Unix time
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Platform:
    """An image platform (``os``/``architecture``[/``variant``])."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None

    def as_json(self) -> dict[str, str]:
        d = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            d["variant"] = self.variant
        return d


DEFAULT_PLATFORMS: tuple[Platform, ...] = (
    Platform("linux", "amd64"),
    Platform("linux", "arm64", "v8"),
    Platform("linux", "arm", "v7"),
)


class _HashingWriter(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to ``sink``."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:  # type: ignore[override]
        mv = memoryview(data)
        self.sha.update(mv)
        self.size += len(mv)
        self.sink.write(mv)
        return len(mv)


class _SeededReader(io.RawIOBase):
    """``size`` pseudo-random bytes from ``seed``, produced on demand."""

    def __init__(self, seed: int, size: int) -> None:
        self.rng = random.Random(seed)
        self.left = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.left
        n = min(n, self.left)
        self.left -= n
        return self.rng.randbytes(n)


class Layout:
    """An OCI image layout directory: ``oci-layout``, ``index.json``, ``blobs/sha256/*``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        (self.path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        marker = self.path / "oci-layout"
        if not marker.exists():
            marker.write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        if not (self.path / "index.json").exists():
            self._write_index({"schemaVersion": 2, "manifests": []})

    # -- blobs -----------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        algo, hexd = digest.split(":", 1)
        return self.path / "blobs" / algo / hexd

    def read_blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def add_blob(self, content: bytes, media_type: str, /, **extra: Any) -> dict[str, Any]:
        """Store ``content``; return its descriptor (``extra`` keys such as annotations are added)."""
        digest = "sha256:" + hashlib.sha256(content).hexdigest()
        path = self.blob_path(digest)
        if not path.exists():
            path.write_bytes(content)
        return {"mediaType": media_type, "digest": digest, "size": len(content), **extra}

    def add_json_blob(self, obj: Any, media_type: str, **extra: Any) -> dict[str, Any]:
        return self.add_blob(_dumps(obj), media_type, **extra)

    def add_layer(
        self, files: dict[str, bytes], media_type: str, *, big_file: tuple[str, int, int] | None = None
    ) -> tuple[dict[str, Any], str]:
        """Write a gzip'd tar layer; return (descriptor, diff_id).

        ``files`` maps paths to small contents; ``big_file=(path, size, seed)`` appends a file of
        ``size`` seeded random bytes, streamed (gzip level 0 for it: random data won't shrink).
        """
        tmp = tempfile.NamedTemporaryFile(dir=self.path / "blobs", delete=False)  # noqa: SIM115
        try:
            with tmp:
                outer = _HashingWriter(tmp)
                level = 0 if big_file else 6  # random data does not shrink: store it
                with gzip.GzipFile(filename="", mode="wb", fileobj=outer, mtime=0, compresslevel=level) as gz:
                    inner = _HashingWriter(gz)  # type: ignore[arg-type]
                    with tarfile.open(fileobj=inner, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                        paths = [*files, *([big_file[0]] if big_file else [])]
                        dirs = sorted({str(parent) for p in paths for parent in Path(p).parents if str(parent) != "."})
                        for d in dirs:
                            tar.addfile(_tarinfo(d + "/", 0, directory=True))
                        for name in sorted(files):
                            tar.addfile(_tarinfo(name, len(files[name])), io.BytesIO(files[name]))
                        if big_file:
                            name, size, seed = big_file
                            tar.addfile(_tarinfo(name, size), _SeededReader(seed, size))
            digest = "sha256:" + outer.sha.hexdigest()
            os.replace(tmp.name, self.blob_path(digest))
        except BaseException:
            Path(tmp.name).unlink(missing_ok=True)
            raise
        return {"mediaType": media_type, "digest": digest, "size": outer.size}, "sha256:" + inner.sha.hexdigest()

    # -- manifests and index.json ------------------------------------------------------------
    def add_manifest(
        self, manifest: dict[str, Any] | bytes, media_type: str, ref: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Store a manifest blob; when ``ref`` is given, tag it in ``index.json`` (replacing that ref)."""
        data = manifest if isinstance(manifest, bytes) else _dumps(manifest)
        desc = self.add_blob(data, media_type, **extra)
        if ref is not None:
            self.tag(desc, ref)
        return desc

    def tag(self, desc: dict[str, Any], ref: str) -> None:
        index = self.index()
        kept = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_ANNOTATION) != ref]
        entry = {k: v for k, v in desc.items() if k in ("mediaType", "digest", "size", "platform", "artifactType")}
        entry["annotations"] = {REF_ANNOTATION: ref}
        index["manifests"] = [*kept, entry]
        self._write_index(index)

    def index(self) -> dict[str, Any]:
        return json.loads((self.path / "index.json").read_text())

    def refs(self) -> dict[str, dict[str, Any]]:
        """Tagged descriptors by ref name."""
        return {
            m["annotations"][REF_ANNOTATION]: m
            for m in self.index()["manifests"]
            if REF_ANNOTATION in m.get("annotations", {})
        }

    def descriptor(self, ref_or_digest: str) -> dict[str, Any]:
        """Descriptor of a tagged ref, or of any manifest blob by digest (media type read from it)."""
        if ref_or_digest.startswith("sha256:"):
            for m in self.index()["manifests"]:
                if m["digest"] == ref_or_digest:
                    return m
            data = self.read_blob(ref_or_digest)
            return {"mediaType": json.loads(data)["mediaType"], "digest": ref_or_digest, "size": len(data)}
        return self.refs()[ref_or_digest]

    def manifest_bytes(self, ref_or_digest: str) -> bytes:
        return self.read_blob(self.descriptor(ref_or_digest)["digest"])

    def manifest(self, ref_or_digest: str) -> dict[str, Any]:
        return json.loads(self.manifest_bytes(ref_or_digest))

    def export_dir(self, ref_or_digest: str, dest: Path) -> Path:
        """Write a skopeo ``dir:`` transport copy of one tagged image/index (blobs hard-linked).

        ``dir:`` hands skopeo the exact manifest bytes and media types; skopeo 1.9's ``oci:``
        transport skips Docker media types in ``index.json`` and re-serializes indexes whose
        descriptors carry fields it does not know (``artifactType``).
        """
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "version").write_text("Directory Transport Version: 1.1\n")
        top = self.descriptor(ref_or_digest)["digest"]
        pending = [(top, True)]
        while pending:
            digest, is_top = pending.pop()
            data = self.read_blob(digest)
            name = "manifest.json" if is_top else digest.split(":", 1)[1] + ".manifest.json"
            (dest / name).write_bytes(data)
            m = json.loads(data)
            for child in m.get("manifests", []):
                pending.append((child["digest"], False))
            for blob in [*([m["config"]] if "config" in m else []), *m.get("layers", [])]:
                target = dest / blob["digest"].split(":", 1)[1]
                if not target.exists():
                    try:
                        os.link(self.blob_path(blob["digest"]), target)
                    except OSError:
                        shutil.copyfile(self.blob_path(blob["digest"]), target)
        return dest

    def _write_index(self, index: dict[str, Any]) -> None:
        (self.path / "index.json").write_text(json.dumps(index, indent=2))


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, indent=3).encode()


def _tarinfo(name: str, size: int, *, directory: bool = False) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = 0 if directory else size
    ti.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    ti.mode = 0o755 if directory else 0o644
    ti.mtime = _MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def _as_layout(layout: Layout | Path | str) -> Layout:
    return layout if isinstance(layout, Layout) else Layout(Path(layout))


def _image_blobs(
    lay: Layout,
    *,
    docker: bool,
    seed: int,
    layers: int,
    layer_size: int | None,
    platform: Platform,
    labels: dict[str, str] | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Write layers and config of one image; return (config descriptor, layer descriptors)."""
    layer_type = DOCKER_LAYER if docker else OCI_LAYER
    descs: list[dict[str, Any]] = []
    diff_ids: list[str] = []
    history: list[dict[str, Any]] = []
    for i in range(layers):
        files = {
            f"ferry/seed-{seed}/layer-{i}.txt": f"seed={seed} layer={i}\n".encode() * (i + 1),
            f"etc/ferry-{seed}-{i}.conf": json.dumps(
                {"seed": seed, "layer": i, "platform": platform.as_json()}
            ).encode(),
        }
        big = None
        if layer_size is not None and i == layers - 1:
            big = (f"ferry/seed-{seed}/random.bin", layer_size, seed * 7919 + i)
        desc, diff_id = lay.add_layer(files, layer_type, big_file=big)
        descs.append(desc)
        diff_ids.append(diff_id)
        history.append({"created": CREATED, "created_by": f"ferry-test layer {i} seed {seed}"})
    config = {
        **platform.as_json(),
        "created": CREATED,
        "author": "ferry tests",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", f"FERRY_SEED={seed}"],
            "Cmd": ["/bin/sh"],
            "Labels": {"org.ferry.test.seed": str(seed), **(labels or {})},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    return lay.add_json_blob(config, DOCKER_CONFIG if docker else OCI_CONFIG), descs


def _single_image(
    layout: Layout | Path | str,
    ref: str | None,
    *,
    docker: bool,
    seed: int,
    layers: int,
    layer_size: int | None,
    platform: Platform,
    labels: dict[str, str] | None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    lay = _as_layout(layout)
    config, layer_descs = _image_blobs(
        lay, docker=docker, seed=seed, layers=layers, layer_size=layer_size, platform=platform, labels=labels
    )
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type, "config": config, "layers": layer_descs}
    if annotations and not docker:
        manifest["annotations"] = annotations
    return lay.add_manifest(manifest, media_type, ref)


def docker_schema2_image(
    layout: Layout | Path | str,
    ref: str = "latest",
    *,
    seed: int = 0,
    layers: int = 2,
    layer_size: int | None = None,
    platform: Platform = Platform(),
    labels: dict[str, str] | None = None,
) -> str:
    """A Docker image manifest v2 schema 2 image. Returns its manifest digest."""
    return _single_image(
        layout, ref, docker=True, seed=seed, layers=layers, layer_size=layer_size, platform=platform, labels=labels
    )["digest"]


def oci_image(
    layout: Layout | Path | str,
    ref: str = "latest",
    *,
    seed: int = 0,
    layers: int = 2,
    layer_size: int | None = None,
    platform: Platform = Platform(),
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> str:
    """An OCI image manifest image. Returns its manifest digest."""
    return _single_image(
        layout,
        ref,
        docker=False,
        seed=seed,
        layers=layers,
        layer_size=layer_size,
        platform=platform,
        labels=labels,
        annotations=annotations,
    )["digest"]


def _multi(
    layout: Layout | Path | str,
    ref: str,
    *,
    docker: bool,
    seed: int,
    platforms: Sequence[Platform],
    layers: int,
    layer_size: int | None,
) -> str:
    lay = _as_layout(layout)
    children = []
    for i, platform in enumerate(platforms):
        child = _single_image(
            lay,
            None,
            docker=docker,
            seed=seed * 1000 + i,
            layers=layers,
            layer_size=layer_size,
            platform=platform,
            labels={"org.ferry.test.platform": "/".join(filter(None, platform.as_json().values()))},
        )
        children.append({**child, "platform": platform.as_json()})
    media_type = DOCKER_LIST if docker else OCI_INDEX
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type, "manifests": children}
    if not docker:
        index["annotations"] = {"org.ferry.test.seed": str(seed)}
    return lay.add_manifest(index, media_type, ref)["digest"]


def oci_index(
    layout: Layout | Path | str,
    ref: str = "latest",
    *,
    seed: int = 0,
    platforms: Sequence[Platform] = DEFAULT_PLATFORMS,
    layers: int = 1,
    layer_size: int | None = None,
) -> str:
    """A multi-platform OCI image index whose children are OCI images. Returns the index digest.

    Children are stored untagged; push with ``skopeo copy --all``.
    """
    return _multi(layout, ref, docker=False, seed=seed, platforms=platforms, layers=layers, layer_size=layer_size)


def docker_manifest_list(
    layout: Layout | Path | str,
    ref: str = "latest",
    *,
    seed: int = 0,
    platforms: Sequence[Platform] = DEFAULT_PLATFORMS[:2],
    layers: int = 1,
    layer_size: int | None = None,
) -> str:
    """A Docker manifest list whose children are Docker schema2 images. Returns the list digest."""
    return _multi(layout, ref, docker=True, seed=seed, platforms=platforms, layers=layers, layer_size=layer_size)


def oci_artifact(
    layout: Layout | Path | str,
    ref: str = "artifact",
    *,
    seed: int = 0,
    artifact_type: str = "application/vnd.ferry.test.artifact.v1",
    config_media_type: str | None = "application/vnd.ferry.test.config.v1+json",
    blob_media_type: str = "application/vnd.ferry.test.data.v1",
    blobs: int = 2,
    blob_size: int = 256,
) -> str:
    """An OCI artifact: image manifest with ``artifactType`` and non-image blobs.

    With ``config_media_type`` the config is a small JSON blob of that type; with ``None`` it is
    the OCI 1.1 empty descriptor (``application/vnd.oci.empty.v1+json``, ``{}``).
    """
    lay = _as_layout(layout)
    if config_media_type is None:
        config = lay.add_blob(b"{}", OCI_EMPTY, data="e30=")
    else:
        config = lay.add_json_blob({"ferry": "artifact", "seed": seed}, config_media_type)
    rng = random.Random(seed)
    layer_descs = [
        lay.add_blob(
            rng.randbytes(blob_size), blob_media_type, annotations={"org.opencontainers.image.title": f"part-{i}.bin"}
        )
        for i in range(blobs)
    ]
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": config,
        "layers": layer_descs,
        "annotations": {"org.opencontainers.image.created": CREATED, "org.ferry.test.seed": str(seed)},
    }
    return lay.add_manifest(manifest, OCI_MANIFEST, ref, artifactType=artifact_type)["digest"]


def referrer(
    layout: Layout | Path | str,
    subject: str,
    ref: str | None = None,
    *,
    seed: int = 0,
    artifact_type: str = "application/vnd.ferry.test.signature.v1",
) -> str:
    """A fake signature manifest whose ``subject`` is the manifest ``subject`` (a digest in the layout).

    ``ref`` defaults to the cosign-style tag ``sha256-<hex>.sig``. Returns the referrer digest.
    """
    lay = _as_layout(layout)
    subj = lay.descriptor(subject)
    subj_desc = {"mediaType": subj["mediaType"], "digest": subj["digest"], "size": subj["size"]}
    payload = json.dumps({"critical": {"image": {"docker-manifest-digest": subj["digest"]}}, "seed": seed}).encode()
    layer = lay.add_blob(
        payload,
        "application/vnd.ferry.test.signature.payload.v1+json",
        annotations={"org.ferry.test.signature": hashlib.sha256(payload + str(seed).encode()).hexdigest()},
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": lay.add_blob(b"{}", OCI_EMPTY, data="e30="),
        "layers": [layer],
        "subject": subj_desc,
        "annotations": {"org.opencontainers.image.created": CREATED},
    }
    if ref is None:
        ref = subj["digest"].replace(":", "-") + ".sig"
    return lay.add_manifest(manifest, OCI_MANIFEST, ref, artifactType=artifact_type)["digest"]


def referrers_index(layout: Layout | Path | str, subject: str, referrers: Iterable[str], ref: str | None = None) -> str:
    """The OCI referrers tag-schema fallback: an index of ``referrers`` tagged ``sha256-<hex>``."""
    lay = _as_layout(layout)
    entries = []
    for digest in referrers:
        m = lay.manifest(digest)
        d = lay.descriptor(digest)
        entry = {"mediaType": m["mediaType"], "digest": digest, "size": d["size"]}
        if "artifactType" in m:
            entry["artifactType"] = m["artifactType"]
        if "annotations" in m:
            entry["annotations"] = m["annotations"]
        entries.append(entry)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    return lay.add_manifest(index, OCI_INDEX, ref or subject.replace(":", "-"))["digest"]
