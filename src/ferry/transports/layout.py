"""OCI image layout (``oci:PATH[:NAME]``): ``oci-layout``, ``index.json`` and ``blobs/<alg>/<hex>``.

Matches containers/image ``oci/layout`` (skopeo 1.9):

- NAME is the ``org.opencontainers.image.ref.name`` annotation of an ``index.json`` entry. Reading
  without a NAME takes the only entry (more than one is an error); with a NAME, the entry so named.
- Children of an index are stored as blobs only; ``index.json`` lists the top-level image.
- Writing under NAME replaces, in place, the entry that had that name; otherwise an unnamed entry with
  the same digest is replaced, else the entry is appended. (skopeo keeps the old entry with its name
  removed; ferry replaces it, so re-copying a tag does not grow index.json with unreachable entries.)
- A destination without NAME adds an unnamed entry. When every manifest came by digest (what
  ``ImageCopier`` does without a tag), the last one put (parents follow children) is the image.
- ``index.json`` is compact JSON (``{"schemaVersion":2,"manifests":[…]}``) and ``oci-layout`` is
  ``{"imageLayoutVersion": "1.0.0"}``, byte for byte as skopeo writes them.

ferry writes manifests byte for byte, so a Docker schema2 manifest lands in the layout with its Docker
media type (skopeo would convert it to OCI, changing its digest). skopeo reads such an entry without a
NAME, but refuses it when asked by NAME.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
from collections.abc import AsyncIterator
from typing import Any

from ferry.errors import NotFoundError, ProtocolError, UsageError
from ferry.media import MAX_MANIFEST_BYTES, Descriptor, Manifest, parse_manifest, verify_digest
from ferry.refs import PathRef, is_digest
from ferry.transports.base import OpenStream
from ferry.transports.files import (
    digest_hex,
    file_has_size,
    iter_file,
    names_list,
    read_small,
    require_dir,
    write_blob_file,
    write_file_atomic,
)

REF_NAME = "org.opencontainers.image.ref.name"
OCI_LAYOUT_BYTES = b'{"imageLayoutVersion": "1.0.0"}'
MAX_INDEX_BYTES = 16 * 1024 * 1024


def _dumps(obj: Any) -> bytes:
    """JSON as Go's encoding/json writes it: compact, keys in the order given."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class _Layout:
    """Paths and index.json reading shared by the Source and the Destination."""

    def __init__(self, ref: PathRef) -> None:
        if ref.transport != "oci":
            raise UsageError(f"{ref}: not an oci: reference")
        self.ref = ref
        self.path = ref.path
        self.name = ref.name
        #: The reference meaning "the image this PathRef names" (see ``ferry.transports.files``).
        self.reference = ""

    def __str__(self) -> str:
        return str(self.ref)

    def blob_path(self, digest: str) -> str:
        algo, hexpart = digest_hex(digest, str(self))
        return os.path.join(self.path, "blobs", algo, hexpart)

    @property
    def index_path(self) -> str:
        return os.path.join(self.path, "index.json")

    def read_index(self) -> dict[str, Any] | None:
        """index.json as a dict, or None when the layout has none yet."""
        try:
            raw = read_small(self.index_path, MAX_INDEX_BYTES, str(self))
        except FileNotFoundError:
            return None
        try:
            index = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise ProtocolError(
                f"{self}: index.json is not valid JSON ({e})", hint="repair or remove the layout"
            ) from None
        if not isinstance(index, dict) or not isinstance(index.get("manifests", []), list):
            raise ProtocolError(f"{self}: index.json has no manifests list", hint="repair or remove the layout")
        index.setdefault("manifests", [])
        for entry in index["manifests"]:
            if not isinstance(entry, dict) or not is_digest(str(entry.get("digest", ""))):
                raise ProtocolError(f"{self}: index.json has an entry without a valid digest")
        return index

    def find_entry(self, index: dict[str, Any], name: str | None) -> dict[str, Any]:
        """The index.json entry for ``name`` (skopeo semantics when None: the only entry)."""
        entries: list[dict[str, Any]] = index["manifests"]
        if name is None:
            if len(entries) == 1:
                return entries[0]
            if not entries:
                raise NotFoundError(f"{self}: the layout holds no image")
            raise UsageError(
                f"{self}: the layout holds {len(entries)} images; name one",
                hint=f"use oci:{self.path}:NAME with one of: {names_list(_entry_names(entries))}",
            )
        for entry in entries:
            if _entry_name(entry) == name:
                return entry
        raise NotFoundError(
            f"no image named {name!r} in oci layout {self.path}",
            hint=f"names present: {names_list(_entry_names(entries))}",
        )

    def load_manifest(self, digest: str, declared_type: str | None, size: int | None = None) -> Manifest:
        path = self.blob_path(digest)
        try:
            raw = read_small(path, MAX_MANIFEST_BYTES, str(self))
        except FileNotFoundError:
            raise NotFoundError(f"{self}: manifest {digest} is missing from the layout's blobs") from None
        if size is not None and size >= 0 and len(raw) != size:
            raise ProtocolError(f"{self}: manifest {digest} has {len(raw)} bytes, its descriptor says {size}")
        if not digest.startswith("sha256:"):
            verify_digest(raw, digest, f"{self}: manifest")
        try:
            return parse_manifest(raw, declared_type, digest)
        except ProtocolError as e:
            raise type(e)(f"{self}: {e.message}", hint=e.hint) from None


