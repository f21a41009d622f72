"""The bulk engine driven directly (async): shared blob transfers across images and registries, the
journal's blob ledger across runs, failures that stay with their image, retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ferry.access import Access, AccessMap
from ferry.connect import Connections
from ferry.engine import Engine, EngineOptions, RunResult
from ferry.journal import JobRecord, Journal
from ferry.media import Descriptor
from ferry.plan.model import Job
from ferry.refs import RegistryRef
from ferry.transports.registry import Repository
from tests.support import images as im
from tests.support import workloads
from tests.support.registry import Registry
from tests.support.skopeo import inspect_raw, push_layout
from tests.support.workloads import Image, Seeded, assert_mirrored, blob_put_digests, mounts

pytestmark = pytest.mark.integration

PLAIN = AccessMap(default=Access(tls_verify=False, plain_http=True))


@pytest.fixture(scope="session")
def project_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with workloads.project_source(tmp_path_factory) as seeded:
        yield seeded


class Recorder:
    """RunEvents that keep what happened to each blob and job."""

    def __init__(self) -> None:
        self.blobs: list[tuple[str, str]] = []  # (digest, how)
        self.started: list[str] = []
        self.finished: list[tuple[str, str]] = []  # (job key, status)

    def blob_started(self, desc: Descriptor) -> None:
        pass

    def bytes_moved(self, n: int) -> None:
        pass

    def blob_done(self, desc: Descriptor, how: str) -> None:
        self.blobs.append((desc.digest, how))

    def job_started(self, job: Job) -> None:
        self.started.append(job.key)

    def job_finished(self, job: Job, record: JobRecord) -> None:
        self.finished.append((job.key, record.status))

    def how(self, digest: str) -> list[str]:
        return sorted(h for d, h in self.blobs if d == digest)


def ref(host: str, image: str) -> RegistryRef:
    repo, _, tag = image.rpartition(":")
    return RegistryRef(host, repo, tag=tag)


def jobs_for(src: str, images: list[Image], dst: str, prefix: str = "") -> list[Job]:
    return [Job(ref(src, i.ref), ref(dst, prefix + i.ref)) for i in images]


async def run(
    jobs: list[Job],
    *,
    conns: Connections | None = None,
    journal: Journal | None = None,
    events: Any = None,
    **options: Any,
) -> RunResult:
    conns = conns or Connections(PLAIN)
    try:
        return await Engine(conns, EngineOptions(**options), journal=journal, events=events).run(jobs)
    finally:
        await conns.close()


async def test_images_in_flight_together_upload_each_blob_once(project_source: Seeded, registry: Registry) -> None:
    """Six images started at once, four of them sharing proj0's base layer: the base is uploaded by one
    and mounted by the three others, which wait for it instead of uploading it too."""
    w = project_source.workload
    images = [w.image(f"proj0/{r}", "v1") for r in ("app", "web", "worker", "api")]
    images += [w.image("proj1/app", "v2"), w.image("proj1/web", "v2")]
    events = Recorder()
    result = await run(
        jobs_for(project_source.host, images, registry.host), events=events, proc=6, blob_concurrency=4, retries=0
    )

    assert [r.status for r in result.records] == ["copied"] * 6, [r.error for r in result.records]
    distinct = w.distinct_blobs(images)
    assert sorted(blob_put_digests(registry)) == sorted(distinct)
    shared = {d for d in distinct if sum(d in w.blobs_of(i.digest) for i in images) > 1}
    assert len(shared) == 2  # proj0's base (4 repos) and proj1's base (2 repos)
    for digest in shared:
        users = sum(digest in w.blobs_of(i.digest) for i in images)
        assert events.how(digest) == sorted(["copied"] + ["mounted"] * (users - 1))
        assert sum(r.params["mount"][0] == digest for r in mounts(registry)) == users - 1
    assert result.bytes == sum(distinct.values())
    assert_mirrored(w, images, registry)


async def test_each_destination_registry_gets_its_own_copy(
    project_source: Seeded, registry_pair: tuple[Registry, Registry]
) -> None:
    """One run to two registries: every blob goes to each registry once; a mount never crosses
    registries (a blob held by one registry is no help to the other)."""
    w = project_source.workload
    one, two = registry_pair
    images = [w.image("proj2/app", "v1"), w.image("proj2/web", "v1"), w.image("proj2/multi", "v1")]
    jobs = jobs_for(project_source.host, images, one.host) + jobs_for(project_source.host, images, two.host)
    result = await run(jobs, proc=6, retries=0)

    assert {r.status for r in result.records} == {"copied"}, [r.error for r in result.records]
    distinct = w.distinct_blobs(images)
    for reg in (one, two):
        assert sorted(blob_put_digests(reg)) == sorted(distinct), reg.host
        # uploads start with a mount from their own repository (202: not there yet); a mount from another
        # repository is one this registry holds, and succeeds
        cross = [r for r in reg.requests() if "mount" in r.params
                 and r.params["from"][0] != r.path.removeprefix("/v2/").removesuffix("/blobs/uploads/")]
        assert [r for r in cross if r.status != 201] == [], "no failed mounts"
        assert_mirrored(w, images, reg)
    assert result.bytes == 2 * sum(distinct.values())


async def test_journal_remembers_holders_so_a_later_run_mounts(
    project_source: Seeded, registry: Registry, tmp_path: Path
) -> None:
    """A second engine reading the same journal mounts a blob the first one sent, from the repository the
    journal names, without asking whether it is there first."""
    w = project_source.workload
    path = tmp_path / "journal.db"
    first, second = w.image("proj0/app", "v1"), w.image("proj0/worker", "v2")
    base = sorted(set(w.blobs_of(first.digest)) & set(w.blobs_of(second.digest)))
    assert len(base) == 1

    journal = Journal(path)
    try:
        result = await run(jobs_for(project_source.host, [first], registry.host), journal=journal)
    finally:
        journal.close()
    assert result.records[0].status == "copied"

    mark = registry.mark()
    journal = Journal(path)
    events = Recorder()
    try:
        result = await run(jobs_for(project_source.host, [second], registry.host), journal=journal, events=events)
    finally:
        journal.close()
    assert result.records[0].status == "copied", result.records[0].error
    assert base[0] not in blob_put_digests(registry, mark)
    (mount,) = [r for r in mounts(registry, mark) if r.params["mount"][0] == base[0]]
    assert mount.path == "/v2/proj0/worker/blobs/uploads/"
    assert mount.params["from"] == ["proj0/app"]
    assert events.how(base[0]) == ["mounted"]
    heads = [r for r in registry.requests(mark) if r.method == "HEAD" and r.path.endswith(base[0])]
    assert heads == []
    assert inspect_raw(registry.ref(second.ref)) == w.layout.read_blob(second.digest)


class Delayed:
    """A source repository that answers late: manifests after ``manifest_delay``, blob bytes after
    ``blob_delay`` (the request itself, and any error it gets, comes after the delay)."""

    def __init__(self, inner: Repository, *, manifest_delay: float = 0.0, blob_delay: float = 0.0) -> None:
        self.inner, self.manifest_delay, self.blob_delay = inner, manifest_delay, blob_delay

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def get_manifest(self, reference: str) -> Any:
        await asyncio.sleep(self.manifest_delay)
        return await self.inner.get_manifest(reference)

    def read_blob(self, desc: Descriptor, offset: int = 0) -> AsyncIterator[bytes]:
        async def late() -> AsyncIterator[bytes]:
            await asyncio.sleep(self.blob_delay)
            async for chunk in self.inner.read_blob(desc, offset):
                yield chunk

        return late()


class SlowConnections(Connections):
    def __init__(self, slow: dict[str, dict[str, float]]) -> None:
        super().__init__(PLAIN)
        self.slow = slow

    def repository(self, ref: RegistryRef, **kwargs: Any) -> Any:
        repo = super().repository(ref, **kwargs)
        delays = self.slow.get(f"{ref.registry}/{ref.repository}")
        return Delayed(repo, **delays) if delays else repo


async def test_a_blob_that_fails_in_flight_does_not_fail_the_images_waiting_for_it(
    registry_pair: tuple[Registry, Registry], tmp_path: Path
) -> None:
    """``broken/app`` and ``good/app`` hold the same image, but ``broken/app`` lost its layer. The broken
    image starts the layer's transfer; the good one waits for it. When that transfer fails, the good image
    must transfer the layer from its own, healthy source: a failing image never stops the others."""
    src, dst = registry_pair
    lay = im.Layout(tmp_path / "layout")
    digest = im.oci_image(lay, "img", seed=99, layers=1)
    for repo in ("broken/app:v1", "good/app:v1"):
        push_layout(lay.path, "img", src.ref(repo))
    (layer,) = lay.manifest("img")["layers"]
    assert src.request("DELETE", f"/v2/broken/app/blobs/{layer['digest']}").status == 202
    assert src.request("GET", f"/v2/broken/app/blobs/{layer['digest']}").status == 404

    conns = SlowConnections(
        {
            src.ref("broken/app"): {"blob_delay": 0.8},  # fails late, while good/app waits for it
            src.ref("good/app"): {"manifest_delay": 0.3},  # arrives after broken/app started the transfer
        }
    )
    jobs = [
        Job(ref(src.host, "broken/app:v1"), ref(dst.host, "broken/app:v1")),
        Job(ref(src.host, "good/app:v1"), ref(dst.host, "good/app:v1")),
    ]
    result = await run(jobs, conns=conns, proc=2, retries=0)

    broken, good = result.records
    assert broken.status == "failed"
    assert good.status == "copied", good.error
    assert inspect_raw(dst.ref("good/app:v1")) == lay.manifest_bytes("img")
    assert good.digest == digest


async def test_a_failed_image_is_retried_and_journaled_while_the_others_complete(
    project_source: Seeded, registry: Registry, tmp_path: Path
) -> None:
    w = project_source.workload
    good = [w.image("proj1/api", "v1"), w.image("proj0/multi", "v1")]
    jobs = jobs_for(project_source.host, good, registry.host)
    jobs.insert(1, Job(ref(project_source.host, "proj1/api:missing"), ref(registry.host, "proj1/api:missing")))
    journal = Journal(tmp_path / "journal.db")
    events = Recorder()
    try:
        result = await run(jobs, journal=journal, events=events, retries=2)
        stored = {job.key: journal.job(job.key) for job in jobs}
    finally:
        journal.close()

    assert [r.status for r in result.records] == ["copied", "failed", "copied"]
    failed = result.records[1]
    assert failed.retries == 2 and failed.error and "proj1/api:missing" in failed.error
    assert [r.retries for r in result.records] == [0, 2, 0]
    assert events.started.count(jobs[1].key) == 3  # the first pass and two retry rounds
    assert events.started.count(jobs[0].key) == 1
    assert stored[jobs[1].key] == failed
    assert stored[jobs[0].key] == result.records[0]
    assert_mirrored(w, good, registry)
