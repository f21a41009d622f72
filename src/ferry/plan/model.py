"""Plain data shared by every planner and the engine: rules, jobs, platform filters."""

from __future__ import annotations

import re
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Job:
    """Copy one image: the source (tag or digest) to the destination (tag, or digest when untagged).
    Either side may be an ``oci:`` layout entry (``PathRef``): its name is the tag or the digest."""

    source: ImageRef
    destination: ImageRef
    origin: str = ""

    @property
    def key(self) -> str:
        return f"{self.source} -> {self.destination}"


@dataclass(frozen=True, slots=True)
class PlatformFilter:
    """Keep only these platforms of an index (empty: all). Changes the index digest: opt-in."""

    os: tuple[str, ...] = ()
    arch: tuple[str, ...] = ()
    variant: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.os or self.arch)

