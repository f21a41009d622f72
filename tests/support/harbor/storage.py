"""The artifact inventory as Harbor would see it, read from the registry's storage directory.

Nothing is bookkept: every call reads ``docker/registry/v2/repositories/<name>/_manifests/{tags,revisions}``
and manifests from the blob store, so whatever is pushed through ``/v2/`` shows up.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.harbor.common import (
    ACCESSORY_TYPE_BY_ARTIFACT_TYPE,
    COSIGN_LAYER,
    COSIGN_TAG,
    DOCKER_CONFIG,
    INDEX_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    SCHEMA1_SIGNED,
    TYPE_BY_CONFIG,
)


@dataclass(frozen=True)
class Manifest:
    digest: str
    raw_size: int
    doc: dict[str, Any]

    @property
    def media_type(self) -> str:
        mt = self.doc.get("mediaType")
        if isinstance(mt, str) and mt:
            return mt
        if self.doc.get("schemaVersion") == 1:
            return SCHEMA1_SIGNED
        return OCI_INDEX if "manifests" in self.doc else OCI_MANIFEST

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def config(self) -> dict[str, Any] | None:
        c = self.doc.get("config")
        return c if isinstance(c, dict) else None

    @property
    def layers(self) -> list[dict[str, Any]]:
        return [x for x in self.doc.get("layers") or [] if isinstance(x, dict)]

    @property
    def children(self) -> list[dict[str, Any]]:
        return [x for x in self.doc.get("manifests") or [] if isinstance(x, dict) and "digest" in x]

    @property
    def subject(self) -> str | None:
        s = self.doc.get("subject")
        return s.get("digest") if isinstance(s, dict) else None

    @property
    def artifact_type(self) -> str:
        at = self.doc.get("artifactType")
        if isinstance(at, str) and at:
            return at
        return self.config.get("mediaType", "") if self.config and not self.is_index else ""


@dataclass
class Accessory:
    digest: str
    subject: str
    type: str


@dataclass
class RepoView:
    """One repository as Harbor would see it, derived from the registry storage."""

    name: str
    project: str
    artifacts: dict[str, tuple[Manifest, float]]  # digest → (manifest, push time)
    tags: dict[str, tuple[str, float]]  # tag → (digest, push time)
    children: set[str]  # digests referenced by an index of this repository
    accessories: dict[str, Accessory]  # accessory digest → accessory

    @property
    def path(self) -> str:
        """The repository name without its project (what goes into the API path)."""
        return self.name.split("/", 1)[1]

    @property
    def created(self) -> float:
        return min(t for _, t in self.artifacts.values())

    @property
    def updated(self) -> float:
        return max([t for _, t in self.artifacts.values()] + [t for _, t in self.tags.values()])

    def tags_of(self, digest: str) -> list[tuple[str, float]]:
        return sorted(((t, pt) for t, (d, pt) in self.tags.items() if d == digest), key=lambda x: (-x[1], x[0]))

    def listed(self, *, base_all: bool) -> list[str]:
        """Top-level artifacts: Harbor lists tagged ones and those no index references (all with
        ``q=base=*``); accessories are never listed on their own (only as ``accessories``)."""
        tagged = {d for d, _ in self.tags.values()}
        return [
            d
            for d in self.artifacts
            if d not in self.accessories and (base_all or d in tagged or d not in self.children)
        ]



def artifact_kind(m: Manifest) -> tuple[str, str]:
    """(type, media_type) as Harbor's artifact processors set them."""
    if m.is_index:
        return "IMAGE", m.media_type
    if m.media_type == SCHEMA1_SIGNED or m.doc.get("schemaVersion") == 1:
        return "IMAGE", DOCKER_CONFIG
    cfg_type = (m.config or {}).get("mediaType", "")
    return TYPE_BY_CONFIG.get(cfg_type, "UNKNOWN"), cfg_type


