"""Helm charts in a migration: every selected chart version of a source Harbor's ChartMuseum, into
the destination's ChartMuseum (upload API, with the provenance file) or as OCI charts
``<project>/<chart>:<version>`` (see :mod:`ferry.charts`), after the images.

A version already at the destination with the source ``.tgz`` digest is skipped, so a rerun copies
nothing; a version whose archive is not a chart Helm could load fails alone and the rest continues.
Each version is a job of the journal (key ``chart:<destination>``) and of the report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

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
        return f"{dst_host}/chartrepo/{self.dest_project}/{self.chart.name}-{self.chart.version}"


@dataclass(slots=True)
class ChartOutcome:
    mode: str  # "oci" or "chartmuseum": how the destination receives them
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


async def plan_charts(src: ChartMuseumAPI, dst: ChartMuseumAPI | None, projects: list[str], sel: Selection,
                      charts_as: str | None, dst_host: str) -> ChartOutcome | None:
    """The chart versions to move, or None when the source has no ChartMuseum."""
    if not await src.available():
        return None
    dst_has_museum = dst is not None and await dst.available()
    mode = charts_as or ("chartmuseum" if dst_has_museum else "oci")
    if mode == "chartmuseum" and not dst_has_museum:
        raise UsageError(f"destination {dst_host} has no ChartMuseum to upload charts to",
                         hint="use --charts-as oci (Harbor 2.8 and later keep charts as OCI artifacts)")
    outcome = ChartOutcome(mode, dst_host)

    async def of_project(project: str) -> list[ChartVersion]:
        names = [n for n in await src.chart_names(project) if sel.repo_selected(f"{project}/{n}")]
        lists = await bounded_map(lambda n: src.versions(project, n), names)
        return [v for versions in lists for v in versions if sel.tag_selected(v.version)]

    for project, versions in zip(projects, await bounded_map(of_project, projects), strict=True):
        dest_project = sel.project_map.get(project, project)
        outcome.jobs.extend(ChartJob(v, dest_project) for v in sorted(versions, key=lambda v: (v.name, v.version)))
    return outcome


class ChartCopier:
    def __init__(self, outcome: ChartOutcome, src: ChartMuseumAPI, dst: ChartMuseumAPI | None,
                 conns: Connections, journal: Journal | None = None) -> None:
        self.outcome, self.src, self.dst, self.conns, self.journal = outcome, src, dst, conns, journal
        self._dest_versions: dict[tuple[str, str], dict[str, str]] = {}

    async def present(self, job: ChartJob) -> str | None:
        """The ``.tgz`` digest the destination holds for this version, or None when absent."""
        if self.outcome.mode == "oci":
            repo = self.conns.client(self.outcome.dst_host).repository(f"{job.dest_project}/{job.chart.name}")
            try:
                manifest = await repo.get_manifest(oci_tag(job.chart.version))
            except NotFoundError:
                return None
            layers = [d.digest for d in manifest.layers if d.media_type == CHART_LAYER_MEDIA_TYPE]
            return layers[0] if layers else "no chart layer"
        assert self.dst is not None
        key = (job.dest_project, job.chart.name)
        if key not in self._dest_versions:
            versions = await self.dst.versions(*key)
            self._dest_versions[key] = {v.version: v.digest for v in versions}
        return self._dest_versions[key].get(job.chart.version)

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
            raise FerryError(f"the archive downloaded is {sha256_digest(archive)}, ChartMuseum lists {cv.digest}")
        prov = await self.src.download_prov(cv)
        if self.outcome.mode == "oci":
            chart = build_oci_chart(archive, prov, cv.created)
            await push_oci_chart(self.conns, self.outcome.dst_host, f"{job.dest_project}/{cv.name}",
                                 oci_tag(cv.version), chart)
        else:
            build_oci_chart(archive, prov, cv.created)  # the same check: a chart Helm could load
            assert self.dst is not None
            await self.dst.upload(job.dest_project, cv.filename, archive, prov)
        return len(archive) + len(prov or b"")

    async def verify(self) -> None:
        """Every chart version at the destination with the source ``.tgz`` digest."""
        self._dest_versions.clear()

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
        await repo.put_blob(desc, _opener(data))
        if not await repo.has_blob(desc):
            raise FerryError(f"{host}: blob {desc.digest} of {repository}:{tag} is not there after its upload")
    await repo.put_manifest(chart.manifest, tag)


def _opener(data: bytes):  # type: ignore[no-untyped-def]
    def open_stream(offset: int = 0) -> AsyncIterator[bytes]:
        async def gen() -> AsyncIterator[bytes]:
            yield data[offset:]

        return gen()

    return open_stream

