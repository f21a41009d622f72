"""The configuration a Harbor migration moves besides images, walked kind by kind in dependency order.

Order (docs/decisions.md): users and groups → (projects, created by the migration) → labels →
members → robots → project settings, allowlists, retention, webhooks → (images) → artifact labels →
immutability rules, repository descriptions. Every kind is planned (read on both sides, compared)
before the first write of its phase, so that a secrets file that would be needed and already exists,
or a refusal known in advance, is reported before anything is created; the report entries say per
project and kind what was created, updated (with the differences), left unchanged, or could not be.

The source is a :class:`ConfigSource`: a live Harbor (``migrate``), or the neutral description an
export wrote (``import``). ``ferry export`` reads a live source into that description
(:func:`describe_configuration`): the same read, so migrate = read + apply, export = read + write,
import = described read + apply.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ferry.errors import FerryError, UsageError
from ferry.harbor import manual
from ferry.harbor.client import HarborAPI
from ferry.harbor.descriptions import Descriptions
from ferry.harbor.immutability import Immutability
from ferry.harbor.labels import ArtifactLabels, Labels
from ferry.harbor.members import Members
from ferry.harbor.metadata import Allowlist, Metadata
from ferry.harbor.projects import get_project
from ferry.harbor.resource import (
    CANNOT,
    CREATE,
    FAILED,
    MANUAL,
    SYSTEM,
    UNCHANGED,
    UPDATE,
    CannotApply,
    Context,
    Item,
    Kind,
    Place,
    differences,
)
from ferry.harbor.retention import Retention
from ferry.harbor.robots import Robots
from ferry.harbor.secrets import SecretSink
from ferry.harbor.users import Groups, Users
from ferry.harbor.webhooks import Webhooks
from ferry.plan.inventory import bounded_map
from ferry.plan.shard import Shard, runs_whole_project_work

log = logging.getLogger(__name__)

#: What --skip-config accepts; "labels" covers artifact labels too.
KINDS = ("metadata", "allowlist", "members", "robots", "retention", "immutability", "labels", "webhooks",
         "descriptions", "users", "groups")
DONE = {CREATE: "created", UPDATE: "updated"}
#: Kinds whose objects belong to one repository (the repository inside the project, from the object's
#: name): a shard moves those of its own repositories, shard 0 everything else (``in_shard``).
PER_REPOSITORY = {"artifact-labels": lambda name: name.partition("@")[0], "descriptions": lambda name: name}
BEFORE, AFTER = "before images", "after images"


def in_shard(shard: Shard | None, kind: str, project: str | None, name: str) -> bool:
    """Whether a shard's export or import carries this object (docs/decisions.md: shards)."""
    repository = PER_REPOSITORY.get(kind)
    if shard is None or repository is None:
        return runs_whole_project_work(shard)
    return project is not None and shard.owns(f"{project}/{repository(name)}")


def parse_skip(values: Iterable[str]) -> frozenset[str]:
    kinds = frozenset(k.strip() for v in values for k in v.split(",") if k.strip())
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise UsageError(f"--skip-config: unknown kind {', '.join(unknown)}", hint=f"one of {', '.join(KINDS)}")
    return kinds


@dataclass(frozen=True, slots=True)
class ConfigOptions:
    enabled: bool = True  # False with --no-config
    skip: frozenset[str] = frozenset()
    system: bool = False
    create_users: bool = False
    robot_secrets: str | None = None
    robot_secrets_out: str = "robot-secrets.json"
    user_passwords_out: str = "user-passwords.json"


@dataclass(slots=True)
class ConfigEntry:
    """One object of the report: ``action`` is create/update/unchanged/cannot/manual in a plan and
    created/updated/unchanged/cannot/failed/manual after a run."""

    project: str  # the destination project, or "(system)"
    kind: str
    name: str
    action: str
    differences: list[str] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "action": self.action, "differences": self.differences, "note": self.note}

    @property
    def failed(self) -> bool:
        return self.action in (CANNOT, FAILED)


@dataclass(slots=True)
class _Planned:
    entry: ConfigEntry
    kind: Kind
    source_project: str | None
    body: dict[str, Any] | None = None
    source: Item | None = None
    existing: Item | None = None


@dataclass(frozen=True, slots=True)
class _Step:
    kind: Kind
    phase: str
    system: bool  # the system place instead of every project


