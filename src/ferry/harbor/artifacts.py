"""Harbor repositories and artifacts, with every tag, index child and accessory."""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, overload

from ferry.digests import Packed, pack, unpack
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


#: accessories, index children, tag push times: kept only for the artifacts that have any
Extra = tuple[tuple[Accessory, ...], tuple[str, ...], tuple[str, ...]]


def _uniform(texts: list[str]) -> str | tuple[str, ...]:
    """One text for all (a repository's media type usually is), or a tuple."""
    return texts[0] if len(set(texts)) == 1 else tuple(texts)


class ArtifactList(Sequence[Artifact]):
    """One repository's artifacts as listed, in three compact objects: a tuple of its packed digests
    (:mod:`ferry.digests`) followed by its tag names; a ``bytes`` of its sizes (8 bytes each)
    followed by its push times when they are ASCII of one length (Harbor's usually are; else a tuple of
    them); its media type once when it has one. A million artifacts then cost their digests and a few
    words each, and a repository three objects, not an ``Artifact``, a tuple, a string and a number an
    artifact. An ``Artifact`` is made when one is read; the planner reads the columns."""

    __slots__ = ("_data", "_extra", "_media", "_rows", "_times", "repository")

    def __init__(self, repository: str, artifacts: Iterable[Artifact] = ()) -> None:
        columns = Columns()
        for art in artifacts:
            columns.add(art.digest, art.media_type, art.size, art.tags, art.push_time,
                        (art.accessories, art.references, art.tag_push_times))
        columns.fill(self, repository)

    def __len__(self) -> int:
        return len(self._rows) >> 1

    @overload
    def __getitem__(self, i: int) -> Artifact: ...
    @overload
    def __getitem__(self, i: slice) -> list[Artifact]: ...
    def __getitem__(self, i: int | slice) -> Artifact | list[Artifact]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):  # the tuple holds the tags past the digests: not an artifact
            raise IndexError(i)
        accessories, references, tag_times = self._extra.get(i, ((), (), ())) if self._extra else ((), (), ())
        return Artifact(self.repository, unpack(self._rows[i]), self.media_type(i), self.size(i),
                        self.tags_of(i), accessories, references, self.push_time(i), tag_times)

    def plain(self, i: int) -> bool:
        """The ``i``-th artifact has tags and nothing else: no accessory, index child or tag push time."""
        return bool(self._rows[len(self) + i]) and not (self._extra and i in self._extra)

    def packed(self, i: int) -> Packed:
        """The ``i``-th digest as held: a job planned from it shares it."""
        return self._rows[i]

    def find(self, digest: str) -> int:
        """Where ``digest`` is listed, or -1."""
        try:
            return self._rows.index(pack(digest), 0, len(self))
        except ValueError:
            return -1

    def media_type(self, i: int) -> str:
        return self._media if isinstance(self._media, str) else self._media[i]

    def size(self, i: int) -> int:
        return int.from_bytes(self._data[8 * i:8 * i + 8], sys.byteorder, signed=True)

    def tags_of(self, i: int) -> tuple[str, ...]:
        tags = self._rows[len(self) + i]
        return (tags,) if isinstance(tags, str) else tags

    def push_time(self, i: int) -> str:
        if self._times is not None:
            return self._times[i]
        n = len(self)
        width = (len(self._data) - 8 * n) // n
        at = 8 * n + i * width
        return self._data[at:at + width].decode("ascii")

    def accessory_digests(self) -> set[str]:
        return {a.digest for accessories, _, _ in (self._extra or {}).values() for a in accessories}

    def sizes(self) -> dict[Packed, int]:
        """Packed digest → size of every artifact listed."""
        n = len(self)
        return dict(zip(self._rows[:n], array("q", self._data[:8 * n]), strict=True))


class Columns:
    """An ``ArtifactList`` while it is listed: plain lists, made compact once by :meth:`fill`."""

    __slots__ = ("digests", "extra", "media", "sizes", "tags", "times")

    def __init__(self) -> None:
        self.digests: list[Packed] = []
        self.media: list[str] = []
        self.sizes: list[int] = []
        self.tags: list[str | tuple[str, ...]] = []  # one tag (the usual case) as the string itself
        self.times: list[str] = []
        self.extra: dict[int, Extra] = {}

    def add(self, digest: str, media_type: str, size: int, tags: tuple[str, ...], pushed: str, extra: Extra) -> None:
        if any(extra):
            self.extra[len(self.digests)] = extra
        self.digests.append(pack(digest))
        self.media.append(media_type)
        self.sizes.append(size)
        self.tags.append(tags[0] if len(tags) == 1 else tags)
        self.times.append(pushed)

    def fill(self, out: ArtifactList, repository: str) -> None:
        out.repository = repository
        out._rows = (*self.digests, *self.tags)
        out._media = _uniform(self.media) if self.media else ""
        sizes = array("q", self.sizes).tobytes()
        if len({len(t) for t in self.times}) <= 1 and all(t.isascii() for t in self.times):
            out._data, out._times = sizes + "".join(self.times).encode("ascii"), None
        else:
            out._data, out._times = sizes, tuple(self.times)
        out._extra = self.extra or None

    def build(self, repository: str) -> ArtifactList:
        out = ArtifactList.__new__(ArtifactList)
        self.fill(out, repository)
        return out


def accessory_digests(artifacts: Iterable[Artifact]) -> set[str]:
    """The digests of every accessory among ``artifacts`` (without making each artifact of a listing)."""
    if isinstance(artifacts, ArtifactList):
        return artifacts.accessory_digests()
    return {a.digest for art in artifacts for a in art.accessories}


def _row(a: dict[str, Any], repository: str, host: str, columns: Columns) -> None:
    digest = a.get("digest")
    if not isinstance(digest, str):
        raise ProtocolError(f"{host}: artifact without digest in {repository}")
    pushed = str(a.get("push_time") or "")
    tags: list[str] = []
    tag_times: list[str] = []  # most tags were pushed with their artifact: "" then, and none kept at all
    for t in a.get("tags") or ():
        if isinstance(t, dict) and t.get("name"):
            tags.append(sys.intern(str(t["name"])))  # tag names repeat across repositories: each is stored once
            at = t.get("push_time")
            tag_times.append("" if at in (None, pushed) else str(at))
    accessories = tuple(
        Accessory(str(x.get("digest")), str(x.get("type", "")), str(x.get("subject_artifact_digest") or digest))
        for x in a.get("accessories") or () if isinstance(x, dict) and x.get("digest")
    ) if a.get("accessories") else ()
    refs = tuple(str(r.get("child_digest")) for r in a.get("references") or ()
                 if isinstance(r, dict) and r.get("child_digest")) if a.get("references") else ()
    media_type = sys.intern(str(a.get("manifest_media_type") or a.get("media_type") or ""))
    columns.add(digest, media_type, int(a.get("size") or 0), tuple(tags), pushed,
                (accessories, refs, tuple(tag_times) if any(tag_times) else ()))


async def list_artifacts(api: HarborAPI, repository: str) -> ArtifactList:
    params = {"with_tag": "true", "with_accessory": "true", "with_label": "false",
              "with_scan_overview": "false"}
    columns = Columns()
    async for page in api.pages(f"{repository_path(repository)}/artifacts", params):
        for a in page:
            _row(a, repository, api.host, columns)
    return columns.build(repository)
