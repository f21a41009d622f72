"""What a migration moves: the source inventoried (Harbor API or ``/v2/_catalog``), filtered,
mapped to destination projects, and turned into Jobs — images first, accessories after them."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from ferry.concurrency import bounded_map
from ferry.digests import Packed, pack
from ferry.errors import UsageError
from ferry.harbor.artifacts import Artifact, ArtifactList, accessory_digests, list_artifacts, list_repositories
from ferry.harbor.client import HarborAPI
from ferry.harbor.projects import Project, list_projects
from ferry.plan.model import Expected, Job, Route
from ferry.refs import RegistryRef
from ferry.transports.registry import RegistryClient


@dataclass(frozen=True, slots=True)
class Selection:
    projects: tuple[str, ...] = ()  # globs; empty = all
    exclude_projects: tuple[str, ...] = ()
    repos: tuple[str, ...] = ()  # globs on the path inside the project or the full name
    tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    include_untagged: bool = False
    project_map: dict[str, str] = field(default_factory=dict)

    def project_selected(self, name: str) -> bool:
        if self.projects and not any(fnmatch.fnmatchcase(name, g) for g in self.projects):
            return False
        return not any(fnmatch.fnmatchcase(name, g) for g in self.exclude_projects)

    def repo_selected(self, full_name: str) -> bool:
        if not self.repos:
            return True
        inner = full_name.partition("/")[2]
        return any(fnmatch.fnmatchcase(full_name, g) or fnmatch.fnmatchcase(inner, g) for g in self.repos)

    def tag_selected(self, tag: str) -> bool:
        if self.tags and not any(fnmatch.fnmatchcase(tag, g) for g in self.tags):
            return False
        return not any(fnmatch.fnmatchcase(tag, g) for g in self.exclude_tags)

    def dest_repository(self, full_name: str) -> str:
        """The destination's name for a source repository (the same string when its project is not mapped)."""
        project, _, inner = full_name.partition("/")
        if project not in self.project_map:
            return full_name
        return f"{self.project_map[project]}/{inner}" if inner else self.project_map[project]


