"""Incremental migration between two Harbors: the destination's listing against the source's plan.

Harbor's artifact listings carry every tag's digest, so a ref whose destination tag (or digest)
already holds the source digest needs no request at all: not the per-tag HEAD of a copy, not the
HEAD of a verification. Only what differs goes to the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ferry.concurrency import bounded_map
from ferry.harbor.artifacts import Artifact, list_artifacts, list_repositories
from ferry.harbor.client import HarborAPI
from ferry.harbor.projects import list_projects
from ferry.plan.inventory import Expected, HarborListing, MigrationPlan, Selection
from ferry.refs import RegistryRef


@dataclass(slots=True)
class DestinationState:
    """What the destination Harbor holds in the repositories a selection maps to."""

    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # repository → tag → digest
    digests: dict[str, set[str]] = field(default_factory=dict)  # repository → artifacts and accessories

    def add(self, repository: str, artifacts: list[Artifact]) -> None:
        tags = self.tags.setdefault(repository, {})
        digests = self.digests.setdefault(repository, set())
        for art in artifacts:
            digests.add(art.digest)
            digests.update(a.digest for a in art.accessories)
            digests.update(art.references)
            tags.update(dict.fromkeys(art.tags, art.digest))

    def holds(self, ref: RegistryRef, digest: str | None) -> bool:
        """The destination ref already names ``digest`` (never true for an unknown digest)."""
        if digest is None:
            return False
        if ref.tag:
            return self.tags.get(ref.repository, {}).get(ref.tag) == digest
        return digest in self.digests.get(ref.repository, set())

    def accessories_known(self, source_repo: str, digests: set[str], sel: Selection) -> bool:
        return digests <= self.digests.get(sel.dest_repository(source_repo), set())


async def destination_state(api: HarborAPI, source: HarborListing, sel: Selection) -> DestinationState:
    """The destination's artifacts in the repositories the source's selected ones map to: the
    project list, then each mapped project's repository and artifact listings (pages only)."""
    existing = {p.name for p in await list_projects(api)}
    mapped = [d for d in dict.fromkeys(sel.project_map.get(p.name, p.name) for p in source.projects) if d in existing]
    wanted = {sel.dest_repository(r) for repos in source.repositories.values() for r in repos}
    repos_by_project = await bounded_map(lambda name: list_repositories(api, name), mapped)
    present = [r for repos in repos_by_project for r in repos if r in wanted]
    state = DestinationState()
    for repo, arts in zip(present, await bounded_map(lambda r: list_artifacts(api, r), present), strict=True):
        state.add(repo, arts)
    return state


@dataclass(slots=True)
class Difference:
    in_place: list[Expected]  # already at the destination with the source digest: nothing to do
    to_check: list[Expected]  # to verify against the destination registry after the copy


def apply(plan: MigrationPlan, state: DestinationState) -> Difference:
    """Drop from ``plan`` every job the destination already holds; what is left is what differs."""
    held = {str(e.destination) for e in plan.expected if state.holds(e.destination, e.digest)}
    plan.images = [j for j in plan.images if str(j.destination) not in held]
    plan.accessories = [j for j in plan.accessories if str(j.destination) not in held]
    return Difference(in_place=[e for e in plan.expected if str(e.destination) in held],
                      to_check=[e for e in plan.expected if str(e.destination) not in held])
