"""The file plumbing and the reference convention shared by the local transports (``oci:``, ``dir:``,
``docker-archive:``).

Reference convention shared by the three local transports: a ``PathRef`` names one image, and the
reference string that means "that image" is ``""`` (each Source and Destination also exposes it as
``.reference``); the PathRef's own NAME means the same. A digest reference means one manifest by
digest (an index child, say); any other string is a name inside the store (an ``oci:`` ref.name, a
docker-archive RepoTag; a ``dir:`` holds one image, so any name means it). Destinations take the
image under a name (``""`` = the PathRef's) or, when every manifest comes by digest, take the last
one put as the image: children come before their parents.

Local files are read and written with plain blocking calls moved to a worker thread
(``asyncio.to_thread``) in chunks of about 1 MiB: the event loop keeps serving registry transfers while
the disk and sha256 (which releases the GIL) work in parallel, and memory stays flat.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterable
from typing import IO

from ferry.errors import DigestMismatchError, NotFoundError, ProtocolError, UsageError
from ferry.media import Descriptor
from ferry.refs import is_digest
from ferry.transports.base import OpenStream

CHUNK = 1 << 20
#: Writes are batched larger than reads: each batch costs two thread switches, which dominate on a
#: loaded machine, while 4 MiB (two batches queued) still keeps memory flat.
WRITE_BATCH = 4 << 20
#: Prefix of the temporary files ferry writes next to their final name (renamed when verified).
TEMP_PREFIX = "ferry-put-blob-"


def digest_hex(digest: str, what: str) -> tuple[str, str]:
    """``(algorithm, hex)`` of a digest, refused unless well formed (it becomes part of a file name)."""
    if not is_digest(digest):
        raise UsageError(f"{what}: invalid digest {digest!r}", hint="expected sha256: and 64 hex characters")
    algo, _, hexpart = digest.partition(":")
    return algo, hexpart


def _write_all(f: IO[bytes], h: hashlib._Hash, parts: list[bytes]) -> None:
    for part in parts:
        h.update(part)
        f.write(part)


async def write_parts(f: IO[bytes], desc: Descriptor, chunks: AsyncIterator[bytes], what: str) -> None:
    """Write ``chunks`` to ``f`` while checking size and digest against ``desc``.

    Parts are gathered to about ``WRITE_BATCH`` bytes and handed to a writer task that hashes and writes them
    in a worker thread, while this task already pulls the next ones from the stream: when the stream
    itself hashes (the copy loop verifies too) the two sha256 passes run on two cores instead of one
    after the other. At most two batches wait in between, so memory stays flat. Raises before
    returning when the content is wrong; the caller discards what was written.
    """
    algo, expected = digest_hex(desc.digest, what)
    h = hashlib.new(algo)
    queue: asyncio.Queue[list[bytes] | None] = asyncio.Queue(maxsize=2)

    async def writer() -> None:
        while (parts := await queue.get()) is not None:
            await asyncio.to_thread(_write_all, f, h, parts)

    task = asyncio.create_task(writer())
    try:
        size = 0
        pending: list[bytes] = []
        pending_size = 0
        async for chunk in chunks:
            if not chunk:
                continue
            size += len(chunk)
            if desc.size >= 0 and size > desc.size:
                raise ProtocolError(f"{what}: blob {desc.digest} is larger than its descriptor's {desc.size} bytes")
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= WRITE_BATCH:
                await _hand_over(queue, pending, task)
                pending, pending_size = [], 0
        if pending:
            await _hand_over(queue, pending, task)
        await _hand_over(queue, None, task)
        await task
    except BaseException:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise
    if desc.size >= 0 and size != desc.size:
        raise ProtocolError(f"{what}: blob {desc.digest} ended at {size} of its descriptor's {desc.size} bytes")
    if h.hexdigest() != expected:
        raise DigestMismatchError(
            f"{what}: blob content does not match its digest {desc.digest} (got {algo}:{h.hexdigest()})",
            hint="the source holds corrupt data",
        )


async def _hand_over(
    queue: asyncio.Queue[list[bytes] | None], item: list[bytes] | None, writer: asyncio.Task[None]
) -> None:
    """``queue.put(item)``, unless the writer stops first (its error is raised instead of waiting forever)."""
    if writer.done():
        writer.result()
        raise RuntimeError("blob writer stopped early")
    put = asyncio.ensure_future(queue.put(item))
    done, _ = await asyncio.wait({put, writer}, return_when=asyncio.FIRST_COMPLETED)
    if put not in done:
        put.cancel()
        writer.result()
        raise RuntimeError("blob writer stopped early")


def _sync_close(f: IO[bytes]) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()


async def write_blob_file(
    directory: str, final_path: str, desc: Descriptor, open_stream: OpenStream, what: str
) -> None:
    """Stream a blob into a temporary file in ``directory``, verify it, fsync, then rename to ``final_path``.

    Nothing is left behind when the content is wrong, the stream fails or the task is cancelled: a file
    at ``final_path`` therefore always holds verified content, which is what ``has_blob`` relies on.
    """
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
    f = os.fdopen(fd, "wb")
    try:
        await write_parts(f, desc, open_stream(), what)
        await asyncio.to_thread(_sync_close, f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, final_path)
    except BaseException:
        f.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_file_atomic(path: str, data: bytes) -> None:
    """Write small ``data`` (a manifest, index.json) to ``path`` via a synced temporary file and a rename."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


async def iter_file(path: str, offset: int = 0, length: int = -1) -> AsyncIterator[bytes]:
    """Stream ``length`` bytes (all when -1) of a file from ``offset`` in ~1 MiB chunks.

    Each read runs in a worker thread, and the next one starts before the current chunk is handed
    on, so the disk works while the consumer hashes or sends.
    """
    f = await asyncio.to_thread(open, path, "rb")
    remaining = length

    def read() -> bytes:
        nonlocal remaining
        n = CHUNK if remaining < 0 else min(CHUNK, remaining)
        chunk = f.read(n) if n else b""
        if remaining > 0:
            if not chunk:
                raise ProtocolError(f"{path}: ended {remaining} bytes early")
            remaining -= len(chunk)
        return chunk

    nxt: asyncio.Future[bytes] | None = None
    try:
        if offset:
            await asyncio.to_thread(f.seek, offset)
        nxt = asyncio.ensure_future(asyncio.to_thread(read))
        while True:
            chunk = await nxt
            nxt = None
            if not chunk:
                return
            nxt = asyncio.ensure_future(asyncio.to_thread(read))
            yield chunk
    finally:
        if nxt is not None:
            with contextlib.suppress(BaseException):
                await nxt
        f.close()


def read_small(path: str, limit: int, what: str) -> bytes:
    """Read a whole small file (manifest, index.json), refusing anything over ``limit`` bytes."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ProtocolError(f"{what}: {path} is larger than {limit} bytes")
    return data


def file_has_size(path: str, size: int) -> bool:
    """True when ``path`` is a regular file of ``size`` bytes (any size when ``size`` < 0)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    return os.path.isfile(path) and (size < 0 or st.st_size == size)


def require_dir(path: str, what: str) -> None:
    """Refuse a source path that is missing or not a directory, saying which."""
    if not os.path.exists(path):
        raise NotFoundError(f"{what} {path} does not exist")
    if not os.path.isdir(path):
        raise UsageError(f"{what} {path} is not a directory")


def names_list(names: Iterable[str]) -> str:
    shown = sorted(names)
    return ", ".join(shown) if shown else "none"
