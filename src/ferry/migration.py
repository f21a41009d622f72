"""``ferry migrate`` and ``ferry verify``: a whole Harbor (or registry) into another, in one run.

Order: endpoints recognised and credentials checked on both sides; the source inventoried and, Harbor
to Harbor, its configuration planned (:mod:`ferry.configuration`); missing destination projects
created (or a clear error before any copy if that is not allowed); the configuration that images
need not wait for applied; images copied by the engine, accessories after their subjects; every
selected tag verified; then artifact labels, immutability rules and repository descriptions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from ferry.access import Access, AccessMap
from ferry.auth.side import Side
from ferry.chart_migration import ChartCopier, ChartOutcome, plan_charts
from ferry.concurrency import bounded_map
from ferry.configuration import AFTER, BEFORE, ConfigEntry, ConfigOptions, ConfigSource, Configuration
from ferry.connect import Connections
from ferry.engine import Engine, EngineOptions, RunEvents, RunResult
from ferry.errors import AuthError, UsageError
from ferry.harbor.charts import ChartMuseumAPI
from ferry.harbor.client import HarborAPI, User
from ferry.harbor.projects import Project, create_project, get_project, storage_limits
from ferry.harbor.resource import Context
from ferry.harbor.secrets import SecretSink, load_robot_secrets
from ferry.journal import Journal
from ferry.plan import diff
from ferry.plan.inventory import (
    Expected,
    MigrationPlan,
    Selection,
    catalog_inventory,
    harbor_inventory,
    harbor_listing,
    plan_listing,
)
from ferry.plan.shard import Shard, runs_whole_project_work, select_expected, select_plan
from ferry.preflight import Finding, Target, preflight
from ferry.prune import Deletion, deletions, prune
from ferry.verify import Mismatch, verify

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One side of a migration: ``https://host[:port]`` or ``http://host[:port]``."""

    host: str
    plain_http: bool

    @classmethod
    def parse(cls, url: str, side: str) -> Endpoint:
        if "@" in url:  # checked first: the other messages quote the URL, password and all
            flag = "--src-creds" if side == "source" else "--dest-creds"
            raise UsageError(f"{side} URL must not contain credentials", hint=f"use {flag} or a file")
        text = url if "://" in url else f"https://{url}"
        try:
            parts = urlsplit(text)
        except ValueError:  # "[", "http://[::1" …
            parts = urlsplit("invalid:")
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
            raise UsageError(f"invalid {side} URL {url!r}", hint="expected https://host[:port] or http://host[:port]")
        return cls(parts.netloc, parts.scheme == "http")


@dataclass(frozen=True, slots=True)
class SideOptions:
    """One side of a migration: its URL and the options that say how to reach it."""

    url: str
    side: Side = field(default_factory=Side)

    def access(self, endpoint: Endpoint) -> Access:
        return self.side.access(endpoint.host, plain_http=endpoint.plain_http)


@dataclass(frozen=True, slots=True)
class MigrationOptions:
    source: SideOptions
    destination: SideOptions
    selection: Selection = field(default_factory=Selection)
    engine: EngineOptions = field(default_factory=EngineOptions)
    dry_run: bool = False
    verify_only: bool = False
    config: ConfigOptions = field(default_factory=ConfigOptions)  # --no-config, --skip-config …
    images: bool = True  # False with --config-only
    charts: bool = True  # charts (issue 11): --no-charts
    charts_as: str | None = None  # "chartmuseum" or "oci"; None: what the destination has
    shard: Shard | None = None  # this run's share of the repositories (plan/shard.py)
    prune: bool = False  # issue 12: delete at the destination what the source no longer has
    ignore_preflight: bool = False  # issue 12: run even when a pre-flight check found a refusal ahead


class ProjectAction(StrEnum):
    """What happens to a destination project; the values are what the plan, table and JSON report show."""

    PLAIN_REGISTRY = "plain registry"  # the destination has no projects
    CREATE = "create"  # planned; becomes CREATED, or WOULD_CREATE in a dry run
    CREATED = "created"
    WOULD_CREATE = "would create"
    EXISTS = "exists"
    EXPORT = "export"  # into an export directory (ferry export): nothing to create


@dataclass(slots=True)
class ProjectOutcome:
    name: str  # at the source
    destination: str
    public: bool
    storage_limit: int | None
    action: ProjectAction
    differences: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)  # Harbor project settings to create it with


