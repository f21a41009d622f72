"""Seed a Harbor test server (:mod:`tests.support.harbor`) quickly, and remember what was seeded.

Real images (single-platform, multi-platform indexes, Docker manifest lists) are written by skopeo
through the server's ``/v2/`` front end, never by ferry, so the source does not depend on the tool
under test. Big listings are built cheaply from them afterwards:

- many tags on one image: the same manifest PUT under each tag (:meth:`HarborSeeder.retag`);
- many artifacts in one repository: the manifest re-PUT with one annotation changed, so each tag
  names its own digest while every blob is shared (:meth:`HarborSeeder.variants`);
- many repositories: cross-repository blob mounts, then the manifest PUT (:meth:`HarborSeeder.fan_out`).

Those cheap writes go straight to the ``docker-registry`` behind the server with tokens minted by
the server itself (:meth:`HarborServer.issue_token`, what its ``/service/token`` would answer):
the registry manifest PUT costs ~5 ms, so the Harbor front end and a token round trip per
repository would only add to it, and they would fill the server's request log that tests count.

Everything pushed is recorded in :class:`Seeded` (tags with their digests, untagged artifacts,
accessories, index children, projects), so tests check a destination against what the source
holds without asking the tool under test.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.support import images
from tests.support.harbor import HarborPushError, HarborServer, V2Client
from tests.support.harbor.common import COSIGN_LAYER, DOCKER_LIST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST
from tests.support.skopeo import push_layout

__all__ = ["HarborSeeder", "SeedClient", "Seeded", "cosign_tag", "pages"]

PAGE_SIZE = 100  # Harbor's largest page
T = TypeVar("T")


def cosign_tag(subject: str) -> str:
    """cosign's tag-style signature tag for a subject digest: ``sha256-<hex>.sig``."""
    return subject.replace(":", "-") + ".sig"


def pages(items: int, size: int = PAGE_SIZE) -> int:
    """Pages a Harbor list of ``items`` takes at ``size`` per page (an empty list is one page)."""
    return max(1, math.ceil(items / size))


class SeedClient(V2Client):
    """:class:`V2Client` straight to the server's backing registry, with tokens minted in-process."""

    def __init__(self, server: HarborServer, username: str = "admin") -> None:
        assert server.registry is not None, "start the server first"
        super().__init__(server.registry.url, server.creds(username))
        self.server = server
        self.username = username

    def token(self, scope: str) -> str:
        tok = self._tokens.get(scope)
        if tok is None:
            tok = self._tokens[scope] = self.server.issue_token(self.username, scope.split(" "))
        return tok

    def mount(self, repo: str, digest: str, source_repo: str) -> None:
        """Cross-repository blob mount; the blob must already be in ``source_repo``."""
        status, _, body = self.request(
            "POST",
            f"/v2/{repo}/blobs/uploads/?mount={digest}&from={source_repo}",
            scope=f"repository:{repo}:pull,push repository:{source_repo}:pull",
            data=b"",
        )
        if status != 201:
            raise HarborPushError(status, body)


@dataclass
class Seeded:
    """What a source Harbor holds, as the seeding put it there."""

    server: HarborServer
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → {"public", "storage_limit"}
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # repository → tag → digest
    untagged: dict[str, set[str]] = field(default_factory=dict)  # repository → digests pushed by digest only
    accessories: dict[str, dict[str, str]] = field(default_factory=dict)  # repository → accessory → subject
    children: dict[str, set[str]] = field(default_factory=dict)  # repository → index child digests
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # digest → (bytes, media type)

    def project_of(self, repository: str) -> str:
        return repository.split("/", 1)[0]

    def repositories(self, project: str | None = None) -> list[str]:
        names = set(self.tags) | {r for r, d in self.untagged.items() if d}
        return sorted(r for r in names if project is None or self.project_of(r) == project)

    def listed_artifacts(self, repository: str) -> int:
        """Artifacts Harbor lists for the repository without ``q=base=*``: tagged ones and untagged
        ones no index references; accessories are listed only under their subject."""
        acc = self.accessories.get(repository, {})
        tagged = {d for d in self.tags.get(repository, {}).values() if d not in acc}
        loose = {d for d in self.untagged.get(repository, set()) if d not in self.children.get(repository, set())}
        return len(tagged | loose)

    def refs(self, *, untagged: bool = True) -> list[tuple[str, str, str]]:
        """Every ``(repository, tag or digest, digest)`` that must reach a destination."""
        out = [(r, t, d) for r in sorted(self.tags) for t, d in sorted(self.tags[r].items())]
        if untagged:
            out += [(r, d, d) for r in sorted(self.untagged) for d in sorted(self.untagged[r])]
        return out

    def inventory_pages(self) -> dict[str, int]:
        """Harbor API pages at page size 100 an inventory of every project needs, by list."""
        projects = list(self.server_projects())
        return {
            "projects": pages(len(projects)),
            "repositories": sum(pages(len(self.repositories(p))) for p in projects),
            "artifacts": sum(pages(self.listed_artifacts(r)) for r in self.repositories()),
        }

    def server_projects(self) -> list[str]:
        """Every project on the server: the seeded ones and Harbor's default ``library`` if present."""
        names = set(self.projects)
        try:
            self.server.project("library")
            names.add("library")
        except KeyError:
            pass
        return sorted(names)

    # -- bookkeeping ------------------------------------------------------------------------
    def add_tag(self, repository: str, tag: str, digest: str) -> None:
        self.tags.setdefault(repository, {})[tag] = digest

    def add_untagged(self, repository: str, digest: str) -> None:
        self.untagged.setdefault(repository, set()).add(digest)


