"""Helm charts in an export: each version's ``.tgz`` and provenance file are blobs of the layout (one
blob store for images and charts), and ``ferry-export.json`` lists the versions (``Chart``).

:class:`LayoutCharts` is the export's :class:`~ferry.chart_migration.ChartSink`, :class:`DiskCharts`
the import's :class:`~ferry.chart_migration.ChartSource`; the copier between them is ``migrate``'s.
"""

from __future__ import annotations

import asyncio
import os

from ferry.airgap.description import Blob, Chart
from ferry.chart_migration import ChartJob, bytes_opener
from ferry.charts import OCIChart
from ferry.errors import FerryError
from ferry.harbor.charts import ChartVersion
from ferry.media import Descriptor, sha256_digest
from ferry.refs import PathRef
from ferry.transports.files import file_has_size
from ferry.transports.layout import LayoutDestination


def blob_path(directory: str, digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return os.path.join(directory, "blobs", algo, hexpart)


def chart_version(chart: Chart) -> ChartVersion:
    return ChartVersion(chart.project, chart.name, chart.version, chart.archive.digest, chart.created,
                        chart.filename)


def _blob(data: bytes) -> Blob:
    return Blob(digest=sha256_digest(data), size=len(data))


def _has(directory: str, blob: Blob | None) -> bool:
    return blob is None or file_has_size(blob_path(directory, blob.digest), blob.size)


class LayoutCharts:
    """Chart versions into the export directory's blob store; ``stored`` is what the description lists
    (a version from an earlier run whose blobs are on disk counts as present)."""

    def __init__(self, directory: str, earlier: list[Chart]) -> None:
        self.directory = directory
        self.layout: LayoutDestination | None = None  # made at the first write: a dry run writes nothing
        self.earlier = {c.label: c for c in earlier}
        self.stored: dict[str, Chart] = {}

    async def present(self, job: ChartJob) -> str | None:
        known = self.earlier.get(job.chart.label)
        if known is None or known.archive.digest != job.chart.digest:
            return None
        if not (_has(self.directory, known.archive) and _has(self.directory, known.prov)):
            return None
        self.stored[job.chart.label] = known
        return known.archive.digest

    async def put(self, job: ChartJob, chart: OCIChart) -> None:
        self.layout = self.layout or LayoutDestination(PathRef("oci", self.directory))
        for data in (chart.archive, chart.prov):
            if data is not None:
                desc = Descriptor("application/octet-stream", sha256_digest(data), len(data))
                if not await self.layout.has_blob(desc):
                    await self.layout.put_blob(desc, bytes_opener(data))
        cv = job.chart
        self.stored[cv.label] = Chart(project=cv.project, name=cv.name, version=cv.version, filename=cv.filename,
                                      created=cv.created, archive=_blob(chart.archive),
                                      prov=_blob(chart.prov) if chart.prov is not None else None)


class DiskCharts:
    """The archives and provenance files an export holds, each checked against its digest as read."""

    def __init__(self, directory: str, charts: list[Chart]) -> None:
        self.directory = directory
        self.charts = {c.label: c for c in charts}

    async def _read(self, blob: Blob, what: str) -> bytes:
        try:
            data = await asyncio.to_thread(_read_file, blob_path(self.directory, blob.digest))
        except FileNotFoundError:
            raise FerryError(f"{what} {blob.digest} is missing from the export") from None
        if sha256_digest(data) != blob.digest:
            raise FerryError(f"{what} {blob.digest} is damaged on disk (it hashes to {sha256_digest(data)})",
                             hint="export it again, or restore the file")
        return data

    async def download(self, cv: ChartVersion) -> bytes:
        return await self._read(self.charts[cv.label].archive, "chart archive")

    async def download_prov(self, cv: ChartVersion) -> bytes | None:
        prov = self.charts[cv.label].prov
        return None if prov is None else await self._read(prov, "provenance file")


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