def steps(options: ConfigOptions, system_level: bool) -> list[_Step]:
    """The kinds to walk, in dependency order, without the skipped ones."""
    out = []
    if options.system:
        out += [_Step(Users(), BEFORE, True), _Step(Groups(), BEFORE, True), _Step(Allowlist(), BEFORE, True)]
    if system_level:
        out += [_Step(Labels(), BEFORE, True)]
    out += [_Step(Labels(), BEFORE, False), _Step(Members(), BEFORE, False)]
    if system_level:
        out += [_Step(Robots(), BEFORE, True)]
    out += [_Step(Robots(), BEFORE, False), _Step(Metadata(), BEFORE, False), _Step(Allowlist(), BEFORE, False),
            _Step(Retention(), BEFORE, False), _Step(Webhooks(), BEFORE, False),
            _Step(ArtifactLabels(), AFTER, False), _Step(Immutability(), AFTER, False),
            _Step(Descriptions(), AFTER, False)]
    if options.system:
        out += [_Step(manual.REGISTRIES, BEFORE, True), _Step(manual.REPLICATION, BEFORE, True)]
    skip = set(options.skip) | ({"artifact-labels"} if "labels" in options.skip else set())
    return [s for s in out if s.kind.name not in skip]


async def place_at(api: HarborAPI, project: str | None) -> Place | None:
    """A project's place at one Harbor (None when it does not exist there), or the system's."""
    if project is None:
        return Place()
    p = await get_project(api, project)
    return Place(project, p.project_id) if p else None


class ConfigSource(Protocol):
    async def read(self, kind: Kind, project: str | None) -> dict[str, Item]:
        """The source's objects of ``kind`` in ``project`` (None: the system), as :meth:`Kind.read` gives them."""
        ...


class LiveSource:
    """A source Harbor, read through its API."""

    def __init__(self, api: HarborAPI) -> None:
        self.api = api

    async def read(self, kind: Kind, project: str | None) -> dict[str, Item]:
        place = await place_at(self.api, project)
        return await kind.read(self.api, place) if place else {}


class DescribedSource:
    """The configuration an export wrote (:func:`describe_configuration`): kind → place → name → object."""

    def __init__(self, kinds: dict[str, dict[str, dict[str, dict[str, Any]]]], shard: Shard | None = None) -> None:
        self.kinds = kinds
        self.shard = shard

    async def read(self, kind: Kind, project: str | None) -> dict[str, Item]:
        objects = self.kinds.get(kind.name, {}).get(project or SYSTEM, {})
        return {name: Item(o.get("body") or {}, o.get("ref")) for name, o in objects.items()
                if in_shard(self.shard, kind.name, project, name)}


async def describe_configuration(api: HarborAPI, options: ConfigOptions, projects: list[str], *,
                                 system_level: bool, shard: Shard | None = None
                                 ) -> tuple[dict[str, Any], list[ConfigEntry]]:
    """Every kind of every project (and the system's) read from ``api`` into the neutral, JSON-ready
    description an import applies: kind → place (project or "(system)") → name → ``{body, ref}``, each
    ``ref`` reduced to what applying needs (:meth:`Kind.portable`: no secrets). A kind that cannot be
    read is an entry of the second list (``cannot``), and absent from the description. With ``shard``,
    only what that shard carries (:func:`in_shard`)."""
    source = LiveSource(api)
    kinds: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    refused: list[ConfigEntry] = []

    async def one(step: _Step, project: str | None) -> None:
        try:
            items = await source.read(step.kind, project)
            objects = {name: {"body": item.body, "ref": await step.kind.portable(api, item)}
                       for name, item in sorted(items.items()) if in_shard(shard, step.kind.name, project, name)}
        except FerryError as e:
            refused.append(ConfigEntry(project or SYSTEM, step.kind.name, "*", CANNOT, note=f"reading the source: {e}"))
            return
        if objects:
            kinds.setdefault(step.kind.name, {})[project or SYSTEM] = objects

    places: list[str | None] = list(projects)
    whole = runs_whole_project_work(shard)
    wanted = [s for s in steps(options, system_level) if whole or s.kind.name in PER_REPOSITORY]
    await bounded_map(lambda job: one(*job), [(s, p) for s in wanted for p in ([None] if s.system else places)])
    return {"system": options.system, "system_level": system_level, "kinds": kinds}, refused


