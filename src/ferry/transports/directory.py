"""skopeo's ``dir:PATH`` format, as containers/image ``directory/`` writes it (skopeo 1.9):

- ``version``: ``Directory Transport Version: 1.1\\n``
- ``manifest.json``: the top-level manifest (an image, or an index), bytes as copied
- ``<hex>``: every blob (config and layers), named by the hex part of its digest, no extension
- ``<hex>.manifest.json``: each child manifest of an index, named by its digest
- ``signature-N`` / ``<hex>.signature-N``: signatures (ferry neither reads nor writes them)

A directory holds one image. skopeo empties an existing image directory before writing; ferry keeps
the blobs already there (verified on the way in, so a rerun after a crash resumes) and instead removes,
in ``commit()``, the files of this format that the new image no longer references. Like skopeo, ferry
refuses to write into a non-empty directory that has no matching ``version`` file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
from collections.abc import AsyncIterator

from ferry.errors import NotFoundError, ProtocolError, UsageError
from ferry.media import MAX_MANIFEST_BYTES, Descriptor, Manifest, parse_manifest, verify_digest
from ferry.refs import PathRef, is_digest
from ferry.transports.base import OpenStream
from ferry.transports.files import (
    TEMP_PREFIX,
    digest_hex,
    file_has_size,
    iter_file,
    read_small,
    require_dir,
    write_blob_file,
    write_file_atomic,
)

VERSION = b"Directory Transport Version: 1.1\n"
MANIFEST = "manifest.json"
#: Files of this format that commit() may remove when the new image does not reference them.
_OWN_FILE = re.compile(
    r"^(?:[0-9a-f]{64}|[0-9a-f]{128})(?:\.manifest\.json|\.signature-\d+)?$|^signature-\d+$"
    rf"|^{re.escape(TEMP_PREFIX)}|^dir-put-blob"
)


class _Dir:
    def __init__(self, ref: PathRef) -> None:
        if ref.transport != "dir":
            raise UsageError(f"{ref}: not a dir: reference")
        self.ref = ref
        self.path = ref.path
        #: The reference meaning "the image in this directory" (see ``ferry.transports.files``).
        self.reference = ""

    def __str__(self) -> str:
        return str(self.ref)

    def blob_path(self, digest: str) -> str:
        return os.path.join(self.path, digest_hex(digest, str(self))[1])

    def child_manifest_path(self, digest: str) -> str:
        return os.path.join(self.path, digest_hex(digest, str(self))[1] + ".manifest.json")

    @property
    def manifest_path(self) -> str:
        return os.path.join(self.path, MANIFEST)

    def _load(self, path: str, digest: str | None) -> Manifest:
        raw = read_small(path, MAX_MANIFEST_BYTES, str(self))
        if digest is not None and not digest.startswith("sha256:"):
            verify_digest(raw, digest, f"{self}: manifest")
        try:
            return parse_manifest(raw, None, digest)
        except ProtocolError as e:
            raise type(e)(f"{self}: {os.path.basename(path)}: {e.message}", hint=e.hint) from None

    def load_manifest(self, reference: str) -> Manifest:
        """``""`` (or any name) → manifest.json; a digest → ``<hex>.manifest.json`` or a matching manifest.json."""
        if not is_digest(reference):
            try:
                return self._load(self.manifest_path, None)
            except FileNotFoundError:
                raise NotFoundError(f"{self.path} holds no image: manifest.json is missing") from None
        with contextlib.suppress(FileNotFoundError):
            return self._load(self.child_manifest_path(reference), reference)
        try:
            top = self._load(self.manifest_path, None)
        except FileNotFoundError:
            top = None
        if top is not None and _digest_as(top.raw, reference) == reference:
            return top if top.digest == reference else parse_manifest(top.raw, None, reference)
        raise NotFoundError(f"{self}: no manifest {reference} in the directory")


def _digest_as(raw: bytes, like: str) -> str:
    """The digest of ``raw`` with the algorithm of ``like``."""
    algo = like.partition(":")[0]
    return f"{algo}:{hashlib.new(algo, raw).hexdigest()}"


class DirSource(_Dir):
    """Reads the image (or index and its children) from a ``dir:`` directory."""

    def __init__(self, ref: PathRef) -> None:
        super().__init__(ref)
        require_dir(self.path, "image directory")

    async def get_manifest(self, reference: str) -> Manifest:
        return await asyncio.to_thread(self.load_manifest, reference)

    async def read_blob(self, desc: Descriptor, offset: int = 0) -> AsyncIterator[bytes]:
        """The blob's bytes from ``offset``, straight from its file."""
        path = self.blob_path(desc.digest)
        if not os.path.isfile(path):
            raise NotFoundError(f"{self}: blob {desc.digest} is missing from the directory")
        async for chunk in iter_file(path, offset):
            yield chunk

    async def close(self) -> None:
        return None


