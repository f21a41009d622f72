"""A real engine uses what ferry wrote: Debian's podman pulls each image ferry delivered, unpacks it,
``create``s a container (never started) and ``cp``s every file of the image's layers back out, byte for
byte what the fixture put in; ``podman image inspect`` reports the digest ferry reported, and podman's image
ID is the config's digest (podman checked the config and every layer against the manifest on its own).

Three images, seeded by skopeo into one source registry: a Docker schema2 image moved by ``ferry copy``, an
OCI image and a two-platform OCI index moved by ``ferry sync`` (one repository, two tags), into one
destination registry; podman reads the index once per platform (``--platform``), so each child's own
files come out.

What works here (Debian's podman 4.3, root, in a container without systemd, journald or a usable netavark;
:mod:`tests.support.podman` does it): storage and config private to the module's temp dir (the vfs driver,
``graphroot`` and ``runroot`` in a ``CONTAINERS_STORAGE_CONF``, as 4.3 takes no storage.conf without them;
``--tmpdir``, ``--network-config-dir``), ``--cgroup-manager=cgroupfs``, ``--events-backend=none``,
``pull --tls-verify=false --signature-policy=FILE``, ``create --network=none``. ``podman run`` is not tried
(the charter says it fails here; the images hold no program) and is not needed: ``create`` + ``cp`` read
the unpacked root filesystem.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import images as im
from tests.support.cli import FerryCLI, FerryResult
from tests.support.podman import Podman
from tests.support.registry import Registry, start_registry
from tests.support.skopeo import push_layout

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Podman.available(), reason="podman is not installed (`make setup` installs it)"),
    pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed"),
    pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry is not installed"),
]

INSECURE = ["--src-tls-verify=false", "--dest-tls-verify=false"]
PLATFORMS = im.DEFAULT_PLATFORMS[:2]  # linux/amd64, linux/arm64/v8
COPIED = re.compile(r"^Copied .*: (sha256:[0-9a-f]{64}) ", re.MULTILINE)

#: layout ref -> where skopeo puts it in the source registry
SEEDED = {"app": "src/app:1.0", "base": "lib/base:1.0", "multi": "lib/base:multi"}
COPY_DEST = "podman/app:1.0"
SYNC_PREFIX = "mirror"


@dataclass(frozen=True)
class Case:
    layout_ref: str
    dest: str  # repo:tag in the destination registry
    platform: im.Platform | None = None

    @property
    def platform_arg(self) -> str | None:
        p = self.platform
        return None if p is None else "/".join(filter(None, (p.os, p.architecture, p.variant)))


CASES = {
    "copy-docker-schema2": Case("app", COPY_DEST),
    "sync-oci-image": Case("base", f"{SYNC_PREFIX}/lib/base:1.0"),
    **{
        f"sync-oci-index-{p.architecture}": Case("multi", f"{SYNC_PREFIX}/lib/base:multi", p)
        for p in PLATFORMS
    },
}


@dataclass
class Delivered:
    dst: Registry
    layout: im.Layout
    reported: dict[str, str]  # destination repo:tag -> the digest ferry reported for it
    podman: Podman


def _ok(r: FerryResult) -> FerryResult:
    assert r.returncode == 0 and "Traceback" not in r.stderr, r
    return r


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Delivered]:
    """Seed the source with skopeo; ``ferry copy`` and ``ferry sync`` (side by side) into the destination."""
    root = tmp_path_factory.mktemp("podman-usable")
    lay = im.Layout(root / "layout")
    im.docker_schema2_image(lay, "app", seed=41, layers=2)
    im.oci_image(lay, "base", seed=42, layers=2)
    im.oci_index(lay, "multi", seed=43, platforms=PLATFORMS, layers=2)
    with start_registry(root / "src") as src, start_registry(root / "dst") as dst:
        for name, ref in SEEDED.items():
            push_layout(lay.path, name, src.ref(ref))
        report = root / "sync-report.json"
        copy, sync = FerryCLI(root / "cli").run_many([
            ["copy", *INSECURE, f"docker://{src.ref(SEEDED['app'])}", f"docker://{dst.ref(COPY_DEST)}"],
            ["sync", "--src", "docker", "--dest", "docker", *INSECURE, "--journal", str(root / "journal.db"),
             "--report", str(report), src.ref("lib/base"), f"{dst.host}/{SYNC_PREFIX}"],
        ])
        reported = {COPY_DEST: COPIED.findall(_ok(copy).stderr)[-1]}
        _ok(sync)
        for job in json.loads(report.read_text())["jobs"]:
            reported[job["destination"].removeprefix(f"{dst.host}/")] = job["digest"]
        yield Delivered(dst, lay, reported, Podman(root / "podman"))


def layer_files(lay: im.Layout, manifest_digest: str) -> dict[str, bytes]:
    """Every regular file of an image's root filesystem, read from its layer tarballs in the layout."""
    files: dict[str, bytes] = {}
    for layer in lay.manifest(manifest_digest)["layers"]:
        with gzip.open(lay.blob_path(layer["digest"])) as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
            for member in tar:
                if member.isfile():
                    f = tar.extractfile(member)
                    assert f is not None
                    files[member.name] = f.read()
    return files


def image_manifest(lay: im.Layout, top: str, platform: im.Platform | None) -> str:
    """The digest of the image manifest an engine on ``platform`` takes from ``top``."""
    if platform is None:
        return top
    [child] = [c["digest"] for c in lay.manifest(top)["manifests"] if c["platform"] == platform.as_json()]
    return child


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_podman_pulls_creates_and_reads_back_every_file(case: Case, delivered: Delivered, tmp_path: Path) -> None:
    lay, dst, podman = delivered.layout, delivered.dst, delivered.podman
    top = lay.descriptor(case.layout_ref)["digest"]
    assert delivered.reported[case.dest] == top  # ferry reports the digest the source holds

    image = podman.pull(dst.ref(case.dest), platform=case.platform_arg)
    info = podman.inspect(image)
    assert info["Digest"] == delivered.reported[case.dest]
    manifest = image_manifest(lay, top, case.platform)
    repo = case.dest.split(":", 1)[0]
    assert dst.ref(f"{repo}@{manifest}") in info["RepoDigests"]
    assert "sha256:" + image == lay.manifest(manifest)["config"]["digest"]
    if case.platform is not None:
        assert (info["Os"], info["Architecture"]) == (case.platform.os, case.platform.architecture)

    container = podman.create(image)
    expected = layer_files(lay, manifest)
    assert len(expected) >= 4  # two layers, two files each: the check below reads something
    for i, (path, content) in enumerate(sorted(expected.items())):
        assert podman.cp_out(container, "/" + path, tmp_path / f"file-{i}") == content, path
