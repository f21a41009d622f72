"""The interface every configuration kind implements, and the one comparison they all share.

A kind (members, robots, labels …) reads its objects at one *place* of a Harbor (a project, or the
system), normalised: keyed by a name that is the same on both Harbors, with a ``body`` of only the
settings that should be equal (ids, timestamps, project ids and secrets left out) and a ``ref`` for
what a later write needs (the destination's id). The source's body is translated for the destination
(project names mapped by ``--map``), compared field by field, and applied when it differs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ferry.harbor.client import project_path

if TYPE_CHECKING:
    from ferry.harbor.client import HarborAPI
    from ferry.harbor.secrets import SecretSink

SYSTEM = "(system)"  # the place name of system-level objects in reports

# Report actions of one configuration object.
CREATE, UPDATE, UNCHANGED, CANNOT, FAILED, MANUAL = "create", "update", "unchanged", "cannot", "failed", "manual"


class CannotApply(Exception):
    """The destination cannot take the object as it is; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where a kind's objects live on one Harbor: a project (name and id) or the system (None)."""

    project: str | None = None
    project_id: int = 0

    @property
    def label(self) -> str:
        return self.project or SYSTEM

    def api_path(self, below: str) -> str:
        """``/projects/<name>/<below>``: where Harbor keeps a project's objects of one kind."""
        return f"{project_path(self.project or '')}/{below}"


@dataclass(slots=True)
class Item:
    body: dict[str, Any]
    ref: Any = None  # what a write needs: the object's id at that Harbor, the raw answer …


@dataclass(slots=True)
class Context:
    """What the kinds share during one migration."""

    src: HarborAPI | None  # None when the source is an export on disk (ferry import)
    dst: HarborAPI
    project_map: Mapping[str, str] = field(default_factory=dict)
    dst_auth_mode: str = "db_auth"
    create_users: bool = False
    robot_secrets: Mapping[str, str] = field(default_factory=dict)  # source full name → known secret
    new_robot_secrets: SecretSink | None = None
    user_passwords: SecretSink | None = None
    projects: Mapping[str, str] = field(default_factory=dict)  # the run's source project → destination
    dst_users: set[str] | None = None  # user names at the destination, read once on demand
    user_creation: asyncio.Lock = field(default_factory=asyncio.Lock)  # two projects' members, one user

    def project(self, name: str) -> str:
        return self.project_map.get(name, name)


class Kind(Protocol):
    """One kind of configuration object (one module each)."""

    name: str  # as in --skip-config

    async def read(self, api: HarborAPI, place: Place) -> dict[str, Item]:
        """Every object of this kind at ``place``, normalised, by name."""
        ...

    def translate(self, body: dict[str, Any], ctx: Context) -> dict[str, Any]:
        """The source's body as the destination should hold it (projects renamed …)."""
        ...

    async def blocker(self, ctx: Context, place: Place, name: str, body: dict[str, Any]) -> str | None:
        """Why the object cannot be applied at the destination (checked in dry runs too), or None."""
        ...

    def secret_file(self, ctx: Context, source: Item) -> SecretSink | None:
        """The secrets file creating the object writes to, checked before anything is written."""
        ...

    async def portable(self, api: HarborAPI, source: Item) -> Any:
        """What :meth:`apply` needs of a source object's ``ref``, JSON-ready and without secrets, so
        that an export can be applied with no source at hand (``ferry import``)."""
        ...

    async def apply(self, ctx: Context, place: Place, name: str, body: dict[str, Any], source: Item,
                    existing: Item | None) -> str:
        """Create or update the object at the destination; a note for the report ('' for none).
        Raises :class:`CannotApply` or a :class:`~ferry.errors.FerryError` when refused."""
        ...


class BaseKind:
    """Defaults for the optional steps of :class:`Kind`."""

    name = ""

    def translate(self, body: dict[str, Any], ctx: Context) -> dict[str, Any]:
        return body

    async def blocker(self, ctx: Context, place: Place, name: str, body: dict[str, Any]) -> str | None:
        return None

    def secret_file(self, ctx: Context, source: Item) -> SecretSink | None:
        return None

    async def portable(self, api: HarborAPI, source: Item) -> Any:
        return None  # apply needs nothing of the source's ref


def show(value: Any) -> str:
    """A compact one-line rendering of a setting for reports."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def differences(desired: Mapping[str, Any], existing: Mapping[str, Any]) -> list[str]:
    """``field: source X, destination Y`` for every field of the source's body the destination holds
    differently; fields only the destination has (its own defaults) are not the source's business."""
    return [f"{k}: source {show(v)}, destination {show(existing.get(k))}"
            for k, v in sorted(desired.items()) if existing.get(k) != v]


def selector(s: Any) -> dict[str, str]:
    """A retention or immutability selector without Harbor's empty extras."""
    s = s if isinstance(s, dict) else {}
    out = {"kind": str(s.get("kind", "")), "decoration": str(s.get("decoration", "")),
           "pattern": str(s.get("pattern", ""))}
    if s.get("extras"):
        out["extras"] = str(s["extras"])
    return out
