"""``docker-archive:PATH[:NAME:TAG]``: a ``docker save`` style tar, as containers/image ``docker/internal/tarfile``.

Reading (``reader.go``, ``src.go``): the archive may itself be gzip/bzip2/xz compressed (it is then
decompressed once to a temporary file). ``manifest.json`` lists images as ``Config``, ``RepoTags`` and
``Layers``; NAME:TAG picks the item whose normalized RepoTag matches, ``@N`` the N-th item, and no name
the only item. The image is presented as containers/image presents it: a Docker schema2 manifest, built
byte for byte like ``GetManifest`` does, whose layers are the config's ``rootfs.diff_ids`` (digests of
the *uncompressed* layer tars) with their uncompressed sizes, and whose blobs stream decompressed. Its
digest is therefore the one ``skopeo inspect --raw`` shows and the one ``skopeo copy --preserve-digests``
pushes; a plain ``skopeo copy`` to a registry gzips the layers on the way (a new, Go-gzip-specific
manifest digest that ferry does not reproduce).

Writing (``writer.go``): one image per archive. The tar holds the config as ``<hex>.json``, each layer as
``<hex>.tar`` (the blob as received, compressed or not: skopeo and ``docker load`` both decompress on
load), then ``manifest.json`` with ``RepoTags`` normalized like skopeo (``docker.io/library/x:tag``).
The legacy per-layer directories and ``repositories`` file skopeo adds for very old docker versions are
not written. The archive is built in a temporary file next to PATH and renamed onto PATH by
``commit()``; like skopeo, an existing non-empty PATH is refused. A multi-platform index is refused:
choose one platform first.
"""

from __future__ import annotations

import asyncio
import bz2
import contextlib
import gzip
import io
import json
import lzma
import os
import posixpath
import tarfile
import tempfile
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO, Any

from ferry.errors import FerryError, NotFoundError, ProtocolError, UsageError
from ferry.media import (
    DOCKER_MANIFEST,
    IMAGE_TYPES,
    Descriptor,
    Manifest,
    parse_manifest,
    sha256_digest,
    verify_digest,
)
from ferry.refs import PathRef, is_digest, parse_docker_ref
from ferry.transports.base import OpenStream
from ferry.transports.files import CHUNK, digest_hex, write_parts

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
CONFIG_TYPES = frozenset({DOCKER_CONFIG, OCI_CONFIG})
#: containers/image labels every layer of the generated manifest so, although it streams them uncompressed.
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MAX_TAR_MANIFEST_BYTES = 1 << 20  # containers/image iolimits.MaxTarFileManifestSize
MAX_CONFIG_BYTES = 4 << 20  # containers/image iolimits.MaxConfigBodySize
BLOCK = 512

_MAGIC: list[tuple[bytes, str]] = [
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
]


def _compression(head: bytes) -> str | None:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def normalize_tag(name: str, what: str) -> str:
    """``busybox`` → ``docker.io/library/busybox:latest``, as skopeo matches and writes RepoTags."""
    ref = parse_docker_ref(name)
    if ref.digest:
        raise UsageError(f"{what}: {name!r} has a digest; a docker archive names images by NAME:TAG")
    return f"{ref.registry}/{ref.repository}:{ref.tag}"


class _Section(io.RawIOBase):
    """``size`` bytes of a file from ``offset``, as a file object: one tar member, read in place."""

    def __init__(self, path: str, offset: int, size: int) -> None:
        super().__init__()
        self._f = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._f.seek(offset)
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), self._left)
        if n <= 0:
            return 0
        got = self._f.readinto(memoryview(b)[:n])
        if not got:
            raise ProtocolError("docker archive: a member ends before its declared size")
        self._left -= got
        return got

    def close(self) -> None:
        self._f.close()
        super().close()


@dataclass(slots=True)
class _Member:
    name: str
    offset: int
    size: int


@dataclass(slots=True)
class _Image:
    """One image of the archive as containers/image presents it."""

    manifest: Manifest
    config: bytes
    layers: dict[str, _Member]  # diffID → member holding the (maybe compressed) layer tar


