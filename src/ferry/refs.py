"""Image references in skopeo's transport syntax, parsed and printed; nothing else.

``docker://host[:port]/repo[:tag|@sha256:…]``, ``oci:PATH[:REF]``, ``dir:PATH`` and
``docker-archive:PATH[:NAME:TAG]``. Registry references follow docker's normalisation
(``busybox`` → ``docker.io/library/busybox:latest``).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, replace

from ferry.errors import UsageError

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"

# From distribution/reference: path components, tags and digests.
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPO_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$")
_HOST_RE = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


def is_digest(value: str) -> bool:
    return bool(_DIGEST_RE.match(value))


def is_tag(value: str) -> bool:
    return bool(_TAG_RE.match(value))


@dataclass(frozen=True, slots=True)
class RegistryRef:
    """A repository in a registry, optionally with a tag and/or a digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest when known, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_tag(self, tag: str | None) -> RegistryRef:
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str | None) -> RegistryRef:
        return replace(self, digest=digest, tag=None)

    def repo_ref(self) -> RegistryRef:
        return replace(self, tag=None, digest=None)

    def __str__(self) -> str:
        s = f"{self.registry}/{self.repository}"
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


@dataclass(frozen=True, slots=True)
class PathRef:
    """A reference to local storage: an OCI layout, a directory or a docker archive."""

    transport: str  # "oci", "dir" or "docker-archive"
    path: str
    name: str | None = None  # oci: the ref.name annotation; docker-archive: "repo:tag"

    def __str__(self) -> str:
        return f"{self.transport}:{self.path}" + (f":{self.name}" if self.name else "")


ImageRef = RegistryRef | PathRef
TRANSPORTS = ("docker", "oci", "dir", "docker-archive")


def parse_docker_ref(text: str, *, default_tag: bool = True) -> RegistryRef:
    """Parse ``[host[:port]/]repo[:tag][@digest]`` with docker's normalisation.

    ``default_tag`` adds ``latest`` when neither tag nor digest is given.
    """
    original = text
    if not text:
        raise UsageError("empty image reference", hint="expected host/repository[:tag]")
    name, at, tail = text.rpartition("@")
    if at and ("@" in name or not tail.startswith(("sha256:", "sha512:"))):
        # user:password@host/…, or an @ that does not introduce a digest: never echo it (it may hold a password)
        raise UsageError("invalid image reference: '@' only introduces a digest; credentials do not belong in a "
                         "reference", hint="use --creds/--src-creds/--dest-creds, an auth file or ferry login")
    if "://" in text:
        raise UsageError(
            f"invalid reference {original!r}: a scheme like http:// does not belong in an image reference",
            hint="write docker://host:port/repo:tag",
        )
    digest = None
    if at:
        text, digest = name, tail
        if not is_digest(digest):
            raise UsageError(f"invalid digest in {original!r}", hint="expected sha256: and 64 hex characters")
    registry = DEFAULT_REGISTRY
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, text = sys.intern(first), rest  # one string per host, however many references name it
        if not _HOST_RE.match(registry):
            raise UsageError(f"invalid registry host {registry!r} in {original!r}")
    tag = None
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not is_tag(tag):
            raise UsageError(f"invalid tag {tag!r} in {original!r}", hint="tags are [A-Za-z0-9_.-], at most 128")
    if registry == DEFAULT_REGISTRY and "/" not in text:
        text = f"library/{text}"
    if not _REPO_RE.match(text):
        raise UsageError(
            f"invalid repository name {text!r} in {original!r}",
            hint="lowercase letters, digits and separators . _ - /",
        )
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return RegistryRef(registry=registry, repository=text, tag=tag, digest=digest)


def parse_repository(text: str) -> RegistryRef:
    """A repository without tag or digest (``host/repo``), for list-tags and sync destinations."""
    ref = parse_docker_ref(text, default_tag=False)
    if ref.tag or ref.digest:
        raise UsageError(f"{text!r} names a tag or digest; a repository is expected")
    return ref


def parse_image_ref(text: str) -> ImageRef:
    """Parse a skopeo transport reference such as ``docker://host/repo:tag`` or ``oci:dir:tag``."""
    transport, sep, rest = text.partition(":")
    if not sep or transport not in TRANSPORTS:
        raise UsageError(
            f"invalid image reference {text!r}: unknown or missing transport",
            hint="use docker://, oci:, dir: or docker-archive:",
        )
    if transport == "docker":
        if not rest.startswith("//"):
            raise UsageError(f"invalid reference {text!r}", hint="docker references start with docker://")
        return parse_docker_ref(rest[2:])
    if not rest:
        raise UsageError(f"invalid reference {text!r}: a path is required after {transport}:")
    if transport == "dir":
        return PathRef("dir", rest)
    path, _, name = rest.partition(":")
    if not path:
        raise UsageError(f"invalid reference {text!r}: a path is required after {transport}:")
    return PathRef(transport, path, name or None)
