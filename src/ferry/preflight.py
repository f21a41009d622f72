"""Pre-flight checks of a destination Harbor, before any copy (and in ``--dry-run``): what it would
refuse. Each finding says what and how to fix it; any of them stops the run before it starts unless
``--ignore-preflight`` (``--force`` already means "copy again").

- read-only: the destination Harbor is in read-only mode (every push refused);
- push: the destination user has no push role in an existing project it would copy into;
- quota: the bytes to copy into a project exceed its quota headroom. The bytes are the source's
  artifact sizes, each distinct artifact once: an upper bound, since layers shared between artifacts
  or already at the destination are counted again;
- immutable: a tag to push exists at the destination with another digest and an immutable rule
  protects it (Harbor refuses a push to a protected existing tag with 412).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from itertools import chain
from typing import Any, cast

from rich.filesize import decimal

from ferry.concurrency import bounded_map
from ferry.digests import Packed
from ferry.harbor.client import HarborAPI, User
from ferry.harbor.destination import PUSH_ROLES, Quota, immutable_tags, project_quota, project_roles
from ferry.harbor.system import is_read_only
from ferry.plan.inventory import MigrationPlan
from ferry.plan.model import Expected, Job
from ferry.refs import RegistryRef


@dataclass(frozen=True, slots=True)
class Finding:
    check: str  # read-only, push, quota, immutable
    project: str  # destination project ("" for the whole Harbor)
    message: str
    fix: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Target:
    """A destination project the plan copies into."""

    source: str  # the source project (the plan's jobs are keyed by it)
    destination: str
    exists: bool
    storage_limit: int | None  # what a project to be created gets (the source's)


async def preflight(api: HarborAPI, plan: MigrationPlan, targets: list[Target], user: User | None) -> list[Finding]:
    """Every finding, the whole Harbor's first, then project by project in plan order."""
    findings: list[Finding] = []
    if await is_read_only(api):
        findings.append(Finding("read-only", "", f"destination Harbor {api.host} is in read-only mode: every push "
                                "would be refused", "an administrator turns it off (Configuration → System "
                                "Settings → Repository Read Only)"))
    # by project, refs and digests made for one project at a time: never a string and a ref per tag at once
    jobs: dict[str, list[Job]] = defaultdict(list)
    for job in chain(plan.images, plan.accessories):
        jobs[job.origin].append(job)
    # the entries are needed where a job holds no digest (an import) or a tag may be protected
    expected: dict[str, list[Expected]] = defaultdict(list)
    if any(t.exists for t in targets) or any(j.packed_digest is None for j in chain(plan.images, plan.accessories)):
        for e in plan.expected:
            expected[e.project].append(e)

    async def check(t: Target) -> list[Finding]:
        own = [j for j in jobs.get(t.source, ()) if isinstance(j.destination_parts()[0], RegistryRef)]
        if not own:
            return []
        out = []
        if t.exists and user is not None and not user.sysadmin:
            roles = await project_roles(api, t.destination)
            if not (roles or set()) & PUSH_ROLES:
                out.append(Finding("push", t.destination, f"user {user.username!r} may not push to destination "
                                   f"project {t.destination}", f"make {user.username!r} a developer, maintainer or "
                                   "project admin of it, or use an account that may push"))
        wanted = _wanted(own, expected.get(t.source, ()))
        out += _quota(t, await project_quota(api, t.destination) if t.exists else _new_quota(t), wanted, plan)
        if t.exists:  # refs made only for a project that exists: only there can a tag be protected
            refs = [cast(RegistryRef, j.destination) for j in own]
            digests = {str(e.destination): e.digest for e in expected.get(t.source, ())}
            out += await _immutable(api, t.destination, refs, digests)
        return out

    for found in await bounded_map(check, targets):
        findings += found
    return findings


def _new_quota(t: Target) -> Quota | None:
    return None if t.storage_limit is None else Quota(t.storage_limit, 0)


def _wanted(jobs: list[Job], expected: Iterable[Expected]) -> set[Packed]:
    """The digests ``jobs`` push, each once: a job's own, or its verification entry's (an import's job
    copies a layout entry to a tag, and its entry holds the digest)."""
    wanted = {j.packed_digest for j in jobs if j.packed_digest is not None}
    if any(j.packed_digest is None for j in jobs):
        by_destination = {e.destination_parts(): e.packed_digest for e in expected}
        wanted.update(d for j in jobs if j.packed_digest is None
                      and (d := by_destination.get(j.destination_parts())) is not None)
    return wanted


def _quota(t: Target, quota: Quota | None, wanted: set[Packed], plan: MigrationPlan) -> list[Finding]:
    headroom = quota.headroom if quota else None
    if quota is None or headroom is None:
        return []
    size = plan.listed_bytes(t.source, wanted)
    if size <= headroom:
        return []
    return [Finding("quota", t.destination, f"up to {decimal(size)} to copy into {t.destination}, which has "
                    f"{decimal(headroom)} left of its {decimal(quota.hard)} quota",
                    f"raise its quota to at least {decimal(quota.used + size)} (Projects → {t.destination} → "
                    "Summary → quota), or copy it in parts with --repo")]


async def _immutable(api: HarborAPI, project: str, refs: list[RegistryRef],
                     digests: dict[str, str | None]) -> list[Finding]:
    by_repo: dict[str, list[RegistryRef]] = defaultdict(list)
    for r in refs:
        if r.tag:
            by_repo[r.repository].append(r)

    async def repo(name: str) -> list[Finding]:
        protected = await immutable_tags(api, name)
        return [Finding("immutable", project, f"{name}:{r.tag} exists at the destination as {protected[r.tag][:19]}… "
                        "and an immutable rule protects it: the push of the source's digest would be refused",
                        "disable the project's immutable rule while migrating (Policy → Tag Immutability), or "
                        "leave the tag out (--exclude-tag)")
                for r in by_repo[name] if r.tag in protected and protected[r.tag] != digests.get(str(r))]

    return [f for found in await bounded_map(repo, list(by_repo)) for f in found]
