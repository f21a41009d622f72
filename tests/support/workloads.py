"""Multi-project workloads for the bulk engine: built once as an OCI layout, seeded into a source
registry by skopeo, shared by every test of a session (read-only; destinations are per test).

:func:`projects` writes ``projP/<repo>:<tag>`` images where every repository of a project has the
project's base layer (the same blob), plus one layer and one config of its own per image; project 1
uses Docker schema2 media types, the others OCI. :func:`add_index` adds multi-platform images
(OCI index or Docker manifest list). :func:`seed` pushes everything with ``skopeo``
(``sync --src dir --preserve-digests`` per namespace, ``copy --all --preserve-digests`` for
indexes), so what ferry reads was written independently of ferry.

:func:`project_source` (39 small images) and :func:`big_source` (6 images with 24 MB layers, for
killing a run midway) start and seed a registry once per session, however many test modules use
them from their own session-scoped fixtures.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import images as im
from tests.support.images import Layout
from tests.support.registry import Registry, RequestRecord, start_registry
from tests.support.skopeo import inspect_raw, list_tags, push_layout, skopeo

__all__ = [
    "MB",
    "Image",
    "Seeded",
    "Workload",
    "add_index",
    "assert_mirrored",
    "big_source",
    "blob_put_digests",
    "ferry",
    "manifest_puts",
    "mounts",
    "project_source",
    "projects",
    "seed",
    "writes",
]

MB = 1_000_000
INDEX_TYPES = (im.OCI_INDEX, im.DOCKER_LIST)


@dataclass(frozen=True)
class Image:
    """One tagged image of a workload (``repo:tag`` at the source) and its manifest digest."""

    repo: str
    tag: str
    digest: str
    media_type: str

    @property
    def ref(self) -> str:
        return f"{self.repo}:{self.tag}"

    @property
    def project(self) -> str:
        return self.repo.split("/", 1)[0]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


@dataclass
class Workload:
    """Images in one OCI layout, with what a copier has to move for them."""

    name: str
    layout: Layout
    images: list[Image]

    # -- what is in it ---------------------------------------------------------------------
    def image(self, repo: str, tag: str) -> Image:
        return next(i for i in self.images if i.repo == repo and i.tag == tag)

    @property
    def repos(self) -> list[str]:
        return sorted({i.repo for i in self.images})

    def tags(self, repo: str) -> list[str]:
        return sorted(i.tag for i in self.images if i.repo == repo)

    def manifest(self, digest: str) -> dict[str, Any]:
        return json.loads(self.layout.read_blob(digest))

    def manifests_of(self, digest: str) -> list[str]:
        """The manifest and, for an index, its children (digests)."""
        children = [c["digest"] for c in self.manifest(digest).get("manifests", [])]
        return [digest, *children]

    def blobs_of(self, digest: str) -> dict[str, int]:
        """Configs and layers the image (all platforms of an index) references: digest → size."""
        out: dict[str, int] = {}
        for m_digest in self.manifests_of(digest):
            m = self.manifest(m_digest)
            for d in [*([m["config"]] if "config" in m else []), *m.get("layers", [])]:
                out[d["digest"]] = d["size"]
        return out

    def repo_blobs(self, images: Sequence[Image] | None = None) -> dict[str, set[str]]:
        """Distinct blobs each repository needs."""
        out: dict[str, set[str]] = {}
        for img in self.images if images is None else images:
            out.setdefault(img.repo, set()).update(self.blobs_of(img.digest))
        return out

    def distinct_blobs(self, images: Sequence[Image] | None = None) -> dict[str, int]:
        out: dict[str, int] = {}
        for img in self.images if images is None else images:
            out.update(self.blobs_of(img.digest))
        return out

    def shared_blobs(self) -> set[str]:
        """Blobs needed by more than one repository (the ones a copier should mount, not upload again)."""
        counts: dict[str, int] = {}
        for blobs in self.repo_blobs().values():
            for b in blobs:
                counts[b] = counts.get(b, 0) + 1
        return {b for b, n in counts.items() if n > 1}


# --------------------------------------------------------------------------------------------------
# Builders


def _config(lay: Layout, docker: bool, diff_ids: list[str], label: str) -> dict[str, Any]:
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": im.CREATED,
        "author": "ferry tests",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
            "Labels": {"org.ferry.test.image": label},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": im.CREATED, "created_by": f"ferry-test layer {i}"} for i in range(len(diff_ids))],
    }
    return lay.add_json_blob(config, im.DOCKER_CONFIG if docker else im.OCI_CONFIG)


def projects(
    workdir: Path,
    *,
    name: str = "projects",
    projects: int = 3,
    repos: Sequence[str] = ("app", "web", "worker", "api"),
    tags: Sequence[str] = ("v1", "v2", "v3"),
    base_size: int = 4096,
    own_size: int = 1024,
    docker_projects: Sequence[int] = (1,),
) -> Workload:
    """``projects × repos × tags`` images ``projP/REPO:TAG``: the project's base layer (shared by all its
    repositories) plus a layer of ``own_size`` random bytes of their own."""
    lay = Layout(workdir / f"layout-{name}")
    imgs: list[Image] = []
    for p in range(projects):
        docker = p in docker_projects
        layer_type = im.DOCKER_LAYER if docker else im.OCI_LAYER
        media_type = im.DOCKER_MANIFEST if docker else im.OCI_MANIFEST
        base, base_diff = lay.add_layer(
            {f"etc/ferry-base-{p}.conf": f"{name} project={p}\n".encode()},
            layer_type,
            big_file=(f"opt/base-{p}/random.bin", base_size, 1_000_003 * (p + 1)),
        )
        for r, repo in enumerate(repos):
            for t, tag in enumerate(tags):
                seed_no = (p * 100 + r) * 100 + t
                label = f"{name}/proj{p}/{repo}:{tag}"
                own, own_diff = lay.add_layer(
                    {f"app/{label}.txt": label.encode()},
                    layer_type,
                    big_file=(f"app/proj{p}/{repo}/data-{tag}.bin", own_size, 7_000_000 + seed_no),
                )
                manifest = {
                    "schemaVersion": 2,
                    "mediaType": media_type,
                    "config": _config(lay, docker, [base_diff, own_diff], label),
                    "layers": [base, own],
                }
                desc = lay.add_manifest(manifest, media_type)  # untagged: Layout.tag rewrites index.json
                imgs.append(Image(f"proj{p}/{repo}", tag, desc["digest"], media_type))
    return Workload(name, lay, imgs)


def add_index(workload: Workload, repo: str, tag: str, *, docker: bool = False, seed_no: int = 0) -> Image:
    """Add a multi-platform image (OCI index of 3 platforms, or a Docker manifest list of 2)."""
    ref = f"{repo}-{tag}".replace("/", "-")
    if docker:
        digest = im.docker_manifest_list(workload.layout, ref, seed=seed_no)
        img = Image(repo, tag, digest, im.DOCKER_LIST)
    else:
        digest = im.oci_index(workload.layout, ref, seed=seed_no)
        img = Image(repo, tag, digest, im.OCI_INDEX)
    workload.images.append(img)
    return img


def alias(workload: Workload, repo: str, tag: str, new_tag: str) -> Image:
    """Another tag for the same manifest (``latest`` = ``v3``)."""
    old = workload.image(repo, tag)
    img = Image(repo, new_tag, old.digest, old.media_type)
    workload.images.append(img)
    return img


# --------------------------------------------------------------------------------------------------
# Seeding


def seed(workload: Workload, host: str, workdir: Path, *, jobs: int = 4) -> None:
    """Push every image of ``workload`` to ``host`` (plain HTTP) with skopeo, digests preserved."""
    tree_root = Path(tempfile.mkdtemp(prefix="seed-", dir=workdir))
    try:
        singles = [i for i in workload.images if not i.is_index]
        indexes = [i for i in workload.images if i.is_index]
        by_repo: dict[str, list[Image]] = {}
        for img in singles:
            by_repo.setdefault(img.repo, []).append(img)
        parts = max(1, min(jobs, len(by_repo)))
        dirs: set[tuple[int, str]] = set()
        for k, repo in enumerate(sorted(by_repo)):
            ns, _, leaf = repo.rpartition("/")
            assert ns, f"{repo}: seed() wants namespaced repositories"
            for img in by_repo[repo]:
                workload.layout.export_dir(img.digest, tree_root / f"part{k % parts}" / ns / f"{leaf}:{img.tag}")
            dirs.add((k % parts, ns))
        calls: list[Callable[[], object]] = []
        for part, ns in sorted(dirs):
            src = tree_root / f"part{part}" / ns
            args = [
                "sync",
                "--src",
                "dir",
                "--dest",
                "docker",
                "--dest-tls-verify=false",
                "--preserve-digests",
                f"{src}/",
                f"{host}/{ns}",
            ]
            calls.append(lambda args=args: skopeo(*args, timeout=600))
        for img in indexes:
            calls.append(lambda img=img: push_layout(workload.layout.path, img.digest, f"{host}/{img.ref}"))
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for f in [pool.submit(c) for c in calls]:
                f.result()
    finally:
        shutil.rmtree(tree_root, ignore_errors=True)


@dataclass
class Seeded:
    """A source registry holding a workload."""

    registry: Registry
    workload: Workload

    @property
    def host(self) -> str:
        return self.registry.host

    def ref(self, name: str) -> str:
        return self.registry.ref(name)


# One registry per workload for the whole session, however many modules import the fixtures.
_shared: dict[str, tuple[Seeded, int]] = {}
_lock = threading.Lock()


@contextlib.contextmanager
def _shared_source(key: str, factory: pytest.TempPathFactory, build: Callable[[Path], Workload]) -> Iterator[Seeded]:
    with _lock:
        if key in _shared:
            seeded, users = _shared[key]
            _shared[key] = (seeded, users + 1)
        else:
            workdir = factory.mktemp(f"workload-{key}")
            workload = build(workdir)
            reg = start_registry(workdir / "registry")
            try:
                seed(workload, reg.host, workdir)
                # the source holds exactly the layout's bytes: comparing a destination with the
                # layout is comparing it with the source
                assert_mirrored(workload, workload.images, reg, skopeo=False)
            except (subprocess.CalledProcessError, OSError, AssertionError):
                reg.stop()
                raise
            seeded = Seeded(reg, workload)
            _shared[key] = (seeded, 1)
    try:
        yield seeded
    finally:
        with _lock:
            seeded, users = _shared[key]
            if users <= 1:
                del _shared[key]
                seeded.registry.stop()
            else:
                _shared[key] = (seeded, users - 1)


def build_projects(workdir: Path) -> Workload:
    """3 projects × 4 repositories × 3 tags, ``proj0/app:latest`` = ``v3``, an OCI index
    ``proj0/multi:v1`` (3 platforms) and a Docker manifest list ``proj2/multi:v1`` (2 platforms): 39 images."""
    w = projects(workdir)
    alias(w, "proj0/app", "v3", "latest")
    add_index(w, "proj0/multi", "v1", seed_no=11)
    add_index(w, "proj2/multi", "v1", docker=True, seed_no=12)
    return w


def build_big(workdir: Path) -> Workload:
    """2 projects × 3 repositories × 1 tag; each image has a 24 MB layer of its own (6 in all)."""
    return projects(
        workdir,
        name="big",
        projects=2,
        repos=("app", "web", "db"),
        tags=("v1",),
        base_size=64 * 1024,
        own_size=24 * MB,
        docker_projects=(),
    )


def project_source(factory: pytest.TempPathFactory) -> contextlib.AbstractContextManager[Seeded]:
    """The :func:`build_projects` workload in a plain HTTP registry, shared by the session (do not write
    to it). Use it from a session-scoped fixture: ``with project_source(tmp_path_factory) as s: yield s``."""
    return _shared_source("projects", factory, build_projects)


def big_source(factory: pytest.TempPathFactory) -> contextlib.AbstractContextManager[Seeded]:
    """The :func:`build_big` workload in a plain HTTP registry, shared like :func:`project_source`."""
    return _shared_source("big", factory, build_big)


# --------------------------------------------------------------------------------------------------
# Running ferry and reading what a destination saw


def ferry_env(home: Path) -> dict[str, str]:
    """The environment for a ``ferry`` child: its own HOME and state dirs (no journal, auth file or
    docker config of the user's is read or written)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "REGISTRY_AUTH_FILE",
            "XDG_RUNTIME_DIR",
            "DOCKER_CONFIG",
            "XDG_STATE_HOME",
            "FERRY_SRC_PASSWORD",
            "FERRY_DEST_PASSWORD",
            "DEFAULT_REGISTRY",
            "DEFAULT_NAMESPACE",
        )
    }
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CONFIG_HOME=str(home / "config"),
        COLUMNS="200",
        TERM="dumb",
    )
    return env