class HarborSeeder:
    """Fill a started :class:`HarborServer`; the record is :attr:`seeded`."""

    def __init__(self, server: HarborServer, work: Path, *, threads: int = 8) -> None:
        self.server = server
        self.layout = images.Layout(Path(work) / "seed-layout")
        self.client = SeedClient(server)
        self.seeded = Seeded(server)
        self.threads = threads
        self._refs = 0

    # -- projects ---------------------------------------------------------------------------
    def project(self, name: str, *, public: bool = False, storage_limit: int = -1, **kwargs: Any) -> None:
        self.server.create_project(name, public=public, storage_limit=storage_limit, **kwargs)
        self.seeded.projects[name] = {"public": public, "storage_limit": storage_limit}

    # -- real images, by skopeo ---------------------------------------------------------------
    def _ref(self) -> str:
        self._refs += 1
        return f"seed-{self._refs}"

    def _record_layout(self, digest: str) -> None:
        """Keep the manifest bytes (and those of index children) for cheap re-pushes and checks."""
        raw = self.layout.read_blob(digest)
        doc = json.loads(raw)
        self.seeded.manifests[digest] = (raw, doc["mediaType"])
        for child in doc.get("manifests", []):
            self._record_layout(child["digest"])

    def push(self, ref_name: str, dest: str) -> str:
        """skopeo-push a layout image or index to ``dest`` (``proj/repo:tag``, or ``proj/repo`` for
        an untagged push by digest); returns its digest."""
        digest = self.layout.descriptor(ref_name)["digest"]
        repo, sep, tag = dest.rpartition(":") if ":" in dest.split("/")[-1] else (dest, "", "")
        target = f"{repo}:{tag}" if sep else f"{repo}@{digest}"
        push_layout(self.layout.path, ref_name, f"docker://{self.server.ref(target)}", creds=self.server.admin_creds)
        self._record_layout(digest)
        raw, media_type = self.seeded.manifests[digest]
        if media_type in (OCI_INDEX, DOCKER_LIST):
            kids = {c["digest"] for c in json.loads(raw)["manifests"]}
            self.seeded.children.setdefault(repo, set()).update(kids)
        if sep:
            self.seeded.add_tag(repo, tag, digest)
        else:
            self.seeded.add_untagged(repo, digest)
        return digest

    def image(self, dest: str, *, seed: int, docker: bool = False, layers: int = 1) -> str:
        ref = self._ref()
        if docker:
            images.docker_schema2_image(self.layout, ref, seed=seed, layers=layers)
        else:
            images.oci_image(self.layout, ref, seed=seed, layers=layers)
        return self.push(ref, dest)

    def index(self, dest: str, *, seed: int, docker: bool = False) -> str:
        ref = self._ref()
        if docker:
            images.docker_manifest_list(self.layout, ref, seed=seed)
        else:
            images.oci_index(self.layout, ref, seed=seed)
        return self.push(ref, dest)

    # -- cheap additions over HTTP --------------------------------------------------------------
    def _map(self, fn: Callable[[T], object], items: Iterable[T]) -> None:
        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(fn, items))

    def _single(self, repo: str, tag: str) -> tuple[bytes, str, dict[str, Any]]:
        digest = self.seeded.tags[repo][tag]
        raw, media_type = self.seeded.manifests[digest]
        doc = json.loads(raw)
        if "manifests" in doc:
            raise ValueError(f"{repo}:{tag} is an index; cheap additions take single images")
        return raw, media_type, doc

    def retag(self, repo: str, tag: str, new_tags: Iterable[str]) -> None:
        """The manifest of ``repo:tag`` PUT again under every tag of ``new_tags`` (one artifact)."""
        raw, media_type, _ = self._single(repo, tag)
        digest = self.seeded.tags[repo][tag]
        new_tags = list(new_tags)
        self._map(lambda t: self.client.push_manifest(repo, t, raw, media_type), new_tags)
        for t in new_tags:
            self.seeded.add_tag(repo, t, digest)

    def variants(self, repo: str, tag: str, new_tags: Iterable[str]) -> dict[str, str]:
        """One new artifact per tag: the OCI manifest of ``repo:tag`` with an annotation naming the
        tag (same blobs, different digest). Returns tag → digest."""
        _, media_type, doc = self._single(repo, tag)
        if media_type != OCI_MANIFEST:
            raise ValueError("variants need an OCI image manifest (annotations)")
        made: dict[str, str] = {}
        for t in new_tags:
            raw = json.dumps({**doc, "annotations": {**doc.get("annotations", {}), "org.ferry.test.variant": t}},
                             separators=(",", ":")).encode()
            digest = "sha256:" + hashlib.sha256(raw).hexdigest()
            self.seeded.manifests[digest] = (raw, media_type)
            made[t] = digest
        self._map(lambda t: self.client.push_manifest(repo, t, self.seeded.manifests[made[t]][0], media_type), made)
        for t, d in made.items():
            self.seeded.add_tag(repo, t, d)
        return made

    def fan_out(self, repo: str, tag: str, repos: Sequence[str], tags: Sequence[str] = ()) -> None:
        """Copy ``repo:tag`` and ``repo:<each of tags>`` into each of ``repos``: blobs mounted from
        ``repo``, then each tag's own manifest PUT (single images only)."""
        names = [tag, *(t for t in tags if t != tag)]
        manifests = {t: self._single(repo, t) for t in names}
        blobs = sorted({d for _, _, doc in manifests.values()
                        for d in [doc["config"]["digest"], *(layer["digest"] for layer in doc["layers"])]})

        def one(target: str) -> None:
            for b in blobs:
                self.client.mount(target, b, repo)
            for t, (raw, media_type, _) in manifests.items():
                self.client.push_manifest(target, t, raw, media_type)

        self._map(one, repos)
        for target in repos:
            for t in names:
                self.seeded.add_tag(target, t, self.seeded.tags[repo][t])

    def cosign_signature(self, repo: str, subject: str) -> str:
        """A cosign tag-style signature of ``subject`` in ``repo`` (simple-signing payload layer,
        tag ``sha256-<hex>.sig``), as ``cosign sign`` pushes it. Returns its digest."""
        payload = json.dumps(
            {
                "critical": {
                    "identity": {"docker-reference": self.server.ref(repo)},
                    "image": {"docker-manifest-digest": subject},
                    "type": "cosign container image signature",
                },
                "optional": None,
            },
            separators=(",", ":"),
        ).encode()
        config = json.dumps(
            {
                "architecture": "",
                "config": {},
                "created": "0001-01-01T00:00:00Z",
                "history": [{"created": "0001-01-01T00:00:00Z"}],
                "os": "",
                "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(payload).hexdigest()]},
            },
            separators=(",", ":"),
        ).encode()
        signature = hashlib.sha256(payload + b"ferry-test-key").hexdigest()
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": self.client.push_blob(repo, config)},
            "layers": [
                {
                    "mediaType": COSIGN_LAYER,
                    "size": len(payload),
                    "digest": self.client.push_blob(repo, payload),
                    "annotations": {"dev.cosignproject.cosign/signature": signature},
                }
            ],
        }
        raw = json.dumps(manifest, separators=(",", ":")).encode()
        tag = cosign_tag(subject)
        digest = self.client.push_manifest(repo, tag, raw, OCI_MANIFEST)
        self.seeded.manifests[digest] = (raw, OCI_MANIFEST)
        self.seeded.add_tag(repo, tag, digest)
        self.seeded.accessories.setdefault(repo, {})[digest] = subject
        return digest


