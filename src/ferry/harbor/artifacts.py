"""Harbor repositories and artifacts, with every tag, index child and accessory."""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import overload

from ferry.errors import ProtocolError
from ferry.harbor.client import HarborAPI, project_path, repository_path


@dataclass(frozen=True, slots=True)
class Accessory:
    digest: str
    type: str  # signature.cosign, signature.notation, sbom.harbor, …
    subject_digest: str


@dataclass(frozen=True, slots=True)
class Artifact:
    repository: str  # full name, project included
    digest: str
    media_type: str
    size: int
    tags: tuple[str, ...]
    accessories: tuple[Accessory, ...] = ()
    references: tuple[str, ...] = ()  # child digests of an index
    push_time: str = ""  # Harbor's ISO time (UTC, ``Z``): sorts as text
    tag_push_times: tuple[str, ...] = ()  # one per tag, in the order of ``tags``; "": the artifact's

    def pushed(self, tag: str | None) -> str:
        """When ``tag`` (or the artifact itself, for None or an unknown tag) was pushed at the source."""
        if tag in self.tags and len(self.tag_push_times) == len(self.tags):
            return self.tag_push_times[self.tags.index(tag)] or self.push_time
        return self.push_time


async def list_repositories(api: HarborAPI, project: str) -> list[str]:
    """Full repository names (``project/…``) of one project."""
    names = []
    async for r in api.list(f"{project_path(project)}/repositories"):
        name = r.get("name")
        if not isinstance(name, str) or not name.startswith(project + "/"):
            raise ProtocolError(f"{api.host}: repository {name!r} listed outside project {project!r}")
        names.append(name)
    return names


class Texts:
    """Strings appended one by one. While they all have one length (Harbor's push times do) they are
    kept joined, 64 to a chunk, and sliced when read: 24 bytes an entry instead of a 77-byte object."""

    __slots__ = ("_chunks", "_count", "_items", "_tail", "_width")
    _CHUNK = 64

    def __init__(self) -> None:
        self._chunks: list[str] = []
        self._tail = ""  # the last chunk while it fills (a short string copied on append, never a list)
        self._count, self._width = 0, -1
        self._items: list[str] | None = None  # set once two lengths were seen: one object an entry

    def append(self, text: str) -> None:
        if self._items is not None:
            self._items.append(text)
        elif self._width in (-1, len(text)):
            self._width = len(text)
            self._tail += text
            self._count += 1
            if self._count % self._CHUNK == 0:
                self._chunks.append(self._tail)
                self._tail = ""
        else:
            self._items = [self[i] for i in range(len(self))] + [text]
            self._chunks, self._tail = [], ""

    def __len__(self) -> int:
        return self._count if self._items is None else len(self._items)

    def __getitem__(self, i: int) -> str:
        if self._items is not None:
            return self._items[i]
        if not 0 <= i < self._count:
            raise IndexError(i)
        chunk, at = divmod(i, self._CHUNK)
        w = self._width
        return (self._tail if chunk == len(self._chunks) else self._chunks[chunk])[at * w:(at + 1) * w]


class ArtifactList(Sequence[Artifact]):
    """One repository's artifacts as listed, column by column: a million artifacts cost their digest
    strings and a few machine words each, not an ``Artifact``, a tag tuple, a push-time string and a
    size object each. An ``Artifact`` is made when one is read; the planner reads the columns."""

    __slots__ = ("_extra", "_media", "_sizes", "_tags", "_times", "digests", "repository")

    def __init__(self, repository: str) -> None:
        self.repository = repository
        self.digests: list[str] = []
        self._media: list[str] = []  # interned: a few media types for every artifact
        self._sizes = array("q")
        self._tags: list[str | tuple[str, ...]] = []  # one tag (the usual case) as the string itself
        self._times = Texts()
        # accessories, index children, tag push times: only for the artifacts that have any
        self._extra: dict[int, tuple[tuple[Accessory, ...], tuple[str, ...], tuple[str, ...]]] = {}

    def append(self, art: Artifact) -> None:
        i = len(self.digests)
        self.digests.append(art.digest)
        self._media.append(sys.intern(art.media_type))
        self._sizes.append(art.size)
        self._tags.append(art.tags[0] if len(art.tags) == 1 else art.tags)
        self._times.append(art.push_time)
        if art.accessories or art.references or art.tag_push_times:
            self._extra[i] = (art.accessories, art.references, art.tag_push_times)

    def __len__(self) -> int:
        return len(self.digests)

    @overload
    def __getitem__(self, i: int) -> Artifact: ...
    @overload
    def __getitem__(self, i: slice) -> list[Artifact]: ...
    def __getitem__(self, i: int | slice) -> Artifact | list[Artifact]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        accessories, references, tag_times = self._extra.get(i, ((), (), ()))
        return Artifact(self.repository, self.digests[i], self._media[i], self._sizes[i], self.tags_of(i),
                        accessories, references, self._times[i], tag_times)

    def tags_of(self, i: int) -> tuple[str, ...]:
        tags = self._tags[i]
        return (tags,) if isinstance(tags, str) else tags

    def accessory_digests(self) -> set[str]:
        return {a.digest for accessories, _, _ in self._extra.values() for a in accessories}

    def sizes(self) -> dict[str, int]:
        return dict(zip(self.digests, self._sizes, strict=True))


def accessory_digests(artifacts: Iterable[Artifact]) -> set[str]:
    """The digests of every accessory among ``artifacts`` (without making each artifact of a listing)."""
    if isinstance(artifacts, ArtifactList):
        return artifacts.accessory_digests()
    return {a.digest for art in artifacts for a in art.accessories}


async def list_artifacts(api: HarborAPI, repository: str) -> ArtifactList:
    params = {"with_tag": "true", "with_accessory": "true", "with_label": "false",
              "with_scan_overview": "false"}
    out = ArtifactList(repository)
    async for a in api.list(f"{repository_path(repository)}/artifacts", params):
        digest = a.get("digest")
        if not isinstance(digest, str):
            raise ProtocolError(f"{api.host}: artifact without digest in {repository}")
        tag_rows = [t for t in (a.get("tags") or []) if isinstance(t, dict) and t.get("name")]
        # tag names repeat across repositories (latest, 1.0, …): interned, each is stored once
        tags = tuple(sys.intern(str(t["name"])) for t in tag_rows)
        accessories = tuple(
            Accessory(str(x.get("digest")), str(x.get("type", "")), str(x.get("subject_artifact_digest") or digest))
            for x in (a.get("accessories") or []) if isinstance(x, dict) and x.get("digest")
        )
        refs = tuple(str(r.get("child_digest")) for r in (a.get("references") or [])
                     if isinstance(r, dict) and r.get("child_digest"))
        # most tags were pushed with their artifact: their time left empty costs nothing per tag
        pushed = str(a.get("push_time") or "")
        tag_times = tuple("" if t.get("push_time") in (None, pushed) else str(t["push_time"]) for t in tag_rows)
        media_type = str(a.get("manifest_media_type") or a.get("media_type") or "")
        out.append(Artifact(repository, digest, media_type, int(a.get("size") or 0), tags, accessories, refs,
                            pushed, tag_times if any(tag_times) else ()))
    return out