def parse_maps(values: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        src, sep, dst = v.partition("=")
        if not sep or not src or not dst or "/" in src or "/" in dst:
            raise UsageError(f"invalid --map {v!r}", hint="expected SRC_PROJECT=DST_PROJECT")
        out[src] = dst
    return out


class ArtifactIndex(Mapping[tuple[str, str], Artifact]):
    """``(repository, digest) → Artifact`` over a listing's lists, without a key tuple and a dict slot per
    artifact (110 bytes a tag at a million tags): a lookup scans its repository's few artifacts."""

    def __init__(self, listed: Mapping[str, Sequence[Artifact]]) -> None:
        self._listed = listed

    def __getitem__(self, key: tuple[str, str]) -> Artifact:
        repository, digest = key
        arts = self._listed.get(repository, ())
        if isinstance(arts, ArtifactList):  # its digest column: no artifact made but the one found
            if (i := arts.find(digest)) >= 0:
                return arts[i]
            raise KeyError(key)
        for art in arts:
            if art.digest == digest:
                return art
        raise KeyError(key)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((repo, art.digest) for repo, arts in self._listed.items() for art in arts)

    def __len__(self) -> int:
        return sum(map(len, self._listed.values()))

    def in_repository(self, repository: str) -> dict[str, Artifact]:
        """Digest → artifact of one repository: for lookups in a loop (one here scans the repository)."""
        return {art.digest: art for art in self._listed.get(repository, ())}

    def sizes(self, repositories: Iterable[str]) -> dict[Packed, int]:
        """Packed digest → size of every artifact listed in ``repositories``."""
        out: dict[Packed, int] = {}
        for repo in repositories:
            arts = self._listed.get(repo, ())
            out.update(arts.sizes() if isinstance(arts, ArtifactList) else {pack(a.digest): a.size for a in arts})
        return out


@dataclass(slots=True)
class MigrationPlan:
    projects: list[Project]  # source projects selected, in order
    images: list[Job] = field(default_factory=list)
    accessories: list[Job] = field(default_factory=list)  # after their subjects
    expected: list[Expected] = field(default_factory=list)
    # packed artifact digest → size where no listing holds the artifacts (an import's description); a
    # Harbor source's sizes stay in its listing: see ``listed_bytes``
    sizes: dict[Packed, int] = field(default_factory=dict)
    repositories: dict[str, list[str]] = field(default_factory=dict)  # project → repos
    artifacts: ArtifactIndex = field(default_factory=lambda: ArtifactIndex({}))  # Harbor sources' listing
    source_is_harbor: bool = False
    # source push time of the jobs of the repository being planned, beside images and accessories (Harbor
    # sources; emptied by in_push_order): not a dict by job key (a key string per tag weighs 150 bytes)
    image_times: list[str] = field(default_factory=list)
    accessory_times: list[str] = field(default_factory=list)

    def in_push_order(self, images_from: int = 0, accessories_from: int = 0) -> None:
        """The jobs from these places on (one repository's), oldest push first (stable: equal times keep
        the listing's order), so that each repository's manifests reach the destination in the source's
        order. Sorted a repository at a time: the sort's keys are never a million strings at once."""
        for jobs, times, start in ((self.images, self.image_times, images_from),
                                   (self.accessories, self.accessory_times, accessories_from)):
            if len(times) > 1:
                tail = jobs[start:]
                jobs[start:] = [tail[i] for i in sorted(range(len(tail)), key=times.__getitem__)]
            times.clear()

    @property
    def jobs(self) -> list[Job]:
        return self.images + self.accessories

    def listed_bytes(self, project: str, digests: Iterable[Packed | None]) -> int:
        """The listed sizes of one source project's artifacts among ``digests`` (packed,
        :mod:`ferry.digests`), each once. Its sizes are read a project at a time: a dict of a
        million sizes weighs 70 MB, and one project's quota or printout needs them."""
        sizes = self.sizes or self.artifacts.sizes(self.repositories.get(project, ()))
        return sum(sizes.get(d, 0) for d in set(digests) if d is not None)


@dataclass(slots=True)
class HarborListing:
    """One Harbor's selected projects, their repositories and every artifact of them, as listed."""

    projects: list[Project]
    repositories: dict[str, list[str]]  # project → full repository names
    artifacts: dict[str, Sequence[Artifact]]  # repository → artifacts (an ``ArtifactList`` as listed)


def _add(plan: MigrationPlan, route: Route, name: str, digest: Packed | None, *, accessory: bool = False,
         pushed: str = "") -> None:
    """``name`` (tag or digest) in the repositories of ``route``: one job, also the verification entry."""
    job = Job.named(route, name, digest)
    (plan.accessories if accessory else plan.images).append(job)
    (plan.accessory_times if accessory else plan.image_times).append(pushed)
    plan.expected.append(job)


def _selected(sel: Selection, tags: tuple[str, ...]) -> Sequence[str]:
    return [t for t in tags if sel.tag_selected(t)] if sel.tags or sel.exclude_tags else tags


def _plan_artifact(plan: MigrationPlan, sel: Selection, route: Route, art: Artifact, digest: Packed,
                   accessory_tags: dict[str, list[str]]) -> None:
    """An artifact's jobs; ``digest`` is its digest as the listing holds it (the jobs share it)."""
    tags = _selected(sel, art.tags)
    if not tags and not (sel.include_untagged and not art.tags):
        return
    for tag in tags:
        _add(plan, route, tag, digest, pushed=art.pushed(tag))
    if not art.tags:
        _add(plan, route, art.digest, digest, pushed=art.push_time)
    for acc in art.accessories:
        # An accessory keeps the tags it has at the source (cosign's sha256-<subject hex>.sig, which
        # cosign looks signatures up by); one without tags travels by digest, found through its subject.
        acc_tags = accessory_tags.get(acc.digest, [])
        for tag in acc_tags:
            _add(plan, route, tag, acc.digest, accessory=True, pushed=art.push_time)
        if not acc_tags:
            _add(plan, route, acc.digest, acc.digest, accessory=True, pushed=art.push_time)


def _plan_repository(plan: MigrationPlan, sel: Selection, route: Route, arts: Sequence[Artifact],
                     accessory_tags: dict[str, list[str]]) -> None:
    if not isinstance(arts, ArtifactList):
        for art in arts:
            _plan_artifact(plan, sel, route, art, art.digest, accessory_tags)
        return
    for i in range(len(arts)):
        if arts.plain(i):  # tagged, nothing else: read from the columns, no artifact made
            pushed, digest = arts.push_time(i), arts.packed(i)
            for tag in _selected(sel, arts.tags_of(i)):
                _add(plan, route, tag, digest, pushed=pushed)
        else:
            _plan_artifact(plan, sel, route, arts[i], arts.packed(i), accessory_tags)


async def _accessory_tags(client: RegistryClient, repo: str, accessories: set[str]) -> dict[str, list[str]]:
    """Harbor's API hides the tags of accessories; the registry's tag list shows them. Only the
    ``sha256-…`` tags that referrers and cosign use are asked about."""
    candidates = [t for t in await client.list_tags(repo) if t.startswith("sha256-")]
    digests = await bounded_map(lambda t: client.head_manifest(repo, t), candidates)
    found: dict[str, list[str]] = {}
    for tag, digest in zip(candidates, digests, strict=True):
        if digest in accessories:
            found.setdefault(digest, []).append(tag)
    return found


async def harbor_listing(api: HarborAPI, sel: Selection, *, repos: bool = True) -> HarborListing:
    """Projects, repositories and artifacts through Harbor's API: listing pages only."""
    projects = [p for p in await list_projects(api) if sel.project_selected(p.name)]
    repos_by_project = await bounded_map(lambda name: list_repositories(api, name), [p.name for p in projects])
    repositories = {p.name: [r for r in rs if not repos or sel.repo_selected(r)]
                    for p, rs in zip(projects, repos_by_project, strict=True)}
    all_repos = [r for rs in repositories.values() for r in rs]
    listed: list[Sequence[Artifact]] = await bounded_map(lambda r: list_artifacts(api, r), all_repos)
    artifacts = dict(zip(all_repos, listed, strict=True))
    return HarborListing(projects, repositories, artifacts)


async def plan_listing(listing: HarborListing, client: RegistryClient, dst_reg: str, sel: Selection, *,
                       accessories_known: Callable[[str, set[str]], bool] | None = None) -> MigrationPlan:
    """Jobs for a listing; ``client`` is the same Harbor's registry. ``accessories_known(repo, digests)``
    true: the accessory tags of ``repo`` need not be looked up (the destination holds them all)."""
    plan = MigrationPlan(projects=listing.projects, source_is_harbor=True, repositories=listing.repositories,
                         artifacts=ArtifactIndex(listing.artifacts))
    with_accessories = [(r, accs) for r, arts in listing.artifacts.items() if (accs := accessory_digests(arts))
                        and not (accessories_known and accessories_known(r, accs))]  # no pair a repository
    tag_maps = dict(zip([r for r, _ in with_accessories],
                        await bounded_map(lambda ra: _accessory_tags(client, *ra), with_accessories), strict=True))
    for project, repos in listing.repositories.items():
        for repo in repos:
            # one route per repository: its tags' jobs share their repositories and project
            route = Route(RegistryRef(client.registry, repo), RegistryRef(dst_reg, sel.dest_repository(repo)), project)
            images_from, accessories_from = len(plan.images), len(plan.accessories)
            _plan_repository(plan, sel, route, listing.artifacts[repo], tag_maps.get(repo, {}))
            plan.in_push_order(images_from, accessories_from)
    return plan


async def harbor_inventory(api: HarborAPI, client: RegistryClient, dst_reg: str, sel: Selection) -> MigrationPlan:
    """Projects, repositories and artifacts through Harbor's API; ``client`` is the same Harbor's registry."""
    return await plan_listing(await harbor_listing(api, sel), client, dst_reg, sel)


async def catalog_inventory(client: RegistryClient, dst_reg: str, sel: Selection, *,
                            top_level_project: str | None = None) -> MigrationPlan:
    """A plain registry: ``/v2/_catalog`` and ``tags/list``; the first path component stands for the project.

    A repository with no project part (``alpine``) cannot exist in Harbor: with ``top_level_project``
    (``library`` for a Harbor destination, as Docker Hub names its official images) it goes there.
    """

    def project_of(repo: str) -> str:
        return repo.partition("/")[0] if "/" in repo or not top_level_project else top_level_project

    def placed(repo: str) -> str:
        return repo if "/" in repo or not top_level_project else f"{top_level_project}/{repo}"

    repos = [r for r in await client.catalog() if sel.project_selected(project_of(r)) and sel.repo_selected(placed(r))]
    names = sorted({project_of(r) for r in repos})
    plan = MigrationPlan(projects=[Project(name=n, project_id=0, public=False) for n in names])
    tag_lists = await bounded_map(client.list_tags, repos)
    for repo, tags in zip(repos, tag_lists, strict=True):
        project = project_of(repo)
        plan.repositories.setdefault(project, []).append(repo)
        route = Route(RegistryRef(client.registry, repo), RegistryRef(dst_reg, sel.dest_repository(placed(repo))),
                      project)
        for tag in sorted(tags):
            if sel.tag_selected(tag):
                # cosign's tag-style signatures travel as ordinary tags from a plain registry
                _add(plan, route, tag, None, accessory=tag.startswith("sha256-"))
    return plan