# --------------------------------------------------------------------------------------------
# ready-made sources
# --------------------------------------------------------------------------------------------

GIB = 1024**3
#: Users of :func:`seed_migration_source`: carol is a guest of the private project ``alpha``,
#: dave is a member of nothing.
USERS = {"carol": "Carol-12345", "dave": "Dave-12345"}
MANY_TAGS = [f"t{i:03d}" for i in range(110)]
GAMMA_REPOS = [f"gamma/svc-{i:03d}" for i in range(100)] + [f"gamma/fleet/eu/svc-{i}" for i in range(5)]


def seed_migration_source(server: HarborServer, work: Path, *, filler_projects: int = 100) -> Seeded:
    """The source of the migration tests (every listing Harbor pages, every kind of artifact):

    - ``alpha`` (private, 10 GiB quota; carol is a guest): Docker schema2 images ``app:1.0``,
      ``app:1.1`` = ``app:latest``, a cosign signature ``app:sha256-<1.0>.sig``, an untagged
      ``app`` artifact, nested ``team/app:2.0`` and ``team/sub/tool:v1`` (OCI);
    - ``beta`` (public): OCI index ``multi:1`` (3 platforms), Docker manifest list ``list:1``,
      ``many-tags`` with 113 tags on 111 artifacts (two pages of artifacts);
    - ``gamma`` (private, 5 GiB): 105 repositories (two pages), five of them nested three deep;
    - ``p-000`` … ``p-099`` (empty, public and private alternately), so that the project list takes
      two pages, and ``zeta`` (public, 1 GiB, ``app:1``), which sorts onto the second page.
    """
    for name, password in USERS.items():
        server.add_user(name, password)
    s = HarborSeeder(server, work)
    s.project("alpha", public=False, storage_limit=10 * GIB, members={"carol": "guest"})
    s.project("beta", public=True)
    s.project("gamma", public=False, storage_limit=5 * GIB)
    for i in range(filler_projects):
        s.project(f"p-{i:03d}", public=i % 2 == 0)
    s.project("zeta", public=True, storage_limit=GIB)

    v10 = s.image("alpha/app:1.0", seed=1, docker=True)
    s.image("alpha/app:1.1", seed=2, docker=True)
    s.retag("alpha/app", "1.1", ["latest"])
    s.cosign_signature("alpha/app", v10)
    s.image("alpha/app", seed=3, docker=True)  # untagged: only its digest names it
    s.image("alpha/team/app:2.0", seed=4)
    s.image("alpha/team/sub/tool:v1", seed=5)

    s.index("beta/multi:1", seed=6)
    s.index("beta/list:1", seed=7, docker=True)
    s.image("beta/many-tags:base", seed=8)
    s.variants("beta/many-tags", "base", MANY_TAGS)
    s.retag("beta/many-tags", "t000", ["latest", "stable"])

    s.image(f"{GAMMA_REPOS[0]}:1", seed=9)
    s.fan_out(GAMMA_REPOS[0], "1", GAMMA_REPOS[1:])

    s.image("zeta/app:1", seed=10)
    return s.seeded


def seed_scale_source(server: HarborServer, work: Path, *, projects: int = 50, repositories: int = 2000,
                      tags: int = 10_000) -> Seeded:
    """A big source for the inventory benchmark: ``projects`` projects holding ``repositories``
    repositories with ``tags`` tags in all (tags per repository = tags / repositories, each its own
    artifact). One real image is pushed by skopeo; the other artifacts are annotation variants of
    it, and every other repository gets them by blob mounts and manifest PUTs."""
    if repositories % projects or tags % repositories:
        raise ValueError("repositories must divide by projects and tags by repositories")
    s = HarborSeeder(server, work, threads=8)
    names = [f"bench-{p:02d}" for p in range(projects)]
    for i, name in enumerate(names):
        s.project(name, public=i % 2 == 0)
    per_project = repositories // projects
    repos = [f"{name}/repo-{r:04d}" for name in names for r in range(per_project)]
    tag_names = [f"v{t}" for t in range(tags // repositories)]
    first = repos[0]
    s.image(f"{first}:{tag_names[0]}", seed=1)
    s.variants(first, tag_names[0], tag_names[1:])
    s.fan_out(first, tag_names[0], repos[1:], tag_names[1:])
    return s.seeded
