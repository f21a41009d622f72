"""Helm charts in a migration: every selected chart version of a source Harbor's ChartMuseum, into
the destination's ChartMuseum (upload API, with the provenance file) or as OCI charts
``<project>/<chart>:<version>`` (see :mod:`ferry.charts`), after the images.

A version already at the destination with the source ``.tgz`` digest is skipped, so a rerun copies
nothing; a version whose archive is not a chart Helm could load fails alone and the rest continues.
Each version is a job of the journal (key ``chart:<destination>``) and of the report.

The read side (:func:`list_chart_versions`, a :class:`ChartSource`) and the write side (a
:class:`ChartSink`) are apart: ``migrate`` reads a ChartMuseum into OCI charts or a ChartMuseum,
``export`` into an export's blob store, ``import`` reads that store (``ferry.airgap``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ferry.charts import CHART_LAYER_MEDIA_TYPE, ChartError, OCIChart, build_oci_chart, oci_tag
from ferry.concurrency import bounded_map
from ferry.connect import Connections
from ferry.errors import FerryError, NotFoundError, UsageError
from ferry.harbor.charts import ChartMuseumAPI, ChartVersion
from ferry.journal import JobRecord, JobStatus, Journal
from ferry.media import sha256_digest
from ferry.plan.inventory import Selection

log = logging.getLogger(__name__)

CHARTS_AS = ("chartmuseum", "oci")


@dataclass(frozen=True, slots=True)
class ChartJob:
    chart: ChartVersion
    dest_project: str

    def destination(self, dst_host: str, mode: str) -> str:
        if mode == "oci":
            return f"{dst_host}/{self.dest_project}/{self.chart.name}:{oci_tag(self.chart.version)}"
        if mode == "chartmuseum":
            return f"{dst_host}/chartrepo/{self.dest_project}/{self.chart.name}-{self.chart.version}"
        return f"{dst_host}:chart {self.dest_project}/{self.chart.name}:{self.chart.version}"  # an export


@dataclass(slots=True)
class ChartOutcome:
    mode: str  # "oci", "chartmuseum" or "export" (into a directory): how the destination receives them
    dst_host: str
    jobs: list[ChartJob] = field(default_factory=list)
    records: list[JobRecord] = field(default_factory=list)
    mismatches: list[tuple[ChartJob, str]] = field(default_factory=list)
    in_place: int | None = None  # dry run

    @property
    def failed(self) -> list[JobRecord]:
        return [r for r in self.records if r.status is JobStatus.FAILED]

    def project_rows(self) -> dict[str, dict[str, int]]:
        """Per source project: charts, versions, copied, skipped, failed, not verified."""
        rows: dict[str, dict[str, int]] = {}
        names: dict[str, set[str]] = {}
        by_source = {r.source: r for r in self.records}
        bad = {id(j) for j, _ in self.mismatches}
        for job in self.jobs:
            row = rows.setdefault(job.chart.project, dict.fromkeys(
                ("charts", "versions", "copied", "skipped", "failed", "not_verified"), 0))
            names.setdefault(job.chart.project, set()).add(job.chart.name)
            row["charts"] = len(names[job.chart.project])
            row["versions"] += 1
            rec = by_source.get(job.chart.label)
            if rec is not None:
                row[str(rec.status)] += 1
            row["not_verified"] += id(job) in bad
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "projects": self.project_rows(),
            "versions": [{"source": j.chart.label, "destination": j.destination(self.dst_host, self.mode),
                          "digest": j.chart.digest} for j in self.jobs],
            "jobs": [r.to_json() for r in self.records],
            "not_verified": [{"source": j.chart.label, "reason": why} for j, why in self.mismatches],
            **({"in_place": self.in_place} if self.in_place is not None else {}),
        }


async def chart_mode(dst: ChartMuseumAPI | None, charts_as: str | None, dst_host: str) -> str:
    """How the destination receives charts: its ChartMuseum when it has one (unless ``--charts-as oci``),
    else OCI charts."""
    dst_has_museum = dst is not None and await dst.available()
    mode = charts_as or ("chartmuseum" if dst_has_museum else "oci")
    if mode == "chartmuseum" and not dst_has_museum:
        raise UsageError(f"destination {dst_host} has no ChartMuseum to upload charts to",
                         hint="use --charts-as oci (Harbor 2.8 and later keep charts as OCI artifacts)")
    return mode


async def list_chart_versions(src: ChartMuseumAPI, projects: list[str], sel: Selection) -> list[ChartVersion]:
    """The read side: every selected chart version of the projects, by project, name and version."""

    async def of_project(project: str) -> list[ChartVersion]:
        names = [n for n in await src.chart_names(project) if sel.repo_selected(f"{project}/{n}")]
        lists = await bounded_map(lambda n: src.versions(project, n), names)
        return [v for versions in lists for v in versions if sel.tag_selected(v.version)]

    found = [v for versions in await bounded_map(of_project, projects) for v in versions]
    return sorted(found, key=lambda v: (projects.index(v.project), v.name, v.version))


def chart_jobs(versions: list[ChartVersion], project_map: dict[str, str]) -> list[ChartJob]:
    return [ChartJob(v, project_map.get(v.project, v.project)) for v in versions]


async def plan_charts(src: ChartMuseumAPI, dst: ChartMuseumAPI | None, projects: list[str], sel: Selection,
                      charts_as: str | None, dst_host: str) -> ChartOutcome | None:
    """The chart versions to move, or None when the source has no ChartMuseum."""
    if not await src.available():
        return None
    outcome = ChartOutcome(await chart_mode(dst, charts_as, dst_host), dst_host)
    outcome.jobs = chart_jobs(await list_chart_versions(src, projects, sel), dict(sel.project_map))
    return outcome


class ChartSource(Protocol):
    """Where chart archives are read: a ChartMuseum (``ChartMuseumAPI``) or an export on disk."""

    async def download(self, cv: ChartVersion) -> bytes: ...

    async def download_prov(self, cv: ChartVersion) -> bytes | None: ...


class ChartSink(Protocol):
    """Where chart versions go: OCI charts, a ChartMuseum, or an export's blob store."""

    async def present(self, job: ChartJob) -> str | None:
        """The ``.tgz`` digest the sink holds for this version, or None when absent."""
        ...

    async def put(self, job: ChartJob, chart: OCIChart) -> None: ...


