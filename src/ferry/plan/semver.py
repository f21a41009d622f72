"""Semantic-version constraints as skopeo sync's ``images-by-semver`` understands them.

skopeo uses Masterminds/semver v3 (``semver.NewConstraint`` / ``semver.NewVersion``); this is a small
port of the parts that decide which tags match, so a file gives the same tag set under ferry:

* Versions (tags): ``[v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD]``; a missing minor or patch is 0
  (``3.12`` is 3.12.0, ``v2`` is 2.0.0). Tags that are not versions (``latest``, ``1.2.3.4``) never match.
* Constraints: ``||`` separates alternatives; inside one, constraints separated by commas or spaces
  must all hold. Operators ``=`` (or none), ``!=``, ``>``, ``<``, ``>=``/``=>``, ``<=``/``=<``,
  ``~``/``~>`` (patch-level: ``~1.2.3`` is ``>=1.2.3 <1.3.0``), ``^`` (compatible: ``^1.2`` is
  ``>=1.2.0 <2.0.0``, ``^0.2.3`` is ``>=0.2.3 <0.3.0``), wildcards ``x``/``X``/``*`` (``1.2.x``,
  ``2.*``, ``*``), and hyphen ranges ``1.2 - 1.4.5`` (``>=1.2 <=1.4.5``).
* Pre-releases (``1.2.3-rc.1``, but also ``1.2.3-alpine``!) match only a constraint that itself names
  a pre-release; that is Masterminds' rule and why ``>= 3.12`` skips ``3.19.1-alpine``-style tags.
* Build metadata is ignored in comparisons.

Python's ``packaging.specifiers`` is *not* a substitute: it implements PEP 440 (``~=``, ``==1.*``), has
no ``^``/``~``/``x`` forms and orders pre-releases differently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Constraint", "SemverError", "Version", "parse_constraint", "parse_version"]

_MAX = 2**64 - 1  # Masterminds parses the numbers as uint64

_IDENT = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_VERSION_RE = re.compile(rf"^v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?(?:-({_IDENT}))?(?:\+({_IDENT}))?$")
_WILD = "xX*"
# One version inside a constraint: numbers or wildcards.
_CV = rf"v?(?:[0-9]+|[{_WILD}])(?:\.(?:[0-9]+|[{_WILD}]))?(?:\.(?:[0-9]+|[{_WILD}]))?(?:-{_IDENT})?(?:\+{_IDENT})?"
_OPS = r"!=|>=|=>|<=|=<|~>|>|<|=|~|\^|"
_FIND_RE = re.compile(rf"({_OPS})\s*({_CV})")
_VALID_RE = re.compile(rf"^\s*(?:{_OPS})\s*{_CV}\s*(?:(?:\s+|,\s*)(?:{_OPS})\s*{_CV}\s*)*$")
_RANGE_RE = re.compile(rf"(?<![^\s,|])\s*({_CV})\s+-\s+({_CV})(?=$|[\s,|])")


class SemverError(ValueError):
    """A constraint that cannot be parsed; the message says why."""


@dataclass(frozen=True, slots=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: str = ""

    def _pre_key(self) -> tuple[tuple[int, int | str], ...]:
        return tuple((0, int(p)) if p.isdigit() else (1, p) for p in self.prerelease.split("."))

    def compare(self, other: Version) -> int:
        a, b = (self.major, self.minor, self.patch), (other.major, other.minor, other.patch)
        if a != b:
            return -1 if a < b else 1
        if self.prerelease == other.prerelease:
            return 0
        if not self.prerelease:  # a release sorts after its pre-releases
            return 1
        if not other.prerelease:
            return -1
        ka, kb = self._pre_key(), other._pre_key()
        return 0 if ka == kb else (-1 if ka < kb else 1)


def parse_version(text: str) -> Version | None:
    """The version a tag names, or None when the tag is not a semantic version."""
    m = _VERSION_RE.match(text)
    if not m:
        return None
    numbers = [int(g) if g else 0 for g in m.group(1, 2, 3)]
    if any(n > _MAX for n in numbers):
        return None
    return Version(numbers[0], numbers[1], numbers[2], m.group(4) or "")


@dataclass(frozen=True, slots=True)
class _Term:
    op: str
    version: Version
    minor_dirty: bool  # "1" or "1.x": any minor
    patch_dirty: bool  # "1.2" or "1.2.x": any patch
    dirty: bool  # any wildcard or missing part

    def check(self, v: Version) -> bool:
        c = self.version
        if v.prerelease and not c.prerelease and not (self.op == "!=" and not self.dirty):
            return False
        return _CHECKS[self.op](self, v)


def _eq(t: _Term, v: Version) -> bool:
    return _tilde(t, v) if t.dirty else v.compare(t.version) == 0


def _ne(t: _Term, v: Version) -> bool:
    c = t.version
    if t.dirty:
        if c.major != v.major:
            return True
        if t.minor_dirty:
            return False
        if c.minor != v.minor:
            return True
        if t.patch_dirty:
            return False
    return v.compare(c) != 0


def _gt(t: _Term, v: Version) -> bool:
    c = t.version
    if not t.dirty:
        return v.compare(c) > 0
    if v.major != c.major:
        return v.major > c.major
    if t.minor_dirty:  # ">1.x": needs the next major
        return False
    if t.patch_dirty:  # ">1.2": needs the next minor
        return v.minor > c.minor
    return v.compare(c) > 0


def _lt(t: _Term, v: Version) -> bool:
    return v.compare(t.version) < 0


def _ge(t: _Term, v: Version) -> bool:
    return v.compare(t.version) >= 0


def _le(t: _Term, v: Version) -> bool:
    c = t.version
    if not t.dirty:
        return v.compare(c) <= 0
    if v.major > c.major:
        return False
    return not (v.major == c.major and v.minor > c.minor and not t.minor_dirty)


def _tilde(t: _Term, v: Version) -> bool:
    c = t.version
    if v.compare(c) < 0:
        return False
    if (c.major, c.minor, c.patch) == (0, 0, 0) and not t.minor_dirty and not t.patch_dirty:
        return True  # "~0.0.0", "*": anything
    if v.major != c.major:
        return False
    return not (v.minor != c.minor and not t.minor_dirty)


def _caret(t: _Term, v: Version) -> bool:
    c = t.version
    if v.compare(c) < 0:
        return False
    if c.major > 0 or t.minor_dirty:
        return v.major == c.major
    if v.major > 0:
        return False
    if c.minor > 0 or t.patch_dirty:
        return v.minor == c.minor
    if v.minor > 0:
        return False
    return v.patch == c.patch


_CHECKS: dict[str, Callable[[_Term, Version], bool]] = {
    "": _eq,
    "=": _eq,
    "!=": _ne,
    ">": _gt,
    "<": _lt,
    ">=": _ge,
    "=>": _ge,
    "<=": _le,
    "=<": _le,
    "~": _tilde,
    "~>": _tilde,
    "^": _caret,
}


def _term(op: str, text: str) -> _Term:
    body, _, _build = text.partition("+")
    body = body.removeprefix("v")
    core, dash, pre = body.partition("-")
    parts = core.split(".")
    parts += [""] * (3 - len(parts))
    major, minor, patch = parts
    wild = [p == "" or p in _WILD for p in (major, minor, patch)]
    if wild[0]:
        version = Version(0, 0, 0, pre if dash else "")
        return _Term(op, version, False, False, True)
    if wild[1]:
        return _Term(op, Version(int(major), 0, 0, pre if dash else ""), True, False, True)
    if wild[2]:
        return _Term(op, Version(int(major), int(minor), 0, pre if dash else ""), False, True, True)
    return _Term(op, Version(int(major), int(minor), int(patch), pre if dash else ""), False, False, False)


@dataclass(frozen=True, slots=True)
class Constraint:
    """A parsed constraint: alternatives (OR) of term lists (AND)."""

    text: str
    alternatives: tuple[tuple[_Term, ...], ...]

    def check(self, version: Version) -> bool:
        return any(all(term.check(version) for term in terms) for terms in self.alternatives)

    def matches(self, tag: str) -> bool:
        """Whether a tag is a version that satisfies the constraint (non-versions never do)."""
        version = parse_version(tag)
        return version is not None and self.check(version)


def parse_constraint(text: str) -> Constraint:
    """Parse a Masterminds-style constraint such as ``>= 1.2, < 2 || ^3.1``; SemverError if invalid."""
    rewritten = _RANGE_RE.sub(lambda m: f" >= {m.group(1)}, <= {m.group(2)} ", text)
    alternatives: list[tuple[_Term, ...]] = []
    for part in rewritten.split("||"):
        if not _VALID_RE.match(part):
            shown = part.strip()
            raise SemverError(f"improper constraint {shown!r}" if shown else f"an empty alternative in {text!r}")
        alternatives.append(tuple(_term(m.group(1), m.group(2)) for m in _FIND_RE.finditer(part)))
    return Constraint(text, tuple(alternatives))