def _entry_name(entry: dict[str, Any]) -> str | None:
    annotations = entry.get("annotations")
    if isinstance(annotations, dict):
        name = annotations.get(REF_NAME)
        return name if isinstance(name, str) else None
    return None


def _entry_names(entries: list[dict[str, Any]]) -> list[str]:
    return [n for n in (_entry_name(e) for e in entries) if n]


class LayoutSource(_Layout):
    """Reads one image (or index) from an OCI layout."""

    def __init__(self, ref: PathRef) -> None:
        super().__init__(ref)
        require_dir(self.path, "oci layout")

    def _index(self) -> dict[str, Any]:
        index = self.read_index()
        if index is None:
            raise UsageError(f"{self.path} is not an OCI layout: it has no index.json")
        return index

    async def get_manifest(self, reference: str) -> Manifest:
        """``""`` → the image the reference names; a digest → that manifest's blob; else a ref.name."""
        if is_digest(reference):
            return await asyncio.to_thread(self.load_manifest, reference, None)
        name = reference or self.name
        index = await asyncio.to_thread(self._index)
        entry = self.find_entry(index, name)
        mt = entry.get("mediaType") if isinstance(entry.get("mediaType"), str) else None
        size = entry.get("size") if isinstance(entry.get("size"), int) else None
        return await asyncio.to_thread(self.load_manifest, entry["digest"], mt, size)

    async def read_blob(self, desc: Descriptor, offset: int = 0) -> AsyncIterator[bytes]:
        """The blob's bytes from ``offset``, straight from its file."""
        path = self.blob_path(desc.digest)
        if not os.path.isfile(path):
            raise NotFoundError(f"{self}: blob {desc.digest} is missing from the layout")
        async for chunk in iter_file(path, offset):
            yield chunk

    async def close(self) -> None:
        return None


