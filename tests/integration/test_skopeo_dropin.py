"""ferry as a drop-in for the operators' own scripts (tests/integration/seed/, from the Harbor migration
notes): ``skopeo`` on PATH is a shim that runs ferry, the scripts run unchanged against the Harbor test
server, and the real skopeo checks what arrived. Then skopeo's global options, one by one, each with
what it changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import images as im
from tests.support.cli import FerryCLI, FerryResult
from tests.support.harbor import HarborServer
from tests.support.harbor_marks import HARBOR_TESTS
from tests.support.registry import Registry
from tests.support.skopeo import inspect_raw, push_layout, skopeo

pytestmark = HARBOR_TESTS

SCRIPT = Path(__file__).parent / "seed" / "skopeo_transfer_image.sh"
IMAGES = ("docker-schema2", "oci-image", "oci-index", "docker-list")
INDEXES = ("oci-index", "docker-list")
#: the skopeo 1.4.1 form of the copy line, commented out in the script as the notes ship it
FORM_141 = "--override-arch amd64 --override-os linux -q docker://$1 docker://$2; then"


def sha(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@dataclass
class Harbors:
    source: HarborServer
    layout: im.Layout
    digests: dict[str, str]  # image name → digest of its tag at the source
    amd64: dict[str, str]  # image name → digest of its linux/amd64 manifest (itself when not an index)


@pytest.fixture(scope="module")
def harbors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harbors]:
    """A source Harbor whose public ``library`` project holds one image of each shape."""
    work = tmp_path_factory.mktemp("dropin")
    lay = im.Layout(work / "layout")
    builders = (im.docker_schema2_image, im.oci_image, im.oci_index, im.docker_manifest_list)
    digests = {name: build(lay, name, seed=11 + i)
               for i, (name, build) in enumerate(zip(IMAGES, builders, strict=True))}
    with HarborServer(work / "source") as source:
        amd64 = {}
        for name in IMAGES:
            ref = source.ref(f"library/{name}:v1")
            push_layout(lay.path, name, ref, creds=source.admin_creds)
            raw = inspect_raw(ref)
            children = json.loads(raw).get("manifests")
            amd64[name] = next((c["digest"] for c in children if c["platform"]["architecture"] == "amd64"),
                               None) if children else sha(raw)
            assert sha(raw) == digests[name]
        yield Harbors(source, lay, digests, amd64)


@pytest.fixture
def dest(tmp_path: Path) -> Iterator[HarborServer]:
    with HarborServer(tmp_path / "dest") as server:
        yield server


def skopeo_shim(cli: FerryCLI) -> dict[str, str]:
    """An environment whose ``skopeo`` is ferry (the same interpreter and isolated home as ``cli``)."""
    bin_dir = cli.root / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "skopeo"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m ferry "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return {**cli.env, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def run_transfer_script(script: Path, cli: FerryCLI, src: HarborServer, dst: HarborServer) -> str:
    """``sh skopeo_transfer_image.sh SOURCE TARGET PASSWORD`` with the notes' image list file."""
    work = script.parent
    (work / "harbor-images-list.txt").write_text("".join(f"library/{name}:v1\n" for name in IMAGES))
    proc = subprocess.run(["bash", str(script), src.host, dst.host, dst.admin_creds[1]], cwd=work,
                          env=skopeo_shim(cli), capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert out.count("successful") == len(IMAGES), out
    assert "Traceback" not in out, out
    return out


def arrived(dst: HarborServer, name: str) -> str:
    """The digest of ``library/NAME:v1`` at the destination, as the real skopeo reads it."""
    return sha(inspect_raw(dst.ref(f"library/{name}:v1"), creds=dst.admin_creds))


def test_transfer_script_0140_form_moves_every_image_with_its_digest(
        harbors: Harbors, dest: HarborServer, tmp_path: Path) -> None:
    """The script as the notes ship it (the skopeo 0.1.40 line, options after the references,
    ``--dest-creds admin:…``): every image arrives under its own digest, indexes with every platform."""
    script = tmp_path / "scripts" / SCRIPT.name
    script.parent.mkdir()
    shutil.copy(SCRIPT, script)
    out = run_transfer_script(script, FerryCLI(tmp_path / "cli"), harbors.source, dest)
    assert "visible to other users" in out  # the password on the command line is pointed out
    for name in IMAGES:
        assert arrived(dest, name) == harbors.digests[name], name


def test_transfer_script_141_form_copies_what_skopeo_copies(
        harbors: Harbors, dest: HarborServer, tmp_path: Path) -> None:
    """The 1.4.1 line (``--insecure-policy … --override-arch amd64 --override-os linux -q``, credentials
    from ``skopeo login``): the linux/amd64 image of an index, as the real skopeo copies it."""
    text = SCRIPT.read_text()
    lines = text.split("\n")
    start = lines.index("# skopeo version 1.4.1 写法")
    end = lines.index("# skopeo version 0.1.40 写法")
    old_end = lines.index("}", end)
    new = lines[start + 1:end]
    assert any(FORM_141 in line for line in new)
    lines[start + 1:old_end] = [line.removeprefix("# ") for line in new] + ["#" + line for line in
                                                                            lines[end + 1:old_end]]
    script = tmp_path / "scripts" / SCRIPT.name
    script.parent.mkdir()
    script.write_text("\n".join(lines))
    cli = FerryCLI(tmp_path / "cli")
    env = skopeo_shim(cli)
    login = subprocess.run(["skopeo", "login", "--tls-verify=false", "-u", "admin", "--password-stdin", dest.host],
                           input=dest.admin_creds[1], env=env, capture_output=True, text=True, timeout=120)
    assert login.returncode == 0, login.stderr
    out = run_transfer_script(script, cli, harbors.source, dest)
    assert "Copied" not in out  # -q
    for name in IMAGES:
        theirs = dest.ref(f"library/{name}-by-skopeo:v1")
        skopeo("copy", "--insecure-policy", "--src-tls-verify=false", "--dest-tls-verify=false",
               "--override-arch", "amd64", "--override-os", "linux", "--dest-creds", ":".join(dest.admin_creds),
               f"docker://{harbors.source.ref(f'library/{name}:v1')}", f"docker://{theirs}")
        expected = sha(inspect_raw(theirs, creds=dest.admin_creds))
        assert arrived(dest, name) == expected == harbors.amd64[name], name


# -- the global options, one by one ---------------------------------------------------------------


def ok(r: FerryResult) -> FerryResult:
    assert r.returncode == 0, r
    assert "Traceback" not in r.stderr, r
    return r


def digest_at(registry: Registry, name: str) -> str:
    return sha(inspect_raw(registry.ref(name)))


@pytest.fixture
def index_source(registry: Registry, layout: im.Layout) -> str:
    """A three-platform OCI index at ``img/multi:v1``: its reference."""
    im.oci_index(layout, "multi", seed=21)
    push_layout(layout.path, "multi", registry.ref("img/multi:v1"))
    return f"docker://{registry.ref('img/multi:v1')}"


def children(registry: Registry, name: str) -> dict[str, str]:
    """``arch[/variant]`` → digest for the index ``name``."""
    return {"/".join(filter(None, (c["platform"]["architecture"], c["platform"].get("variant")))): c["digest"]
            for c in json.loads(inspect_raw(registry.ref(name)))["manifests"]}


INSECURE = ("--src-tls-verify=false", "--dest-tls-verify=false")


def test_debug_after_the_command_shows_the_traceback(registry: Registry, tmp_path: Path) -> None:
    cli = FerryCLI(tmp_path / "cli")
    missing = f"docker://{registry.ref('img/none:v1')}"
    plain, before, after = cli.run_many([
        ["copy", *INSECURE, missing, f"dir:{tmp_path / 'a'}"],
        ["--debug", "copy", *INSECURE, missing, f"dir:{tmp_path / 'b'}"],
        ["copy", "--debug", *INSECURE, missing, f"dir:{tmp_path / 'c'}"],
    ])
    assert plain.returncode == before.returncode == after.returncode == 5, (plain, after)
    assert "Traceback" not in plain.stderr
    assert "Traceback" in before.stderr and "Traceback" in after.stderr, after


def test_override_picks_one_platform_and_all_keeps_them(index_source: str, registry: Registry, tmp_path: Path) -> None:
    """Without ``--all`` the overrides name the one platform copied, as skopeo's; ``--all`` keeps the
    index; without overrides ferry copies every platform (skopeo would pick the host's)."""
    cli = FerryCLI(tmp_path / "cli")
    kids = children(registry, "img/multi:v1")
    dst = f"docker://{registry.host}/out"
    results = cli.run_many([
        ["copy", *INSECURE, "--override-arch", "arm64", "--override-variant", "v8", "--override-os", "linux",
         index_source, f"{dst}/arm64:v1"],
        ["--override-arch", "arm", "copy", *INSECURE, "--override-variant=v7", index_source, f"{dst}/arm:v1"],
        ["copy", *INSECURE, "--override-arch", "arm64", "--all", index_source, f"{dst}/all:v1"],
        ["copy", *INSECURE, index_source, f"{dst}/default:v1"],
    ])
    for r in results:
        ok(r)
    assert digest_at(registry, "out/arm64:v1") == kids["arm64/v8"]
    assert digest_at(registry, "out/arm:v1") == kids["arm/v7"]
    assert digest_at(registry, "out/all:v1") == digest_at(registry, "out/default:v1") == digest_at(
        registry, "img/multi:v1")


def test_override_chooses_what_inspect_describes_and_is_refused_by_bulk_commands(
        index_source: str, registry: Registry, tmp_path: Path) -> None:
    cli = FerryCLI(tmp_path / "cli")
    arm, default, synced, migrated = cli.run_many([
        ["inspect", "--tls-verify=false", "--override-arch", "arm64", index_source],
        ["inspect", "--tls-verify=false", index_source],
        ["--override-arch", "arm64", "sync", "--src", "docker", "--dest", "docker", *INSECURE,
         index_source.removeprefix("docker://"), f"{registry.host}/mirror"],
        ["--override-os", "linux", "migrate", f"http://{registry.host}", "http://127.0.0.1:1"],
    ])
    assert json.loads(ok(arm).out)["Architecture"] == "arm64"
    assert json.loads(ok(default).out)["Architecture"] == "amd64"
    for r in (synced, migrated):
        assert r.returncode == 2, r
        assert "--override-os/--override-arch/--override-variant pick one platform" in r.error, r


@pytest.fixture
def silent_server() -> Iterator[str]:
    """``127.0.0.1:PORT`` where connections are accepted by the kernel and never answered."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def test_command_timeout_ends_the_whole_command(silent_server: str, tmp_path: Path) -> None:
    cli = FerryCLI(tmp_path / "cli")
    started = time.monotonic()
    timed_out = cli.run("copy", "--command-timeout", "1.5s", *INSECURE, f"docker://{silent_server}/a/b:v1",
                        f"dir:{tmp_path / 'out'}", timeout=60)
    took = time.monotonic() - started
    assert timed_out.returncode == 4, timed_out
    assert timed_out.error == ("ferry: the command did not finish within --command-timeout 1.5s (give it longer, "
                               "or rerun: work already done is not repeated)"), timed_out
    assert took < 20, took  # the interpreter's start-up plus 1.5 s, not the HTTP layer's own timeouts
    assert "Traceback" not in timed_out.stderr
    bad = cli.run("--command-timeout", "90", "copy", "docker://a.example/b:c", f"dir:{tmp_path / 'x'}")
    assert bad.returncode == 2, bad
    assert bad.error == "ferry: --command-timeout '90' is not a duration (for example 90s, 1m30s, 2h or 500ms)"


def test_tmpdir_holds_the_temporary_files(silent_server: str, tmp_path: Path) -> None:
    """A compressed docker-archive is unpacked to a temporary file: under ``--tmpdir``, not ``$TMPDIR``.
    (The destination never answers, so the copy stays open long enough to look.)"""
    from tests.unit.test_transports_local import _docker_save_archive

    archive = tmp_path / "save.tar"
    _docker_save_archive(archive, compress_layers=True, compress_archive=True)
    chosen, env_tmp = tmp_path / "chosen", tmp_path / "env-tmp"
    chosen.mkdir()
    env_tmp.mkdir()
    cli = FerryCLI(tmp_path / "cli", env={"TMPDIR": str(env_tmp)})
    running = cli.start("copy", "--tmpdir", str(chosen), "--command-timeout", "20s", "--dest-tls-verify=false",
                        f"docker-archive:{archive}", f"docker://{silent_server}/a/b:v1")
    seen: list[str] = []
    deadline = time.monotonic() + 20
    while not seen and time.monotonic() < deadline and running.proc.poll() is None:
        seen = os.listdir(chosen)
        time.sleep(0.02)
    assert os.listdir(env_tmp) == []
    running.proc.kill()
    running.wait()
    assert seen and seen[0].startswith("ferry-docker-tar-"), seen
    missing = cli.run("--tmpdir", str(tmp_path / "nowhere"), "copy", "docker://a.example/b:c", f"dir:{tmp_path}/x")
    assert missing.returncode == 2, missing
    assert missing.error == f"ferry: --tmpdir {tmp_path / 'nowhere'}: no such directory"


def test_insecure_policy_and_policy_are_accepted(index_source: str, registry: Registry, tmp_path: Path) -> None:
    """``--insecure-policy`` (the notes' 1.4.1 line) before or after the command; ``--policy`` must name
    a file."""
    cli = FerryCLI(tmp_path / "cli")
    before, after, missing = cli.run_many([
        ["--insecure-policy", "copy", "-q", *INSECURE, index_source, f"docker://{registry.ref('p/before:v1')}"],
        ["copy", "--insecure-policy", "-q", *INSECURE, index_source, f"docker://{registry.ref('p/after:v1')}"],
        ["copy", "--policy", str(tmp_path / "none.json"), *INSECURE, index_source, f"dir:{tmp_path / 'x'}"],
    ])
    assert ok(before).stderr == ok(after).stderr == ""
    assert digest_at(registry, "p/before:v1") == digest_at(registry, "p/after:v1") == digest_at(
        registry, "img/multi:v1")
    assert missing.returncode == 2, missing
    assert missing.error == f"ferry: --policy {tmp_path / 'none.json'}: no such file"


def test_policy_reject_refuses_the_copy_and_insecure_policy_overrides_it(
        index_source: str, registry: Registry, tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "reject"}]}))
    cli = FerryCLI(tmp_path / "cli")
    refused, synced, allowed = cli.run_many([
        ["copy", "--policy", str(policy), *INSECURE, index_source, f"docker://{registry.ref('p/refused:v1')}"],
        ["sync", "--policy", str(policy), "--src", "docker", "--dest", "docker", *INSECURE,
         index_source.removeprefix("docker://"), f"{registry.host}/mirror"],
        ["copy", "--policy", str(policy), "--insecure-policy", *INSECURE, index_source,
         f"docker://{registry.ref('p/allowed:v1')}"],
    ])
    for r in (refused, synced):
        assert r.returncode == 3, r
        assert r.lines == [f"ferry: policy rejects {index_source}: default in {policy} is reject"], r
    assert skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry.ref('p/refused:v1')}",
                  check=False).returncode != 0
    ok(allowed)


def test_records_is_accepted_with_a_note(index_source: str, registry: Registry, tmp_path: Path) -> None:
    """image-syncer's ``--records FILE`` (before 1.1.0): accepted, not needed, nothing written to it."""
    images = tmp_path / "images.json"
    images.write_text(json.dumps({index_source.removeprefix("docker://"): f"{registry.host}/synced/multi"}))
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({registry.host: {"insecure": True}}))
    records = tmp_path / "records"
    r = ok(FerryCLI(tmp_path / "cli").run("sync", "--auth", str(auth), "--images", str(images), "--records",
                                          str(records), "--journal", str(tmp_path / "j.db")))
    assert r.lines[0] == ("ferry: note: --records is no longer needed (image-syncer dropped it in 1.1.0): ferry's "
                          "journal remembers what each destination holds")
    assert not records.exists()
    assert digest_at(registry, "synced/multi:v1") == digest_at(registry, "img/multi:v1")


def test_registries_d_lookaside_is_named_as_not_copied(index_source: str, registry: Registry, tmp_path: Path) -> None:
    """A source whose simple signatures live in a lookaside (registries.d): the copy says they stay
    behind; another registry's lookaside, or none, says nothing. The image is copied either way."""
    configured, other = tmp_path / "registries.d", tmp_path / "other.d"
    configured.mkdir()
    other.mkdir()
    (configured / "default.yaml").write_text(
        f"docker:\n  {registry.host}/img:\n    lookaside: file:///var/lib/containers/sigstore\n")
    (other / "default.yaml").write_text("docker:\n  elsewhere.example:\n    sigstore: https://sigs.example\n")
    cli = FerryCLI(tmp_path / "cli")
    warned, quiet, missing = cli.run_many([
        ["copy", "-q", "--registries.d", str(configured), *INSECURE, index_source,
         f"docker://{registry.ref('sig/warned:v1')}"],
        ["--registries.d", str(other), "copy", "-q", *INSECURE, index_source,
         f"docker://{registry.ref('sig/quiet:v1')}"],
        ["--registries.d", str(tmp_path / "nowhere"), "copy", index_source, f"dir:{tmp_path / 'x'}"],
    ])
    assert ok(warned).lines == [
        f"ferry: warning: {configured} puts signatures of {registry.host}/img/multi in a lookaside "
        "(file:///var/lib/containers/sigstore); ferry copies the signatures kept in the registry (cosign tags, "
        "OCI referrers), not lookaside ones"]
    assert ok(quiet).stderr == ""
    assert digest_at(registry, "sig/warned:v1") == digest_at(registry, "sig/quiet:v1") == digest_at(
        registry, "img/multi:v1")
    assert missing.returncode == 2, missing
    assert missing.error == f"ferry: --registries.d {tmp_path / 'nowhere'}: no such directory"