class OCICharts:
    def __init__(self, conns: Connections, host: str) -> None:
        self.conns, self.host = conns, host

    async def present(self, job: ChartJob) -> str | None:
        repo = self.conns.client(self.host).repository(f"{job.dest_project}/{job.chart.name}")
        try:
            manifest = await repo.get_manifest(oci_tag(job.chart.version))
        except NotFoundError:
            return None
        layers = [d.digest for d in manifest.layers if d.media_type == CHART_LAYER_MEDIA_TYPE]
        return layers[0] if layers else "no chart layer"

    async def put(self, job: ChartJob, chart: OCIChart) -> None:
        await push_oci_chart(self.conns, self.host, f"{job.dest_project}/{job.chart.name}",
                             oci_tag(job.chart.version), chart)


class MuseumCharts:
    def __init__(self, dst: ChartMuseumAPI) -> None:
        self.dst = dst
        self._versions: dict[tuple[str, str], dict[str, str]] = {}

    async def present(self, job: ChartJob) -> str | None:
        key = (job.dest_project, job.chart.name)
        if key not in self._versions:
            self._versions[key] = {v.version: v.digest for v in await self.dst.versions(*key)}
        return self._versions[key].get(job.chart.version)

    async def put(self, job: ChartJob, chart: OCIChart) -> None:
        await self.dst.upload(job.dest_project, job.chart.filename, chart.archive, chart.prov)


class ChartCopier:
    """Each job's version from ``src`` into the sink (by default the one ``outcome.mode`` names)."""

    def __init__(self, outcome: ChartOutcome, src: ChartSource, dst: ChartMuseumAPI | None,
                 conns: Connections, journal: Journal | None = None,
                 sink: Callable[[], ChartSink] | None = None) -> None:
        self.outcome, self.src, self.journal = outcome, src, journal

        def default() -> ChartSink:
            if outcome.mode == "oci":
                return OCICharts(conns, outcome.dst_host)
            assert dst is not None
            return MuseumCharts(dst)

        self._sink = sink or default
        self.sink = self._sink()

    async def present(self, job: ChartJob) -> str | None:
        return await self.sink.present(job)

    async def run(self, concurrency: int = 4) -> None:
        self.outcome.records = await bounded_map(self._one, self.outcome.jobs, concurrency)

    async def _one(self, job: ChartJob) -> JobRecord:
        started = time.monotonic()
        rec = JobRecord(job.chart.label, job.destination(self.outcome.dst_host, self.outcome.mode), JobStatus.COPIED,
                        digest=job.chart.digest, source_digest=job.chart.digest)
        try:
            have = await self.present(job)
            if have == job.chart.digest:
                rec.status = JobStatus.SKIPPED
            elif have is not None:
                raise FerryError(f"the destination already holds this version with another archive ({have})",
                                 hint="delete it at the destination to have it copied")
            else:
                rec.bytes = await self._copy(job)
        except (FerryError, ChartError) as e:
            rec.status, rec.error = JobStatus.FAILED, str(e)
            log.warning("chart %s: %s", job.chart.label, e)
        rec.seconds = time.monotonic() - started
        if self.journal is not None:
            self.journal.record_job(f"chart:{rec.destination}", rec)
        return rec

    async def _copy(self, job: ChartJob) -> int:
        cv = job.chart
        archive = await self.src.download(cv)
        if sha256_digest(archive) != cv.digest:
            raise FerryError(f"the archive read is {sha256_digest(archive)}, the source lists {cv.digest}")
        prov = await self.src.download_prov(cv)
        await self.sink.put(job, build_oci_chart(archive, prov, cv.created))  # a chart Helm could load
        return len(archive) + len(prov or b"")

    async def verify(self) -> None:
        """Every chart version at the destination with the source ``.tgz`` digest (read afresh)."""
        self.sink = self._sink()

        async def check(job: ChartJob) -> tuple[ChartJob, str] | None:
            try:
                have = await self.present(job)
            except FerryError as e:
                return job, str(e)
            if have == job.chart.digest:
                return None
            return job, "missing at the destination" if have is None else f"has {have}, expected {job.chart.digest}"

        self.outcome.mismatches = [m for m in await bounded_map(check, self.outcome.jobs) if m is not None]


async def push_oci_chart(conns: Connections, host: str, repository: str, tag: str, chart: OCIChart) -> None:
    """Blobs first, each confirmed by the destination, then the manifest under its tag."""
    repo = conns.client(host).repository(repository, write=True)
    for desc in chart.manifest.blobs:
        if await repo.has_blob(desc):
            continue
        data = chart.blob(desc)
        await repo.put_blob(desc, bytes_opener(data))
        if not await repo.has_blob(desc):
            raise FerryError(f"{host}: blob {desc.digest} of {repository}:{tag} is not there after its upload")
    await repo.put_manifest(chart.manifest, tag)


def bytes_opener(data: bytes):  # type: ignore[no-untyped-def]
    """An engine ``open_stream`` over bytes in memory."""
    def open_stream(offset: int = 0) -> AsyncIterator[bytes]:
        async def gen() -> AsyncIterator[bytes]:
            yield data[offset:]

        return gen()

    return open_stream

