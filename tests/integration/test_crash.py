"""``ferry sync`` and ``ferry migrate`` killed with SIGKILL at chosen points, then run again.

The fault proxy stalls one specific request so that the kill lands exactly where intended: while tags
are listed, in the middle of a blob, after an image's blobs but before its manifest, during the
verification pass. The rerun must complete, move only what was left (counted in the destination's
access log) and verify; the destination never holds a manifest whose blobs or children are missing.

Large blobs: an upload of a ≥ 200 MB blob is reset about halfway. Behind a store-and-forward proxy
(Harbor's nginx buffers request bodies) the registry's upload session stays intact and ferry resumes
from the offset the registry reports; through a pass-through proxy the partial chunk breaks the
session and ferry starts the upload over. Both end with the right blob.

The journal (SQLite WAL) survives the kill and is reused; a foreign or corrupted journal file is
refused with one clear line and exit 2, and left as it was.

ferry runs with its own read timeout here, not the reliability tests' short one: every fault is either
held until the kill or a reset (seen at once), and a timeout of seconds fires on a loaded machine's slow
answer (a 64 MB chunk), ends a run that was to be killed, or retries a request whose count is checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ferry.transports.registry import UPLOAD_CHUNK
from tests.support import images as im
from tests.support import workloads
from tests.support.faultproxy import FaultProxy, Lose, Reset, Rule, Stall
from tests.support.invariants import ACCEPT, assert_whole
from tests.support.registry import Registry, start_registry
from tests.support.reliability import kill, report, run_ferry, slice_images, spawn_ferry, sync_yaml
from tests.support.skopeo import inspect_raw, push_layout
from tests.support.workloads import Seeded, assert_mirrored, blob_put_digests, manifest_puts, writes

pytestmark = pytest.mark.integration

MB = 1_000_000
TAG_PUT = r"/manifests/(?!sha256:)[^/]+$"


@pytest.fixture(scope="session")
def project_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with workloads.project_source(tmp_path_factory) as seeded:
        yield seeded


@pytest.fixture(scope="session")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with workloads.big_source(tmp_path_factory) as seeded:
        yield seeded


Proxy = Callable[..., FaultProxy]


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    """Start fault proxies (stopped at teardown): ``proxy(upstream_url, store_and_forward=…)``."""
    started: list[FaultProxy] = []

    def make(upstream: str, **kwargs: Any) -> FaultProxy:
        started.append(FaultProxy(upstream, **kwargs).start())
        return started[-1]

    yield make
    for p in started:
        p.stop()


def wait_until(predicate, timeout: float = 60, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def sync_args(src_host: str, dst_host: str, tmp: Path, repos: list[str] | tuple[str, ...]) -> list[str]:
    rules = sync_yaml(tmp / "sync.yaml", src_host, repos)
    return ["sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false", "--retries", "0",
            "--journal", str(tmp / "journal.db"), "--report", str(tmp / "report.json"), str(rules),
            f"{dst_host}/mirror"]


def killed_at(rule: Rule, proxy: FaultProxy, args: list[str], tmp: Path, *, then=None) -> None:  # type: ignore[no-untyped-def]
    """Start ferry, wait until ``rule`` holds the request it stalls (and ``then``), SIGKILL ferry."""
    proc = spawn_ferry(*args, home=tmp / "home", log=tmp / "killed.log")
    try:
        proxy.wait(rule, timeout=120)
        if then is not None:
            wait_until(then, timeout=180, what="the state to kill in")
    finally:
        kill(proc)
    proxy.abandon()  # what it still holds is dropped, never forwarded late; reruns go through it unhindered


def rerun(args: list[str], tmp: Path) -> dict:  # type: ignore[type-arg]
    run = run_ferry(*args, home=tmp / "home")
    assert run.returncode == 0, run.stderr
    return report(tmp / "report.json") if (tmp / "report.json").exists() else {}


def uploads(reg: Registry, since: int = 0) -> set[tuple[str, str]]:
    """(repository, digest) of every completed blob upload."""
    return {(r.path.removeprefix("/v2/").split("/blobs/uploads/")[0], r.params["digest"][0])
            for r in reg.blob_upload_puts(since)}


def journal_state(path: Path) -> tuple[set[str], set[str]]:
    """(destinations of the copied jobs, digests of the known blobs) in a journal, read-only."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        done = {row[0] for row in db.execute("SELECT destination FROM jobs WHERE status='copied'")}
        known = {row[0] for row in db.execute("SELECT digest FROM blobs")}
    return done, known


