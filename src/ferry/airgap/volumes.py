"""``--volume-size``: an export cut into numbered tar volumes for removable media, and put back together.

Each volume is a plain (GNU) tar whose first member, ``ferry-volume.json``, says which export it belongs
to, its number and the count, and every member: the file it is (part of), where in that file, and the
sha256 of its bytes. A file that does not fit in what is left of a volume is cut; its pieces are
reassembled (and each checked) on unpacking, and a blob is whole only when its own digest checks.
No volume is larger than the size asked for: the tar headers, the description member and tar's end
padding are counted. Volume files are written under a temporary name and renamed when complete, so an
interrupted packing resumes at the first missing volume.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from ferry.airgap.description import DESCRIPTION_FILE, description_path
from ferry.airgap.offline import Problem
from ferry.errors import ProtocolError, UsageError
from ferry.transports.files import TEMP_PREFIX

VOLUME_MEMBER = "ferry-volume.json"
VOLUME_FORMAT = "ferry-volume"
VOLUME_NAME = "ferry-export-{:03d}.tar"
VOLUME_RE = re.compile(r"^ferry-export-(\d{3,})\.tar$")
BLOCK = tarfile.BLOCKSIZE
#: Bytes a volume needs besides its members: tar's two end blocks and its padding to a 10 KiB record.
END_OVERHEAD = 2 * BLOCK + tarfile.RECORDSIZE
ENTRY_BUDGET = 512  # bytes of ferry-volume.json reserved per member (its JSON line is about 250)
MIN_VOLUME = 32_000  # tar end padding and headers take about 12 kB of a volume
CHUNK = 4 * 1024 * 1024
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40}


def parse_size(text: str) -> int:
    """``25G`` (10^9, as media are sold), ``4Gi`` (2^30), ``700M``, ``1048576``; a trailing ``B`` is allowed."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?)?B?\s*", text, re.IGNORECASE)
    if not m:
        raise UsageError(f"invalid --volume-size {text!r}", hint="a number with K, M, G or T (powers of 1000), "
                         "or Ki, Mi, Gi, Ti (powers of 1024), e.g. 25G")
    size = int(float(m.group(1)) * _UNITS[(m.group(2) or "").upper()])
    if size < MIN_VOLUME:
        raise UsageError(f"--volume-size {text} is too small", hint="at least 32K")
    return size


