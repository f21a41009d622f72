"""A journal that remembers blobs the destination no longer has (deleted or garbage-collected since)
must not make a copy fail: the manifest push reports MANIFEST_BLOB_UNKNOWN, ferry checks the blobs
again and uploads what is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry.access import Access, AccessMap
from ferry.connect import Connections
from ferry.engine import Engine
from ferry.journal import Journal
from ferry.media import parse_manifest
from ferry.plan.model import Job
from ferry.refs import parse_docker_ref
from tests.support import images as im
from tests.support.registry import Registry
from tests.support.skopeo import inspect_raw, push_layout

pytestmark = pytest.mark.integration


async def test_stale_blob_memory_is_corrected(tmp_path: Path, registry_pair: tuple[Registry, Registry]) -> None:
    src, dst = registry_pair
    lay = im.Layout(tmp_path / "layout")
    digest = im.docker_schema2_image(lay, "app", seed=11, layers=2)
    push_layout(lay.path, "app", f"docker://{src.host}/proj/app:v1")
    manifest = parse_manifest(lay.manifest_bytes(digest))

    journal = Journal(tmp_path / "journal.db")
    for blob in manifest.blobs:  # what a journal from an earlier run against another registry state says
        journal.record(f"docker://{dst.host}", blob.digest, "proj/app")

    conns = Connections(AccessMap(default=Access(tls_verify=False, plain_http=True)))
    job = Job(parse_docker_ref(f"{src.host}/proj/app:v1"), parse_docker_ref(f"{dst.host}/proj/app:v1"))
    mark = dst.mark()
    try:
        result = await Engine(conns, journal=journal).run([job])
    finally:
        await conns.close()
        journal.close()

    assert [r.status for r in result.records] == ["copied"], result.records[0].error
    assert inspect_raw(f"docker://{dst.host}/proj/app:v1") == lay.manifest_bytes(digest)
    assert len(dst.blob_upload_puts(mark)) == len(manifest.blobs)
