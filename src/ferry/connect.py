"""Open image locations: registry repositories over one shared HTTP pool, or local paths."""

from __future__ import annotations

from ferry.access import Access, AccessMap
from ferry.http import HTTPPool, RetryPolicy
from ferry.refs import ImageRef, PathRef, RegistryRef
from ferry.transports.base import Destination, Source
from ferry.transports.registry import RegistryClient, Repository


class Connections:
    """Registry clients for a run, with access settings looked up per ``registry/repository``."""

    def __init__(self, access: AccessMap | None = None, *, connections: int = 16,
                 retry: RetryPolicy | None = None) -> None:
        self.access = access or AccessMap()
        self.pool = HTTPPool(connections=connections, retry=retry or RetryPolicy())
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
            from ferry.transports.local import open_source

            return open_source(ref)
        return self.repository(ref)

    def destination(self, ref: ImageRef) -> Destination:
        if isinstance(ref, PathRef):
            from ferry.transports.local import open_destination

            return open_destination(ref)
        return self.repository(ref, write=True)

    async def close(self) -> None:
        await self.pool.close()