class Configuration:
    """Plans and applies the configuration of the given projects (source name → destination name)."""

    def __init__(self, ctx: Context, options: ConfigOptions, projects: dict[str, str], *,
                 system_level: bool, source: ConfigSource | None = None) -> None:
        self.ctx = ctx
        self.ctx.projects = projects
        self.projects = projects
        self.source: ConfigSource = source or LiveSource(self._source_api())
        self.steps = steps(options, system_level)
        self.entries: list[ConfigEntry] = []
        self._planned: dict[str, list[_Planned]] = {}

    def _source_api(self) -> HarborAPI:
        if self.ctx.src is None:
            raise UsageError("the configuration has neither a source Harbor nor an export to read")
        return self.ctx.src

    # -- planning -------------------------------------------------------------------------
    async def plan(self, phase: str) -> list[ConfigEntry]:
        """Read and compare every kind of ``phase``; nothing is written."""
        planned: list[_Planned] = []
        for step in (s for s in self.steps if s.phase == phase):
            planned += await self._plan_step(step)
        self._planned[phase] = planned
        return [p.entry for p in planned]

    async def _plan_step(self, step: _Step) -> list[_Planned]:
        scopes: list[str | None] = [None] if step.system else list(self.projects)
        groups = await bounded_map(lambda src: self._plan_one(step.kind, src), scopes)
        return [p for group in groups for p in group]

    async def _plan_one(self, kind: Kind, source_project: str | None) -> list[_Planned]:
        label = self.projects[source_project] if source_project else "(system)"
        dst_project = self.projects[source_project] if source_project else None
        try:
            source = await self.source.read(kind, source_project)
        except FerryError as e:
            return [_Planned(ConfigEntry(label, kind.name, "*", CANNOT, note=f"reading the source: {e}"), kind,
                             source_project)]
        if getattr(kind, "manual", False):
            return [_Planned(ConfigEntry(label, kind.name, name, MANUAL, note=getattr(kind, "why", "")), kind,
                             source_project) for name in sorted(source)]
        try:
            dst_place = await place_at(self.ctx.dst, dst_project)
            existing = await kind.read(self.ctx.dst, dst_place) if dst_place else {}
        except FerryError as e:
            return [_Planned(ConfigEntry(label, kind.name, "*", CANNOT, note=f"reading the destination: {e}"),
                             kind, source_project)]
        out = []
        for name, item in sorted(source.items()):
            body = kind.translate(item.body, self.ctx)
            have = existing.get(name)
            entry = ConfigEntry(label, kind.name, name, CREATE if have is None else UPDATE)
            if have is not None:
                entry.differences = differences(body, have.body)
                if not entry.differences:
                    entry.action = UNCHANGED
            if entry.action != UNCHANGED:
                reason = await kind.blocker(self.ctx, dst_place or Place(dst_project), name, body)
                if reason:
                    entry.action, entry.note = CANNOT, reason
            out.append(_Planned(entry, kind, source_project, body, item, have))
        return out

    def secret_files(self, phase: str) -> list[SecretSink]:
        """The secrets files the planned creations of ``phase`` will write."""
        sinks = {id(s): s for p in self._planned.get(phase, []) if p.entry.action == CREATE and p.source
                 for s in [p.kind.secret_file(self.ctx, p.source)] if s is not None}
        return list(sinks.values())

    # -- applying -------------------------------------------------------------------------
    async def apply(self, phase: str) -> list[ConfigEntry]:
        """Plan and apply ``phase`` step by step in order, each step read afresh (after the users,
        groups and projects an earlier step created); an object the destination refuses is
        reported with its reason and the rest continues."""
        entries = []
        for step in (s for s in self.steps if s.phase == phase):
            planned = await self._plan_step(step)
            by_project: dict[str | None, list[_Planned]] = {}
            for p in planned:
                by_project.setdefault(p.source_project, []).append(p)
            await bounded_map(self._apply_project, list(by_project.values()))
            entries += [p.entry for p in planned]
        self.entries.extend(entries)
        return entries

    async def _apply_project(self, planned: list[_Planned]) -> None:
        dst_project = self.projects[planned[0].source_project] if planned[0].source_project else None
        place: Place | None = None
        for p in planned:
            if p.entry.action not in (CREATE, UPDATE) or p.body is None or p.source is None:
                continue
            try:
                place = place or await place_at(self.ctx.dst, dst_project)
                if place is None:
                    raise CannotApply(f"project {dst_project} does not exist at the destination")
                p.entry.note = await p.kind.apply(self.ctx, place, p.entry.name, p.body, p.source, p.existing)
                p.entry.action = DONE[p.entry.action]
            except CannotApply as e:
                p.entry.action, p.entry.note = CANNOT, str(e)
            except FerryError as e:
                p.entry.action, p.entry.note = FAILED, str(e)
                log.warning("%s %s %s: %s", p.entry.project, p.entry.kind, p.entry.name, e)
