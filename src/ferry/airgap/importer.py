"""``ferry import``: a migration whose source is an export directory (``ferry export``).

The plan comes from ``ferry-export.json`` instead of an inventory; projects are created with the
settings the description gives, images are read from the layout by digest (each blob digest-checked as
it streams, so a blob damaged on disk fails its image, named, and nothing of it is tagged) and pushed
as ``migrate`` pushes them; accessories after the images; then every tag is verified.

The configuration is ``migrate``'s, applied from the description (:class:`DescribedSource`): the
first phase before the images, immutable rules, artifact labels and repository descriptions after.
Charts are pushed from the blob store as ``migrate`` pushes them (ChartMuseum or OCI), each archive
digest-checked as it is read, then verified at the destination. With ``--shard`` the import takes
its share of the repositories (and shard 0 the project-wide configuration and the charts).
"""

from __future__ import annotations

from dataclasses import replace

from ferry.airgap.charts import DiskCharts, chart_version
from ferry.airgap.description import Description, Image, read_description
from ferry.chart_migration import ChartOutcome, chart_jobs, chart_mode
from ferry.configuration import ConfigSource, DescribedSource
from ferry.digests import pack
from ferry.engine import RunEvents
from ferry.harbor.charts import ChartMuseumAPI
from ferry.harbor.client import HarborAPI, User
from ferry.harbor.projects import Project
from ferry.harbor.secrets import load_robot_secrets
from ferry.journal import Journal
from ferry.migration import Endpoint, Migration, MigrationOptions, MigrationOutcome, connections_for
from ferry.plan.inventory import MigrationPlan
from ferry.plan.model import Expected, Job
from ferry.plan.shard import runs_whole_project_work
from ferry.refs import PathRef, RegistryRef

TOP_LEVEL_PROJECT = "library"  # where a plain registry's ``alpine`` goes in a Harbor (as ``migrate`` does)


class Import(Migration):
    """``options.source.url`` is the export directory."""

    def __init__(self, options: MigrationOptions, *, journal: Journal | None = None,
                 events: RunEvents | None = None) -> None:
        self.directory = options.source.url
        self.description: Description = read_description(self.directory)
        described = self.description.configuration
        config = replace(options.config, enabled=options.config.enabled and bool(described.get("kinds")),
                         system=bool(described.get("system")))
        # the shard narrows the described images here (their sources are layout entries, not repositories)
        self.shard = options.shard
        self.options = replace(options, config=config, shard=None)
        self.src = Endpoint(f"oci:{self.directory}", plain_http=False)
        self.dst = Endpoint.parse(options.destination.url, "destination")
        self.conns = connections_for(options, {self.dst.host: options.destination.access(self.dst)})
        self.dst_api = HarborAPI(self.conns.client(self.dst.host).http)
        self.journal = journal
        self.events = events
        self.robot_secrets = load_robot_secrets(config.robot_secrets) if config.robot_secrets else {}
        self.src_charts = DiskCharts(self.directory, self.description.charts)
        self.dst_charts = ChartMuseumAPI(self.dst_api)

    async def prepare(self) -> MigrationOutcome:
        outcome = await super().prepare()
        outcome.shard = self.shard
        return outcome

    async def _recognise_source(self) -> bool:
        return self.description.source.kind == "harbor"

    async def _source_limits(self) -> dict[str, int]:
        return {p.name: p.storage_limit for p in self.description.projects if p.storage_limit is not None}

    def _config_api(self) -> HarborAPI | None:
        return None

    def _config_source(self) -> ConfigSource:
        return DescribedSource(self.description.configuration.get("kinds") or {}, self.shard)

    def _system_level(self, src_user: User | None, dst_user: User | None) -> bool:
        return bool(self.description.configuration.get("system_level") and dst_user and dst_user.sysadmin)

    async def _plan_charts(self, projects: list[str], dst_harbor: bool) -> ChartOutcome | None:
        if not self.description.charts or not runs_whole_project_work(self.shard):
            return None
        mode = await chart_mode(self.dst_charts if dst_harbor else None, self.options.charts_as, self.dst.host)
        versions = [chart_version(c) for c in self.description.charts]
        return ChartOutcome(mode, self.dst.host, chart_jobs(versions, dict(self.options.selection.project_map)))

    async def _inventory(self, src_harbor: bool, dst_harbor: bool) -> MigrationPlan:
        sel = self.options.selection
        projects = {p.name: Project(p.name, 0, p.public, dict(p.metadata)) for p in self.description.projects}
        plan = MigrationPlan(projects=[], source_is_harbor=src_harbor)
        for image in self.description.images:
            if self.shard is not None and not self.shard.owns(image.repository):
                continue
            project, repo = _placed(image, dst_harbor)
            if project not in projects:  # a plain registry's top-level repository
                projects[project] = Project(project, 0, False)
            dst = RegistryRef(self.dst.host, sel.dest_repository(repo))
            dst = dst.with_tag(image.tag) if image.tag else dst.with_digest(image.digest)
            job = Job(PathRef("oci", self.directory, image.digest), dst, origin=project)
            (plan.accessories if image.accessory else plan.images).append(job)
            plan.expected.append(Expected(PathRef("oci", self.directory, image.ref_name), dst, project,
                                          digest=image.digest))
            if dst.repository not in plan.repositories.setdefault(project, []):
                plan.repositories[project].append(dst.repository)  # as the destination names it
        for p in self.description.projects:
            for r in p.repositories:
                plan.sizes.update({pack(a.digest): a.size for a in r.artifacts if a.size is not None})
        # A Harbor's empty projects are created too (as migrate does); a registry's "projects" are path prefixes.
        plan.projects = [p for name, p in projects.items() if name in plan.repositories or src_harbor]
        return plan


def _placed(image: Image, dst_harbor: bool) -> tuple[str, str]:
    """The project and full repository name an image lands in (before --map)."""
    if "/" in image.repository or not dst_harbor:
        return image.project, image.repository
    return TOP_LEVEL_PROJECT, f"{TOP_LEVEL_PROJECT}/{image.repository}"
