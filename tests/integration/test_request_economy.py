"""Requests a copy does not need are not made. A blob the journal does not place in the destination is
asked about and its upload opened in one request (a mount from the repository itself: 201 when it is
there, 202 with an upload session when not), never a HEAD then a POST; nothing is asked about the
repository itself. A blob the journal places in another repository of the destination is mounted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ferry.access import Access, AccessMap
from ferry.connect import Connections
from ferry.engine import Engine, EngineOptions
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


def _upload_starts(dst: Registry, mark: int) -> list[tuple[str, str, int]]:
    """(repository mounted from, digest, status) of each upload POST."""
    posts = [r for r in dst.requests(mark) if r.method == "POST" and r.path.endswith("/blobs/uploads/")]
    return [(r.params.get("from", [""])[0], r.params.get("mount", [""])[0], r.status) for r in posts]


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
        assert [r.path for r in dst.requests(mark) if r.path.endswith("/tags/list")] == []
        blobs = {d["digest"] for d in [json.loads(lay.manifest_bytes(digest))["config"],
                                       *json.loads(lay.manifest_bytes(digest))["layers"]]}
        starts = _upload_starts(dst, mark)
        assert sorted(starts) == sorted(("mirror/app", b, 202) for b in blobs)  # asked and opened at once
        assert len(dst.blob_upload_puts(mark)) == 4  # config and three layers, each once
        assert len(dst.requests(mark)) == 1 + 4 * 2 + 1  # manifest HEAD, POST+PUT per blob, manifest PUT
        assert inspect_raw(f"docker://{dst.host}/mirror/app:v1") == lay.manifest_bytes(digest)

        # The journal now knows this destination: a later run asks before sending, even into a new
        # repository (the blobs come by mount from the repository that holds them).
        mark = dst.mark()
        await _run(src, dst, journal, "other/app")
        assert dst.blob_upload_puts(mark) == []
        assert sorted(_upload_starts(dst, mark)) == sorted(("mirror/app", b, 201) for b in blobs)
    finally:
        journal.close()


async def test_blobs_left_by_an_interrupted_run_are_not_sent_again(
    tmp_path: Path, registry_pair: tuple[Registry, Registry]
) -> None:
    """A journal that knows none of the blobs a killed run left in the repository (killed between the
    registry's answer and the journal's write): one request per blob finds each, nothing is sent again."""
    src, dst = registry_pair
    lay = im.Layout(tmp_path / "layout")
    im.docker_schema2_image(lay, "app", seed=42, layers=2)
    push_layout(lay.path, "app", f"docker://{src.host}/proj/app:v1")
    push_layout(lay.path, "app", f"docker://{dst.host}/left/over:tmp")  # blobs there, as a killed run leaves
    dst.request("DELETE", f"/v2/left/over/manifests/{digest_of(lay.manifest_bytes('app'))}")
    journal = Journal(tmp_path / "journal.db")
    try:
        mark = dst.mark()
        await _run(src, dst, journal, "left/over")
        assert _blob_heads(dst, mark) == []
        assert [(origin, status) for origin, _, status in _upload_starts(dst, mark)] == [("left/over", 201)] * 3
        assert dst.blob_upload_puts(mark) == []
    finally:
        journal.close()


def _manifest_asks(dst: Registry, mark: int) -> list[str]:
    """HEADs of manifests by tag and tag listings at the destination, in order: ``HEAD v1``, ``LIST``."""
    return [f"HEAD {r.path.rpartition('/')[2]}" if r.method == "HEAD" else "LIST"
            for r in dst.requests(mark)
            if (r.method == "HEAD" and "/manifests/" in r.path) or r.path.endswith("/tags/list")]


async def test_new_tags_of_a_repository_cost_one_listing_not_a_head_each(
    tmp_path: Path, registry_pair: tuple[Registry, Registry]
) -> None:
    """Once a HEAD finds a tag missing, the repository's tags are listed once, and the copies of its other
    tags ask no HEAD for a tag the listing lacks. A tag the listing holds is still asked about (only absence
    is taken from it), and a tag pushed since is known to be there."""
    src, dst = registry_pair
    lay = im.Layout(tmp_path / "layout")
    digest = im.docker_schema2_image(lay, "app", seed=43, layers=1)
    for tag in ("v1", "v2", "v3", "v4", "v5"):
        push_layout(lay.path, "app", f"docker://{src.host}/proj/app:{tag}")

    async def run(tags: list[str], check: str) -> list[str]:
        conns = Connections(AccessMap(default=Access(tls_verify=False, plain_http=True)))
        jobs = [Job(parse_docker_ref(f"{src.host}/proj/app:{t}"), parse_docker_ref(f"{dst.host}/mirror/app:{t}"))
                for t in tags]
        try:
            result = await Engine(conns, EngineOptions(proc=1)).run(jobs)  # one image at a time: a fixed order
            # in the same run, a tag pushed after the listing is asked about and found
            held = await conns.repository(parse_docker_ref(f"{dst.host}/mirror/app:{check}")).has_manifest(check)
        finally:
            await conns.close()
        assert held == digest_of(lay.manifest_bytes(digest))
        return [r.status for r in result.records]

    mark = dst.mark()
    assert await run(["v1", "v2", "v3"], check="v3") == ["copied"] * 3
    assert _manifest_asks(dst, mark) == ["HEAD v1", "LIST", "HEAD v3"]  # the last: the check after the run
    for tag in ("v1", "v2", "v3"):
        assert digest_of(inspect_raw(f"docker://{dst.host}/mirror/app:{tag}")) == digest_of(lay.manifest_bytes(digest))

    mark = dst.mark()
    assert await run(["v5", "v1", "v4", "v2"], check="v4") == ["copied", "skipped", "copied", "skipped"]
    assert _manifest_asks(dst, mark) == ["HEAD v5", "LIST", "HEAD v1", "HEAD v2", "HEAD v4"]
