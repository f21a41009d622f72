"""The sync flow: rules (image-syncer's files or skopeo sync's arguments) → listed tags → jobs → the
engine, with a dry run that asks the destination what is already in place. ``ferry sync`` is its CLI.

A repository whose tags cannot be listed fails its own rules only; the rest of the run goes on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ferry.access import AccessMap
from ferry.auth.side import Side
from ferry.concurrency import bounded_map
from ferry.connect import Connections
from ferry.engine import Engine, EngineOptions, RunEvents, RunResult
from ferry.errors import FerryError, UsageError
from ferry.journal import JobRecord, JobStatus, Journal
from ferry.media import filter_platforms
from ferry.plan import imagesyncer, skopeo_sync
from ferry.plan.expand import check_plan, expand
from ferry.plan.inventory import Expected
from ferry.plan.model import Job, PlatformFilter, Rule
from ferry.refs import RegistryRef, parse_repository
from ferry.verify import verify


def image_syncer_rules(config: str | None, auth: str | None, images: str | None, registry: str | None,
                       namespace: str | None) -> tuple[list[Rule], AccessMap]:
    """image-syncer's ``--config``, or ``--images`` and ``--auth`` (default ``images.json``/``auth.json``)."""
    registry = registry or os.environ.get("DEFAULT_REGISTRY") or None
    namespace = namespace or os.environ.get("DEFAULT_NAMESPACE") or None
    if config:
        return imagesyncer.load_config(config, default_registry=registry, default_namespace=namespace)
    images = images or "images.json"
    if not Path(images).exists():
        raise UsageError(f"{images}: no such file", hint="give --images FILE (and --auth FILE), or --config FILE")
    rules = imagesyncer.load_images(images, default_registry=registry, default_namespace=namespace)
    auth = auth or ("auth.json" if Path("auth.json").exists() else None)
    return rules, (imagesyncer.load_auth(auth) if auth else AccessMap())


def skopeo_rules(src: str, dest: str, source: str, destination: str, naming: skopeo_sync.DestNaming,
                 src_side: Side, dst_side: Side, append_suffix: str) -> tuple[list[Rule], AccessMap]:
    """skopeo sync's ``--src docker|yaml --dest docker SOURCE DESTINATION``."""
    if dest != "docker":
        raise UsageError(f"--dest {dest!r} is not supported", hint="ferry sync writes to registries: --dest docker")
    dest_ref = parse_repository(destination) if "/" in destination else RegistryRef(destination, "")
    if src == "yaml":
        base_access = src_side.access("") if src_side.creds is None else None
        rules, amap = skopeo_sync.rules_from_skopeo_yaml(source, destination, naming=naming,
                                                        append_suffix=append_suffix, base=base_access)
    elif src == "docker":
        rules = skopeo_sync.rules_from_docker_source(source, destination, naming=naming,
                                                     append_suffix=append_suffix)
        amap = AccessMap()
        if rules:
            amap.add(rules[0].source, src_side.access(rules[0].source.registry, rules[0].source.repository))
    else:
        raise UsageError(f"--src {src!r} is not supported", hint="use --src docker or --src yaml")
    amap.add(dest_ref, dst_side.access(dest_ref.registry, dest_ref.repository))
    return rules, amap


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