class DirDestination(_Dir):
    """Writes one image (or an index with its children) into a ``dir:`` directory.

    Which manifest is the image: the one put with a non-digest reference (``""`` says "this
    directory's image"); when all came by digest, the last one put (parents follow their children).
    The others are stored as ``<hex>.manifest.json`` as skopeo stores index children.
    """

    verifies_blobs = True  # write_parts hashes what it writes (see Destination.verifies_blobs)

    def __init__(self, ref: PathRef) -> None:
        super().__init__(ref)
        path = self.path
        if os.path.exists(path):
            if not os.path.isdir(path):
                raise UsageError(f"image directory {path} exists and is not a directory")
            if os.listdir(path) and _read_version(path) != VERSION:
                raise UsageError(
                    f"{path} is not empty and is not an image directory (no matching 'version' file); "
                    "ferry will not overwrite it",
                    hint="choose an empty or new directory",
                )
        else:
            try:
                os.makedirs(path, exist_ok=True)
            except OSError as e:
                raise UsageError(f"cannot create image directory {path}: {e.strerror}") from None
        write_file_atomic(os.path.join(path, "version"), VERSION)
        self._puts: list[Manifest] = []  # every manifest put in this session, in order
        self._top: Manifest | None = None  # the one put under a non-digest reference

    async def has_blob(self, desc: Descriptor) -> bool:
        return file_has_size(self.blob_path(desc.digest), desc.size)

    async def put_blob(self, desc: Descriptor, open_stream: OpenStream) -> None:
        await write_blob_file(self.path, self.blob_path(desc.digest), desc, open_stream, str(self))

    async def has_manifest(self, reference: str) -> str | None:
        """manifest.json's digest, or a child's that manifest.json lists: files not yet tied to the
        image by commit() do not count, so a rerun after a crash completes the image."""
        return await asyncio.to_thread(self._has_manifest, reference)

    def _has_manifest(self, reference: str) -> str | None:
        try:
            top = self._load(self.manifest_path, None)
        except (FileNotFoundError, ProtocolError):
            return None
        if not is_digest(reference) or _digest_as(top.raw, reference) == reference:
            return top.digest if not is_digest(reference) else reference
        if any(c.digest == reference for c in top.children) and os.path.isfile(self.child_manifest_path(reference)):
            return reference
        return None

    async def put_manifest(self, manifest: Manifest, reference: str) -> None:
        """Store by digest as ``<hex>.manifest.json``; the image itself becomes manifest.json in commit()."""
        verify_digest(manifest.raw, manifest.digest, f"{self}: manifest")
        if is_digest(reference):
            await asyncio.to_thread(write_file_atomic, self.child_manifest_path(manifest.digest), manifest.raw)
        else:
            await asyncio.to_thread(write_file_atomic, self.manifest_path, manifest.raw)
            self._top = manifest
        self._puts.append(manifest)

    async def commit(self) -> None:
        """Make the image manifest.json, then remove this format's files the image does not reference."""
        top = self._top or (self._puts[-1] if self._puts else None)
        if top is None:
            return
        await asyncio.to_thread(self._finish, top)
        self._puts.clear()
        self._top = None

    def _finish(self, top: Manifest) -> None:
        if top is not self._top:
            write_file_atomic(self.manifest_path, top.raw)
        keep = {"version", MANIFEST}
        keep.update(digest_hex(b.digest, str(self))[1] for b in top.blobs)
        for child in top.children:
            hexpart = digest_hex(child.digest, str(self))[1]
            keep.add(hexpart + ".manifest.json")
            try:
                m = self._load(self.child_manifest_path(child.digest), child.digest)
            except (FileNotFoundError, ProtocolError):
                return  # an incomplete index: remove nothing
            keep.update(digest_hex(b.digest, str(self))[1] for b in m.blobs)
        for name in os.listdir(self.path):
            if name not in keep and _OWN_FILE.match(name) and os.path.isfile(os.path.join(self.path, name)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.path, name))

    async def close(self) -> None:
        return None


def _read_version(path: str) -> bytes | None:
    try:
        with open(os.path.join(path, "version"), "rb") as f:
            return f.read(len(VERSION) + 1)
    except (FileNotFoundError, IsADirectoryError):
        return None