def head_blobs(reg: Registry, since: int) -> list[str]:
    return [r.path.rsplit("/", 1)[1] for r in reg.requests(since) if r.method == "HEAD" and "/blobs/" in r.path]


# --------------------------------------------------------------------------------------------------
# Killed sync and migrate runs


def test_killed_while_listing_tags(project_source: Seeded, registry: Registry, tmp_path: Path, proxy: Proxy) -> None:
    w = project_source.workload
    src = proxy(project_source.registry.url)
    (rule,) = src.add(Rule(Stall(), "GET", r"/proj1/app/tags/list$"))
    args = sync_args(src.host, registry.host, tmp_path, ["proj0/app", "proj1/app"])
    killed_at(rule, src, args, tmp_path)
    assert writes(registry) == [], "nothing is written before the plan is complete"

    rep = rerun(args, tmp_path)
    images = slice_images(w, ["proj0/app", "proj1/app"])
    assert rep["summary"]["copied"] == len(images)
    assert_mirrored(w, images, registry, "mirror/")
    assert_whole(registry)


def test_killed_mid_blob_reruns_only_what_was_left(
    big_source: Seeded, registry: Registry, tmp_path: Path, proxy: Proxy
) -> None:
    """Five images complete while the sixth's 24 MB layer is held after 8 MB; SIGKILL. The rerun moves that
    image only: no blob uploaded before is sent or even asked about again (the journal knows them), one
    manifest is pushed."""
    w = big_source.workload
    stuck = w.image("proj1/db", "v1")
    layer = w.manifest(stuck.digest)["layers"][1]["digest"]
    src = proxy(big_source.registry.url)
    (rule,) = src.add(Rule(Stall(after=8 * MB), "GET", rf"/blobs/{layer}$"))
    others = [i for i in w.images if i != stuck]
    args = sync_args(src.host, registry.host, tmp_path, w.repos)

    def others_done() -> bool:
        """The journal holds the five images as copied and every blob the registry has taken (so the kill
        lands on no answer that ferry has yet to record)."""
        try:
            done, known = journal_state(tmp_path / "journal.db")
        except sqlite3.Error:  # not created yet
            return False
        return len(done) >= len(others) and set(blob_put_digests(registry)) <= known

    killed_at(rule, src, args, tmp_path, then=others_done)
    assert src.requests("GET", rf"/blobs/{layer}$")[0].bytes_out >= 8 * MB
    before = set(blob_put_digests(registry))
    assert layer not in before
    assert_whole(registry)
    # the journal (WAL) kept what the killed run finished
    done, known = journal_state(tmp_path / "journal.db")
    assert done == {f"{registry.host}/mirror/{i.ref}" for i in others}
    assert before <= known

    mark = registry.mark()
    rep = rerun(args, tmp_path)
    statuses = {j["destination"]: j["status"] for j in rep["jobs"]}
    assert statuses.pop(f"{registry.host}/mirror/{stuck.ref}") == "copied"
    assert set(statuses.values()) == {"skipped"}
    again = blob_put_digests(registry, mark)
    assert layer in again
    assert not set(again) & before, "a blob finished before the kill was sent again"
    assert not set(head_blobs(registry, mark)) & before, "a blob the journal knows was asked about again"
    assert [r.path for r in manifest_puts(registry, mark)] == [f"/v2/mirror/{stuck.ref.replace(':', '/manifests/')}"]
    assert_mirrored(w, w.images, registry, "mirror/")
    assert_whole(registry)


def test_killed_between_blobs_and_manifest(
    project_source: Seeded, registry: Registry, tmp_path: Path, proxy: Proxy
) -> None:
    """The kill lands while proj1/app:v1's manifest PUT is held: all its blobs are at the destination.
    The rerun pushes that manifest once and none of its blobs again."""
    w = project_source.workload
    img = w.image("proj1/app", "v1")
    dst_px = proxy(registry.url)
    (rule,) = dst_px.add(Rule(Stall(), "PUT", r"/mirror/proj1/app/manifests/v1$"))
    repos = ["proj0/app", "proj1/app"]
    args = sync_args(project_source.host, dst_px.host, tmp_path, repos)
    killed_at(rule, dst_px, args, tmp_path)
    assert registry.request("HEAD", "/v2/mirror/proj1/app/manifests/v1", headers={"Accept": ACCEPT}).status == 404
    for digest in w.blobs_of(img.digest):
        assert registry.request("HEAD", f"/v2/mirror/proj1/app/blobs/{digest}").status == 200
    before = set(blob_put_digests(registry))
    assert_whole(registry)

    mark = registry.mark()
    rep = rerun(args, tmp_path)
    again = blob_put_digests(registry, mark)
    assert not set(again) & before
    assert not set(again) & set(w.blobs_of(img.digest))
    assert not set(head_blobs(registry, mark)) & set(w.blobs_of(img.digest))
    pushed = [r.path for r in manifest_puts(registry, mark)]
    assert pushed.count("/v2/mirror/proj1/app/manifests/v1") == 1
    assert rep["summary"]["failed"] == 0
    assert_mirrored(w, slice_images(w, repos), registry, "mirror/")
    assert_whole(registry)


