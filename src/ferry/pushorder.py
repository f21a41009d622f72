"""Manifests pushed in the order of the job list within each destination repository.

Harbor ranks artifacts by push time (retention's "the N most recently pushed"); a copy that pushed
them in whatever order the transfers finished would reshuffle that ranking. Each job waits, just
before its manifest PUT, for the job before it in the same repository to be done; blobs and
source reads of all jobs still run in parallel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ferry.plan.model import Job
from ferry.refs import RegistryRef


def _repository(job: Job) -> str:
    """The destination repository; a local destination (a directory, an archive) is its own."""
    dst = job.destination
    if isinstance(dst, RegistryRef):
        return f"{dst.registry}/{dst.repository}"
    return str(dst)


class PushOrder:
    def __init__(self, jobs: Sequence[Job]) -> None:
        self._done = {job.key: asyncio.Event() for job in jobs}
        self._before: dict[str, str] = {}
        last: dict[str, str] = {}
        for job in jobs:
            repo = _repository(job)
            if repo in last:
                self._before[job.key] = last[repo]
            last[repo] = job.key

    async def turn(self, job: Job) -> None:
        """Return when ``job`` may push its manifest."""
        before = self._before.get(job.key)
        if before is not None:
            await self._done[before].wait()

    def finished(self, job: Job) -> None:
        """``job`` pushed, skipped or failed: the next one of its repository may push."""
        self._done[job.key].set()