@dataclass(slots=True)
class MigrationOutcome:
    source: Endpoint
    destination: Endpoint
    source_is_harbor: bool
    destination_is_harbor: bool
    plan: MigrationPlan
    projects: list[ProjectOutcome] = field(default_factory=list)
    run: RunResult | None = None
    mismatches: list[Mismatch] = field(default_factory=list)
    in_place: int | None = None  # dry run: jobs already at the destination
    to_copy: list[Expected] | None = None  # dry run by listings: what differs (else: the mismatches)
    inventory_requests: int = 0
    configuration: list[ConfigEntry] | None = None  # None: not migrated (--no-config, not Harbor to Harbor)
    charts: ChartOutcome | None = None  # None: no ChartMuseum at the source, or --no-charts
    shard: Shard | None = None
    # --- live migration (issue 12) ---
    unchanged: list[Expected] | None = None  # Harbor to Harbor: in place by the listings, not copied
    to_prune: list[Deletion] | None = None  # --prune: what the source no longer has
    prune_errors: dict[str, str] = field(default_factory=dict)  # deletion → why it failed
    pruned: int = 0
    preflight: list[Finding] | None = None  # None: not checked (no Harbor destination, no images)

    @property
    def to_verify(self) -> list[Expected]:
        """What verification asks the destination registry about: the unchanged refs were seen in
        its listing already."""
        if not self.unchanged:  # nothing in place (a first run): no copy of the list
            return self.plan.expected
        held = {id(e) for e in self.unchanged}
        return [e for e in self.plan.expected if id(e) not in held]
    # --- end live migration ---

    @property
    def ok(self) -> bool:
        failed = bool(self.run and self.run.failed)
        charts_bad = bool(self.charts and (self.charts.failed or self.charts.mismatches))
        return (not failed and not self.mismatches and not charts_bad
                and not any(e.failed for e in self.configuration or []) and not self.prune_errors)

    def configuration_json(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """The report's configuration section: destination project (or "(system)") → kind → objects."""
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for e in self.configuration or []:
            out.setdefault(e.project, {}).setdefault(e.kind, []).append(e.to_json())
        return out

    def to_json(self) -> dict[str, Any]:
        from ferry.report import refusals_json, summary_dict

        return {
            "source": self.source.host,
            "destination": self.destination.host,
            "source_is_harbor": self.source_is_harbor,
            "destination_is_harbor": self.destination_is_harbor,
            **({"shard": self.shard.to_json()} if self.shard else {}),
            "projects": [
                {"name": p.name, "destination": p.destination, "public": p.public, "storage_limit": p.storage_limit,
                 "action": p.action, "differences": p.differences}
                for p in self.projects
            ],
            **({"configuration": self.configuration_json()} if self.configuration is not None else {}),
            "summary": summary_dict(self.run) if self.run else None,
            **({"preflight": [f.to_json() for f in self.preflight]} if self.preflight is not None else {}),
            **({"refusals": refusals_json(self.run)} if self.run else {}),
            **({"incremental": {"unchanged": len(self.unchanged),
                                "push_order": "source push time, oldest first, per repository",
                                "pull_times": "start afresh at the destination"}}
               if self.unchanged is not None else {}),
            **({"prune": {"planned": [str(d) for d in self.to_prune], "deleted": self.pruned,
                          "failed": self.prune_errors}} if self.to_prune is not None else {}),
            **({"dry_run": {"in_place": self.in_place, "to_copy": [
                {"source": m.source, "destination": m.destination, "digest": m.expected} for m in self.mismatches
            ] if self.to_copy is None else [
                {"source": str(e.source), "destination": str(e.destination), "digest": e.digest} for e in self.to_copy
            ]}} if self.in_place is not None else {}),
            "jobs": [r.to_json() for r in self.run.records] if self.run else [],
            "verification": {
                "checked": len(self.plan.expected),
                "mismatches": [
                    {"source": m.source, "destination": m.destination, "expected": m.expected, "actual": m.actual,
                     "project": m.project, "reason": m.reason}
                    for m in self.mismatches
                ],
            },
            "charts": self.charts.to_json() if self.charts else None,
        }


def connections_for(options: MigrationOptions, access: dict[str, Access]) -> Connections:
    """The HTTP pool of a run, sized for the engine's blob transfers."""
    return Connections(AccessMap(entries=access), connections=max(16, options.engine.blob_concurrency * 2),
                       limits=options.engine.limits)


class Migration:
    # issue 12: set by an incremental inventory (class defaults: ferry.airgap's subclasses have their own __init__)
    unchanged: list[Expected] | None = None
    to_prune: list[Deletion] | None = None

    src_user: User | None = None  # set when the source is recognised
    dst_user: User | None = None  # and the destination
    configuration: Configuration | None = None  # the configuration plan, when configuration moves

    def __init__(self, options: MigrationOptions, *, journal: Journal | None = None,
                 events: RunEvents | None = None) -> None:
        self.options = options
        self.src = Endpoint.parse(options.source.url, "source")
        self.dst = Endpoint.parse(options.destination.url, "destination")
        if self.src == self.dst:
            raise UsageError("source and destination are the same registry")
        if options.prune and options.shard is not None:
            raise UsageError("--prune needs the whole source inventory, not one shard's",
                             hint="run the shards without --prune, then one ferry migrate --prune")
        src_access = options.source.access(self.src)
        dst_access = options.destination.access(self.dst)
        self.conns = connections_for(options, {self.src.host: src_access, self.dst.host: dst_access})
        self.src_api = HarborAPI(self.conns.client(self.src.host).http)
        self.dst_api = HarborAPI(self.conns.client(self.dst.host).http)
        self.journal = journal
        self.events = events
        # read before anything else: a malformed file is bad input, refused before a request is sent
        self.robot_secrets = load_robot_secrets(options.config.robot_secrets) if options.config.robot_secrets else {}
        self.src_charts, self.dst_charts = ChartMuseumAPI(self.src_api), ChartMuseumAPI(self.dst_api)

    async def close(self) -> None:
        await self.conns.close()

    async def _recognise(self, api: HarborAPI, side: str) -> tuple[bool, User | None]:
        """Harbor or plain registry; credentials checked either way before anything moves."""
        client = self.conns.client(api.host)
        if api.http.access.credential is not None:
            user = await api.current_user()
            if user is not None:
                return True, user
        if await api.is_harbor():
            return True, await api.check_credentials(side)
        await client.ping()  # a plain registry refuses wrong credentials with 401 here
        return False, None

    async def prepare(self) -> MigrationOutcome:
        """Recognise both ends, check credentials, inventory the source, plan the projects."""
        src_harbor = await self._recognise_source()
        dst_harbor, dst_user = await self._recognise_destination()
        self.dst_user = dst_user
        before = self.conns.stats.requests
        plan = select_plan(await self._inventory(src_harbor, dst_harbor), self.options.shard)
        if self.unchanged is not None:  # the incremental comparison saw every shard's refs
            self.unchanged = select_expected(self.unchanged, self.options.shard)
        outcome = MigrationOutcome(self.src, self.dst, src_harbor, dst_harbor, plan,
                                   inventory_requests=self.conns.stats.requests - before, shard=self.options.shard,
                                   unchanged=self.unchanged, to_prune=self.to_prune)  # issue 12
        outcome.projects = await self._plan_projects(plan.projects, src_harbor, dst_harbor, dst_user)
        whole = runs_whole_project_work(self.options.shard)
        if src_harbor and dst_harbor and self.options.config.enabled and not self.options.verify_only and whole:
            await self._plan_configuration(outcome, self.src_user, dst_user)
        # -- charts (issue 11)
        if src_harbor and self.options.charts and whole:
            outcome.charts = await self._plan_charts([p.name for p in plan.projects], dst_harbor)
        # -- end charts
        return outcome

    async def _plan_charts(self, projects: list[str], dst_harbor: bool) -> ChartOutcome | None:
        return await plan_charts(self.src_charts, self.dst_charts if dst_harbor else None, projects,
                                 self.options.selection, self.options.charts_as, self.dst.host)

    # The steps of ``prepare`` that an export (destination: a directory) and an import (source: a
    # directory) replace: ``ferry.airgap``.

    async def _recognise_source(self) -> bool:
        src_harbor, src_user = await self._recognise(self.src_api, "source")
        self.src_user = src_user
        if src_harbor and not (src_user and src_user.sysadmin):
            who = f"user {src_user.username!r}" if src_user else "an anonymous caller"
            log.warning("source Harbor %s: %s is not a Harbor administrator: private projects it is not a member of "
                        "are invisible to it and are not migrated, and project quotas cannot be read",
                        self.src.host, who)
        return src_harbor

    async def _recognise_destination(self) -> tuple[bool, User | None]:
        return await self._recognise(self.dst_api, "destination")

    async def _inventory(self, src_harbor: bool, dst_harbor: bool) -> MigrationPlan:
        sel = self.options.selection
        # --- live migration (issue 12) ---
        if self.options.prune and not (src_harbor and dst_harbor and self.incremental):
            raise UsageError("--prune needs a Harbor on both sides and compares listings (not with --force)",
                             hint="drop --prune")
        if src_harbor and dst_harbor and self.incremental:
            plan, self.unchanged, self.to_prune = await self._incremental_plan()
            return plan
        # --- end live migration ---
        if src_harbor:
            return await harbor_inventory(self.src_api, self.conns.client(self.src.host), self.dst.host, sel)
        return await catalog_inventory(self.conns.client(self.src.host), self.dst.host, sel,
                                       top_level_project="library" if dst_harbor else None)

    async def _source_limits(self) -> dict[str, int]:
        return await storage_limits(self.src_api)

    # -- configuration (issue 10): planned here, applied around the copy ---------------------

    async def _plan_configuration(self, outcome: MigrationOutcome, src_user: User | None,
                                  dst_user: User | None) -> None:
        """Plan what configuration moves; refuse an existing secrets file it would need before any write."""
        opts = self.options.config
        info = await self.dst_api.systeminfo()
        ctx = Context(self._config_api(), self.dst_api, self.options.selection.project_map,
                      dst_auth_mode=str(info.get("auth_mode") or "db_auth"),
                      create_users=opts.create_users or opts.system, robot_secrets=self.robot_secrets,
                      new_robot_secrets=SecretSink(opts.robot_secrets_out, "--robot-secrets-out"),
                      user_passwords=SecretSink(opts.user_passwords_out, "--user-passwords-out"))
        self.configuration = Configuration(ctx, opts, {po.name: po.destination for po in outcome.projects},
                                           system_level=self._system_level(src_user, dst_user),
                                           source=self._config_source())
        outcome.configuration = await self.configuration.plan(BEFORE)
        if self.options.dry_run:
            outcome.configuration += await self.configuration.plan(AFTER)
            return
        for sink in self.configuration.secret_files(BEFORE):
            sink.check()

    # What an import (``ferry.airgap``) replaces: the source is the export's description.
    def _config_api(self) -> HarborAPI | None:
        return self.src_api

    def _config_source(self) -> ConfigSource | None:
        return None  # the source Harbor, live

    def _system_level(self, src_user: User | None, dst_user: User | None) -> bool:
        return bool(src_user and src_user.sysadmin and dst_user and dst_user.sysadmin)

    async def configure(self, outcome: MigrationOutcome, phase: str) -> None:
        """Apply one phase of the configuration (BEFORE the images or AFTER them)."""
        if self.configuration is None:
            return
        done = [] if phase == BEFORE or outcome.configuration is None else outcome.configuration
        outcome.configuration = done + await self.configuration.apply(phase)
    # --- live migration (issue 12) ---
    @property
    def incremental(self) -> bool:
        """Compare the two Harbors' listings instead of asking each tag: not for --force (which
        copies again), a platform filter (digests change) or ``ferry verify`` (which reads the registry)."""
        opts = self.options
        return not (opts.engine.force or opts.engine.platforms.active or opts.verify_only)

    async def _incremental_plan(self) -> tuple[MigrationPlan, list[Expected], list[Deletion] | None]:
        sel = self.options.selection
        listing = await harbor_listing(self.src_api, sel)
        state = await diff.destination_state(self.dst_api, listing, sel)
        plan = await plan_listing(listing, self.conns.client(self.src.host), self.dst.host, sel,
                                  accessories_known=lambda repo, digests: state.accessories_known(repo, digests, sel))
        in_place = diff.apply(plan, state)
        return plan, in_place, deletions(plan, listing, state, sel) if self.options.prune else None

    async def preflight(self, outcome: MigrationOutcome) -> list[Finding]:
        """What the destination Harbor would refuse, before any copy (:mod:`ferry.preflight`)."""
        if not (outcome.destination_is_harbor and self.options.images and not self.options.verify_only):
            return []
        targets = [Target(po.name, po.destination, po.action is ProjectAction.EXISTS, po.storage_limit)
                   for po in outcome.projects]
        outcome.preflight = await preflight(self.dst_api, outcome.plan, targets, self.dst_user)
        return outcome.preflight

    async def prune(self, outcome: MigrationOutcome) -> None:
        """After the copy: delete what the source no longer has (``--prune``)."""
        if outcome.to_prune:
            outcome.prune_errors = await prune(self.dst_api, outcome.to_prune)
            outcome.pruned = len(outcome.to_prune) - len(outcome.prune_errors)
    # --- end live migration ---

    async def _plan_projects(self, projects: list[Project], src_harbor: bool, dst_harbor: bool,
                             user: User | None) -> list[ProjectOutcome]:
        sel = self.options.selection
        src_limits = await self._source_limits() if src_harbor and dst_harbor else {}
        dst_limits = await storage_limits(self.dst_api) if dst_harbor else {}

        async def plan(p: Project) -> ProjectOutcome:
            limit = src_limits.get(p.name)
            destination = sel.project_map.get(p.name, p.name)
            po = ProjectOutcome(p.name, destination, p.public, limit, ProjectAction.PLAIN_REGISTRY,
                                metadata=dict(p.metadata))
            if not dst_harbor:
                return po
            existing = await get_project(self.dst_api, po.destination)
            if existing is None:
                po.action = ProjectAction.CREATE
                return po
            po.action = ProjectAction.EXISTS
            if existing.public != p.public:
                po.differences.append(f"public: source {p.public}, destination {existing.public}")
            dest_limit = dst_limits.get(existing.name)
            if limit is not None and dest_limit is not None and dest_limit != limit:
                po.differences.append(f"storage_limit: source {limit}, destination {dest_limit}")
            return po

        out = await bounded_map(plan, projects)
        missing = [po.destination for po in out if po.action is ProjectAction.CREATE]
        if missing and dst_harbor and not (user and user.sysadmin):
            info = await self.dst_api.systeminfo()
            if info.get("project_creation_restriction") != "everyone":
                who = f"user {user.username!r}" if user else "an anonymous caller"
                raise AuthError(
                    f"destination Harbor {self.dst.host}: {who} may not create projects "
                    f"({', '.join(missing[:5])}{' …' if len(missing) > 5 else ''} missing)",
                    hint="use an administrator or a system robot account, or create the projects first",
                )
        return out

    async def create_projects(self, outcome: MigrationOutcome) -> None:
        for po in outcome.projects:
            if po.action is ProjectAction.CREATE:
                created = await create_project(self.dst_api, po.destination, public=po.public,
                                               storage_limit=po.storage_limit, metadata=po.metadata)
                po.action = ProjectAction.CREATED if created else ProjectAction.EXISTS

    async def dry_run(self, outcome: MigrationOutcome) -> None:
        """Count what is already in place; nothing is written."""
        for po in outcome.projects:
            if po.action is ProjectAction.CREATE:
                po.action = ProjectAction.WOULD_CREATE
        if outcome.unchanged is not None:  # Harbor to Harbor: the listings said what differs, no HEAD per tag
            outcome.to_copy = outcome.to_verify
            outcome.in_place = len(outcome.plan.expected) - len(outcome.to_copy)
        else:
            outcome.mismatches = await verify(self.conns, outcome.to_verify)
            outcome.in_place = len(outcome.plan.expected) - len(outcome.mismatches)
        if outcome.charts is not None:  # charts (issue 11)
            await self._charts(outcome.charts).verify()
            outcome.charts.in_place = len(outcome.charts.jobs) - len(outcome.charts.mismatches)

    async def copy(self, outcome: MigrationOutcome) -> None:
        engine = Engine(self.conns, self.options.engine, journal=self.journal, events=self.events)
        images = await engine.run(outcome.plan.images)
        accessories = await engine.run(outcome.plan.accessories)
        images.records.extend(accessories.records)
        images.seconds += accessories.seconds
        images.requests += accessories.requests
        images.http_retries += accessories.http_retries
        outcome.run = images
        if outcome.charts is not None:  # charts (issue 11): after the images
            await self._charts(outcome.charts).run()

    async def verify(self, outcome: MigrationOutcome) -> None:
        outcome.mismatches = await verify(self.conns, outcome.to_verify)
        if outcome.charts is not None:  # charts (issue 11)
            await self._charts(outcome.charts).verify()

    def _charts(self, charts: ChartOutcome) -> ChartCopier:
        return ChartCopier(charts, self.src_charts, self.dst_charts, self.conns, self.journal)
