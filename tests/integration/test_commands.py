"""skopeo's everyday commands against real registries, checked against skopeo itself:
``inspect`` (summary, ``--raw``, ``--config``), ``list-tags``, ``delete``, ``manifest-digest``,
``login``/``logout``.
"""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import images as im
from tests.support.cli import FerryCLI, FerryResult
from tests.support.registry import ALICE, Registry, start_registry
from tests.support.skopeo import inspect_raw, push_layout, push_schema1, schema1_digest, skopeo, write_authfile

pytestmark = pytest.mark.integration

#: What ferry's inspect summary shares with skopeo's (skopeo 1.9 prints these; ferry adds LayersData).
SUMMARY_KEYS = {"Name", "Digest", "RepoTags", "Created", "DockerVersion", "Labels", "Architecture", "Os",
                "Layers", "Env"}


def ok(r: FerryResult) -> FerryResult:
    assert r.returncode == 0, r
    assert "Traceback" not in r.stderr, r
    return r


def skopeo_json(*args: str) -> dict:
    return json.loads(skopeo(*args).stdout)


# -- inspect ---------------------------------------------------------------------------------------


@dataclass
class Seeded:
    reg: Registry
    old: Registry  # schema1 enabled
    layout: im.Layout
    digests: dict[str, str]
    cli: FerryCLI

    def ref(self, name: str) -> str:
        reg = self.old if name == "schema1" else self.reg
        return f"docker://{reg.ref(f'img/{name}:v1')}"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    root = tmp_path_factory.mktemp("commands")
    lay = im.Layout(root / "layout")
    digests = {
        "docker-schema2": im.docker_schema2_image(lay, "docker-schema2", seed=1, layers=2,
                                                  labels={"org.example.title": "docker"}),
        "oci-image": im.oci_image(lay, "oci-image", seed=2, layers=3),
        "oci-index": im.oci_index(lay, "oci-index", seed=3),
        "docker-list": im.docker_manifest_list(lay, "docker-list", seed=4),
    }
    im.docker_schema2_image(lay, "schema1-source", seed=5)
    with start_registry(root / "reg") as reg, start_registry(root / "old", schema1=True) as old:
        for name in digests:
            push_layout(lay.path, name, reg.ref(f"img/{name}:v1"))
        push_schema1(lay.path, "schema1-source", old.ref("img/schema1:v1"))
        digests["schema1"] = schema1_digest(inspect_raw(old.ref("img/schema1:v1")))
        yield Seeded(reg, old, lay, digests, FerryCLI(root / "cli"))


INSPECTED = ["docker-schema2", "oci-image", "oci-index", "docker-list", "schema1"]


def test_inspect_matches_skopeo(seeded: Seeded) -> None:
    """The summary for every shape, key by key against ``skopeo inspect`` of the same image (an
    index is described by its linux/amd64 child, but named by its own digest, as skopeo does)."""
    results = seeded.cli.run_many([["inspect", "--tls-verify=false", seeded.ref(n)] for n in INSPECTED])
    for name, r in zip(INSPECTED, results, strict=True):
        ours = ok(r).json()
        theirs = skopeo_json("inspect", "--tls-verify=false", seeded.ref(name))
        assert set(ours) >= SUMMARY_KEYS, (name, set(ours))
        for key in SUMMARY_KEYS | (set(ours) & set(theirs)):
            assert ours[key] == theirs.get(key), (name, key, ours[key], theirs.get(key))
        assert ours["Digest"] == seeded.digests[name]
        assert ours["RepoTags"] == ["v1"]
    docker = results[0].json()
    assert docker["Labels"]["org.example.title"] == "docker" and docker["Architecture"] == "amd64"


def test_inspect_platform_and_layers_data(seeded: Seeded) -> None:
    """``--platform`` picks the child described; LayersData lists each layer's type, digest and size."""
    lay = seeded.layout
    arm = ok(seeded.cli.run("inspect", "--tls-verify=false", "--platform", "linux/arm64/v8",
                            seeded.ref("oci-index"))).json()
    theirs = skopeo_json("--override-arch", "arm64", "--override-variant", "v8", "inspect", "--tls-verify=false",
                         seeded.ref("oci-index"))
    for key in SUMMARY_KEYS:
        assert arm[key] == theirs[key], key
    assert (arm["Architecture"], arm.get("Variant")) == ("arm64", "v8")
    child = next(c for c in lay.manifest(seeded.digests["oci-index"])["manifests"]
                 if c["platform"]["architecture"] == "arm64")
    layers = lay.manifest(child["digest"])["layers"]
    assert arm["LayersData"] == [
        {"MIMEType": d["mediaType"], "Digest": d["digest"], "Size": d["size"], "Annotations": None} for d in layers
    ]