class ArchiveSource:
    """Reads one image of a ``docker save`` style archive (see the module docstring)."""

    def __init__(self, ref: PathRef) -> None:
        if ref.transport != "docker-archive":
            raise UsageError(f"{ref}: not a docker-archive: reference")
        self.ref = ref
        self.path = ref.path
        #: The reference meaning "the image this PathRef names" (see ``ferry.transports.files``).
        self.reference = ""
        self._selector = self._parse_selector(ref.name)
        if not os.path.exists(self.path):
            raise NotFoundError(f"docker archive {self.path} does not exist")
        if not os.path.isfile(self.path):
            raise UsageError(f"docker archive {self.path} is not a file")
        self._lock = asyncio.Lock()
        self._plain: str | None = None  # the uncompressed tar (self.path, or a temporary copy)
        self._members: dict[str, tarfile.TarInfo] = {}
        self._items: list[dict[str, Any]] = []
        self._images: dict[int, _Image] = {}
        self._cleanup: weakref.finalize | None = None

    def __str__(self) -> str:
        return str(self.ref)

    def _parse_selector(self, name: str | None) -> str | int | None:
        if name is None:
            return None
        if name.startswith("@"):
            if not name[1:].isdigit():
                raise UsageError(f"{self}: invalid image index {name!r}", hint="use @0, @1, …")
            return int(name[1:])
        return normalize_tag(name, str(self))

    # -- loading (in a worker thread) -------------------------------------------------------------

    def _open_archive(self) -> None:
        if self._plain is not None:
            return
        self._members = {}
        if self._cleanup is not None:  # a failed earlier attempt
            self._cleanup()
        with open(self.path, "rb") as f:
            kind = _compression(f.read(8))
        plain = self.path
        if kind is not None:
            plain = self._decompress_to_temp(kind)
        try:
            with tarfile.open(plain, "r:") as tf:
                for m in tf.getmembers():
                    self._members.setdefault(posixpath.normpath(m.name), m)
        except tarfile.TarError as e:
            raise ProtocolError(f"{self}: not a readable tar archive ({e})") from None
        raw = self._read_member(plain, "manifest.json", MAX_TAR_MANIFEST_BYTES)
        try:
            items = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise ProtocolError(f"{self}: manifest.json is not valid JSON ({e})") from None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ProtocolError(f"{self}: manifest.json is not a list of images")
        self._items = items
        self._plain = plain

    def _decompress_to_temp(self, kind: str) -> str:
        opener = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}.get(kind)
        if opener is None:
            raise ProtocolError(f"{self}: the archive is {kind}-compressed, which ferry cannot read",
                                hint="decompress it first")
        fd, tmp = tempfile.mkstemp(prefix="ferry-docker-tar-")
        self._cleanup = weakref.finalize(self, _unlink, tmp)
        try:
            with os.fdopen(fd, "wb") as out, opener(self.path, "rb") as src:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
        except (OSError, EOFError, lzma.LZMAError) as e:
            raise ProtocolError(f"{self}: cannot decompress the archive ({e})") from None
        return tmp

    def _member(self, name: str) -> _Member:
        """The regular file ``name`` in the archive, following one symlink or hard link like skopeo."""
        key = posixpath.normpath(name)
        m = self._members.get(key)
        if m is not None and (m.issym() or m.islnk()):
            target = m.linkname if m.islnk() else posixpath.join(posixpath.dirname(key), m.linkname)
            m = self._members.get(posixpath.normpath(target))
        if m is None:
            raise NotFoundError(f"{self}: {name} is missing from the archive")
        if not m.isfile():
            raise ProtocolError(f"{self}: {name} in the archive is not a regular file")
        return _Member(key, m.offset_data, m.size)

    def _read_member(self, plain: str, name: str, limit: int) -> bytes:
        m = self._member(name)
        if m.size > limit:
            raise ProtocolError(f"{self}: {name} is larger than {limit} bytes")
        with _Section(plain, m.offset, m.size) as s:
            return s.read()

    def _choose(self, selector: str | int | None) -> int:
        items = self._items
        if selector is None:
            if len(items) != 1:
                raise UsageError(
                    f"{self}: the archive holds {len(items)} images; name one",
                    hint=f"use docker-archive:{self.path}:NAME:TAG (tags: {', '.join(self._all_tags()) or 'none'})"
                    " or docker-archive:PATH:@INDEX",
                )
            return 0
        if isinstance(selector, int):
            if selector >= len(items):
                raise NotFoundError(f"{self}: no image @{selector}; the archive holds {len(items)}")
            return selector
        for i, item in enumerate(items):
            for tag in item.get("RepoTags") or []:
                try:
                    if normalize_tag(str(tag), str(self)) == selector:
                        return i
                except FerryError:
                    raise ProtocolError(f"{self}: manifest.json item @{i} has an invalid tag {tag!r}") from None
        raise NotFoundError(
            f"no image tagged {selector} in docker archive {self.path}",
            hint=f"tags present: {', '.join(self._all_tags()) or 'none'}",
        )

    def _all_tags(self) -> list[str]:
        return sorted(str(t) for item in self._items for t in (item.get("RepoTags") or []))

    def _load_image(self, selector: str | int | None) -> _Image:
        self._open_archive()
        index = self._choose(selector)
        if index in self._images:
            return self._images[index]
        item = self._items[index]
        config_name, layer_names = item.get("Config"), item.get("Layers") or []
        if not isinstance(config_name, str) or not isinstance(layer_names, list):
            raise ProtocolError(f"{self}: manifest.json item @{index} lacks Config or Layers")
        assert self._plain is not None
        config = self._read_member(self._plain, config_name, MAX_CONFIG_BYTES)
        try:
            parsed = json.loads(config)
            diff_ids = parsed["rootfs"]["diff_ids"] or []
        except (ValueError, UnicodeDecodeError, KeyError, TypeError):
            raise ProtocolError(f"{self}: config {config_name} has no rootfs.diff_ids") from None
        if not isinstance(diff_ids, list) or not all(isinstance(d, str) and is_digest(d) for d in diff_ids):
            raise ProtocolError(f"{self}: config {config_name} has invalid rootfs.diff_ids")
        if len(diff_ids) != len(layer_names):
            raise ProtocolError(
                f"{self}: inconsistent layer count: {len(layer_names)} in manifest.json, {len(diff_ids)} in config"
            )
        layers: dict[str, _Member] = {}
        sizes: dict[str, int] = {}
        for diff_id, layer_name in zip(diff_ids, layer_names, strict=True):
            if diff_id in layers:  # docker save repeats a layer as a symlink; one is enough
                continue
            member = self._member(str(layer_name))
            layers[diff_id] = member
            sizes[diff_id] = self._uncompressed_size(member)
        config_digest = sha256_digest(config)
        body = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": len(config), "digest": config_digest},
            "layers": [{"mediaType": DOCKER_LAYER, "size": sizes[d], "digest": d} for d in diff_ids],
        }
        raw = json.dumps(body, separators=(",", ":")).encode()  # as Go's json.Marshal of manifest.Schema2
        image = _Image(parse_manifest(raw, DOCKER_MANIFEST), config, layers)
        self._images[index] = image
        return image

    def _open_layer(self, member: _Member, offset: int = 0) -> tuple[IO[bytes], int]:
        """The layer's uncompressed bytes from ``offset``, and how many of the first bytes the caller must
        still drop (an uncompressed layer starts right at ``offset``; a compressed one must be decompressed
        from its beginning)."""
        assert self._plain is not None
        with open(self._plain, "rb") as f:
            f.seek(member.offset)
            kind = _compression(f.read(min(8, member.size)))
        if kind is None:
            start = min(offset, member.size)
            return io.BufferedReader(_Section(self._plain, member.offset + start, member.size - start), CHUNK), 0
        section = _Section(self._plain, member.offset, member.size)
        if kind == "gzip":
            return gzip.GzipFile(fileobj=section, mode="rb"), offset
        if kind == "bzip2":
            return bz2.BZ2File(section, "rb"), offset
        if kind == "xz":
            return lzma.LZMAFile(section, "rb"), offset
        section.close()
        raise ProtocolError(f"{self}: layer {member.name} is {kind}-compressed, which ferry cannot decompress")

    def _uncompressed_size(self, member: _Member) -> int:
        f, _ = self._open_layer(member)
        with f:
            if isinstance(f, io.BufferedReader):
                return member.size
            total = 0
            try:
                while chunk := f.read(CHUNK):
                    total += len(chunk)
            except (OSError, EOFError, lzma.LZMAError) as e:
                raise ProtocolError(f"{self}: layer {member.name} cannot be decompressed ({e})") from None
            return total

    async def _image(self, selector: str | int | None) -> _Image:
        async with self._lock:
            return await asyncio.to_thread(self._load_image, selector)

    # -- Source -------------------------------------------------------------------------------------

    async def get_manifest(self, reference: str) -> Manifest:
        """``""`` → the image the reference names; its digest → the same; another NAME:TAG → that image."""
        if is_digest(reference):
            image = await self._image(self._selector)
            if image.manifest.digest != reference:
                raise NotFoundError(f"{self}: no manifest {reference} (the image's is {image.manifest.digest})")
            return image.manifest
        selector = self._selector if not reference else self._parse_selector(reference)
        return (await self._image(selector)).manifest

    async def read_blob(self, desc: Descriptor, offset: int = 0) -> AsyncIterator[bytes]:
        """The config, or a layer decompressed (its digest is the diffID the manifest names), from ``offset``."""
        await self._image(self._selector)
        for image in list(self._images.values()):
            if desc.digest == sha256_digest(image.config):
                if offset < len(image.config):
                    yield image.config[offset:]
                return
            member = image.layers.get(desc.digest)
            if member is not None:
                f, skip = await asyncio.to_thread(self._open_layer, member, offset)
                try:
                    while True:
                        try:
                            chunk = await asyncio.to_thread(f.read, CHUNK)
                        except (OSError, EOFError, lzma.LZMAError) as e:
                            raise ProtocolError(f"{self}: layer {member.name} cannot be decompressed ({e})") from None
                        if not chunk:
                            return
                        if skip:  # a compressed layer: decompress through the part already sent
                            dropped = min(skip, len(chunk))
                            chunk, skip = chunk[dropped:], skip - dropped
                            if not chunk:
                                continue
                        yield chunk
                finally:
                    f.close()
        raise NotFoundError(f"{self}: no blob {desc.digest} in the archive's image")

    async def close(self) -> None:
        if self._cleanup is not None:
            self._cleanup()


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _header(name: str, size: int) -> bytes:
    """A tar header like containers/image's ``sendFileLocked``: mode 0444, owner 0, mtime 0."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o444
    info.mtime = 0
    info.type = tarfile.REGTYPE
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


class ArchiveDestination:
    """Writes a single image into a new ``docker save`` style archive (see the module docstring).

    Blobs are appended to the tar as they arrive (one at a time: a lock serializes writers); a blob
    that fails its digest check is cut off again by truncating the file to where its header began.
    """

    verifies_blobs = True  # write_parts hashes what it writes (see Destination.verifies_blobs)

    def __init__(self, ref: PathRef) -> None:
        if ref.transport != "docker-archive":
            raise UsageError(f"{ref}: not a docker-archive: reference")
        self.ref = ref
        self.path = ref.path
        #: The reference meaning "the image this PathRef names" (see ``ferry.transports.files``).
        self.reference = ""
        if ref.name and ref.name.startswith("@"):
            raise UsageError(f"{ref}: @INDEX selects an image to read; to write, give NAME:TAG or nothing")
        self._repo_tag = normalize_tag(ref.name, str(ref)) if ref.name else None
        if os.path.exists(self.path):
            if not os.path.isfile(self.path):
                raise UsageError(f"docker archive {self.path} exists and is not a regular file")
            if os.path.getsize(self.path) > 0:
                raise UsageError(
                    f"docker archive {self.path} already exists; ferry does not modify existing archives",
                    hint="remove it or choose another path",
                )
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise UsageError(f"cannot write docker archive {self.path}: directory {parent} does not exist")
        fd, self._tmp = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.", suffix=".ferry-tmp", dir=parent)
        self._f: IO[bytes] = os.fdopen(fd, "wb")
        self._cleanup = weakref.finalize(self, _discard, self._f, self._tmp)
        self._lock = asyncio.Lock()
        self._blobs: dict[str, str] = {}  # digest → member name
        self._image: Manifest | None = None
        self._committed = False
        self._broken = False

    def __str__(self) -> str:
        return str(self.ref)

    async def has_blob(self, desc: Descriptor) -> bool:
        return desc.digest in self._blobs

    async def put_blob(self, desc: Descriptor, open_stream: OpenStream) -> None:
        if desc.size < 0:
            raise UsageError(f"{self}: blob {desc.digest} has no known size; a docker archive needs it up front")
        hexpart = digest_hex(desc.digest, str(self))[1]
        name = hexpart + (".json" if desc.media_type in CONFIG_TYPES else ".tar")
        async with self._lock:
            if self._committed:
                raise UsageError(f"{self}: the archive is already committed")
            if desc.digest in self._blobs:
                return
            if self._broken:
                raise UsageError(f"{self}: an earlier write was interrupted; the archive cannot be completed")
            start = self._f.tell()
            try:
                self._f.write(_header(name, desc.size))
                await write_parts(self._f, desc, open_stream(), str(self))
                self._f.write(_padding(desc.size))
            except Exception:
                self._f.seek(start)
                self._f.truncate()
                raise
            except BaseException:
                # Cancelled: a worker thread may still be writing, so the tail cannot be cut safely.
                self._broken = True
                raise
            self._blobs[desc.digest] = name

    async def has_manifest(self, reference: str) -> str | None:
        """Only what this session wrote: the archive is new."""
        if self._image is None:
            return None
        if not reference or reference == self._image.digest or not is_digest(reference):
            return self._image.digest
        return None

    async def put_manifest(self, manifest: Manifest, reference: str) -> None:
        """Accept one image manifest; the archive's manifest.json is written by commit()."""
        verify_digest(manifest.raw, manifest.digest, f"{self}: manifest")
        if manifest.is_index:
            raise UsageError(
                f"{self}: a docker archive holds a single image, and {manifest.digest} is a multi-platform index",
                hint="choose one platform (for example --platform linux/amd64)",
            )
        if manifest.media_type not in IMAGE_TYPES:
            raise UsageError(f"{self}: a {manifest.media_type} manifest cannot be written to a docker archive")
        config = manifest.config
        if config is None or config.media_type not in CONFIG_TYPES:
            kind = config.media_type if config else "none"
            raise UsageError(f"{self}: {manifest.digest} is not a container image (config type {kind})")
        if self._image is not None and self._image.digest != manifest.digest:
            raise UsageError(
                f"{self}: a docker archive holds a single image, but a second one ({manifest.digest}) was written",
                hint="choose one platform (for example --platform linux/amd64)",
            )
        self._image = manifest

    async def commit(self) -> None:
        """Append manifest.json, close the tar and rename it onto PATH."""
        async with self._lock:
            if self._committed:
                return
            if self._broken:
                raise UsageError(f"{self}: an earlier write was interrupted; the archive cannot be completed")
            image = self._image
            if image is None:
                raise UsageError(f"{self}: no image manifest was written, so there is no archive to commit")
            missing = [b.digest for b in image.blobs if b.digest not in self._blobs]
            if missing:
                raise ProtocolError(f"{self}: the image references blobs that were not written: {', '.join(missing)}")
            assert image.config is not None
            item = {
                "Config": self._blobs[image.config.digest],
                "RepoTags": [self._repo_tag] if self._repo_tag else [],
                "Layers": [self._blobs[layer.digest] for layer in image.layers],
            }
            data = json.dumps([item], separators=(",", ":")).encode()
            self._f.write(_header("manifest.json", len(data)) + data + _padding(len(data)) + b"\0" * (2 * BLOCK))
            await asyncio.to_thread(_sync_close, self._f)
            os.chmod(self._tmp, 0o644)
            os.replace(self._tmp, self.path)
            self._committed = True
            self._cleanup.detach()

    async def close(self) -> None:
        """Without commit(), the partial archive is removed."""
        if not self._committed:
            self._cleanup()


def _sync_close(f: IO[bytes]) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()


def _discard(f: IO[bytes], path: str) -> None:
    with contextlib.suppress(OSError):
        f.close()
    _unlink(path)
