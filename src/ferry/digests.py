"""Digests held by the million (a Harbor's listing, the plan's jobs): a ``sha256:`` digest is kept as the
integer of its hex digits, 64 bytes of memory where its text takes 128, and read back as the same text.
Any other digest (another algorithm, upper-case hex: refused later, but never altered) stays text."""

from __future__ import annotations

import re

#: A digest as held: the integer of a sha256 digest's hex, or the digest's text.
Packed = int | str

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_PREFIX = "sha256:"


def pack(digest: Packed) -> Packed:
    if isinstance(digest, str) and len(digest) == 71 and digest.startswith(_PREFIX) and \
            _SHA256_HEX.fullmatch(digest, 7):
        return int(digest[7:], 16)
    return digest


def unpack(packed: Packed) -> str:
    return packed if isinstance(packed, str) else f"{_PREFIX}{packed:064x}"
