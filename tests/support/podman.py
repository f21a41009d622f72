"""Debian's ``podman`` (4.3) as a second, real engine that checks an image is usable, not only digest-equal.

Everything podman keeps lives under one throwaway directory: image storage (a ``CONTAINERS_STORAGE_CONF``
naming the ``vfs`` driver, ``graphroot`` and ``runroot`` there: the same as ``--storage-driver vfs --root
--runroot``, but podman 4.3 refuses a storage.conf without them; ``vfs`` needs no overlay mount or fuse),
libpod state (``--tmpdir``), network configs (``--network-config-dir``), and the other config files through
the environment (``CONTAINERS_CONF``, ``CONTAINERS_REGISTRIES_CONF``, ``REGISTRY_AUTH_FILE``, ``TMPDIR`` for
blob downloads), so neither /etc/containers nor /var/lib/containers decides anything. Images are pulled with a
permissive ``--signature-policy`` and ``--tls-verify=false`` (the test registries speak plain HTTP).

As root in this container podman pulls, unpacks, ``create``s and ``cp``s out of a container; ``run`` is not
used (the test images hold no program, and the charter says it fails here). ``--cgroup-manager=cgroupfs``
(no systemd), ``--events-backend=none`` (no journald) and ``create --network=none`` (no netavark set-up)
keep ``create`` from touching what is not there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["Podman", "PodmanError"]

_POLICY = json.dumps({"default": [{"type": "insecureAcceptAnything"}]})
_CONTAINERS_CONF = '[engine]\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\n'
_SCRUBBED = ("DOCKER_CONFIG", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "CONTAINER_HOST", "CONTAINER_CONNECTION")


class PodmanError(subprocess.CalledProcessError):
    """podman exited non-zero; ``str()`` includes its stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.stderr.decode(errors='replace')}"


class Podman:
    """``podman`` with private storage and configuration under ``root`` (created when missing)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        for sub in ("storage", "run", "libpod", "networks", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        graph, run = self.root / "storage", self.root / "run"
        storage = f'[storage]\ndriver = "vfs"\ngraphroot = "{graph}"\nrunroot = "{run}"\n'
        files = {"policy.json": _POLICY, "containers.conf": _CONTAINERS_CONF, "registries.conf": "",
                 "storage.conf": storage, "auth.json": "{}"}
        for name, text in files.items():
            (self.root / name).write_text(text)
        self.env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED} | {
            "CONTAINERS_CONF": str(self.root / "containers.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(self.root / "registries.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.root / "storage.conf"),
            "REGISTRY_AUTH_FILE": str(self.root / "auth.json"),
            "TMPDIR": str(self.root / "tmp"),
            "HOME": str(self.root),
        }
        self.global_args = [
            f"--tmpdir={self.root / 'libpod'}",
            f"--network-config-dir={self.root / 'networks'}",
            "--cgroup-manager=cgroupfs",
            "--events-backend=none",
        ]

    @staticmethod
    def available() -> bool:
        return shutil.which("podman") is not None

    def __call__(self, *args: str, timeout: float = 120) -> bytes:
        """Run ``podman ARGS``; its stdout. Raises :class:`PodmanError` on a non-zero exit."""
        cmd = ["podman", *self.global_args, *args]
        proc = subprocess.run(cmd, capture_output=True, env=self.env, stdin=subprocess.DEVNULL, timeout=timeout,
                              check=False)
        if proc.returncode != 0:
            raise PodmanError(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc.stdout

    def pull(self, ref: str, *, platform: str | None = None) -> str:
        """Pull ``host:port/repo:tag`` over plain HTTP; the local image ID."""
        extra = [f"--platform={platform}"] if platform else []
        out = self("pull", "--quiet", "--tls-verify=false", f"--signature-policy={self.root / 'policy.json'}",
                   *extra, ref)
        return out.decode().strip().splitlines()[-1]

    def inspect(self, image: str) -> dict[str, Any]:
        """``podman image inspect`` of one image (``Digest``, ``RepoDigests``, ``Architecture``, …)."""
        [info] = json.loads(self("image", "inspect", image))
        return info

    def create(self, image: str) -> str:
        """A container made from ``image`` (never started); its ID."""
        return self("create", "--network=none", image).decode().strip()

    def cp_out(self, container: str, path: str, dest: Path) -> bytes:
        """``podman cp CONTAINER:PATH DEST``; the copied file's bytes."""
        self("cp", f"{container}:{path}", str(dest))
        return Path(dest).read_bytes()