def _padded(n: int) -> int:
    return -(-n // BLOCK) * BLOCK


@dataclass(frozen=True, slots=True)
class Piece:
    path: str  # relative to the export directory
    offset: int
    length: int
    size: int  # of the whole file

    @property
    def member(self) -> str:
        return self.path if self.length == self.size else f"{self.path}.part-{self.offset:015d}"


def _files(directory: str) -> list[tuple[str, int]]:
    """What a volume set carries: the layout's small files first (volume 1 describes the export), then blobs."""
    out = [(name, os.path.getsize(os.path.join(directory, name)))
           for name in ("oci-layout", "index.json", DESCRIPTION_FILE)]
    root = os.path.join(directory, "blobs")
    for algo in sorted(os.listdir(root)):
        for name in sorted(os.listdir(os.path.join(root, algo))):
            if not name.startswith(TEMP_PREFIX):
                rel = f"blobs/{algo}/{name}"
                out.append((rel, os.path.getsize(os.path.join(directory, rel))))
    return out


def plan_volumes(files: list[tuple[str, int]], volume_size: int) -> list[list[Piece]]:
    """Pieces per volume, greedily: a file that does not fit is cut at a block boundary."""
    budget = volume_size - END_OVERHEAD - BLOCK - BLOCK  # the description member's header, and its last block
    volumes: list[list[Piece]] = [[]]
    used = 0
    for path, size in files:
        offset = 0
        while True:
            room = budget - used - BLOCK - ENTRY_BUDGET
            length = min(size - offset, max(0, room // BLOCK * BLOCK))
            if length == 0 and (size > offset or room < 0):  # nothing more fits in this volume
                volumes.append([])
                used = 0
                continue
            volumes[-1].append(Piece(path, offset, length, size))
            used += BLOCK + _padded(length) + ENTRY_BUDGET
            offset += length
            if offset >= size:
                break
    return [v for v in volumes if v]


def _read_range(path: str, offset: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(offset)
        left = length
        while left:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                raise ProtocolError(f"{path} shrank while it was packed")
            left -= len(chunk)
            yield chunk


def _checksum(directory: str, piece: Piece) -> str:
    """A whole blob's checksum is its name; other members are hashed."""
    if piece.path.startswith("blobs/sha256/") and piece.length == piece.size:
        return piece.path.rsplit("/", 1)[1]
    h = hashlib.sha256()
    for chunk in _read_range(os.path.join(directory, piece.path), piece.offset, piece.length):
        h.update(chunk)
    return h.hexdigest()


class _RangeReader(io.RawIOBase):
    def __init__(self, path: str, offset: int, length: int) -> None:
        self._chunks = _read_range(path, offset, length)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self._buffer) < n) and (chunk := next(self._chunks, b"")):
            self._buffer += chunk
        out, self._buffer = (self._buffer, b"") if n < 0 else (self._buffer[:n], self._buffer[n:])
        return out


def export_id(directory: str) -> str:
    """Names the export a volume belongs to: the sha256 of its description."""
    with open(description_path(directory), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def pack(directory: str, out_dir: str, volume_size: int) -> list[str]:
    """Cut the export in ``directory`` into volumes in ``out_dir``; their paths, in order."""
    plan = plan_volumes(_files(directory), volume_size)
    ident = export_id(directory)
    paths = []
    for number, pieces in enumerate(plan, start=1):
        path = os.path.join(out_dir, VOLUME_NAME.format(number))
        paths.append(path)
        if os.path.exists(path) and read_head(path).get("export") == ident:
            continue  # written whole by an earlier, interrupted packing of this export (the plan is the same)
        members = [{"name": p.member, "path": p.path, "offset": p.offset, "length": p.length, "size": p.size,
                    "sha256": _checksum(directory, p)} for p in pieces]
        head = json.dumps({"format": VOLUME_FORMAT, "version": 1, "export": ident, "volume": number,
                           "volumes": len(plan), "members": members}, indent=0).encode()
        if len(head) > BLOCK + ENTRY_BUDGET * len(pieces):
            raise ProtocolError(f"volume {number}: its description outgrew the room planned for it")
        tmp = os.path.join(out_dir, f"{TEMP_PREFIX}{VOLUME_NAME.format(number)}")
        with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
            _add(tar, VOLUME_MEMBER, len(head), io.BytesIO(head))
            for p in pieces:
                _add(tar, p.member, p.length, _RangeReader(os.path.join(directory, p.path), p.offset, p.length))
        if os.path.getsize(tmp) > volume_size:
            raise ProtocolError(f"volume {number} came out larger than {volume_size} bytes")
        os.replace(tmp, path)
    return paths


def _add(tar: tarfile.TarFile, name: str, size: int, data: IO[bytes]) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    tar.addfile(info, data)


def volume_paths(arguments: list[str]) -> list[str]:
    """The volumes named (files) or held (a directory of ``ferry-export-NNN.tar``)."""
    out: list[str] = []
    for arg in arguments:
        if os.path.isdir(arg):
            out += sorted(os.path.join(arg, n) for n in os.listdir(arg) if VOLUME_RE.match(n))
        elif os.path.isfile(arg):
            out.append(arg)
        else:
            raise UsageError(f"{arg}: no such export directory or volume")
    return out


def read_head(path: str) -> dict[str, Any]:
    """A volume's ``ferry-volume.json``."""
    try:
        with tarfile.open(path, "r:") as tar:
            first = tar.next()
            if first is None or first.name != VOLUME_MEMBER:
                raise UsageError(f"{path} is not a ferry export volume",
                                 hint=f"its first member is not {VOLUME_MEMBER}")
            f = tar.extractfile(first)
            assert f is not None
            head: dict[str, Any] = json.loads(f.read())
    except (tarfile.TarError, ValueError, OSError) as e:
        raise UsageError(f"{path} is not a readable ferry export volume ({e})") from None
    if head.get("format") != VOLUME_FORMAT:
        raise UsageError(f"{path} is not a ferry export volume")
    return head


@dataclass(slots=True)
class Unpacked:
    directory: str
    problems: list[Problem] = field(default_factory=list)


def unpack(volumes: list[str], target: str) -> Unpacked:
    """Put the export back together in ``target``. A damaged member is named and left out (the images
    needing it fail on import); every volume of the set must be given."""
    heads = {p: read_head(p) for p in volumes}
    idents = {h["export"] for h in heads.values()}
    if len(idents) != 1:
        raise UsageError("the volumes belong to different exports")
    counts = {h["volumes"] for h in heads.values()}
    numbers = sorted(h["volume"] for h in heads.values())
    if len(counts) != 1 or numbers != list(range(1, counts.pop() + 1)):
        missing = sorted(set(range(1, max(h["volumes"] for h in heads.values()) + 1)) - set(numbers))
        raise UsageError(f"volumes {', '.join(map(str, missing)) or '(duplicates)'} of the export are missing",
                         hint="name every volume (or the directory holding them)")
    result = Unpacked(target)
    os.makedirs(target, exist_ok=True)
    received: dict[str, int] = {}
    damaged: set[str] = set()
    for path in sorted(volumes, key=lambda p: heads[p]["volume"]):
        members = {m["name"]: m for m in heads[path]["members"]}
        with tarfile.open(path, "r:") as tar:
            for info in tar:
                m = members.get(info.name)
                if m is None or info.name == VOLUME_MEMBER:
                    continue
                final = os.path.join(target, m["path"])
                if m["path"] in damaged or (os.path.exists(final) and os.path.getsize(final) == m["size"]):
                    continue
                data = tar.extractfile(info)
                assert data is not None
                if not _write_piece(data, final + ".partial", m):
                    damaged.add(m["path"])
                    result.problems.append(Problem(f"volume {heads[path]['volume']} member {m['name']}",
                                                   "content does not match its checksum (damaged)"))
                    continue
                received[m["path"]] = received.get(m["path"], 0) + m["length"]
                if received[m["path"]] == m["size"]:
                    os.replace(final + ".partial", final)
    for rel in damaged:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(target, rel + ".partial"))
    return result


def _write_piece(data: IO[bytes], partial: str, member: dict[str, Any]) -> bool:
    os.makedirs(os.path.dirname(partial), exist_ok=True)
    h = hashlib.sha256()
    with open(partial, "r+b" if os.path.exists(partial) else "wb") as out:
        out.seek(member["offset"])
        while chunk := data.read(CHUNK):
            h.update(chunk)
            out.write(chunk)
    return h.hexdigest() == member["sha256"]