def test_inspect_raw_is_exact(seeded: Seeded) -> None:
    names = ["oci-index", "docker-schema2"]
    results = seeded.cli.run_many([["inspect", "--raw", "--tls-verify=false", seeded.ref(n)] for n in names])
    for name, r in zip(names, results, strict=True):
        assert ok(r).stdout == inspect_raw(seeded.ref(name)) == seeded.layout.manifest_bytes(name), name


def test_inspect_config(seeded: Seeded) -> None:
    """``--config --raw`` prints the config blob exactly; ``--config`` the same JSON, reformatted."""
    lay = seeded.layout
    config_digest = lay.manifest("oci-image")["config"]["digest"]
    index_child = lay.manifest(seeded.digests["oci-index"])["manifests"][0]  # linux/amd64
    index_config = lay.manifest(index_child["digest"])["config"]["digest"]
    raw_cfg, parsed_cfg, index_cfg = seeded.cli.run_many([
        ["inspect", "--config", "--raw", "--tls-verify=false", seeded.ref("oci-image")],
        ["inspect", "--config", "--tls-verify=false", seeded.ref("oci-image")],
        ["inspect", "--config", "--raw", "--tls-verify=false", seeded.ref("oci-index")],
    ])
    theirs = skopeo("inspect", "--config", "--raw", "--tls-verify=false", seeded.ref("oci-image")).stdout
    assert ok(raw_cfg).stdout == theirs == lay.read_blob(config_digest)
    assert ok(parsed_cfg).json() == json.loads(lay.read_blob(config_digest))
    assert ok(index_cfg).stdout == lay.read_blob(index_config)


# -- list-tags and delete ----------------------------------------------------------------------------


def test_list_tags(seeded: Seeded) -> None:
    reg = seeded.reg
    for tag in ("v2", "1.0", "latest"):
        push_layout(seeded.layout.path, "oci-image", reg.ref(f"tags/app:{tag}"))
    ours = ok(seeded.cli.run("list-tags", "--tls-verify=false", f"docker://{reg.ref('tags/app')}")).json()
    theirs = skopeo_json("list-tags", "--tls-verify=false", f"docker://{reg.ref('tags/app')}")
    assert set(ours) == {"Repository", "Tags"}
    assert ours["Repository"] == theirs["Repository"] == reg.ref("tags/app")
    assert sorted(ours["Tags"]) == sorted(theirs["Tags"]) == ["1.0", "latest", "v2"]


def test_list_tags_refuses_a_tag(seeded: Seeded) -> None:
    r = seeded.cli.run("list-tags", "--tls-verify=false", f"docker://{seeded.reg.ref('tags/app:v2')}")
    assert r.returncode == 2 and r.error.startswith("ferry: ") and "tags/app:v2" in r.error, r


def test_delete_by_tag_and_by_digest(registry: Registry, layout: im.Layout, tmp_path: Path) -> None:
    """A tag is resolved and its digest deleted (every tag on it goes); a digest is deleted as is."""
    first = im.oci_image(layout, "first", seed=51)
    second = im.docker_schema2_image(layout, "second", seed=52)
    push_layout(layout.path, "first", registry.ref("del/app:a"))
    push_layout(layout.path, "first", registry.ref("del/app:b"))
    push_layout(layout.path, "second", registry.ref("del/app:c"))
    cli = FerryCLI(tmp_path / "cli")

    ok(cli.run("delete", "--tls-verify=false", f"docker://{registry.ref('del/app:a')}"))
    deletes = [r for r in registry.requests() if r.method == "DELETE"]
    assert [(r.path, r.status) for r in deletes] == [(f"/v2/del/app/manifests/{first}", 202)]
    for tag in ("a", "b"):
        gone = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry.ref(f'del/app:{tag}')}",
                      check=False)
        assert gone.returncode != 0 and b"manifest unknown" in gone.stderr
    assert inspect_raw(registry.ref("del/app:c")) == layout.manifest_bytes(second)

    ok(cli.run("delete", "--tls-verify=false", f"docker://{registry.ref(f'del/app@{second}')}"))
    gone = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry.ref('del/app:c')}", check=False)
    assert gone.returncode != 0 and b"manifest unknown" in gone.stderr
    assert registry.request("GET", f"/v2/del/app/manifests/{second}").status == 404
    assert json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{registry.ref('del/app')}").stdout)[
        "Tags"] in ([], None)


# -- manifest-digest ---------------------------------------------------------------------------------