def test_migrate_killed_during_verification(
    project_source: Seeded, registry: Registry, tmp_path: Path, proxy: Proxy
) -> None:
    """Every image is copied; the kill lands on the first verification request. The rerun writes
    nothing and verifies all 39 tags."""
    w = project_source.workload
    dst_px = proxy(registry.url)
    # armed once every tag's manifest is in: the next HEAD of a tag is the verification pass
    (rule,) = dst_px.add(Rule(Stall(), "HEAD", TAG_PUT, after=("PUT", TAG_PUT, len(w.images))))
    journal = tmp_path / "journal.db"
    args = ["migrate", f"http://{project_source.host}", f"http://{dst_px.host}", "--journal", str(journal),
            "--retries", "0"]
    killed_at(rule, dst_px, args, tmp_path)
    assert len(manifest_puts(registry)) >= len(w.images)

    mark = registry.mark()
    rep_path = tmp_path / "migrate.json"
    run = run_ferry(*args, "--report", str(rep_path), home=tmp_path / "home")
    assert run.returncode == 0, run.stderr
    rep = report(rep_path)
    assert writes(registry, mark) == []
    assert rep["verification"]["checked"] == len(w.images) and rep["verification"]["mismatches"] == []
    assert {j["status"] for j in rep["jobs"]} == {"skipped"}
    assert_mirrored(w, w.images, registry)
    assert_whole(registry)


def test_migrate_killed_mid_copy_resumes(big_source: Seeded, registry: Registry, tmp_path: Path, proxy: Proxy) -> None:
    """``ferry migrate`` killed while a layer is being uploaded (the upload held after 4 MB at the
    destination, others in flight): the rerun completes and verifies. No blob is sent again into a
    repository that had it, and none the journal knew of is sent again at all (it is mounted).

    Uploads that completed at the registry in the instant before the kill, unrecorded by ferry, may be
    sent again into *another* repository: a registry answers HEAD per repository only."""
    w = big_source.workload
    dst_px = proxy(registry.url)
    (rule,) = dst_px.add(Rule(Stall(after=4 * MB, side="request"), "PUT", r"/blobs/uploads/", nth=3))
    journal = tmp_path / "journal.db"
    args = ["migrate", f"http://{big_source.host}", f"http://{dst_px.host}", "--journal", str(journal)]
    # The stalled third PUT can reach the proxy before the registry has answered the first two.
    killed_at(rule, dst_px, args, tmp_path, then=lambda: bool(uploads(registry)))
    before = uploads(registry)
    assert before, "some blobs were complete before the kill"
    assert_whole(registry)
    _, known = journal_state(journal)
    mark = registry.mark()
    run = run_ferry(*args, home=tmp_path / "home")
    assert run.returncode == 0, run.stderr
    again = uploads(registry, mark)
    assert not again & before, "a blob was sent again into a repository that had it"
    assert not {d for _, d in again} & known, "a blob the journal knew of was sent again"
    assert {d for _, d in again | before} >= set(w.distinct_blobs())
    assert_mirrored(w, w.images, registry)
    assert_whole(registry)


# --------------------------------------------------------------------------------------------------
# A 200 MB blob reset halfway through its upload


BIG = 210 * MB


@pytest.fixture(scope="module")
def big_blob_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, im.Layout, str]]:
    """One image with a single ~210 MB layer (random bytes, stored uncompressed in gzip), pushed by skopeo."""
    work = tmp_path_factory.mktemp("big-blob")
    lay = im.Layout(work / "layout")
    layer, diff = lay.add_layer({}, im.OCI_LAYER, big_file=("big.bin", BIG, 2024))
    config = lay.add_json_blob({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
                                "diff_ids": [diff]}}, im.OCI_CONFIG)
    lay.add_manifest({"schemaVersion": 2, "mediaType": im.OCI_MANIFEST, "config": config, "layers": [layer]},
                     im.OCI_MANIFEST, ref="big")
    with start_registry(work / "registry") as reg:
        push_layout(lay.path, "big", reg.ref("big/app:v1"))
        yield reg, lay, layer["digest"]