class LayoutDestination(_Layout):
    """Writes one image (or index) into an OCI layout, creating the layout when needed.

    Blobs and manifests go to ``blobs/`` as they arrive (verified, then renamed into place);
    ``index.json`` changes only in ``commit()``, which re-reads it under an exclusive lock on the layout
    directory, so several destinations (other names) writing into one layout at once lose no entry.
    """

    verifies_blobs = True  # write_parts hashes what it writes (see Destination.verifies_blobs)

    def __init__(self, ref: PathRef) -> None:
        super().__init__(ref)
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise UsageError(f"oci layout {self.path} exists and is not a directory")
        try:
            os.makedirs(os.path.join(self.path, "blobs"), exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create oci layout {self.path}: {e.strerror}") from None
        self.read_index()  # refuse a broken layout before any transfer
        self._entries: list[tuple[dict[str, Any], str | None]] = []  # (descriptor, name) to add at commit
        self._last_by_digest: Manifest | None = None

    async def has_blob(self, desc: Descriptor) -> bool:
        return file_has_size(self.blob_path(desc.digest), desc.size)

    async def put_blob(self, desc: Descriptor, open_stream: OpenStream) -> None:
        path = self.blob_path(desc.digest)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        await write_blob_file(self.path, path, desc, open_stream, str(self))

    async def has_manifest(self, reference: str) -> str | None:
        """A digest counts only once index.json lists it (a child blob alone, or a crash before commit(),
        would otherwise make a rerun skip the image); a name, as index.json has it."""
        name = reference or self.name
        for desc, entry_name in reversed(self._entries):  # what this session wrote wins
            if reference in (desc["digest"], entry_name) or (not reference and entry_name == name):
                return str(desc["digest"])
        index = await asyncio.to_thread(self.read_index)
        if index is None:
            return None
        if is_digest(reference):
            listed = any(e.get("digest") == reference for e in index["manifests"])
            return reference if listed and os.path.isfile(self.blob_path(reference)) else None
        if name is None:
            entries = index["manifests"]
            return str(entries[0]["digest"]) if len(entries) == 1 else None
        for entry in index["manifests"]:
            if _entry_name(entry) == name:
                return str(entry["digest"])
        return None

    async def put_manifest(self, manifest: Manifest, reference: str) -> None:
        """Store the manifest blob; a non-digest reference (``""`` = this ref's NAME) also names it."""
        verify_digest(manifest.raw, manifest.digest, f"{self}: manifest")
        path = self.blob_path(manifest.digest)
        if not file_has_size(path, len(manifest.raw)):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            await asyncio.to_thread(write_file_atomic, path, manifest.raw)
        if is_digest(reference):
            self._last_by_digest = manifest
            return
        self._entries.append((_descriptor(manifest), reference or self.name))

    async def commit(self) -> None:
        """Add this session's image to index.json (atomically), and write oci-layout when missing."""
        entries = list(self._entries)
        if not entries and self._last_by_digest is not None:
            # Every manifest came by digest: the last one (parents come after children) is the image.
            entries.append((_descriptor(self._last_by_digest), self.name))
        if not entries:
            return
        await asyncio.to_thread(self._commit_locked, entries)
        self._entries.clear()
        self._last_by_digest = None

    def _commit_locked(self, entries: list[tuple[dict[str, Any], str | None]]) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            index = self.read_index() or {"schemaVersion": 2, "manifests": []}
            for desc, name in entries:
                _add_entry(index["manifests"], desc, name)
            layout_file = os.path.join(self.path, "oci-layout")
            if not os.path.exists(layout_file):
                write_file_atomic(layout_file, OCI_LAYOUT_BYTES)
            write_file_atomic(self.index_path, _dumps(index))
        finally:
            os.close(fd)  # releases the lock

    async def close(self) -> None:
        return None


def _descriptor(manifest: Manifest) -> dict[str, Any]:
    return {"mediaType": manifest.media_type, "digest": manifest.digest, "size": len(manifest.raw)}


def _add_entry(entries: list[dict[str, Any]], desc: dict[str, Any], name: str | None) -> None:
    """containers/image ``addManifest``, except that the entry holding the name is replaced, not kept unnamed."""
    new = dict(desc)
    if name:
        new["annotations"] = {REF_NAME: name}
        for i, entry in enumerate(entries):
            if _entry_name(entry) == name:
                entries[i] = new
                return
    for i, entry in enumerate(entries):
        if entry.get("digest") == new["digest"] and _entry_name(entry) is None:
            entries[i] = new
            return
    entries.append(new)
