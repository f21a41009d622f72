"""Requests a copy does not need are not made: a first run into a repository that did not exist asks
nothing about its blobs (one tag-list request instead of a HEAD per blob); any later run against the
same destination asks about every blob, since an interrupted run may have left some there."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry.access import Access, AccessMap
from ferry.connect import Connections
from ferry.engine import Engine
from ferry.journal import Journal
from ferry.plan.model import Job
from ferry.refs import parse_docker_ref
from tests.support import images as im
from tests.support.registry import Registry
from tests.support.skopeo import digest_of, inspect_raw, push_layout

pytestmark = pytest.mark.integration


async def _run(src: Registry, dst: Registry, journal: Journal, repo: str) -> None:
    conns = Connections(AccessMap(default=Access(tls_verify=False, plain_http=True)))
    job = Job(parse_docker_ref(f"{src.host}/proj/app:v1"), parse_docker_ref(f"{dst.host}/{repo}:v1"))
    try:
        result = await Engine(conns, journal=journal).run([job])
    finally:
        await conns.close()
    assert [r.status for r in result.records] == ["copied"], result.records[0].error


def _blob_heads(dst: Registry, mark: int) -> list[str]:
    return [r.path for r in dst.requests(mark) if r.method == "HEAD" and "/blobs/" in r.path]


async def test_first_run_into_new_repository_asks_nothing_about_blobs(
    tmp_path: Path, registry_pair: tuple[Registry, Registry]
) -> None:
    src, dst = registry_pair
    lay = im.Layout(tmp_path / "layout")
    digest = im.docker_schema2_image(lay, "app", seed=41, layers=3)
    push_layout(lay.path, "app", f"docker://{src.host}/proj/app:v1")
    journal = Journal(tmp_path / "journal.db")
    try:
        mark = dst.mark()
        await _run(src, dst, journal, "mirror/app")
        assert _blob_heads(dst, mark) == []
        assert [r.path for r in dst.requests(mark) if r.method == "HEAD"] == ["/v2/mirror/app/manifests/v1"]
        assert [r.path for r in dst.requests(mark) if r.path.endswith("/tags/list")] == ["/v2/mirror/app/tags/list"]
        assert len(dst.blob_upload_puts(mark)) == 4  # config and three layers, each once
        assert inspect_raw(f"docker://{dst.host}/mirror/app:v1") == lay.manifest_bytes(digest)

        # The journal now knows this destination: a later run asks before sending, even into a new
        # repository (the blobs come by mount from the repository that holds them).
        mark = dst.mark()
        await _run(src, dst, journal, "other/app")
        assert dst.blob_upload_puts(mark) == []
    finally:
        journal.close()


async def test_rerun_after_interruption_asks_about_every_blob(
    tmp_path: Path, registry_pair: tuple[Registry, Registry]
) -> None:
    """A journal that knows the destination but none of the blobs (killed between the registry's
    answer and the journal's write): nothing already there is sent again."""
    src, dst = registry_pair
    lay = im.Layout(tmp_path / "layout")
    im.docker_schema2_image(lay, "app", seed=42, layers=2)
    push_layout(lay.path, "app", f"docker://{src.host}/proj/app:v1")
    push_layout(lay.path, "app", f"docker://{dst.host}/left/over:tmp")  # blobs there, as a killed run leaves
    dst.request("DELETE", f"/v2/left/over/manifests/{digest_of(lay.manifest_bytes('app'))}")
    journal = Journal(tmp_path / "journal.db")
    journal.touch_store(f"docker://{dst.host}")
    try:
        mark = dst.mark()
        await _run(src, dst, journal, "left/over")
        assert len(_blob_heads(dst, mark)) == 3
        assert dst.blob_upload_puts(mark) == []
    finally:
        journal.close()
