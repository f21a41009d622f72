"""Case 6: an air-gapped export (issue 13) against ``skopeo sync --dest dir``, on the Harbor-like bulk workload.

Both write the whole source registry to a fresh directory: ferry as one OCI layout (one blob store for
every image, plus its description), skopeo as one directory per image (``--all``, one sync per
repository, as case 2 runs it), which stores the project's shared base layer again in every image.
Measured: wall time, and the bytes each leaves on disk against the workload's distinct blob bytes.
Each run is checked: every image's manifest is on disk with the source's digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from bench.cases import Bench, CaseResult, Sample, _target
from bench.workloads import Workload

SKOPEO = "skopeo sync --dest dir"


def tree_bytes(root: Path) -> int:
    """Bytes of every file under ``root``."""
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(root) for f in files)


def _sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def check_export(out: Path, wl: Workload) -> str:
    """Every image listed by the export's description with the source digest, its manifest blob whole."""
    try:
        images = json.loads((out / "ferry-export.json").read_text())["images"]
    except (OSError, ValueError, KeyError) as e:
        return f"no readable description: {e}"
    have = {i["ref_name"]: i["digest"] for i in images}
    for img in wl.images:
        if have.get(img.repo + ":" + img.tag) != img.digest:
            return f"{img.repo}:{img.tag}: {have.get(img.repo + ':' + img.tag)} in the export, source {img.digest}"
        if _sha(out / "blobs/sha256" / img.digest.split(":")[1]) != img.digest:
            return f"{img.repo}:{img.tag}: manifest blob damaged"
    return ""


def check_dirs(out: Path, wl: Workload) -> str:
    """skopeo's ``DIR/<namespace>/<name>:<tag>/manifest.json`` with the source digest."""
    for img in wl.images:
        manifest = out / img.namespace / f"{img.name}:{img.tag}" / "manifest.json"
        if not manifest.is_file() or _sha(manifest) != img.digest:
            return f"{img.repo}:{img.tag}: manifest missing or changed in {manifest.parent}"
    return ""


def case_export(b: Bench, *, projects: int = 6, repos: int = 6, tags: int = 4) -> list[CaseResult]:
    wl = b.workload("harbor", projects=projects, repos=repos, tags=tags)
    src = b.source("export-src", wl)
    competitors = ["ferry export", SKOPEO]
    samples: list[Sample] = []
    for rep in range(b.reps):
        for comp in competitors:
            out = b.workdir / f"export-{rep}-{comp.split()[0]}"
            shutil.rmtree(out, ignore_errors=True)
            if comp == "ferry export":
                cmds = [[b.ferry, "export", f"http://{src.host}", str(out), "--journal", str(out) + ".journal",
                         "--quiet"]]
                check = lambda o=out: check_export(o, wl)  # noqa: E731
            else:
                cmds = [b.skopeo("sync", "--all", "--src", "docker", "--dest", "dir", "--src-tls-verify=false",
                                 f"{src.host}/{repo}", str(out / repo.rpartition("/")[0])) for repo in wl.repos]
                check = lambda o=out: check_dirs(o, wl)  # noqa: E731
            sample = b.run("export", comp, rep, cmds, src, src, check=check)
            sample.extra["disk_bytes"] = tree_bytes(out)
            samples.append(sample)
            shutil.rmtree(out, ignore_errors=True)
            Path(str(out) + ".journal").unlink(missing_ok=True)
    res = CaseResult("export", "6. export to disk (bulk)", len(wl.images), wl.blob_bytes, samples, competitors,
                     "ferry export", wl.params)

    def disk(comp: str) -> float | None:
        sizes = [s.extra["disk_bytes"] for s in res.ok_samples(comp)]
        return max(sizes) if sizes else None

    f_disk, s_disk = disk("ferry export"), disk(SKOPEO)
    f, s = res.median("ferry export"), res.median(SKOPEO)
    res.targets = [
        _target("export bytes on disk ÷ distinct blob bytes", f_disk / wl.blob_bytes if f_disk else None, 1.05),
        _target("ferry export time ÷ skopeo sync --dest dir", f / s if f and s else None, 1.0),
    ]
    if f_disk and s_disk:
        res.notes.append(f"on disk: ferry {f_disk / 1e6:.1f} MB, skopeo {s_disk / 1e6:.1f} MB, "
                         f"distinct blobs {wl.blob_bytes / 1e6:.1f} MB")
    b.drop(src)
    return [res]
