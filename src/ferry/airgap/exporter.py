"""``ferry export``: a migration whose destination is one OCI image layout on disk.

The source is recognised and inventoried as ``migrate`` does; each selected tag (and untagged digest)
becomes an ``index.json`` entry named ``repository:tag`` (``repository@digest``) in one layout, so a blob
shared by many images is stored once. After the copy the layout is checked offline (rehash, every
reference resolves), ``index.json`` entries of Docker manifests are typed as their OCI twins so that
skopeo's ``oci:`` transport reads them (docs/decisions.md), and ``ferry-export.json`` describes it all.
A rerun skips every image already listed in ``index.json`` and every blob already on disk.

A Harbor's configuration is read (as ``migrate`` reads it) into the description's ``configuration``,
and each Helm chart version's ``.tgz`` and provenance file go into the same blob store
(:mod:`ferry.airgap.charts`), listed under ``charts``. With ``--shard`` the export holds its share of
the repositories; shard 0 also the project-wide configuration and the charts (docs/export-format.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import fcntl
import json
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ferry.airgap import description as d
from ferry.airgap.charts import LayoutCharts
from ferry.airgap.offline import check_export
from ferry.chart_migration import ChartCopier, ChartOutcome, chart_jobs, list_chart_versions
from ferry.configuration import AFTER, describe_configuration
from ferry.connect import Connections
from ferry.engine import RunEvents
from ferry.errors import FerryError
from ferry.harbor.charts import ChartMuseumAPI
from ferry.harbor.client import HarborAPI, User
from ferry.harbor.projects import Project
from ferry.journal import Journal
from ferry.media import DOCKER_LIST, DOCKER_MANIFEST, MAX_MANIFEST_BYTES, OCI_INDEX, OCI_MANIFEST, parse_manifest
from ferry.migration import (
    Endpoint,
    Migration,
    MigrationOptions,
    MigrationOutcome,
    ProjectAction,
    ProjectOutcome,
    connections_for,
)
from ferry.plan.inventory import MigrationPlan
from ferry.plan.model import Job
from ferry.refs import PathRef, RegistryRef
from ferry.transports.files import read_small, write_file_atomic
from ferry.transports.layout import OCI_LAYOUT_BYTES, REF_NAME
from ferry.verify import Mismatch

#: index.json types skopeo's oci: transport reads (field notes: it ignores the Docker ones).
SKOPEO_TYPES = {DOCKER_MANIFEST: OCI_MANIFEST, DOCKER_LIST: OCI_INDEX}


def ref_name(ref: RegistryRef) -> str:
    """The ``org.opencontainers.image.ref.name`` of an exported image: ``project/repo:tag`` or ``…@digest``."""
    return f"{ref.repository}:{ref.tag}" if ref.tag else f"{ref.repository}@{ref.digest}"


class Export(Migration):
    """``options.destination.url`` is the layout directory; nothing is written to any registry."""

    def __init__(self, options: MigrationOptions, *, journal: Journal | None = None,
                 events: RunEvents | None = None) -> None:
        self.options = replace(options, selection=replace(options.selection, project_map={}))
        self.directory = options.destination.url
        self.src = Endpoint.parse(options.source.url, "source")
        self.dst = Endpoint(f"oci:{self.directory}", plain_http=False)
        self.conns: Connections = connections_for(options, {self.src.host: options.source.access(self.src)})
        self.src_api = HarborAPI(self.conns.client(self.src.host).http)
        self.src_charts = ChartMuseumAPI(self.src_api)
        self.journal = journal
        self.events = events
        self.config_description: dict[str, Any] = {}
        self.chart_sink: LayoutCharts | None = None

    async def prepare(self) -> MigrationOutcome:
        """As migrate's, and the source's configuration read into the description to be (the read
        half of a migration's configuration step; the import applies it)."""
        outcome = await super().prepare()
        config = self.options.config
        if outcome.source_is_harbor and config.enabled and not self.options.verify_only:
            admin = bool(self.src_user and self.src_user.sysadmin)
            self.config_description, refused = await describe_configuration(
                self.src_api, config, [p.name for p in outcome.projects], system_level=admin,
                shard=self.options.shard)
            outcome.configuration = refused or None
        return outcome

    async def _plan_charts(self, projects: list[str], dst_harbor: bool) -> ChartOutcome | None:
        if not await self.src_charts.available():
            return None
        return ChartOutcome("export", self.directory, chart_jobs(
            await list_chart_versions(self.src_charts, projects, self.options.selection), {}))

    def _charts(self, charts: ChartOutcome) -> ChartCopier:
        if self.chart_sink is None:
            _ensure_layout(self.directory)
            earlier = self._earlier()
            self.chart_sink = LayoutCharts(self.directory, earlier.charts if earlier else [])
        sink = self.chart_sink
        return ChartCopier(charts, self.src_charts, None, self.conns, self.journal, sink=lambda: sink)

    async def configure(self, outcome: MigrationOutcome, phase: str) -> None:
        """Nothing is applied; with --config-only (no copy) the description is written here."""
        if phase == AFTER and not self.options.images and not self.options.dry_run:
            await asyncio.to_thread(self._finish, outcome)

    async def _recognise_destination(self) -> tuple[bool, User | None]:
        return False, None

    async def _inventory(self, src_harbor: bool, dst_harbor: bool) -> MigrationPlan:
        plan = await super()._inventory(src_harbor, dst_harbor)
        plan.images = [self._to_layout(j) for j in plan.images]
        plan.accessories = [self._to_layout(j) for j in plan.accessories]
        return plan

    def _to_layout(self, job: Job) -> Job:
        assert isinstance(job.destination, RegistryRef)
        return Job(job.source, PathRef("oci", self.directory, ref_name(job.destination)), job.origin)

    async def _plan_projects(self, projects: list[Project], src_harbor: bool, dst_harbor: bool,
                             user: User | None) -> list[ProjectOutcome]:
        limits = await self._source_limits() if src_harbor else {}
        return [ProjectOutcome(p.name, p.name, p.public, limits.get(p.name), ProjectAction.EXPORT,
                               metadata=dict(p.metadata)) for p in projects]

    async def create_projects(self, outcome: MigrationOutcome) -> None:
        return None

    async def dry_run(self, outcome: MigrationOutcome) -> None:
        listed = await asyncio.to_thread(_listed, self.directory)
        outcome.mismatches = [m for m in _expected(outcome) if m.destination not in listed
                              or (m.expected and listed[m.destination] != m.expected)]
        outcome.in_place = len(outcome.plan.expected) - len(outcome.mismatches)
        if outcome.charts is not None:
            described = self._earlier()
            earlier = LayoutCharts(self.directory, described.charts) if described else None
            outcome.charts.in_place = len([j for j in outcome.charts.jobs if earlier and await earlier.present(j)])

    async def copy(self, outcome: MigrationOutcome) -> None:
        await super().copy(outcome)
        await asyncio.to_thread(self._finish, outcome)

    def _finish(self, outcome: MigrationOutcome) -> None:
        records = outcome.run.records if outcome.run else []
        done = [(j, r.digest) for j, r in zip(outcome.plan.jobs, records, strict=True)
                if r.status in ("copied", "skipped") and r.digest]
        if done:
            retype_index(self.directory)
        _ensure_layout(self.directory)
        d.write_description(self.directory, self._describe(outcome, done))

    def _earlier(self) -> d.Description | None:
        """The description an earlier run of this export wrote, if any."""
        try:
            return d.read_description(self.directory)
        except FerryError:
            return None

    def _exported_charts(self, outcome: MigrationOutcome) -> list[d.Chart]:
        stored = self.chart_sink.stored if self.chart_sink else {}
        return [stored[j.chart.label] for j in (outcome.charts.jobs if outcome.charts else [])
                if j.chart.label in stored]

    def _describe(self, outcome: MigrationOutcome, done: list[tuple[Job, str]]) -> d.Description:
        plan = outcome.plan
        accessories = set(plan.accessories)
        of_subject = {acc.digest: acc for art in plan.artifacts.values() for acc in art.accessories}
        images: list[d.Image] = []
        by_repository: dict[str, list[d.Image]] = defaultdict(list)  # not a scan of every image per repository
        for job, digest in done:
            assert isinstance(job.source, RegistryRef)
            image = d.Image(ref_name=_name(job), repository=job.source.repository, project=job.origin,
                            tag=job.source.tag, digest=digest, media_type=self._media_type(digest),
                            accessory=job in accessories)
            images.append(image)
            by_repository[image.repository].append(image)
        projects = []
        for po in outcome.projects:
            repos = []
            for repo in plan.repositories.get(po.name, []):
                artifacts: dict[str, d.Artifact] = {}
                listed = plan.artifacts.in_repository(repo)
                for image in by_repository.get(repo, ()):
                    art = artifacts.get(image.digest)
                    if art is None:
                        known = listed.get(image.digest)
                        acc = of_subject.get(image.digest)
                        art = artifacts[image.digest] = d.Artifact(
                            digest=image.digest, media_type=image.media_type, size=known.size if known else None,
                            push_time=(known.push_time or None) if known else None,
                            subject=acc.subject_digest if acc else None, accessory_type=acc.type if acc else None)
                    if image.tag:
                        art.tags.append(image.tag)
                repos.append(d.Repository(name=repo, artifacts=list(artifacts.values())))
            projects.append(d.Project(name=po.name, public=po.public, metadata=po.metadata,
                                      storage_limit=po.storage_limit, repositories=repos))
        return d.Description(
            source=d.Source(url=self.options.source.url, kind="harbor" if outcome.source_is_harbor else "registry"),
            created=self._created(), projects=projects, images=images,
            shard=d.ShardInfo(**self.options.shard.to_json()) if self.options.shard else None,
            configuration=self.config_description, charts=self._exported_charts(outcome))

    def _created(self) -> str:
        """When the export began: a rerun keeps the time of the first run, so that the description of
        an unchanged export, and the volumes named after it, stay the same."""
        earlier = self._earlier()
        return earlier.created if earlier else datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")

    def _media_type(self, digest: str) -> str:
        algo, _, hexpart = digest.partition(":")
        raw = read_small(os.path.join(self.directory, "blobs", algo, hexpart), MAX_MANIFEST_BYTES, self.directory)
        return parse_manifest(raw, None, digest).media_type

    async def verify(self, outcome: MigrationOutcome) -> None:
        """The offline check of ``ferry verify DIR``; damaged blobs are removed and the images using them
        dropped from index.json, so that running the export again fetches them."""
        if not os.path.exists(d.description_path(self.directory)):
            outcome.mismatches = _expected(outcome)
            return
        check = await asyncio.to_thread(check_export, self.directory)
        if check.bad_blobs or check.bad_images:
            await asyncio.to_thread(_drop, self.directory, check.bad_blobs, set(check.bad_images))
        problems = "; ".join(str(p) for p in check.problems)
        by_name = {m.destination: m for m in _expected(outcome)}
        outcome.mismatches = [replace(by_name[n], error=problems or "damaged") for n in check.bad_images
                              if n in by_name]
        exported = {i.ref_name for i in check.description.images}
        outcome.mismatches += [m for n, m in by_name.items() if n not in exported]
        if outcome.charts is not None:
            listed = {c.label for c in check.description.charts}
            jobs = {j.chart.label: j for j in outcome.charts.jobs}
            outcome.charts.mismatches = [(jobs[n], problems or "damaged") for n in check.bad_charts if n in jobs]
            outcome.charts.mismatches += [(j, "not in the export") for n, j in jobs.items() if n not in listed]


def _ensure_layout(directory: str) -> None:
    """An empty OCI layout where none is yet (an export of charts or configuration only)."""
    os.makedirs(os.path.join(directory, "blobs", "sha256"), exist_ok=True)
    for name, data in (("oci-layout", OCI_LAYOUT_BYTES), ("index.json", b'{"schemaVersion":2,"manifests":[]}')):
        if not os.path.exists(os.path.join(directory, name)):
            write_file_atomic(os.path.join(directory, name), data)


def _name(job: Job) -> str:
    assert isinstance(job.destination, PathRef) and job.destination.name
    return job.destination.name


def _expected(outcome: MigrationOutcome) -> list[Mismatch]:
    """Everything the layout must list, by name, as a would-be mismatch."""
    return [Mismatch(str(e.source), ref_name(e.destination), e.digest, None, e.project)
            for e in outcome.plan.expected]


def _listed(directory: str) -> dict[str, str]:
    """index.json's names and digests (empty when there is no layout yet)."""
    try:
        with open(os.path.join(directory, "index.json"), "rb") as f:
            entries = json.load(f).get("manifests") or []
    except (FileNotFoundError, ValueError):
        return {}
    return {e["annotations"][REF_NAME]: e["digest"] for e in entries
            if isinstance(e, dict) and isinstance(e.get("annotations"), dict) and REF_NAME in e["annotations"]}


Entries = list[dict[str, Any]]


def _edit_index(directory: str, edit: Callable[[Entries], Entries]) -> None:
    """Apply ``edit`` (a function of the entries list) to index.json under the layout's lock."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = os.path.join(directory, "index.json")
        with open(path, "rb") as f:
            index = json.load(f)
        index["manifests"] = edit(index["manifests"])
        write_file_atomic(path, json.dumps(index, separators=(",", ":"), ensure_ascii=False).encode())
    finally:
        os.close(fd)


def retype_index(directory: str) -> None:
    """Docker manifests and lists listed with the OCI media types skopeo's oci: transport reads; the
    bytes (and so the digests) are untouched, and the description keeps the true type."""
    def edit(entries: Entries) -> Entries:
        return [{**e, "mediaType": SKOPEO_TYPES.get(str(e.get("mediaType")), e.get("mediaType"))} for e in entries]

    _edit_index(directory, edit)


def _drop(directory: str, blobs: list[str], images: set[str]) -> None:
    for digest in blobs:
        algo, _, hexpart = digest.partition(":")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(directory, "blobs", algo, hexpart))

    def edit(entries: Entries) -> Entries:
        return [e for e in entries if not (isinstance(e.get("annotations"), dict)
                                           and e["annotations"].get(REF_NAME) in images)]

    if images:
        _edit_index(directory, edit)

