"""The only seam between the copy algorithm and where bytes live.

A Source or Destination is bound to one image location: a repository in a registry, an OCI
layout plus a name, a directory, a docker archive. ``copy.py`` is written once against these.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol, runtime_checkable

from ferry.media import Descriptor, Manifest


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

    async def has_blob(self, desc: Descriptor) -> bool: ...

    async def put_blob(self, desc: Descriptor, open_stream: Callable[..., AsyncIterator[bytes]]) -> None:
        """Store a blob. ``open_stream()`` gives a fresh, digest-verifying stream of its bytes each time it
        is called (a transport may call it again to retry, or ``open_stream(offset)`` to resume at a
        multiple of 8 MiB); content that does not match must not be kept."""
        ...

    async def has_manifest(self, reference: str) -> str | None:
        """The digest stored under a tag or digest, or None when absent."""
        ...

    async def put_manifest(self, manifest: Manifest, reference: str) -> None:
        """Store manifest bytes exactly as given, under a tag or its digest."""
        ...

    async def commit(self) -> None:
        """Finish writing (an archive closes its file, a layout writes index.json); no-op for registries."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class Mountable(Protocol):
    """A Destination that can link a blob it already holds elsewhere (a registry's cross-repo mount)."""

    store_key: str  # blobs are shared within one store (a registry host)
    name: str  # the repository inside the store

    async def is_new(self) -> bool:
        """True when the repository did not exist when this run first asked (asked once per run)."""
        ...

    async def mount_or_put_blob(
        self, desc: Descriptor, from_name: str, open_stream: Callable[..., AsyncIterator[bytes]]
    ) -> bool:
        """Mount the blob from ``from_name`` (True), or upload it in the session the store offers (False)."""
        ...
