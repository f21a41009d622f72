"""Reading whole HTTP bodies within a limit (hostile or broken servers send more than they should)."""

from __future__ import annotations

from ferry.aio import aiohttp
from ferry.errors import ProtocolError
from ferry.ratelimit import Pacer


async def read_limited(resp: aiohttp.ClientResponse, limit: int, what: str, pacer: Pacer | None = None) -> bytes:
    """Read a whole body, refusing one larger than ``limit``; ``pacer`` paces it (``--max-bandwidth``)."""
    declared = resp.content_length
    if declared is not None and declared > limit:
        resp.release()
        raise ProtocolError(f"{what}: body of {declared} bytes exceeds the {limit}-byte limit")
    # StreamReader.read(n) answers what is buffered (one chunk), not n bytes: read to the end.
    data = bytearray()
    while chunk := await resp.content.read(limit + 1 - len(data)):
        if pacer is not None:
            await pacer.bucket.take(len(chunk))
        data += chunk
        if len(data) > limit:
            resp.release()
            raise ProtocolError(f"{what}: body exceeds the {limit}-byte limit")
    return bytes(data)
