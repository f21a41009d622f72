"""``ferry migrate --prune``: delete at the destination what the source no longer has.

Only inside the selection: the repositories of the selected projects that a selected source
repository maps to (``plan.diff.destination_state``), and of them only selected tags. A tag is
deleted when the source has no such tag; a whole artifact when, besides, the source has no
artifact of that digest in the repository and every tag it carries goes (untagged ones only with
``--include-untagged``). Accessories go with their subject, as Harbor deletes them. The source
inventory is complete or the run has stopped before this: a listing that fails fails the run.
"""

from __future__ import annotations

from dataclasses import dataclass

from ferry.concurrency import bounded_map
from ferry.errors import FerryError
from ferry.harbor.client import HarborAPI, repository_path
from ferry.plan.diff import DestinationState
from ferry.plan.inventory import HarborListing, MigrationPlan, Selection


@dataclass(frozen=True, slots=True)
class Deletion:
    repository: str  # at the destination
    digest: str
    tag: str | None  # None: the whole artifact

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}" if self.tag else f"{self.repository}@{self.digest}"


def deletions(plan: MigrationPlan, listing: HarborListing, state: DestinationState, sel: Selection) -> list[Deletion]:
    source_tags = {(e.destination.repository, e.destination.tag) for e in plan.expected if e.destination.tag}
    source_digests: dict[str, set[str]] = {}
    for repo, arts in listing.artifacts.items():
        held = source_digests.setdefault(sel.dest_repository(repo), set())
        for art in arts:
            held.update((art.digest, *art.references, *(a.digest for a in art.accessories)))
    out: list[Deletion] = []
    for repo, arts in sorted(state.artifacts.items()):
        for art in arts:
            gone = [t for t in art.tags if sel.tag_selected(t) and (repo, t) not in source_tags]
            whole = (art.digest not in source_digests.get(repo, set()) and len(gone) == len(art.tags)
                     and (bool(art.tags) or sel.include_untagged))
            if whole:
                out.append(Deletion(repo, art.digest, None))
            else:
                out.extend(Deletion(repo, art.digest, t) for t in gone)
    return out


async def delete(api: HarborAPI, d: Deletion) -> str | None:
    """Delete one tag or artifact; None when done, else why not."""
    path = f"{repository_path(d.repository)}/artifacts/{d.digest}" + (f"/tags/{d.tag}" if d.tag else "")
    try:
        await api.send("DELETE", path, None, ok=(200,), allow=(404,), what=f"delete {d}")
    except FerryError as e:
        return str(e)
    return None


async def prune(api: HarborAPI, todo: list[Deletion]) -> dict[str, str]:
    """Every deletion done; the ones refused, with the reason."""
    errors = await bounded_map(lambda d: delete(api, d), todo)
    return {str(d): e for d, e in zip(todo, errors, strict=True) if e is not None}
