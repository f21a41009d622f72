"""Run many copy jobs: images in flight bounded, one shared pool of blob transfers, retry rounds,
a journal of outcomes. One failing image never stops the others.

How many images are in flight follows the round trip unless ``--proc`` fixes it: an image waits on a
few round trips one after the other (docs/benchmarks.md, WAN), so a far registry needs many images
side by side to be kept busy, a near one a few (:func:`ferry.concurrency.images_in_flight`). The
first round trip is the shortest one the start-up greetings measured (:func:`ferry.warmup.round_trip`),
so a far registry's first images do not go in waves of the floor; the images' own probes follow.
Memory does not grow with them: blob bytes in flight are bounded by the transfers' buffer budget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ferry import warmup
from ferry.concurrency import Budget, InFlightSizer
from ferry.connect import Connections
from ferry.copy import BlobTransfers, Events, ImageCopier, NoEvents
from ferry.errors import FerryError
from ferry.journal import JobRecord, JobStatus, Journal
from ferry.media import Manifest
from ferry.plan.model import Job, PlatformFilter
from ferry.pushorder import PushOrder
from ferry.ratelimit import RateLimits
from ferry.refs import ImageRef, PathRef
from ferry.transports.base import Source

#: A per-image check before copying (the signature policy, ``cli/trust.py``): raises to refuse the image,
#: or returns the source manifest it checked, which the copy then pushes.
Admission = Callable[[ImageRef, Source, str], Awaitable[Manifest | None]]


class RunEvents(Events, Protocol):
    """Progress of a bulk run, on top of the blob events of :class:`ferry.copy.Events`."""

    def job_started(self, job: Job) -> None: ...
    def job_finished(self, job: Job, record: JobRecord) -> None: ...


class NoRunEvents(NoEvents):
    def job_started(self, job: Job) -> None:
        pass

    def job_finished(self, job: Job, record: JobRecord) -> None:
        pass


@dataclass(slots=True)
class RunResult:
    records: list[JobRecord] = field(default_factory=list)
    seconds: float = 0.0
    requests: int = 0
    http_retries: int = 0

    def count(self, status: JobStatus) -> int:
        return sum(1 for r in self.records if r.status == status)

    @property
    def failed(self) -> list[JobRecord]:
        return [r for r in self.records if r.status is JobStatus.FAILED]

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.records)


#: Images in flight when ``proc`` is not given: at first, and for near registries.
PROC_FLOOR = 8
#: ... and at most, however far the registries are (each may hold two requests, one per side).
PROC_CAP = 64


@dataclass(frozen=True, slots=True)
class EngineOptions:
    proc: int | None = None  # images in flight (image-syncer's --proc); None: sized to the round trip
    blob_concurrency: int = 32  # blob transfers in flight across all images (their bytes: BlobTransfers)
    retries: int = 2  # extra rounds for failed jobs after the first pass
    force: bool = False
    platforms: PlatformFilter = field(default_factory=PlatformFilter)
    admit: Admission | None = None
    limits: RateLimits = field(default_factory=RateLimits)  # --max-bandwidth, --max-requests (ferry.connect)


class Engine:
    def __init__(self, conns: Connections, options: EngineOptions | None = None, *,
                 journal: Journal | None = None, events: RunEvents | None = None) -> None:
        self.conns = conns
        self.options = options or EngineOptions()
        self.journal = journal
        self.events: RunEvents = events or NoRunEvents()
        self.transfers = BlobTransfers(concurrency=self.options.blob_concurrency, ledger=journal, events=self.events)
        proc = self.options.proc
        self._gate = Budget(max(1, proc) if proc else PROC_FLOOR)
        self.sizer = None if proc else InFlightSizer(self._gate, floor=PROC_FLOOR, cap=PROC_CAP)
        greeted = warmup.round_trip()
        if self.sizer is not None and greeted is not None:
            self.sizer.expect(greeted)
        self.copier = ImageCopier(self.transfers, on_round_trip=self.sizer.observe if self.sizer else None)

    async def run(self, jobs: Sequence[Job]) -> RunResult:
        start = time.perf_counter()
        stats = self.conns.stats
        requests0, retries0 = stats.requests, stats.retries
        results: dict[str, JobRecord] = {}
        attempts: dict[str, int] = {}
        pending = list(jobs)
        gate = self._gate
        for round_no in range(self.options.retries + 1):
            if not pending:
                break

            order = PushOrder(pending)  # tasks take the gate in list order, so a turn never waits on one queued

            async def one(job: Job, round_no: int = round_no, order: PushOrder = order) -> None:
                async with gate.hold():
                    attempts[job.key] = round_no
                    try:
                        results[job.key] = await self._run_job(job, round_no, order)
                    finally:
                        order.finished(job)

            await asyncio.gather(*(one(j) for j in pending))
            pending = [j for j in pending if results[j.key].status is JobStatus.FAILED]
        return RunResult(
            records=[results[j.key] for j in jobs],
            seconds=time.perf_counter() - start,
            requests=stats.requests - requests0,
            http_retries=stats.retries - retries0,
        )

    async def _run_job(self, job: Job, retries: int, order: PushOrder) -> JobRecord:
        self.events.job_started(job)
        started = time.perf_counter()
        record = JobRecord(str(job.source), str(job.destination), JobStatus.FAILED, retries=retries)
        try:
            src = self.conns.source(job.source)
            dst = self.conns.destination(job.destination)
            admit = self.options.admit
            root = await admit(job.source, src, _reference(job.source)) if admit is not None else None
            result = await self.copier.copy(
                src, dst, _reference(job.source), _reference(job.destination) if isinstance(job.destination, PathRef)
                else job.destination.tag,
                platforms=self.options.platforms, force=self.options.force, root=root,
                before_push=lambda: order.turn(job),
            )
            record.status = JobStatus.SKIPPED if result.skipped else JobStatus.COPIED
            record.digest = result.digest
            record.source_digest = result.source_digest
            record.bytes = result.stats.bytes_copied
        except FerryError as e:
            record.error = str(e)
        except (TimeoutError, OSError, ValueError, RuntimeError) as e:  # never let one image stop the run
            record.error = f"{type(e).__name__}: {e}"
        record.seconds = round(time.perf_counter() - started, 3)
        if self.journal is not None:
            self.journal.record_job(job.key, record)
        self.events.job_finished(job, record)
        return record


def _reference(ref: ImageRef) -> str:
    """The tag or digest a job names on one side; a layout entry's name ("" = the layout's only image)."""
    return ref.name or "" if isinstance(ref, PathRef) else ref.reference
