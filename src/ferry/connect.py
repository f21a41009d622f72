"""Open image locations: registry repositories over one shared HTTP pool, or local paths.

This is the transport factory (reference → Source/Destination): the transports know nothing of each
other or of it, so none of them imports a module that imports it back.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ferry.access import Access, AccessMap
from ferry.errors import UsageError
from ferry.http import HTTPPool, RetryPolicy
from ferry.ratelimit import RateLimits
from ferry.refs import ImageRef, PathRef, RegistryRef
from ferry.transports.base import Destination, Source
from ferry.transports.registry import RegistryClient, Repository

LocalTransport = tuple[Callable[[PathRef], Source], Callable[[PathRef], Destination]]
#: The local transports by name: (module, Source class, Destination class). Opening one is cheap: files
#: are read on first use, and a Destination's ``commit()`` makes the image visible. Their modules
#: (tarfile, gzip …) are imported on first use: a registry-to-registry copy never needs them.
LOCAL_TRANSPORTS: dict[str, tuple[str, str, str]] = {
    "oci": ("ferry.transports.layout", "LayoutSource", "LayoutDestination"),
    "dir": ("ferry.transports.directory", "DirSource", "DirDestination"),
    "docker-archive": ("ferry.transports.archive", "ArchiveSource", "ArchiveDestination"),
}


def _local(ref: PathRef) -> LocalTransport:
    try:
        module, source, destination = LOCAL_TRANSPORTS[ref.transport]
    except KeyError:
        raise UsageError(f"{ref}: not a local transport", hint="use oci:, dir: or docker-archive:") from None
    classes = importlib.import_module(module)
    return getattr(classes, source), getattr(classes, destination)


def open_source(ref: PathRef) -> Source:
    """A Source for ``oci:``, ``dir:`` or ``docker-archive:``."""
    return _local(ref)[0](ref)


def open_destination(ref: PathRef) -> Destination:
    """A Destination for ``oci:``, ``dir:`` or ``docker-archive:``."""
    return _local(ref)[1](ref)


class Connections:
    """Registry clients for a run, with access settings looked up per ``registry/repository`` and the
    run's ``--max-bandwidth`` and ``--max-requests`` (``limits``) applied to every request they send."""

    def __init__(self, access: AccessMap | None = None, *, connections: int = 16,
                 retry: RetryPolicy | None = None, limits: RateLimits | None = None) -> None:
        self.access = access or AccessMap()
        self.pool = HTTPPool(connections=connections, retry=retry or RetryPolicy(), limits=limits)
        self._clients: dict[tuple[str, Access], RegistryClient] = {}

    @property
    def stats(self):  # type: ignore[no-untyped-def]
        return self.pool.stats

    def client(self, registry: str, access: Access | None = None) -> RegistryClient:
        access = access if access is not None else self.access.for_registry(registry)
        key = (registry, access)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = RegistryClient(self.pool.get(registry, access))
        return client

    def repository(self, ref: RegistryRef, *, write: bool = False) -> Repository:
        return self.client(ref.registry, self.access.for_ref(ref)).repository(ref.repository, write=write)

    def source(self, ref: ImageRef) -> Source:
        if isinstance(ref, PathRef):
            return open_source(ref)
        return self.repository(ref)

    def destination(self, ref: ImageRef) -> Destination:
        if isinstance(ref, PathRef):
            return open_destination(ref)
        return self.repository(ref, write=True)

    async def close(self) -> None:
        await self.pool.close()
