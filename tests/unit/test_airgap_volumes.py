"""Export volumes (``--volume-size``) and the export description, on files written here."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest

from ferry.airgap import description as d
from ferry.airgap.volumes import pack, parse_size, read_head, unpack
from ferry.errors import UsageError

SIZE = 40_000


def _blob(root: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs/sha256").mkdir(parents=True, exist_ok=True)
    (root / "blobs/sha256" / digest).write_bytes(data)
    return digest


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """A small export: a blob several volumes long, a few small ones, an empty one, the layout files."""
    root = tmp_path / "export"
    root.mkdir()
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text('{"schemaVersion":2,"manifests":[]}')
    d.write_description(str(root), d.Description(source=d.Source(url="http://127.0.0.1:5000", kind="registry"),
                                                 created="2026-12-01T00:00:00+00:00"))
    _blob(root, os.urandom(150_000))
    for i in range(20):
        _blob(root, f"small blob {i}".encode() * 50)
    _blob(root, b"")
    return root


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_sizes_are_parsed_as_media_are_sold() -> None:
    assert parse_size("25G") == 25 * 10**9
    assert parse_size("4Gi") == 4 * 2**30
    assert parse_size("700MB") == 700 * 10**6
    assert parse_size("1048576") == 1048576
    for bad in ("lots", "-1G", "10X"):
        with pytest.raises(UsageError, match="invalid --volume-size"):
            parse_size(bad)
    with pytest.raises(UsageError, match="too small"):
        parse_size("10K")


def test_volumes_cut_a_big_blob_stay_under_the_size_and_reassemble(export: Path, tmp_path: Path) -> None:
    volumes = pack(str(export), str(tmp_path), SIZE)
    assert len(volumes) >= 4
    assert all(os.path.getsize(v) <= SIZE for v in volumes)
    heads = [read_head(v) for v in volumes]
    assert [h["volume"] for h in heads] == list(range(1, len(volumes) + 1))
    assert heads[0]["members"][0]["path"] == "oci-layout"  # volume 1 carries the description
    pieces = [m for h in heads for m in h["members"] if m["length"] != m["size"]]
    assert len({m["path"] for m in pieces}) >= 1 and len(pieces) >= 4

    out = unpack(list(reversed(volumes)), str(tmp_path / "back"))
    assert out.problems == []
    assert files(tmp_path / "back") == files(export)


def test_a_damaged_member_is_named_and_left_out(export: Path, tmp_path: Path) -> None:
    volumes = pack(str(export), str(tmp_path), SIZE)
    victim = volumes[1]
    with tarfile.open(victim) as tar:
        member = next(m for m in tar.getmembers() if m.name.startswith("blobs/"))
    with open(victim, "r+b") as f:
        f.seek(member.offset_data + member.size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 1]))
    out = unpack(volumes, str(tmp_path / "back"))
    assert [p.subject for p in out.problems] == [f"volume 2 member {member.name}"]
    path = member.name.split(".part-")[0]
    assert not (tmp_path / "back" / path).exists()
    assert not list((tmp_path / "back").rglob("*.partial"))
    intact = {k: v for k, v in files(export).items() if k != path}
    assert files(tmp_path / "back") == intact


def test_an_interrupted_packing_writes_only_what_is_missing(export: Path, tmp_path: Path) -> None:
    volumes = pack(str(export), str(tmp_path), SIZE)
    os.unlink(volumes[-1])
    before = {v: os.stat(v).st_mtime_ns for v in volumes[:-1]}
    assert pack(str(export), str(tmp_path), SIZE) == volumes
    assert {v: os.stat(v).st_mtime_ns for v in volumes[:-1]} == before
    # a volume left from another export is replaced, never mixed in
    desc = d.read_description(str(export))
    d.write_description(str(export), desc.model_copy(update={"created": "2026-12-02T00:00:00+00:00"}))
    pack(str(export), str(tmp_path), SIZE)
    assert len({read_head(v)["export"] for v in volumes}) == 1


def test_missing_volumes_are_refused_by_number(export: Path, tmp_path: Path) -> None:
    volumes = pack(str(export), str(tmp_path), SIZE)
    with pytest.raises(UsageError, match="volumes 2 of the export are missing"):
        unpack([volumes[0], *volumes[2:]], str(tmp_path / "back"))


def test_a_description_of_a_newer_format_is_refused(export: Path) -> None:
    raw = json.loads((export / d.DESCRIPTION_FILE).read_text())
    newer = d.VERSION + 1
    (export / d.DESCRIPTION_FILE).write_text(json.dumps({**raw, "version": newer}))
    with pytest.raises(UsageError, match=f"format version {newer}; this ferry reads up to {d.VERSION}"):
        d.read_description(str(export))
    # a version 1 export (images only: empty configuration and charts) is still read
    (export / d.DESCRIPTION_FILE).write_text(json.dumps({**raw, "version": 1, "configuration": {}, "charts": []}))
    assert d.read_description(str(export)).charts == []
    (export / d.DESCRIPTION_FILE).write_text(json.dumps({**raw, "projects": [{"public": True}]}))
    with pytest.raises(Exception, match=r"projects\.0\.name"):
        d.read_description(str(export))