def ferry_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "ferry", *args]


def ferry(*args: str, home: Path, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``ferry ARGS`` with stdout/stderr as pipes (not a terminal); never raises on exit codes."""
    return subprocess.run(
        ferry_cmd(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ferry_env(home),
        cwd=cwd or home,
        stdin=subprocess.DEVNULL,
        check=False,
    )


_WRITE_METHODS = ("PUT", "POST", "PATCH", "DELETE")


def writes(reg: Registry, since: int = 0) -> list[RequestRecord]:
    """Every request that could change the registry (PUT, POST, PATCH, DELETE), whatever its answer."""
    return [r for r in reg.requests(since) if r.method in _WRITE_METHODS]


def manifest_puts(reg: Registry, since: int = 0) -> list[RequestRecord]:
    return [r for r in reg.requests(since) if r.method == "PUT" and "/manifests/" in r.path]


def blob_put_digests(reg: Registry, since: int = 0) -> list[str]:
    """The digest of every completed blob upload (201 PUT), in log order (repeats kept)."""
    return [r.params["digest"][0] for r in reg.blob_upload_puts(since)]


def mounts(reg: Registry, since: int = 0) -> list[RequestRecord]:
    """Cross-repository mount requests that mounted (201)."""
    return [r for r in reg.requests(since) if r.method == "POST" and "mount" in r.params and r.status == 201]


MANIFEST_ACCEPT = ", ".join((im.OCI_INDEX, im.OCI_MANIFEST, im.DOCKER_LIST, im.DOCKER_MANIFEST))


def _http_manifest(reg: Registry, name: str, reference: str) -> bytes | None:
    reply = reg.request("GET", f"/v2/{name}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})
    return reply.body if reply.status == 200 else None


def _http_tags(reg: Registry, name: str) -> list[str]:
    reply = reg.request("GET", f"/v2/{name}/tags/list")
    return sorted(json.loads(reply.body).get("tags") or []) if reply.status == 200 else []


def assert_mirrored(
    workload: Workload, images: Sequence[Image], dst: Registry, prefix: str = "", *, skopeo: bool = True
) -> None:
    """Every image is at ``dst/PREFIX<repo>:<tag>`` with the source's exact manifest bytes, index children
    included, and each repository has exactly those tags. Read back with ``skopeo inspect --raw`` and
    ``skopeo list-tags``, or with plain HTTP (``skopeo=False``: faster, for big checks that are not the
    point of a test)."""

    def manifest(name: str, reference: str) -> bytes | None:
        if not skopeo:
            return _http_manifest(dst, name, reference)
        sep = "@" if reference.startswith("sha256:") else ":"
        return inspect_raw(dst.ref(f"{name}{sep}{reference}"))

    def check(img: Image) -> str | None:
        if manifest(prefix + img.repo, img.tag) != workload.layout.read_blob(img.digest):
            return f"{prefix}{img.ref}: manifest bytes differ from the source"
        for child in workload.manifests_of(img.digest)[1:]:
            if manifest(prefix + img.repo, child) != workload.layout.read_blob(child):
                return f"{prefix}{img.repo}@{child}: child manifest differs"
        return None

    def tag_list(repo: str) -> list[str]:
        return list_tags(dst.ref(prefix + repo)) if skopeo else _http_tags(dst, prefix + repo)

    with ThreadPoolExecutor(max_workers=8) as pool:
        problems = [p for p in pool.map(check, images) if p]
        repos = sorted({i.repo for i in images})
        tags = dict(zip(repos, pool.map(tag_list, repos), strict=True))
    assert not problems, problems
    for repo in repos:
        want = sorted({i.tag for i in images if i.repo == repo})
        assert tags[repo] == want, f"{prefix}{repo}: tags {tags[repo]}, expected {want}"