class Storage:
    """Reads one registry's storage (``root`` is its ``docker/registry/v2``); manifests and configs
    are cached by digest, as content never changes under a digest."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._manifests: dict[str, Manifest | None] = {}
        self._configs: dict[str, dict[str, Any] | None] = {}

    def blob(self, digest: str) -> bytes | None:
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64:
            return None
        try:
            return (self.root / "blobs" / "sha256" / hexd[:2] / hexd / "data").read_bytes()
        except OSError:
            return None

    def manifest(self, digest: str) -> Manifest | None:
        if digest in self._manifests and self._manifests[digest] is not None:
            return self._manifests[digest]
        raw = self.blob(digest)
        m = None
        if raw is not None:
            try:
                doc = json.loads(raw)
                if isinstance(doc, dict):
                    m = Manifest(digest, len(raw), doc)
            except ValueError:
                m = None
        self._manifests[digest] = m
        return m

    def config(self, digest: str) -> dict[str, Any] | None:
        if digest not in self._configs:
            raw = self.blob(digest)
            try:
                doc = json.loads(raw) if raw is not None else None
            except ValueError:
                doc = None
            self._configs[digest] = doc if isinstance(doc, dict) else None
        return self._configs[digest]

    def repo_names(self, projects: Iterable[str]) -> list[str]:
        """Repositories with at least one manifest under the given projects."""
        base = self.root / "repositories"
        names = []
        for p in projects:
            top = base / p
            if not top.is_dir():
                continue
            for dirpath, dirnames, _ in os.walk(top):
                if "_manifests" in dirnames:
                    rel = Path(dirpath).relative_to(base).as_posix()
                    if "/" in rel and self._has_revisions(Path(dirpath)):
                        names.append(rel)
                dirnames[:] = [d for d in dirnames if d not in ("_manifests", "_layers", "_uploads")]
        return names

    @staticmethod
    def _has_revisions(repo_dir: Path) -> bool:
        rev = repo_dir / "_manifests" / "revisions" / "sha256"
        try:
            return any((Path(e.path) / "link").exists() for e in os.scandir(rev))
        except OSError:
            return False

    def first_push(self, name: str) -> float | None:
        """The oldest manifest link time of a repository, from stats only (for sorting listings)."""
        rev = self.root / "repositories" / name / "_manifests" / "revisions" / "sha256"
        times = []
        with contextlib.suppress(OSError):
            for e in os.scandir(rev):
                with contextlib.suppress(OSError):
                    times.append(os.stat(Path(e.path) / "link").st_mtime)
        return min(times) if times else None

    def repo_view(self, name: str) -> RepoView | None:
        base = self.root / "repositories" / name / "_manifests"
        artifacts: dict[str, tuple[Manifest, float]] = {}
        try:
            entries = list(os.scandir(base / "revisions" / "sha256"))
        except OSError:
            return None
        for e in entries:
            try:
                mtime = os.stat(Path(e.path) / "link").st_mtime
            except OSError:
                continue
            digest = "sha256:" + e.name
            m = self.manifest(digest)
            if m is not None:
                artifacts[digest] = (m, mtime)
        if not artifacts:
            return None
        tags: dict[str, tuple[str, float]] = {}
        try:
            tag_entries = list(os.scandir(base / "tags"))
        except OSError:
            tag_entries = []
        for e in tag_entries:
            link = Path(e.path) / "current" / "link"
            try:
                digest = link.read_text().strip()
                mtime = os.stat(link).st_mtime
            except OSError:
                continue
            if digest in artifacts:
                tags[e.name] = (digest, mtime)
        children = {c["digest"] for m, _ in artifacts.values() if m.is_index for c in m.children} & set(artifacts)
        accessories: dict[str, Accessory] = {}
        for digest, (m, _) in artifacts.items():
            if m.subject:  # OCI 1.1 referrer: Harbor's subject middleware
                acc_type = ACCESSORY_TYPE_BY_ARTIFACT_TYPE.get(m.artifact_type, "subject.accessory")
                accessories[digest] = Accessory(digest, m.subject, acc_type)
        for tag, (digest, _) in tags.items():
            hit = COSIGN_TAG.match(tag)
            if hit and digest not in accessories:  # Harbor's cosign middleware: tag + signature layer
                m = artifacts[digest][0]
                if any(layer.get("mediaType") == COSIGN_LAYER for layer in m.layers):
                    accessories[digest] = Accessory(digest, "sha256:" + hit.group(1), "signature.cosign")
        return RepoView(name, name.split("/", 1)[0], artifacts, tags, children, accessories)

    def artifact_size(self, view: RepoView, digest: str, seen: frozenset[str] = frozenset()) -> int:
        m = view.artifacts[digest][0]
        if m.is_index:
            total = m.raw_size
            for c in m.children:
                if c["digest"] in view.artifacts and c["digest"] not in seen:
                    total += self.artifact_size(view, c["digest"], seen | {digest})
            return total
        size = m.raw_size
        if m.config:
            size += int(m.config.get("size") or 0)
        return size + sum(int(x.get("size") or 0) for x in m.layers)

