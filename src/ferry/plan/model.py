"""Plain data shared by every planner and the engine: rules, jobs, platform filters."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ferry.digests import Packed, pack, unpack
from ferry.refs import ImageRef, RegistryRef


@dataclass(frozen=True, slots=True)
class TagSelector:
    """Which tags of a source repository a rule takes. Exactly one form is set; none means all tags."""

    tags: tuple[str, ...] = ()
    digests: tuple[str, ...] = ()
    regex: str | None = None
    semver: str | None = None  # a constraint such as ">=1.2.0, <2"

    def matches_regex(self, tag: str) -> bool:
        return self.regex is not None and re.search(self.regex, tag) is not None


@dataclass(frozen=True, slots=True)
class Rule:
    """One line of a sync config before tags are listed: a source repository and its destination.

    ``destination.tag`` renames a single tag; otherwise each source tag keeps its name, plus
    ``tag_suffix`` (skopeo sync ``--append-suffix``) when set.
    """

    source: RegistryRef  # repository only (tag/digest live in ``select``)
    select: TagSelector
    destination: RegistryRef  # repository, with a tag only when renaming one tag
    origin: str = ""  # where the rule came from, for error messages ("images.json: key 'a/b'")
    tag_suffix: str = ""  # appended to each kept source tag (not to a renamed tag, never to a digest)


class Route:
    """What the jobs of one repository share: the source and destination repositories (refs without tag
    or digest) and the jobs' origin. Made once per repository or rule, so that a job holds one word for it."""

    __slots__ = ("destination", "origin", "source")

    def __init__(self, source: ImageRef, destination: ImageRef, origin: str = "") -> None:
        self.source, self.destination, self.origin = source, destination, origin


class Job:
    """Copy one image: the source (tag or digest) to the destination (tag, or digest when untagged).
    Either side may be an ``oci:`` layout entry (``PathRef``): its name is the tag or the digest.

    A job is also its own verification entry: after the copy the destination must hold ``digest``
    (None: whatever the source holds then). A planned tag that keeps its name on both sides
    (:meth:`named`) stores its repositories' ``Route`` and the name and makes its refs when asked, and
    its digest packed (:mod:`ferry.digests`): a million planned tags cost one 64-byte object each and
    their digests, not a job, two refs, an entry and a digest string. Treat it as a value (it is
    hashed): nothing assigns to a job once made."""

    __slots__ = ("_digest", "_name", "_route")

    def __init__(self, source: ImageRef, destination: ImageRef, origin: str = "", digest: str | None = None) -> None:
        self._route, self._name = Route(source, destination, origin), None
        self._digest = None if digest is None else pack(digest)

    @classmethod
    def named(cls, route: Route, name: str, digest: Packed | None = None) -> Job:
        """``name`` (a tag, or a digest: it holds a colon) in both repositories of ``route``."""
        job = cls.__new__(cls)
        job._route, job._name = route, name
        job._digest = None if digest is None else pack(digest)
        return job

    @property
    def digest(self) -> str | None:
        return None if self._digest is None else unpack(self._digest)

    @property
    def packed_digest(self) -> Packed | None:
        """The digest as held (:mod:`ferry.digests`): compared with another packed digest, no text is made."""
        return self._digest

    @property
    def origin(self) -> str:
        return self._route.origin

    @property
    def source(self) -> ImageRef:
        return self._route.source if self._name is None else _named(self._route.source, self._name)

    @property
    def destination(self) -> ImageRef:
        return self._route.destination if self._name is None else _named(self._route.destination, self._name)

    @property
    def project(self) -> str:
        """Where verification files a mismatch: the job's origin (a Harbor project, a rules file's key)."""
        return self._route.origin

    @property
    def source_repository(self) -> str:
        """The source's repository without making its ref ("" for a layout entry)."""
        return getattr(self._route.source, "repository", "")

    def destination_parts(self) -> tuple[ImageRef, str]:
        """The destination as (its repository, its tag or digest): a key that tells destinations
        apart as ``str(destination)`` does, without a string per job (a layout entry: itself, "")."""
        return _parts(self._route.destination, self._name)

    def source_parts(self) -> tuple[ImageRef, str]:
        """The source as (its repository, its tag or digest), as :meth:`destination_parts`."""
        return _parts(self._route.source, self._name)

    @property
    def key(self) -> str:
        return f"{self.source} -> {self.destination}"

    def _fields(self) -> tuple[ImageRef, ImageRef, str, Packed | None]:
        return self.source, self.destination, self.origin, self._digest

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"Job({self.source!r}, {self.destination!r}, origin={self.origin!r}, digest={self.digest!r})"


#: One thing verification checks: the destination ref must hold ``digest`` (None: what the source holds).
#: A planned job is its own entry (``Job.project`` is its origin): no second object per tag.
Expected = Job


def _parts(ref: ImageRef, name: str | None) -> tuple[ImageRef, str]:
    if name is not None:
        return ref, name
    if not isinstance(ref, RegistryRef):
        return ref, ""
    name = f"{ref.tag}@{ref.digest}" if ref.tag and ref.digest else ref.tag or ref.digest or ""
    return ref.repo_ref(), name


def _named(repo: RegistryRef, name: str) -> RegistryRef:
    return RegistryRef(repo.registry, repo.repository, None, name) if ":" in name else \
        RegistryRef(repo.registry, repo.repository, name)


@dataclass(frozen=True, slots=True)
class PlatformFilter:
    """Keep only these platforms of an index (empty: all). Changes the index digest: opt-in."""

    os: tuple[str, ...] = ()
    arch: tuple[str, ...] = ()
    variant: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.os or self.arch)

