"""The invariant a copier must keep at a destination registry: no manifest whose blobs or children are
missing.

:func:`broken_manifests` walks every repository (``/v2/_catalog``), every tag (``tags/list``) and every
manifest revision the registry stores for the repository (tagged or not, read from its storage
directory), fetches each manifest by digest with every media type accepted, checks its bytes against
its digest, HEADs every blob it references and fetches every child manifest in the same repository,
recursively. It returns one line per problem; :func:`assert_whole` fails the test on any.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from pathlib import Path
from typing import Any

from tests.support import images as im
from tests.support.registry import Registry

__all__ = ["ACCEPT", "assert_whole", "broken_manifests", "manifest_digests", "stored_manifests"]

ACCEPT = ", ".join((
    im.OCI_INDEX, im.OCI_MANIFEST, im.DOCKER_LIST, im.DOCKER_MANIFEST,
    "application/vnd.docker.distribution.manifest.v1+prettyjws", "application/vnd.docker.distribution.manifest.v1+json",
))


def _json(reg: Registry, path: str, creds: tuple[str, str] | None) -> tuple[Any, str | None]:
    r = reg.request("GET", path, creds=creds)
    if r.status != 200:
        raise AssertionError(f"GET {path}: HTTP {r.status} {r.body[:200]!r}")
    return json.loads(r.body), r.headers.get("Link")


def catalog(reg: Registry, creds: tuple[str, str] | None = None) -> list[str]:
    repos: list[str] = []
    path: str | None = "/v2/_catalog?n=1000"
    while path:
        body, link = _json(reg, path, creds)
        repos.extend(body.get("repositories") or [])
        path = link.split(";")[0].strip().strip("<>") if link and 'rel="next"' in link else None
    return repos


def stored_manifests(reg: Registry, repo: str) -> set[str]:
    """Digests of every manifest revision the registry keeps for ``repo`` (tagged or not)."""
    base = Path(reg.root) / "docker/registry/v2/repositories" / repo / "_manifests/revisions"
    out = set()
    if base.is_dir():
        for algo in base.iterdir():
            for d in algo.iterdir():
                if (d / "link").exists():
                    out.add(f"{algo.name}:{d.name}")
    return out


def manifest_digests(reg: Registry, repo: str, creds: tuple[str, str] | None = None) -> dict[str, str]:
    """Tag → digest for every tag of ``repo`` (empty when the repository does not exist)."""
    r = reg.request("GET", f"/v2/{repo}/tags/list", creds=creds)
    if r.status == 404:
        return {}
    tags = json.loads(r.body).get("tags") or []
    out = {}
    for tag in tags:
        h = reg.request("HEAD", f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT}, creds=creds)
        out[tag] = h.headers.get("Docker-Content-Digest", "")
    return out


def broken_manifests(reg: Registry, creds: tuple[str, str] | None = None) -> list[str]:
    """Every manifest at ``reg`` whose blobs or children are missing or whose bytes do not match."""
    problems: list[str] = []
    for repo in catalog(reg, creds):
        checked: set[str] = set()
        roots: list[tuple[str, str]] = []
        r = reg.request("GET", f"/v2/{repo}/tags/list", creds=creds)
        tags = (json.loads(r.body).get("tags") or []) if r.status == 200 else []
        roots += [(t, f"{repo}:{t}") for t in tags]
        roots += [(d, f"{repo}@{d}") for d in sorted(stored_manifests(reg, repo))]
        for reference, name in roots:
            _check(reg, repo, reference, name, creds, checked, problems)
    return problems


def _check(reg: Registry, repo: str, reference: str, name: str, creds: tuple[str, str] | None,
           checked: set[str], problems: list[str]) -> None:
    r = reg.request("GET", f"/v2/{repo}/manifests/{reference}", headers={"Accept": ACCEPT}, creds=creds)
    if r.status != 200:
        problems.append(f"{name}: manifest answers HTTP {r.status}")
        return
    digest = "sha256:" + hashlib.sha256(r.body).hexdigest()
    header = r.headers.get("Docker-Content-Digest")
    if reference.startswith("sha256:") and digest != reference:
        problems.append(f"{name}: stored bytes hash to {digest}")
    if header and header != digest and "signatures" not in r.body.decode(errors="replace"):
        problems.append(f"{name}: Docker-Content-Digest {header} but bytes hash to {digest}")
    if digest in checked:
        return
    checked.add(digest)
    try:
        m = json.loads(r.body)
    except ValueError:
        problems.append(f"{name}: manifest is not JSON")
        return
    blobs = [*([m["config"]] if isinstance(m.get("config"), dict) else []), *(m.get("layers") or []),
             *[{"digest": x["blobSum"]} for x in m.get("fsLayers") or []]]
    for b in blobs:
        h = reg.request("HEAD", f"/v2/{repo}/blobs/{b['digest']}", creds=creds)
        if h.status != 200:
            problems.append(f"{name}: blob {b['digest']} missing (HTTP {h.status})")
        elif "size" in b and int(h.headers.get("Content-Length", -1)) != b["size"]:
            problems.append(f"{name}: blob {b['digest']} has {h.headers.get('Content-Length')} bytes, not {b['size']}")
    for child in m.get("manifests") or []:
        quoted = urllib.parse.quote(child["digest"])
        c = reg.request("HEAD", f"/v2/{repo}/manifests/{quoted}", headers={"Accept": ACCEPT}, creds=creds)
        if c.status != 200:
            problems.append(f"{name}: child manifest {child['digest']} missing (HTTP {c.status})")
            continue
        _check(reg, repo, child["digest"], f"{repo}@{child['digest']}", creds, checked, problems)


def assert_whole(reg: Registry, creds: tuple[str, str] | None = None) -> None:
    problems = broken_manifests(reg, creds)
    assert problems == [], "destination holds incomplete manifests:\n" + "\n".join(problems)
