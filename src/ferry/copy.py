"""Copy one image graph from a Source to a Destination, written once against the transport seam.

Order is what keeps a destination whole: every blob of a manifest is present (verified by the
destination against its digest) before the manifest is pushed; children before their index; the
tag last. Manifests are pushed byte for byte, so digests are preserved — unless a platform filter
is asked for, which rewrites an index and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from ferry.concurrency import Budget
from ferry.errors import DigestMismatchError, ProtocolError
from ferry.media import Descriptor, Manifest, filter_platforms, select_platform
from ferry.plan.model import PlatformFilter
from ferry.refs import is_digest
from ferry.transports.base import BlobsMissingError, Destination, Mountable, OpenStream, Source, as_mountable


class Events(Protocol):
    """What copying reports as it goes (progress bars, logs). All methods are optional no-ops."""

    def blob_started(self, desc: Descriptor) -> None: ...
    def bytes_moved(self, n: int) -> None: ...
    def blob_done(self, desc: Descriptor, how: str) -> None: ...


class NoEvents:
    def blob_started(self, desc: Descriptor) -> None:
        pass

    def bytes_moved(self, n: int) -> None:
        pass

    def blob_done(self, desc: Descriptor, how: str) -> None:
        pass


class BlobLedger(Protocol):
    """Which repositories of a store are known to hold a blob (kept across runs by the journal)."""

    def holders(self, store: str, digest: str) -> set[str]: ...
    def record(self, store: str, digest: str, repo: str) -> None: ...
    def forget(self, store: str, digest: str, repo: str) -> None: ...


class MemoryLedger:
    def __init__(self) -> None:
        self._held: dict[tuple[str, str], set[str]] = {}

    def holders(self, store: str, digest: str) -> set[str]:
        return self._held.get((store, digest), set())

    def record(self, store: str, digest: str, repo: str) -> None:
        self._held.setdefault((store, digest), set()).add(repo)

    def forget(self, store: str, digest: str, repo: str) -> None:
        self._held.get((store, digest), set()).discard(repo)


@dataclass(slots=True)
class CopyStats:
    blobs_copied: int = 0
    blobs_mounted: int = 0
    blobs_skipped: int = 0
    bytes_copied: int = 0
    manifests_pushed: int = 0

    def add(self, other: CopyStats) -> None:
        for name in self.__slots__:  # type: ignore[attr-defined]
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(slots=True)
class CopyResult:
    digest: str  # the digest now at the destination
    source_digest: str
    skipped: bool  # the destination already had it
    stats: CopyStats = field(default_factory=CopyStats)
    rewritten: bool = False  # a platform filter produced a new manifest


class BlobTransfers:
    """Moves blobs to destinations, each at most once per store: a blob already in flight is awaited
    by the others that need it, then mounted into their repositories. At most ``concurrency`` transfers
    run at once, and their buffers within ``buffer_bytes``: a transfer holds what it may buffer (its
    size, at most ``TRANSFER_BUFFER``), so many small blobs go side by side and few big ones."""

    #: What one streaming transfer may hold in memory: the chunk being read, the one held back until
    #: the digest checks, and the HTTP layer's buffers.
    TRANSFER_BUFFER = 4 * 1024 * 1024

    def __init__(self, *, concurrency: int = 32, buffer_bytes: int = 32 * 1024 * 1024,
                 ledger: BlobLedger | None = None, events: Events | None = None):
        self.ledger: BlobLedger = ledger or MemoryLedger()
        self.events: Events = events or NoEvents()
        self._slots = asyncio.Semaphore(concurrency)
        self._buffers = Budget(buffer_bytes)
        self._inflight: dict[tuple[str, ...], asyncio.Future[None]] = {}

    async def ensure(self, src: Source, dst: Destination, desc: Descriptor, stats: CopyStats) -> None:
        store_dst = as_mountable(dst)
        if store_dst is None:
            # Local destinations: no ledger, no mounts; but a blob that several images of one layout
            # need at once is written (and fetched) once, the others find its file.
            where = getattr(dst, "path", None)
            async with self._exclusive((f"file:{where}", desc.digest)) if where else contextlib.nullcontext():
                await self._check_or_upload(src, dst, desc, stats)
            return
        store, name = store_dst.store_key, store_dst.name
        if not self.ledger.holders(store, desc.digest):
            async with self._exclusive((store, desc.digest)):  # one upload of a blob to a store at a time
                if not self.ledger.holders(store, desc.digest):
                    # Mounted from this very repository: one round trip asks whether it holds the blob
                    # and, when it does not, opens the upload.
                    await self._mount(src, store_dst, desc, name, stats)
                    self.ledger.record(store, desc.digest, name)
                    return
        # In the store: mounts into different repositories go side by side, one per repository.
        async with self._exclusive((store, desc.digest, name)):
            holders = self.ledger.holders(store, desc.digest)
            if name in holders:
                stats.blobs_skipped += 1
                return
            await self._mount(src, store_dst, desc, sorted(holders)[0], stats)
            self.ledger.record(store, desc.digest, name)

    @contextlib.asynccontextmanager
    async def _exclusive(self, key: tuple[str, ...]) -> AsyncIterator[None]:
        """One transfer per ``key`` at a time: wait for the one in flight, then be it."""
        while (pending := self._inflight.get(key)) is not None:
            # Wait for the other transfer without taking on its outcome: if it failed (its source
            # may be the broken one), this image re-checks and transfers from its own source.
            await asyncio.wait((pending,))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            yield
            fut.set_result(None)
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # waiters re-check; nobody needs this exception object
            raise
        finally:
            del self._inflight[key]

    def forget(self, dst: Destination, blobs: list[Descriptor]) -> None:
        if (store_dst := as_mountable(dst)) is not None:
            for b in blobs:
                self.ledger.forget(store_dst.store_key, b.digest, store_dst.name)

    @contextlib.asynccontextmanager
    async def _slot(self, desc: Descriptor) -> AsyncIterator[None]:
        """A transfer's turn: one of the slots, and the buffer bytes it may hold."""
        need = self.TRANSFER_BUFFER if desc.size < 0 else min(desc.size, self.TRANSFER_BUFFER)
        async with self._slots, self._buffers.hold(need):
            yield

    async def _mount(self, src: Source, dst: Mountable, desc: Descriptor, from_name: str, stats: CopyStats) -> None:
        async with self._slot(desc):
            self.events.blob_started(desc)
            mounted = await dst.mount_or_put_blob(desc, from_name, self._stream(src, dst, desc))
        if mounted and from_name == dst.name:
            stats.blobs_skipped += 1
            how = "present"
        elif mounted:
            stats.blobs_mounted += 1
            how = "mounted"
        else:
            stats.blobs_copied += 1
            stats.bytes_copied += max(desc.size, 0)
            how = "copied"
        self.events.blob_done(desc, how)

    async def _check_or_upload(self, src: Source, dst: Destination, desc: Descriptor, stats: CopyStats) -> None:
        async with self._slot(desc):
            if await dst.has_blob(desc):
                stats.blobs_skipped += 1
                self.events.blob_done(desc, "present")
                return
            self.events.blob_started(desc)
            await dst.put_blob(desc, self._stream(src, dst, desc))
        stats.blobs_copied += 1
        stats.bytes_copied += max(desc.size, 0)
        self.events.blob_done(desc, "copied")

    def _stream(self, src: Source, dst: Destination, desc: Descriptor) -> OpenStream:
        # A destination that hashes what it stores (local transports) need not have it hashed twice.
        return BlobOpener(src, desc, self.events, verify=not dst.verifies_blobs)


