"""The sync flow: rules (image-syncer's files or skopeo sync's arguments) → listed tags → jobs → the
engine, with a dry run that asks the destination what is already in place. ``ferry sync`` is its CLI.

A repository whose tags cannot be listed fails its own rules only; the rest of the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ferry.access import AccessMap
from ferry.concurrency import bounded_map
from ferry.connect import Connections
from ferry.engine import Engine, EngineOptions, RunEvents, RunResult
from ferry.errors import FerryError
from ferry.journal import JobRecord, JobStatus, Journal
from ferry.media import filter_platforms
from ferry.plan.expand import check_plan, expand
from ferry.plan.model import Expected, Job, PlatformFilter, Rule
from ferry.refs import RegistryRef
from ferry.verify import verify


@dataclass(slots=True)
class SyncPlan:
    jobs: list[Job]
    refused: list[JobRecord] = field(default_factory=list)  # rules whose source repository could not be listed


class Sync:
    """One sync run over one connection pool: :meth:`plan`, then :meth:`pending` (dry run) or :meth:`copy`."""

    def __init__(self, rules: list[Rule], access: AccessMap, options: EngineOptions) -> None:
        self.rules = rules
        self.options = options
        self.conns = Connections(access, connections=max(16, options.blob_concurrency * 2), limits=options.limits)

    async def close(self) -> None:
        await self.conns.close()

    async def plan(self) -> SyncPlan:
        """List the tags the rules need; a plan that sends two sources to one destination is refused."""
        unlisted: dict[RegistryRef, FerryError] = {}
        jobs = check_plan(await expand(self.rules,
                                       lambda ref: self.conns.repository(ref).client.list_tags(ref.repository),
                                       failures=unlisted))
        return SyncPlan(jobs, _unlisted_records(self.rules, unlisted))

    async def pending(self, plan: SyncPlan) -> set[str]:
        """Destinations (``str(job.destination)``) that do not yet hold what the run would put there."""
        digests = await bounded_map(lambda j: self._target_digest(j, self.options.platforms), plan.jobs, 8)
        expected = [Expected(j.source, j.destination, j.origin, digest=d)
                    for j, d in zip(plan.jobs, digests, strict=True)]
        return {m.destination for m in await verify(self.conns, expected)}

    async def copy(self, plan: SyncPlan, journal: Journal, events: RunEvents) -> RunResult:
        result = await Engine(self.conns, self.options, journal=journal, events=events).run(plan.jobs)
        for rec in plan.refused:
            journal.record_job(f"{rec.source} -> {rec.destination}", rec)
        result.records.extend(plan.refused)
        # the summary counts the whole command, tag listing included (the engine counts only its run)
        result.requests, result.http_retries = self.conns.stats.requests, self.conns.stats.retries
        return result

    async def _target_digest(self, job: Job, platforms: PlatformFilter) -> str | None:
        """The digest a run would leave at the destination: with a platform filter, that of the rewritten
        index (None when the source cannot tell: verification then reports the problem)."""
        if not platforms.active:
            return None
        try:
            manifest = await self.conns.repository(job.source).get_manifest(job.source.reference)
            return filter_platforms(manifest, platforms).digest if manifest.is_index else manifest.digest
        except FerryError:
            return None


def _unlisted_records(rules: list[Rule], unlisted: dict[RegistryRef, FerryError]) -> list[JobRecord]:
    """A failed record for each rule that needed its source repository listed and could not have it."""
    return [
        JobRecord(str(rule.source), str(rule.destination), JobStatus.FAILED,
                  error=str(unlisted[rule.source.repo_ref()]))
        for rule in rules
        if not (rule.select.tags or rule.select.digests) and rule.source.repo_ref() in unlisted
    ]
