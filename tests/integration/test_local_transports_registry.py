"""Local transports against a real registry: ``ferry copy`` between docker:// and oci:/dir:/docker-archive:,
with skopeo as the independent pusher and reader."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import images as im
from tests.support.registry import Registry
from tests.support.skopeo import inspect_raw, manifest_digest, push_layout, skopeo

pytestmark = pytest.mark.integration


def ferry(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "ferry", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_archive_to_registry_digest_matches_skopeo(registry: Registry, layout: im.Layout, tmp_path: Path) -> None:
    """ferry pushes the manifest containers/image generates for an archive, byte for byte: the digest
    ``skopeo copy --preserve-digests`` gives. Plain ``skopeo copy`` gzips the layers on the way (Go's gzip),
    which yields another digest that no other gzip implementation reproduces."""
    im.oci_image(layout, "v1", layers=2)
    archive = tmp_path / "a.tar"
    skopeo("copy", f"oci:{layout.path}:v1", f"docker-archive:{archive}:example.com/app:v1")
    generated = sha(skopeo("inspect", "--raw", f"docker-archive:{archive}").stdout)

    # first, while the registry holds no uncompressed copy skopeo could reuse instead of compressing
    skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{archive}",
           f"docker://{registry.ref('skopeo-gzip/app:v1')}")
    ferry("copy", "--quiet", "--dest-tls-verify=false", f"docker-archive:{archive}",
          f"docker://{registry.ref('ferry/app:v1')}")
    skopeo("copy", "--preserve-digests", "--dest-tls-verify=false", f"docker-archive:{archive}",
           f"docker://{registry.ref('skopeo/app:v1')}")

    assert manifest_digest(registry.ref("ferry/app:v1")) == generated
    assert manifest_digest(registry.ref("skopeo/app:v1")) == generated
    regzipped = json.loads(inspect_raw(registry.ref("skopeo-gzip/app:v1")))
    assert manifest_digest(registry.ref("skopeo-gzip/app:v1")) != generated
    assert regzipped["config"]["digest"] == json.loads(inspect_raw(registry.ref("ferry/app:v1")))["config"]["digest"]
    # every blob ferry pushed is there and verifies
    skopeo("copy", "--src-tls-verify=false", f"docker://{registry.ref('ferry/app:v1')}", f"dir:{tmp_path / 'back'}")


@pytest.mark.parametrize("shape", ["oci_index", "docker_manifest_list", "oci_image"])
def test_registry_to_local_and_back(registry: Registry, layout: im.Layout, tmp_path: Path, shape: str) -> None:
    """docker:// → oci: → dir: → docker:// with ferry keeps every digest; skopeo reads each local copy."""
    digest = getattr(im, shape)(layout, "img")
    push_layout(layout.path, "img", registry.ref("src/app:v1"))
    oci, dirpath = tmp_path / "oci", tmp_path / "dir"
    ferry("copy", "--quiet", "--src-tls-verify=false", f"docker://{registry.ref('src/app:v1')}", f"oci:{oci}:v1")
    ferry("copy", "--quiet", f"oci:{oci}:v1", f"dir:{dirpath}")
    ferry("copy", "--quiet", "--dest-tls-verify=false", f"dir:{dirpath}", f"docker://{registry.ref('dst/app:v1')}")
    assert manifest_digest(registry.ref("dst/app:v1")) == digest
    assert sha((dirpath / "manifest.json").read_bytes()) == digest
    assert sha(skopeo("inspect", "--raw", f"dir:{dirpath}").stdout) == digest
    skopeo("copy", "--all", "--preserve-digests", f"dir:{dirpath}", f"dir:{tmp_path / 'check'}")
    if shape != "docker_manifest_list":  # skopeo 1.9 finds only OCI media types by name in index.json
        assert sha(skopeo("inspect", "--raw", f"oci:{oci}:v1").stdout) == digest


def test_registry_platform_to_archive(registry: Registry, layout: im.Layout, tmp_path: Path) -> None:
    im.oci_index(layout, "img")
    push_layout(layout.path, "img", registry.ref("src/app:v1"))
    out = tmp_path / "arm.tar"
    ferry("copy", "--quiet", "--src-tls-verify=false", "--platform", "linux/arm64",
          f"docker://{registry.ref('src/app:v1')}", f"docker-archive:{out}:src/app:arm64")
    config = json.loads(skopeo("inspect", "--config", "--raw", f"docker-archive:{out}:src/app:arm64").stdout)
    assert config["architecture"] == "arm64"
    skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{out}", f"docker://{registry.ref('back/app:arm64')}")