def copy_big(src: Registry | FaultProxy, dst: FaultProxy, tmp: Path) -> None:
    """``ferry copy`` of ``big/app:v1`` from ``src`` to ``dst``, which must succeed."""
    run = run_ferry("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                    f"docker://{src.ref('big/app:v1')}", f"docker://{dst.ref('big/app:v1')}",
                    home=tmp / "home", timeout=600)
    assert run.returncode == 0, run.stderr


def assert_big_arrived(registry: Registry, lay: im.Layout) -> None:
    """The destination holds the source's manifest byte for byte, and everything it names."""
    assert inspect_raw(registry.ref("big/app:v1")) == lay.manifest_bytes("big")
    assert_whole(registry)


@pytest.mark.parametrize("store_and_forward", [True, False], ids=["store-and-forward", "pass-through"])
def test_large_blob_upload_reset_halfway(big_blob_source: tuple[Registry, im.Layout, str], registry: Registry,
                                         tmp_path: Path, store_and_forward: bool) -> None:
    src, lay, layer = big_blob_source
    size = lay.blob_path(layer).stat().st_size
    assert size >= 200 * MB
    with FaultProxy(registry.url, store_and_forward=store_and_forward) as dst_px:
        # the second 64 MB chunk (bytes 64–128 MB) is cut 36 MB in: about half of the blob has gone
        (rule,) = dst_px.add(Rule(Reset(after=36 * MB, side="request"), "PATCH", r"/blobs/uploads/", nth=2))
        copy_big(src, dst_px, tmp_path)
        assert rule.applied == 1
        patched = dst_px.bytes_forwarded("PATCH", r"/blobs/uploads/")
        patches = dst_px.requests("PATCH", r"/blobs/uploads/")
    cut = next(i for i, p in enumerate(patches) if p.fault == "reset")
    after_cut = patches[cut + 1].headers["Content-Range"]
    log = registry.requests()
    upload_gets = [r for r in log if r.method == "GET" and "/blobs/uploads/" in r.path]
    assert upload_gets, "ferry asked the registry how much of the upload it holds"
    posts = [r for r in log if r.method == "POST" and r.path.endswith("/blobs/uploads/")]
    if store_and_forward:
        # the registry never saw the cut chunk: it reports 64 MB and ferry goes on from there
        assert upload_gets[0].status == 204
        assert len(posts) == 2  # one for the config, one for the layer: no new session
        assert after_cut.startswith(f"{64 * 1024 * 1024}-")  # resumed at the registry's offset
        assert patched < 1.5 * size
        assert patched == size
    else:
        # the partial chunk reached the registry, which refuses the session: the upload starts over
        assert upload_gets[0].status in (400, 404, 416)
        assert len(posts) == 3
        assert after_cut.startswith("0-")  # from the start, in the new session
        assert patched >= size
    assert registry.request("HEAD", f"/v2/big/app/blobs/{layer}").status == 200
    assert_big_arrived(registry, lay)


def test_large_blob_first_chunk_reset_resumes_from_zero(
    big_blob_source: tuple[Registry, im.Layout, str], registry: Registry, tmp_path: Path, proxy: Proxy
) -> None:
    """The first chunk is cut before the registry saw any of it: the session holds nothing, which
    distribution reports as ``Range: 0-0`` (as for one byte). The upload goes on in the same session
    from byte 0."""
    src, lay, layer = big_blob_source
    size = lay.blob_path(layer).stat().st_size
    dst_px = proxy(registry.url, store_and_forward=True)
    (rule,) = dst_px.add(Rule(Reset(after=8 * MB, side="request"), "PATCH", r"/blobs/uploads/", nth=1))
    copy_big(src, dst_px, tmp_path)
    assert rule.applied == 1
    status = [r for r in registry.requests() if r.method == "GET" and "/blobs/uploads/" in r.path]
    assert status and status[0].status == 204
    patches = dst_px.requests("PATCH", r"/blobs/uploads/")
    assert patches[1].headers["Content-Range"].startswith("0-")
    assert dst_px.bytes_forwarded("PATCH", r"/blobs/uploads/") == size  # the cut chunk never reached it
    assert_big_arrived(registry, lay)