def test_manifest_digest_matches_skopeo(seeded: Seeded, tmp_path: Path) -> None:
    files = {}
    for name in ("oci-index", "docker-schema2"):  # sha256 of the bytes; schema1: of the unsigned payload
        files[name] = tmp_path / f"{name}.json"
        files[name].write_bytes(seeded.layout.manifest_bytes(name))
    files["schema1"] = tmp_path / "schema1.json"
    files["schema1"].write_bytes(inspect_raw(seeded.ref("schema1")))
    names = list(files)
    results = seeded.cli.run_many([["manifest-digest", str(files[n])] for n in names])
    for name, r in zip(names, results, strict=True):
        theirs = skopeo("manifest-digest", str(files[name])).stdout.decode().strip()
        assert ok(r).out.strip() == theirs == seeded.digests[name], name


# -- login / logout ----------------------------------------------------------------------------------


def _auth_entry(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_login_logout(basic_registry: Registry, layout: im.Layout, tmp_path: Path) -> None:
    reg, host = basic_registry, basic_registry.host
    im.oci_image(layout, "img", seed=61)
    push_layout(layout.path, "img", reg.ref("priv/app:v1"), creds=ALICE)
    cli = FerryCLI(tmp_path / "cli")
    authfile = tmp_path / "auth" / "auth.json"
    authfile.parent.mkdir()
    write_authfile(authfile, {"other.example": ("carol", "pw")})

    r = ok(cli.run("login", "--tls-verify=false", "--authfile", str(authfile), "-u", "alice", "--password-stdin",
                   host, input="secret\n"))
    assert "Login Succeeded" in r.out
    assert "secret" not in r.out + r.stderr
    assert stat.S_IMODE(authfile.stat().st_mode) == 0o600
    assert json.loads(authfile.read_text()) == {
        "auths": {"other.example": _auth_entry("carol", "pw"), host: _auth_entry("alice", "secret")}
    }
    # the stored credential is used, and skopeo reads the same file
    ok(cli.run("inspect", "--raw", "--tls-verify=false", "--authfile", str(authfile),
               f"docker://{reg.ref('priv/app:v1')}"))
    skopeo("inspect", "--raw", "--tls-verify=false", "--authfile", str(authfile), f"docker://{reg.ref('priv/app:v1')}")

    r = ok(cli.run("logout", "--authfile", str(authfile), host))
    assert host in r.out
    assert json.loads(authfile.read_text()) == {"auths": {"other.example": _auth_entry("carol", "pw")}}
    assert stat.S_IMODE(authfile.stat().st_mode) == 0o600
    again = cli.run("logout", "--authfile", str(authfile), host)
    assert again.returncode == 5 and again.error.startswith("ferry: ") and host in again.error, again


def test_login_wrong_password_writes_nothing(basic_registry: Registry, tmp_path: Path) -> None:
    host = basic_registry.host
    cli = FerryCLI(tmp_path / "cli")
    fresh = tmp_path / "fresh" / "auth.json"
    existing = tmp_path / "existing.json"
    write_authfile(existing, {"other.example": ("carol", "pw")})
    before = existing.read_bytes()
    results = [
        cli.run("login", "--tls-verify=false", "--authfile", str(path), "-u", "alice", "--password-stdin", host,
                input="wrong\n")
        for path in (fresh, existing)
    ]
    for r in results:
        assert r.returncode == 3, r
        assert len(r.lines) == 1 and r.error.startswith("ferry: ") and "Traceback" not in r.stderr, r
        assert "alice" in r.error and "password" in r.error.lower(), r
        assert "wrong" not in r.stderr
    assert not fresh.exists() and not fresh.parent.exists()
    assert existing.read_bytes() == before


def test_login_default_file(basic_registry: Registry, tmp_path: Path) -> None:
    """Without --authfile, login writes ``$XDG_RUNTIME_DIR/containers/auth.json`` (skopeo's choice)
    and a later command finds the credential there by itself."""
    runtime = tmp_path / "run"
    runtime.mkdir()
    cli = FerryCLI(tmp_path / "cli", env={"XDG_RUNTIME_DIR": str(runtime)})
    host = basic_registry.host
    ok(cli.run("login", "--tls-verify=false", "-u", "alice", "--password-stdin", host, input="secret\n"))
    path = runtime / "containers" / "auth.json"
    assert json.loads(path.read_text()) == {"auths": {host: _auth_entry("alice", "secret")}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    r = cli.run("list-tags", "--tls-verify=false", f"docker://{basic_registry.ref('nothing/here')}")
    assert r.returncode == 5, r  # authenticated: the repository is simply unknown (not a 401)
