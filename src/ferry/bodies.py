"""Reading whole HTTP bodies within a limit (hostile or broken servers send more than they should)."""

from __future__ import annotations

import aiohttp

from ferry.errors import ProtocolError


async def read_limited(resp: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    """Read a whole body, refusing one larger than ``limit``."""
    declared = resp.content_length
    if declared is not None and declared > limit:
        resp.release()
        raise ProtocolError(f"{what}: body of {declared} bytes exceeds the {limit}-byte limit")
    # StreamReader.read(n) answers what is buffered (one chunk), not n bytes: read to the end.
    data = bytearray()
    while chunk := await resp.content.read(limit + 1 - len(data)):
        data += chunk
        if len(data) > limit:
            resp.release()
            raise ProtocolError(f"{what}: body exceeds the {limit}-byte limit")
    return bytes(data)