def test_large_blob_chunk_answer_lost_restarts_the_upload(
    big_blob_source: tuple[Registry, im.Layout, str], registry: Registry, tmp_path: Path, proxy: Proxy
) -> None:
    """The registry takes the second chunk but its answer (with the new ``_state``) is lost. The upload
    status asked with the older Location is refused by distribution (the session is cancelled), so the
    blob starts over: correct, at the price of the bytes already sent."""
    src, lay, layer = big_blob_source
    size = lay.blob_path(layer).stat().st_size
    dst_px = proxy(registry.url, store_and_forward=True)
    (rule,) = dst_px.add(Rule(Lose(), "PATCH", r"/blobs/uploads/", nth=2))
    copy_big(src, dst_px, tmp_path)
    assert rule.applied == 1
    status = [r for r in registry.requests() if r.method == "GET" and "/blobs/uploads/" in r.path]
    assert status and status[0].status in (400, 404)
    assert dst_px.bytes_forwarded("PATCH", r"/blobs/uploads/") == size + 2 * UPLOAD_CHUNK
    assert_big_arrived(registry, lay)


def test_large_blob_download_reset_halfway_resumes_with_a_range_read(
    big_blob_source: tuple[Registry, im.Layout, str], registry: Registry, tmp_path: Path, proxy: Proxy
) -> None:
    """The source connection breaks 100 MB into the blob while the second chunk is being sent: the HTTP
    layer resumes the download where it stopped (``Range``), so the upload never notices — every byte is
    PATCHed once, no upload status is asked."""
    src, lay, layer = big_blob_source
    size = lay.blob_path(layer).stat().st_size
    src_px, dst_px = proxy(src.url), proxy(registry.url, store_and_forward=True)
    (rule,) = src_px.add(Rule(Reset(after=100 * MB), "GET", rf"/blobs/{layer}$", nth=1))
    copy_big(src_px, dst_px, tmp_path)
    assert rule.applied == 1
    reads = src_px.requests("GET", rf"/blobs/{layer}$")
    assert len(reads) == 2 and reads[0].headers.get("Range") is None, [(r.status, r.fault) for r in reads]
    # resumed at the byte it had received (what was in flight when the connection reset is lost)
    resumed_at = int(reads[1].headers["Range"].removeprefix("bytes=").removesuffix("-"))
    assert 90 * MB < resumed_at <= 100 * MB
    assert reads[1].status == 206 and reads[1].bytes_out == size - resumed_at
    assert dst_px.bytes_forwarded("PATCH", r"/blobs/uploads/") == size
    assert not [r for r in registry.requests() if r.method == "GET" and "/blobs/uploads/" in r.path]
    assert_big_arrived(registry, lay)


# --------------------------------------------------------------------------------------------------
# Journal files that must not be reused


def _ferry_journal(path: Path) -> None:
    from ferry.journal import Journal

    j = Journal(path)
    j.start_run("test")
    j.record("docker://x", "sha256:" + "0" * 64, "a/b")
    j.close()


def _foreign(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.execute("INSERT INTO notes VALUES ('mine')")


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database\n" * 300)


def _corrupted(path: Path) -> None:
    _ferry_journal(path)
    data = bytearray(path.read_bytes())
    for off in range(4096, len(data), 97):  # every page after the header page
        data[off] ^= 0x5A
    path.write_bytes(bytes(data))


def _newer(path: Path) -> None:
    _ferry_journal(path)
    with contextlib.closing(sqlite3.connect(path)) as db:  # closing checkpoints the WAL into the file
        db.execute("PRAGMA user_version=99")


@pytest.mark.parametrize(("make", "needle"), [
    (_foreign, "not a ferry journal"),
    (_garbage, "not a ferry journal or is corrupted"),
    (_corrupted, "corrupted"),
    (_newer, "schema version 99"),
], ids=["foreign-sqlite", "garbage", "corrupted-pages", "newer-schema"])
def test_foreign_or_corrupted_journal_is_refused(project_source: Seeded, registry: Registry, tmp_path: Path,
                                                 make, needle: str) -> None:  # type: ignore[no-untyped-def]
    journal = tmp_path / "journal.db"
    make(journal)
    digest = hashlib.sha256(journal.read_bytes()).hexdigest()
    args = sync_args(project_source.host, registry.host, tmp_path, ["proj0/web"])
    for command in (args, ["migrate", f"http://{project_source.host}", f"http://{registry.host}", "--journal",
                           str(journal)]):
        run = run_ferry(*command, home=tmp_path / "home")
        assert run.returncode == 2, run.stderr
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("ferry: journal "), run.stderr
        assert needle in lines[0] and str(journal) in lines[0]
        assert "Traceback" not in run.stderr
    assert hashlib.sha256(journal.read_bytes()).hexdigest() == digest, "the file was changed"
    assert writes(registry) == []
    assert json.loads(registry.request("GET", "/v2/_catalog").body)["repositories"] == []
