"""Incremental migration between two Harbors: the destination's listing against the source's plan.

Harbor's artifact listings carry every tag's digest, so a ref whose destination tag (or digest)
already holds the source digest needs no request at all: not the per-tag HEAD of a copy, not the
HEAD of a verification. Only what differs goes to the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ferry.concurrency import bounded_map
from ferry.harbor.artifacts import Artifact, list_artifacts, list_repositories
from ferry.harbor.client import HarborAPI
from ferry.harbor.projects import list_projects
from ferry.plan.inventory import HarborListing, MigrationPlan, Selection
from ferry.plan.model import Expected
from ferry.refs import RegistryRef


@dataclass(slots=True)
class DestinationState:
    """What the destination Harbor holds in the repositories a selection maps to."""

    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # repository → tag → digest
    digests: dict[str, set[str]] = field(default_factory=dict)  # repository → artifacts and accessories
    artifacts: dict[str, Sequence[Artifact]] = field(default_factory=dict)  # repository → as listed

    def add(self, repository: str, artifacts: Sequence[Artifact]) -> None:
        self.artifacts[repository] = artifacts
        tags = self.tags.setdefault(repository, {})
        digests = self.digests.setdefault(repository, set())
        for art in artifacts:
            digests.add(art.digest)
            digests.update(a.digest for a in art.accessories)
            digests.update(art.references)
            tags.update(dict.fromkeys(art.tags, art.digest))

    def holds(self, entry: Expected) -> bool:
        """The entry's destination already names its digest (never true for an unknown digest). A
        repository the destination does not have holds nothing: no ref is made for it."""
        repo, _ = entry.destination_parts()
        if entry.packed_digest is None or getattr(repo, "repository", None) not in self.tags:
            return False
        ref, digest = entry.destination, entry.digest
        assert isinstance(ref, RegistryRef)
        if ref.tag:
            return self.tags[ref.repository].get(ref.tag) == digest
        return digest in self.digests.get(ref.repository, set())

    def accessories_known(self, source_repo: str, digests: set[str], sel: Selection) -> bool:
        return digests <= self.digests.get(sel.dest_repository(source_repo), set())


async def destination_state(api: HarborAPI, source: HarborListing, sel: Selection) -> DestinationState:
    """The destination's artifacts in the repositories of the selection (those the source's selected
    ones map to, and those of the mapped projects a selected source repository would map to but
    that the source no longer has): the project list, then repository and artifact pages only."""
    existing = {p.name for p in await list_projects(api)}
    pairs = [(p.name, sel.project_map.get(p.name, p.name)) for p in source.projects]
    pairs = [(src, dst) for src, dst in pairs if dst in existing]
    repos_by_project = await bounded_map(lambda pair: list_repositories(api, pair[1]), pairs)
    present = [r for (src, _dst), repos in zip(pairs, repos_by_project, strict=True) for r in repos
               if sel.repo_selected(f"{src}/{r.partition('/')[2]}")]
    state = DestinationState()
    for repo, arts in zip(present, await bounded_map(lambda r: list_artifacts(api, r), present), strict=True):
        state.add(repo, arts)
    return state


def apply(plan: MigrationPlan, state: DestinationState) -> list[Expected]:
    """Drop from ``plan`` every job the destination already holds and return those entries; what is
    left is what differs. A Harbor plan's jobs are their own verification entries, so an entry held
    drops its job."""
    in_place = [e for e in plan.expected if state.holds(e)]
    if in_place:
        held = set(map(id, in_place))
        plan.images = [j for j in plan.images if id(j) not in held]
        plan.accessories = [j for j in plan.accessories if id(j) not in held]
    return in_place
