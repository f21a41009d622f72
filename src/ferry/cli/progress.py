"""What a bulk run shows: rich progress on a terminal, plain log lines elsewhere, nothing with --quiet."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from rich.filesize import decimal

from ferry.engine import NoRunEvents
from ferry.journal import JobRecord, JobStatus
from ferry.media import Descriptor
from ferry.plan.model import Job

if TYPE_CHECKING:  # rich's console and progress are imported by the runs that draw (about 40 ms)
    from rich.console import Console
    from rich.progress import TaskID


class QuietEvents(NoRunEvents):
    """No output; a context manager like the others."""

    def __enter__(self) -> QuietEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class LogEvents(QuietEvents):
    """One line per finished image (and per retry of a failed one), for logs and pipes."""

    def __init__(self, total: int, stream=sys.stderr) -> None:  # type: ignore[no-untyped-def]
        self.total, self.done, self.stream = total, 0, stream
        self._seen: set[str] = set()  # retry rounds finish a job again: count images, not attempts

    def job_finished(self, job: Job, record: JobRecord) -> None:
        if job.key not in self._seen:
            self._seen.add(job.key)
            self.done += 1
        stamp = time.strftime("%H:%M:%S")
        if record.status is JobStatus.FAILED:
            attempt = f" (retry {record.retries})" if record.retries else ""
            line = (f"{stamp} [{self.done}/{self.total}] FAILED{attempt} {job.source} -> {job.destination}: "
                    f"{record.error}")
        else:
            line = (f"{stamp} [{self.done}/{self.total}] {record.status} {job.source} -> {job.destination} "
                    f"{record.digest} {decimal(record.bytes)} {record.seconds:.2f}s")
        print(line, file=self.stream, flush=True)


class RichEvents(QuietEvents):
    """Overall bytes with rate and ETA, images done of total, failures so far, transfers in flight."""

    def __init__(self, total: int, console: Console) -> None:
        from rich.console import Group
        from rich.live import Live
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.table import Column

        label = TextColumn("{task.description}", table_column=Column(width=28))
        self.progress = Progress(label, BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                                 console=console)
        self.images = Progress(label, BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console)
        self.live = Live(Group(self.progress, self.images), console=console, refresh_per_second=8)
        self.total = total
        self.done = self.failed = self.inflight = 0
        self._seen: set[str] = set()  # retry rounds finish a job again: count images, not attempts
        self._failed: set[str] = set()
        self.bytes_task: TaskID = self.progress.add_task("bytes", total=0)
        self.images_task: TaskID = self.images.add_task(self._images_text(), total=total)

    def _images_text(self) -> str:
        failed = f", [red]{self.failed} failed[/red]" if self.failed else ""
        return f"images {self.done}/{self.total}{failed}"

    def _bytes_text(self) -> str:
        return f"blobs ({self.inflight} in flight)"

    def blob_started(self, desc: Descriptor) -> None:
        self.inflight += 1
        task = self.progress.tasks[self.bytes_task]
        self.progress.update(self.bytes_task, total=(task.total or 0) + max(desc.size, 0),
                             description=self._bytes_text())

    def bytes_moved(self, n: int) -> None:
        self.progress.advance(self.bytes_task, n)

    def blob_done(self, desc: Descriptor, how: str) -> None:
        if how in ("copied", "mounted"):
            self.inflight = max(0, self.inflight - 1)
        if how == "mounted":  # counted in the total but moved no bytes
            self.progress.advance(self.bytes_task, max(desc.size, 0))
        self.progress.update(self.bytes_task, description=self._bytes_text())

    def job_finished(self, job: Job, record: JobRecord) -> None:
        if job.key not in self._seen:
            self._seen.add(job.key)
            self.done += 1
        if record.status is not JobStatus.FAILED:
            self._failed.discard(job.key)
        else:
            self._failed.add(job.key)
            self.live.console.print(f"[red]failed[/red] {job.source}: {record.error}", highlight=False)
        self.failed = len(self._failed)
        self.images.update(self.images_task, completed=self.done, description=self._images_text())

    def __enter__(self) -> RichEvents:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()


def stderr_console() -> Console:
    """Rich output on stderr; tables keep a readable width when written to a pipe or a log."""
    from rich.console import Console

    console = Console(stderr=True)
    return console if console.is_terminal else Console(stderr=True, width=160)


def make_events(total: int, *, quiet: bool, console: Console | None) -> QuietEvents:
    """Nothing with ``quiet`` (no console needed), rich progress on a terminal, else log lines."""
    if quiet or console is None:
        return QuietEvents()
    if console.is_terminal:
        return RichEvents(total, console)
    return LogEvents(total)
