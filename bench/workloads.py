"""Benchmark workloads: deterministic images written as OCI layouts, seeded into registries by skopeo.

Content comes from :mod:`tests.support.images` (real gzip'd tar layers, seeded random bytes
streamed to disk). Sources are always written by ``skopeo`` (never by ferry), so what ferry
reads was produced independently of it:

- one image: ``skopeo copy --preserve-digests dir:… docker://…`` (:func:`tests.support.skopeo.push_layout`);
- many images: each namespace is exported as a tree of skopeo ``dir:`` copies named
  ``<repo>:<tag>`` and pushed with ``skopeo sync --src dir --dest docker --preserve-digests``,
  a few calls in parallel.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench  # noqa: F401  (puts the repository root on sys.path)
from tests.support import images, skopeo
from tests.support.images import CREATED, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Layout

__all__ = ["Image", "Workload", "big_layer", "build", "harbor_like", "many_small", "seed"]

MB = 1_000_000


@dataclass(frozen=True)
class Image:
    """One tagged image of a workload: where it goes (``repo:tag``) and what it is (manifest digest)."""

    repo: str
    tag: str
    digest: str

    @property
    def namespace(self) -> str:
        """The repository path without its last component (``proj0`` for ``proj0/repo1``; ``""`` at top level)."""
        return self.repo.rpartition("/")[0]

    @property
    def name(self) -> str:
        """The last component of the repository path."""
        return self.repo.rpartition("/")[2]


@dataclass
class Workload:
    """A set of images in one OCI layout, with the sizes a copier has to move."""

    name: str
    layout: Layout
    images: list[Image]
    blob_bytes: int  # distinct blob bytes (configs + layers) over the whole workload
    manifest_bytes: int
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def repos(self) -> list[str]:
        """Repository paths, sorted."""
        return sorted({i.repo for i in self.images})

    def tags(self) -> dict[str, list[str]]:
        """Tags by repository."""
        out: dict[str, list[str]] = {}
        for img in self.images:
            out.setdefault(img.repo, []).append(img.tag)
        return out

    def subset(self, name: str, keep: Iterable[Image]) -> Workload:
        """A workload over some of these images (sizes recomputed from the layout)."""
        kept = list(keep)
        blobs, manifests = _sizes(self.layout, kept)
        return Workload(name, self.layout, kept, blobs, manifests, dict(self.params, images=len(kept)))


def _sizes(lay: Layout, imgs: Sequence[Image]) -> tuple[int, int]:
    seen: dict[str, int] = {}
    manifests = 0
    for img in imgs:
        data = lay.read_blob(img.digest)
        manifests += len(data)
        m = json.loads(data)
        for d in [m["config"], *m["layers"]]:
            seen[d["digest"]] = d["size"]
    return sum(seen.values()), manifests


def _image(lay: Layout, layers: list[tuple[dict[str, Any], str]], seed: int, labels: dict[str, str]) -> str:
    """Write the config and OCI manifest of an image made of ``layers`` ((descriptor, diff_id) pairs)."""
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "author": "ferry bench",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", f"FERRY_SEED={seed}"],
            "Cmd": ["/bin/sh"],
            "Labels": {"org.ferry.bench.seed": str(seed), **labels},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in layers]},
        "history": [{"created": CREATED, "created_by": f"ferry-bench layer {i}"} for i in range(len(layers))],
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": lay.add_json_blob(config, OCI_CONFIG),
        "layers": [desc for desc, _ in layers],
    }
    # Untagged on purpose: Layout.tag rewrites index.json each time (quadratic over 1,000 images).
    return lay.add_manifest(manifest, OCI_MANIFEST)["digest"]


def big_layer(path: Path, size: int = 400 * MB, *, layers: int = 1, repo: str = "big", tag: str = "1") -> Workload:
    """One image of ``layers`` layers, each carrying ``size`` random bytes (incompressible), in a layout
    at ``path``. One layer is the image case 1 always measured (same bytes, so cached sources stay valid);
    several (case 1b, ``big5``) are distinct layers of one image, for a copier to move side by side."""
    lay = Layout(path)
    if layers == 1:
        digest = images.oci_image(lay, None, seed=4242, layers=1, layer_size=size)  # type: ignore[arg-type]
    else:
        descs = [
            lay.add_layer({f"ferry/big/layer-{i}.txt": f"layer {i}\n".encode()}, OCI_LAYER,
                          big_file=(f"ferry/big/random-{i}.bin", size, 4242 * 7919 + i))
            for i in range(layers)
        ]
        digest = _image(lay, descs, 4242, {"org.ferry.bench.image": f"big {layers} x {size}"})
    imgs = [Image(repo, tag, digest)]
    blobs, manifests = _sizes(lay, imgs)
    name = "big" if layers == 1 else f"big{layers}"
    return Workload(name, lay, imgs, blobs, manifests, {"layer_bytes": size, "layers": layers})


def harbor_like(
    path: Path,
    *,
    projects: int = 6,
    repos: int = 6,
    tags: int = 4,
    base_size: int = 10 * MB,
    unique_size: int = 1 * MB,
    name: str = "harbor",
) -> Workload:
    """``projects`` × ``repos`` × ``tags`` images ``projP/repoR:tT``.

    Each image has the project's shared base layer (``base_size`` random bytes, the same blob in
    every repository of the project) and a layer of its own (``unique_size``). Tag ``tT`` of a
    repository is the same image whatever ``tags`` is, so a smaller workload is a subset of a
    bigger one.
    """
    lay = Layout(path)
    imgs: list[Image] = []
    for p in range(projects):
        base = lay.add_layer(
            {f"etc/ferry-base-{p}.conf": f"project={p}\n".encode()},
            OCI_LAYER,
            big_file=(f"opt/base-{p}/random.bin", base_size, 1_000_003 * (p + 1)),
        )
        for r in range(repos):
            for t in range(tags):
                seed = (p * 1000 + r) * 1000 + t
                own = lay.add_layer(
                    {f"app/proj{p}/repo{r}/tag{t}.txt": f"{p}/{r}/{t}\n".encode()},
                    OCI_LAYER,
                    big_file=(f"app/proj{p}/repo{r}/data-{t}.bin", unique_size, seed),
                )
                digest = _image(lay, [base, own], seed, {"org.ferry.bench.image": f"proj{p}/repo{r}:t{t}"})
                imgs.append(Image(f"proj{p}/repo{r}", f"t{t}", digest))
    blobs, manifests = _sizes(lay, imgs)
    params = {"projects": projects, "repos": repos, "tags": tags, "base_size": base_size, "unique_size": unique_size}
    return Workload(name, lay, imgs, blobs, manifests, params | {"images": len(imgs)})


def many_small(path: Path, *, repos: int = 100, tags: int = 10, size: int = 2048, namespace: str = "small") -> Workload:
    """``repos`` × ``tags`` tiny images ``NAMESPACE/rNN:tT`` (one layer of ``size`` random bytes, a few KB in all)."""
    lay = Layout(path)
    imgs: list[Image] = []
    for r in range(repos):
        for t in range(tags):
            seed = 7_000_000 + r * 1000 + t
            layer = lay.add_layer(
                {f"app/r{r}/t{t}.txt": f"{r}/{t}\n".encode()},
                OCI_LAYER,
                big_file=(f"app/r{r}/data-{t}.bin", size, seed),
            )
            digest = _image(lay, [layer], seed, {"org.ferry.bench.image": f"r{r:02d}:t{t}"})
            imgs.append(Image(f"{namespace}/r{r:02d}", f"t{t}", digest))
    blobs, manifests = _sizes(lay, imgs)
    return Workload("small", lay, imgs, blobs, manifests, {"repos": repos, "tags": tags, "images": len(imgs)})


BUILDERS = {"big": big_layer, "harbor": harbor_like, "small": many_small}


def _generator_digest() -> str:
    """Digest of the code that decides the bytes (this module and the test image helpers)."""
    h = hashlib.sha256()
    for src in (Path(__file__), Path(images.__file__)):
        h.update(src.read_bytes())
    return h.hexdigest()


def build(kind: str, workdir: Path, cache: Path | None = None, **params: Any) -> Workload:
    """Generate workload ``kind`` (``big``, ``harbor``, ``small``) with ``params``.

    With ``cache``, the layout is kept there under a key made of ``kind``, ``params`` and the
    generator code, and used in place by later runs (layouts are only read once written).
    """
    builder = BUILDERS[kind]
    label = str(params.get("name", kind))
    if cache is None:
        return builder(workdir / f"layout-{label}", **params)
    key = hashlib.sha256(json.dumps([kind, params, _generator_digest()], sort_keys=True).encode()).hexdigest()[:16]
    final = cache / f"layout-{label}-{key}"
    meta = final / "workload.json"
    hit = meta.exists()
    if not hit:
        tmp = final.with_name(f"{final.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        wl = builder(tmp, **params)
        record = {
            "name": wl.name,
            "images": [[i.repo, i.tag, i.digest] for i in wl.images],
            "blob_bytes": wl.blob_bytes,
            "manifest_bytes": wl.manifest_bytes,
            "params": wl.params,
        }
        (tmp / "workload.json").write_text(json.dumps(record))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    record = json.loads(meta.read_text())
    return Workload(
        record["name"],
        Layout(final),
        [Image(*i) for i in record["images"]],
        record["blob_bytes"],
        record["manifest_bytes"],
        record["params"] | {"layout": str(final), "layout_from_cache": hit},
    )


def seed(workload: Workload, host: str, workdir: Path, *, jobs: int = 4) -> float:
    """Push every image of ``workload`` to the registry at ``host`` with skopeo; return the seconds taken.

    Top-level repositories go one ``skopeo copy`` each; namespaced ones through ``skopeo sync
    --src dir``, whose destination is ``host/<namespace>/<dir name>``, split into ``jobs`` parallel calls.
    """
    start = time.monotonic()
    tree_root = Path(tempfile.mkdtemp(prefix="seed-", dir=workdir))
    try:
        top = [img for img in workload.images if not img.namespace]
        nested = [img for img in workload.images if img.namespace]
        calls: list[list[str]] = []
        by_repo: dict[str, list[Image]] = {}
        for img in nested:
            by_repo.setdefault(img.repo, []).append(img)
        parts = min(jobs, len(by_repo)) or 1
        dirs: set[tuple[int, str]] = set()
        for k, repo in enumerate(sorted(by_repo)):
            part = k % parts
            for img in by_repo[repo]:
                ns = img.namespace
                workload.layout.export_dir(img.digest, tree_root / f"part{part}" / ns / f"{img.name}:{img.tag}")
                dirs.add((part, ns))
        for part, ns in sorted(dirs):
            src = tree_root / f"part{part}" / ns
            sync = ["sync", "--src", "dir", "--dest", "docker", "--dest-tls-verify=false", "--preserve-digests"]
            calls.append([*sync, f"{src}/", f"{host}/{ns}"])

        def run(args: list[str]) -> None:
            skopeo.skopeo(*args, timeout=900)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run, c) for c in calls]
            for img in top:
                futures.append(
                    pool.submit(skopeo.push_layout, workload.layout.path, img.digest, f"{host}/{img.repo}:{img.tag}")
                )
            for f in futures:
                f.result()
    finally:
        shutil.rmtree(tree_root, ignore_errors=True)
    return time.monotonic() - start


def copy_storage(src_root: Path, dest_root: Path) -> None:
    """Copy a stopped-or-idle registry's storage (real copies: the registry rewrites link files in place)."""
    subprocess.run(["cp", "-a", f"{src_root}/.", str(dest_root)], check=True)
