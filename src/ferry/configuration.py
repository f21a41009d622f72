"""The configuration a Harbor migration moves besides images, walked kind by kind in dependency order.

Order (docs/decisions.md): users and groups → (projects, created by the migration) → labels →
members → robots → project settings, allowlists, retention, webhooks → (images) → artifact labels →
immutability rules, repository descriptions. Every kind is planned (read on both sides, compared)
before the first write of its phase, so that a secrets file that would be needed and already exists,
or a refusal known in advance, is reported before anything is created; the report entries say per
project and kind what was created, updated (with the differences), left unchanged, or could not be.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ferry.errors import FerryError, UsageError
from ferry.harbor import manual
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

log = logging.getLogger(__name__)

#: What --skip-config accepts; "labels" covers artifact labels too.
KINDS = ("metadata", "allowlist", "members", "robots", "retention", "immutability", "labels", "webhooks",
         "descriptions", "users", "groups")
DONE = {CREATE: "created", UPDATE: "updated"}
BEFORE, AFTER = "before images", "after images"


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


class Configuration:
    """Plans and applies the configuration of the given projects (source name → destination name)."""

    def __init__(self, ctx: Context, options: ConfigOptions, projects: dict[str, str], *,
                 system_level: bool) -> None:
        self.ctx = ctx
        self.ctx.projects = projects
        self.projects = projects
        self.steps = steps(options, system_level)
        self.entries: list[ConfigEntry] = []
        self._planned: dict[str, list[_Planned]] = {}

    # -- places ---------------------------------------------------------------------------
    async def _place(self, api_side: str, project: str | None) -> Place | None:
        """The place at one side; None when the destination project does not exist (yet)."""
        if project is None:
            return Place()
        api = self.ctx.src if api_side == "source" else self.ctx.dst
        p = await get_project(api, project)
        return Place(project, p.project_id) if p else None

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
            src_place = await self._place("source", source_project)
            source = await kind.read(self.ctx.src, src_place) if src_place else {}
        except FerryError as e:
            return [_Planned(ConfigEntry(label, kind.name, "*", CANNOT, note=f"reading the source: {e}"), kind,
                             source_project)]
        if getattr(kind, "manual", False):
            return [_Planned(ConfigEntry(label, kind.name, name, MANUAL, note=getattr(kind, "why", "")), kind,
                             source_project) for name in sorted(source)]
        try:
            dst_place = await self._place("destination", dst_project)
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
                place = place or await self._place("destination", dst_project)
                if place is None:
                    raise CannotApply(f"project {dst_project} does not exist at the destination")
                p.entry.note = await p.kind.apply(self.ctx, place, p.entry.name, p.body, p.source, p.existing)
                p.entry.action = DONE[p.entry.action]
            except CannotApply as e:
                p.entry.action, p.entry.note = CANNOT, str(e)
            except FerryError as e:
                p.entry.action, p.entry.note = FAILED, str(e)
                log.warning("%s %s %s: %s", p.entry.project, p.entry.kind, p.entry.name, e)
