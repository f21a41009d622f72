"""The only seam between the copy algorithm and where bytes live.

A Source or Destination is bound to one image location: a repository in a registry, an OCI
layout plus a name, a directory, a docker archive. ``copy.py`` is written once against these: what a
transport can do beyond the common operations is declared here (``Destination.verifies_blobs``, the
``Mountable`` capability), as containers/image's ``ImageDestination`` declares its capabilities, and
the transport's own errors that copying reacts to are translated into the neutral ones below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, cast

from ferry.errors import ProtocolError
from ferry.media import Descriptor, Manifest


class OpenStream(Protocol):
    """Opens a fresh stream of one blob's bytes each time it is called: the whole blob, or from ``offset``
    (a multiple of 8 MiB) when a transport resumes an upload. The stream is digest-verified unless the
    destination said it verifies blobs itself; content that does not match ends the stream with an error."""

    def __call__(self, offset: int = 0) -> AsyncIterator[bytes]: ...


class BlobsMissingError(ProtocolError):
    """A destination refused a manifest because blobs it references are not there (a registry's
    ``MANIFEST_BLOB_UNKNOWN``): what the copy believed present was deleted or garbage-collected."""


class Source(Protocol):
    """Something images are read from."""

    async def get_manifest(self, reference: str) -> Manifest:
        """The manifest named by a tag or a digest, bytes exactly as stored (digest-verified)."""
        ...

    def read_blob(self, desc: Descriptor, offset: int = 0) -> AsyncIterator[bytes]:
        """Stream a blob's bytes in chunks, from ``offset``. The caller verifies the digest while streaming."""
        ...

    async def close(self) -> None: ...


class Destination(Protocol):
    """Something images are written to. Writes are idempotent."""

    #: ``put_blob`` checks size and digest itself while it writes (local files, hashed in a worker thread),
    #: so the caller may hand it an unverified stream and save a second sha256 pass. A registry only
    #: checks at the end of an upload, when a wrong blob would already be complete: False there.
    verifies_blobs: bool

    async def has_blob(self, desc: Descriptor) -> bool: ...

    async def put_blob(self, desc: Descriptor, open_stream: OpenStream) -> None:
        """Store a blob. A transport may call ``open_stream()`` again to retry, or ``open_stream(offset)``
        to resume; content that does not match must not be kept."""
        ...

    async def has_manifest(self, reference: str) -> str | None:
        """The digest stored under a tag or digest, or None when absent."""
        ...

    async def put_manifest(self, manifest: Manifest, reference: str) -> None:
        """Store manifest bytes exactly as given, under a tag or its digest. Raises
        :class:`BlobsMissingError` when the store lacks blobs the manifest references."""
        ...

    async def commit(self) -> None:
        """Finish writing (an archive closes its file, a layout writes index.json); no-op for registries."""
        ...

    async def close(self) -> None: ...


class Mountable(Destination, Protocol):
    """A Destination whose blobs are shared within a store, so it can link a blob the store holds in
    another repository (a registry's cross-repo mount) and the copy moves each blob once per store."""

    store_key: str  # blobs are shared within one store (a registry host)
    name: str  # the repository inside the store, under which the store's blob ledger records it

    async def mount_or_put_blob(
        self, desc: Descriptor, from_name: str, open_stream: OpenStream
    ) -> bool:
        """Mount the blob from ``from_name`` (True), or upload it in the session the store offers (False).
        ``from_name`` may be this repository itself: then True means it already held the blob."""
        ...


def as_mountable(dst: Destination) -> Mountable | None:
    """``dst`` when it can mount, else None. A lookup of the method: ``isinstance`` against a runtime
    Protocol walks the Protocol's members on every call, and the copy asks for every blob."""
    return cast(Mountable, dst) if callable(getattr(dst, "mount_or_put_blob", None)) else None
