"""``ferry verify DIR``: an export checked with nothing but the disk.

Every file under ``blobs/`` is rehashed once (the names are the digests), every image the description
lists must be in ``index.json`` under its name with its digest, and everything its manifests reference
(children, config, layers) must be present, whole and of the size the descriptor says; so must every
Helm chart version's archive and provenance file.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ferry.airgap.description import Description, read_description
from ferry.errors import FerryError
from ferry.media import Descriptor, parse_manifest
from ferry.refs import is_digest
from ferry.transports.files import TEMP_PREFIX
from ferry.transports.layout import REF_NAME

HASH_CHUNK = 4 * 1024 * 1024
HASH_THREADS = 4  # hashlib releases the GIL: a few files at once keep a disk and two cores busy


@dataclass(frozen=True, slots=True)
class Problem:
    subject: str  # "blob sha256:…", "image alpha/app:1.0", "index.json"
    reason: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.reason}"


@dataclass(slots=True)
class OfflineCheck:
    description: Description
    blobs: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)
    bad_images: list[str] = field(default_factory=list)  # ref names of the images that are not whole
    bad_blobs: list[str] = field(default_factory=list)  # digests whose file does not hash to its name
    bad_charts: list[str] = field(default_factory=list)  # project/name:version of the charts that are not whole

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, object]:
        return {"blobs": self.blobs, "bytes": self.bytes, "images": len(self.description.images),
                "bad_images": self.bad_images, "bad_blobs": self.bad_blobs,
                "charts": len(self.description.charts), "bad_charts": self.bad_charts,
                "problems": [{"subject": p.subject, "reason": p.reason} for p in self.problems]}


def _hash_file(path: str, algo: str) -> tuple[str, int]:
    h = hashlib.new(algo)
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def rehash_blobs(directory: str) -> tuple[dict[str, int], list[str]]:
    """Every blob file's size by digest, and the digests whose content does not match."""
    files: list[tuple[str, str, str]] = []  # (digest, path, algo)
    root = os.path.join(directory, "blobs")
    for algo in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        for name in sorted(os.listdir(os.path.join(root, algo))):
            if not name.startswith(TEMP_PREFIX):
                files.append((f"{algo}:{name}", os.path.join(root, algo, name), algo))
    sizes: dict[str, int] = {}
    bad: list[str] = []
    with ThreadPoolExecutor(HASH_THREADS) as pool:
        results = pool.map(lambda f: _hash_file(f[1], f[2]) if f[2] in hashlib.algorithms_available else ("", 0),
                           files)
        for (digest, _path, _algo), (hexdigest, size) in zip(files, results, strict=True):
            sizes[digest] = size
            if hexdigest != digest.partition(":")[2]:
                bad.append(digest)
    return sizes, bad


class _Walker:
    """Follows manifests from an image's root; each digest is judged once for every image."""

    def __init__(self, directory: str, sizes: dict[str, int], bad: set[str]) -> None:
        self.directory, self.sizes, self.bad = directory, sizes, bad
        self.verdicts: dict[str, list[Problem]] = {}

    def blob(self, desc: Descriptor) -> list[Problem]:
        subject = f"blob {desc.digest}"
        if desc.digest not in self.sizes:
            return [Problem(subject, "missing")]
        if desc.digest in self.bad:
            return [Problem(subject, "content does not match its digest (damaged on disk)")]
        if desc.size >= 0 and self.sizes[desc.digest] != desc.size:
            return [Problem(subject, f"has {self.sizes[desc.digest]} bytes, its descriptor says {desc.size}")]
        return []

    def manifest(self, desc: Descriptor) -> list[Problem]:
        if desc.digest in self.verdicts:
            return self.verdicts[desc.digest]
        problems = self.blob(desc)
        if not problems:
            algo, _, hexpart = desc.digest.partition(":")
            with open(os.path.join(self.directory, "blobs", algo, hexpart), "rb") as f:
                raw = f.read()
            try:
                m = parse_manifest(raw, desc.media_type, desc.digest)
            except FerryError as e:
                problems = [Problem(f"manifest {desc.digest}", e.message)]
            else:
                for child in m.children:
                    problems += self.manifest(child)
                for blob in m.blobs:
                    problems += self.blob(blob)
        self.verdicts[desc.digest] = problems
        return problems


def _index_entries(directory: str) -> tuple[dict[str, dict[str, object]], list[Problem]]:
    try:
        with open(os.path.join(directory, "index.json"), "rb") as f:
            index = json.load(f)
        entries = [e for e in index["manifests"] if isinstance(e, dict)]
    except FileNotFoundError:
        return {}, [Problem("index.json", "missing")]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as e:
        return {}, [Problem("index.json", f"not a valid OCI index ({e})")]
    named: dict[str, dict[str, object]] = {}
    for e in entries:
        annotations = e.get("annotations")
        name = annotations.get(REF_NAME) if isinstance(annotations, dict) else None
        if isinstance(name, str):
            named[name] = e
    return named, []


def check_export(directory: str) -> OfflineCheck:
    """Rehash and walk the export in ``directory``; nothing is changed."""
    check = OfflineCheck(read_description(directory))
    sizes, bad = rehash_blobs(directory)
    check.blobs, check.bytes, check.bad_blobs = len(sizes), sum(sizes.values()), bad
    entries, check.problems = _index_entries(directory)
    walker = _Walker(directory, sizes, set(bad))
    for image in check.description.images:
        entry = entries.get(image.ref_name)
        if entry is None or entry.get("digest") != image.digest or not is_digest(image.digest):
            found = "missing" if entry is None else f"listed with {entry.get('digest')}"
            problems = [Problem(f"image {image.ref_name}",
                                f"{found} in index.json, the description says {image.digest}")]
        else:
            size = entry.get("size")
            root = Descriptor(image.media_type, image.digest, size if isinstance(size, int) else -1)
            problems = walker.manifest(root)
        if problems:
            check.bad_images.append(image.ref_name)
            check.problems += [p for p in problems if p not in check.problems]
    for chart in check.description.charts:
        problems = [p for b in (chart.archive, chart.prov) if b is not None
                    for p in walker.blob(Descriptor("", b.digest, b.size))]
        if problems:
            check.bad_charts.append(chart.label)
            check.problems += [Problem(f"chart {chart.label}", p.reason + f" ({p.subject})") for p in problems]
    described = {i.ref_name for i in check.description.images}
    check.problems += [Problem(f"index.json entry {n}", "not in the description")
                       for n in entries if n not in described]
    return check