class BlobOpener:
    """The :class:`OpenStream` of one blob of a Source: digest-verifying streams of it, from the start or
    from an offset a resumed upload asks for. The hash state is kept every ``CHECKPOINT`` bytes, so a
    stream reopened at such an offset still verifies the whole blob. The last chunk is held back until
    the digest checks, so a wrong blob never completes an upload: the error aborts the request body
    before the registry sees its end.
    """

    CHECKPOINT = 8 * 1024 * 1024

    def __init__(self, src: Source, desc: Descriptor, events: Events, *, verify: bool = True) -> None:
        self.src, self.desc, self.events, self.verify = src, desc, events, verify
        algo = desc.digest.partition(":")[0]
        self._checkpoints: dict[int, Any] = {0: hashlib.new(algo)}

    def __call__(self, offset: int = 0) -> AsyncIterator[bytes]:
        state = self._checkpoints.get(offset)
        if state is None:
            raise ProtocolError(f"cannot resume {self.desc.digest} at byte {offset}: not a checkpoint")
        chunks = self.src.read_blob(self.desc, offset) if offset else self.src.read_blob(self.desc)
        if not self.verify:
            return self._count(chunks)
        return self._verify(chunks, offset, state.copy())

    async def _count(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self.events.bytes_moved(len(chunk))
            yield chunk

    def _hash(self, h: Any, chunk: bytes, position: int) -> None:
        """Hash one chunk, keeping the hash state at every checkpoint it crosses."""
        step = self.CHECKPOINT
        view = memoryview(chunk)
        while len(view):
            part, view = view[: step - position % step], view[step - position % step:]
            h.update(part)
            position += len(part)
            if position % step == 0 and position not in self._checkpoints:
                self._checkpoints[position] = h.copy()

    async def _verify(self, chunks: AsyncIterator[bytes], position: int, h: Any) -> AsyncIterator[bytes]:
        # Hashed on the event loop's thread: handing each ~1 MiB chunk to a worker thread cost more CPU
        # than it saved (docs/decisions.md, "Big images"), and CPU is what a big copy runs short of.
        desc = self.desc
        pending: bytes | None = None
        async for chunk in chunks:
            if not chunk:
                continue
            if desc.size >= 0 and position + len(chunk) > desc.size:
                raise ProtocolError(f"blob {desc.digest} is larger than its descriptor's {desc.size} bytes")
            self._hash(h, chunk, position)
            position += len(chunk)
            if pending is not None:
                self.events.bytes_moved(len(pending))
                yield pending
            pending = chunk
        if desc.size >= 0 and position != desc.size:
            raise ProtocolError(f"blob {desc.digest} ended at {position} of {desc.size} bytes")
        if h.hexdigest() != desc.digest.partition(":")[2]:
            raise DigestMismatchError(f"blob content does not match its digest {desc.digest}")
        if pending is not None:
            self.events.bytes_moved(len(pending))
            yield pending


class ImageCopier:
    """Copies image graphs with shared blob transfers (one per run, shared by every image)."""

    def __init__(self, transfers: BlobTransfers | None = None, *, manifest_concurrency: int = 4,
                 on_round_trip: Callable[[float], None] | None = None) -> None:
        self.transfers = transfers or BlobTransfers()
        self._manifest_slots = asyncio.Semaphore(manifest_concurrency)
        self._on_round_trip = on_round_trip  # told the seconds of each one-request-per-side probe

    async def copy(
        self,
        src: Source,
        dst: Destination,
        reference: str,
        dst_tag: str | None,
        *,
        platform: str | None = None,
        platforms: PlatformFilter | None = None,
        force: bool = False,
        root: Manifest | None = None,
        before_push: Callable[[], Awaitable[None]] | None = None,
    ) -> CopyResult:
        """Copy the image ``reference`` names; tag it ``dst_tag`` (or store it by digest when None)."""
        probed = False
        if root is None and not force and not platform and not (platforms and platforms.active):
            # Nothing-to-do check: the source manifest (needed anyway) and a HEAD at the destination.
            root, present = await self._fetch_and_probe(src, dst, reference, dst_tag)
            if present:
                return CopyResult(root.digest, root.digest, skipped=True)
            probed = True
        root = root or await src.get_manifest(reference)
        source_digest = root.digest
        rewritten = False
        if root.is_index and platform:
            root = await src.get_manifest(select_platform(root, platform).digest)
            rewritten = True
        elif root.is_index and platforms is not None and platforms.active:
            filtered = filter_platforms(root, platforms)
            rewritten = filtered is not root
            root = filtered
        target = dst_tag or root.digest
        if not force and not probed:
            present = await dst.has_manifest(target)
            if present == root.digest:
                return CopyResult(root.digest, source_digest, skipped=True, rewritten=rewritten)
        stats = CopyStats()
        await self._copy_tree(src, dst, root, stats)
        if before_push is not None:  # the push order of a repository (ferry.pushorder)
            await before_push()
        await self._push(src, dst, root, target, stats)
        await dst.commit()
        return CopyResult(root.digest, source_digest, skipped=False, stats=stats, rewritten=rewritten)

    async def _fetch_and_probe(
        self, src: Source, dst: Destination, reference: str, dst_tag: str | None
    ) -> tuple[Manifest, bool]:
        """The source manifest, and whether the destination already holds it (one request per side,
        in parallel when the destination reference is known before the source answers)."""
        known = dst_tag or (reference if is_digest(reference) else None)
        if known:
            started = time.perf_counter()
            got, held = await asyncio.gather(src.get_manifest(reference), dst.has_manifest(known),
                                             return_exceptions=True)
            if self._on_round_trip is not None:
                self._on_round_trip(time.perf_counter() - started)
            # Both failed? Report the destination's error: a set-up problem (TLS, credentials) there
            # concerns every image, and the answer must not depend on which reply came first.
            for outcome in (held, got):
                if isinstance(outcome, BaseException):
                    raise outcome
            root, present = cast(Manifest, got), cast("str | None", held)
        else:
            root = await src.get_manifest(reference)
            present = await dst.has_manifest(root.digest)
        return root, present == root.digest

    async def _copy_tree(self, src: Source, dst: Destination, m: Manifest, stats: CopyStats) -> None:
        """Everything ``m`` references, present at the destination; ``m`` itself is the caller's to push."""
        if m.children:
            await asyncio.gather(*(self._copy_child(src, dst, c, stats) for c in m.children))
        if m.blobs:
            await asyncio.gather(*(self.transfers.ensure(src, dst, b, stats) for b in m.blobs))

    async def _copy_child(self, src: Source, dst: Destination, desc: Descriptor, stats: CopyStats) -> None:
        async with self._manifest_slots:
            # both at once: one round trip, at the price of fetching a child the destination has
            present, child = await asyncio.gather(dst.has_manifest(desc.digest), src.get_manifest(desc.digest),
                                                  return_exceptions=True)
            if isinstance(present, BaseException):
                raise present
            if present == desc.digest:
                return
            if isinstance(child, BaseException):
                raise child
        await self._copy_tree(src, dst, child, stats)
        await self._push(src, dst, child, desc.digest, stats)

    async def _push(self, src: Source, dst: Destination, m: Manifest, reference: str, stats: CopyStats) -> None:
        try:
            await dst.put_manifest(m, reference)
        except BlobsMissingError:
            if not m.blobs:
                raise
            # The journal said this repository held blobs it no longer has (deleted or garbage-collected
            # since): check every blob again, then push once more.
            self.transfers.forget(dst, m.blobs)
            await asyncio.gather(*(self.transfers.ensure(src, dst, b, stats) for b in m.blobs))
            await dst.put_manifest(m, reference)
        stats.manifests_pushed += 1
