"""``ferry export``, ``ferry import`` and ``ferry verify DIR``: a migration carried across on disk (issue 13).

The source is the seeded test Harbor of the migration tests (nested repositories, an OCI index, a
Docker manifest list, a cosign signature, an untagged artifact, quotas; one project with extra
settings). It is exported once per module; each test imports into its own empty Harbor or registry
and checks the result without ferry: manifests read back from the registry, the Harbor API, skopeo.
Kills use the fault proxy to hold one request, then SIGKILL (tests/support/reliability.py).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_migrate import RegistryReader, passwords, projects_of
from tests.support.cli import FerryCLI, FerryResult
from tests.support.faultproxy import FaultProxy, Rule, Stall
from tests.support.harbor import HarborServer
from tests.support.harbor_marks import HARBOR_TESTS, Factory
from tests.support.harbor_seed import Seeded, seed_migration_source
from tests.support.invariants import assert_whole
from tests.support.registry import Registry, start_registry
from tests.support.reliability import FAST, kill, run_ferry, spawn_ferry
from tests.support.skopeo import inspect_raw
from tests.support.workloads import Seeded as RegistrySeeded
from tests.support.workloads import assert_mirrored, manifest_puts, project_source

pytest_plugins = ["tests.support.harbor_fixtures"]

pytestmark = HARBOR_TESTS

ALPHA_SETTINGS = {"auto_scan": "true", "severity": "high", "prevent_vul": "true"}


def sha(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    work = tmp_path_factory.mktemp("harbor-source")
    with HarborServer(work / "server") as server:
        seeded = seed_migration_source(server, work, filler_projects=3)
        server.project("alpha").metadata.update(ALPHA_SETTINGS)
        yield seeded


@pytest.fixture(scope="module")
def exported(source: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole source Harbor exported once (untagged artifacts included); tests copy it to change it."""
    work = tmp_path_factory.mktemp("export")
    res = FerryCLI(work / "cli").run("export", source.server.url, str(work / "dir"), "--src-creds", "admin",
                                     "--include-untagged", "--no-config", "--journal", str(work / "journal.db"),
                                     "--quiet",
                                     env={"FERRY_SRC_PASSWORD": source.server.creds("admin")[1]}, timeout=300)
    assert res.returncode == 0, res
    return work / "dir"


@pytest.fixture
def cli(tmp_path: Path) -> FerryCLI:
    return FerryCLI(tmp_path / "cli")


@pytest.fixture(scope="module")
def registry_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistrySeeded]:
    with project_source(tmp_path_factory) as seeded:
        yield seeded


def description(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "ferry-export.json").read_text())


def import_into(cli: FerryCLI, src: HarborServer, dst: HarborServer, tmp: Path, *sources: str | Path,
                extra: tuple[str, ...] = ()) -> FerryResult:
    return cli.run("import", *map(str, sources), dst.url, "--dest-creds", "admin", "--journal",
                   str(tmp / "journal.db"), "--report", str(tmp / "report.json"), "--quiet", *extra,
                   env=passwords(src, dst), timeout=300)


def assert_everything_equal(source: Seeded, dst: HarborServer) -> None:
    """Every tag and untagged digest of the source at the destination, digest for digest, and every
    seeded project with its settings (visibility, quota, metadata)."""
    reader = RegistryReader(dst)
    assert reader.catalog() == set(source.repositories())
    for repo, ref, digest in source.refs():
        assert reader.digest(repo, ref) == digest, f"{repo}:{ref}"
    have = projects_of(dst)
    for name, settings in source.projects.items():
        assert have[name] == settings, name
    for key, value in ALPHA_SETTINGS.items():
        assert dst.project("alpha").metadata.get(key) == value, key


def layer_of(directory: Path, ref_name: str) -> str:
    index = json.loads((directory / "index.json").read_text())
    entry = next(e for e in index["manifests"] if e["annotations"]["org.opencontainers.image.ref.name"] == ref_name)
    manifest = json.loads((directory / "blobs/sha256" / entry["digest"].split(":")[1]).read_bytes())
    return str(manifest["layers"][0]["digest"])


def flip_byte(directory: Path, digest: str) -> None:
    path = directory / "blobs/sha256" / digest.split(":")[1]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------------------------
# a whole Harbor, through a directory
# --------------------------------------------------------------------------------------------


def test_export_describes_the_harbor_and_stores_each_blob_once(source: Seeded, exported: Path) -> None:
    desc = description(exported)
    assert desc["format"] == "ferry-export" and desc["version"] == 2 and desc["source"]["kind"] == "harbor"
    assert desc["configuration"] == {} and desc["charts"] == [] and desc["shard"] is None  # --no-config, Harbor 2.8+
    projects = {p["name"]: p for p in desc["projects"]}
    for name, settings in source.projects.items():
        assert {"public": projects[name]["public"], "storage_limit": projects[name]["storage_limit"]} == settings
    assert {k: projects["alpha"]["metadata"][k] for k in ALPHA_SETTINGS} == ALPHA_SETTINGS
    described = {(i["repository"], i["tag"] or i["digest"]): i["digest"] for i in desc["images"]}
    assert described == {(r, ref): d for r, ref, d in source.refs()}
    signature = [i for i in desc["images"] if i["accessory"]]
    assert [i["repository"] for i in signature] == ["alpha/app"] and signature[0]["tag"].endswith(".sig")
    artifacts = [a for p in desc["projects"] for r in p["repositories"] for a in r["artifacts"]]
    assert artifacts and all(a["push_time"] for a in artifacts if not a["subject"])
    (sig,) = [a for a in artifacts if a["subject"]]
    assert sig["accessory_type"] == "signature.cosign" and sig["tags"] == [signature[0]["tag"]]
    assert sig["subject"] == source.tags["alpha/app"]["1.0"]
    assert {r["name"] for p in desc["projects"] for r in p["repositories"]} == set(source.repositories())
    # one blob store: every file once, named by its digest (113 many-tags variants share one layer)
    files = list((exported / "blobs/sha256").iterdir())
    assert all(sha(f.read_bytes()) == f"sha256:{f.name}" for f in files)
    index = json.loads((exported / "index.json").read_text())
    names = [e["annotations"]["org.opencontainers.image.ref.name"] for e in index["manifests"]]
    assert sorted(names) == sorted(i["ref_name"] for i in desc["images"])


def test_verify_dir_passes_on_a_fresh_export(exported: Path, cli: FerryCLI, tmp_path: Path) -> None:
    res = cli.run("verify", str(exported), "--report", str(tmp_path / "check.json"))
    assert res.returncode == 0, res
    check = json.loads((tmp_path / "check.json").read_text())
    assert check["problems"] == [] and check["blobs"] == len(list((exported / "blobs/sha256").iterdir()))


def test_skopeo_reads_every_kind_of_image_from_the_export(source: Seeded, exported: Path, registry: Registry,
                                                          cli: FerryCLI) -> None:
    """OCI images and indexes, and Docker schema2 images (listed with the OCI type: their bytes and
    digests are untouched), are read by name with skopeo's oci: transport and copied byte for byte;
    ferry copies a Docker manifest list out of the export with its digest too."""
    cases = {"alpha/app:1.0": "docker image", "alpha/team/app:2.0": "oci image", "beta/multi:1": "oci index",
             "beta/list:1": "docker list"}
    for name, kind in cases.items():
        repo, tag = name.rsplit(":", 1)
        want = source.tags[repo][tag]
        assert sha(inspect_raw(f"oci:{exported}:{name}")) == want, kind
        if kind == "docker list":  # skopeo copy --all rewrites a Docker list read from a layout (docs/export-format.md)
            res = cli.run("copy", "--dest-tls-verify=false", f"oci:{exported}:{name}", f"docker://{registry.host}/{name}")
            assert res.returncode == 0, res
            assert sha(inspect_raw(f"docker://{registry.host}/{name}")) == want, kind
            continue
        subprocess.run(["skopeo", "copy", "--all", "--dest-tls-verify=false", f"oci:{exported}:{name}",
                        f"docker://{registry.host}/{name}"], check=True, capture_output=True)
        assert sha(inspect_raw(f"docker://{registry.host}/{name}")) == want, kind
    untagged = next(iter(source.untagged["alpha/app"]))
    assert sha(inspect_raw(f"oci:{exported}:alpha/app@{untagged}")) == untagged


def test_import_into_a_fresh_harbor_makes_everything_equal_and_reruns_idle(
    source: Seeded, exported: Path, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    dst = harbor_factory()
    first = import_into(cli, source.server, dst, tmp_path, exported)
    assert first.returncode == 0, first
    assert_everything_equal(source, dst)
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["summary"]["failed"] == 0 and rep["verification"]["mismatches"] == []
    assert {p["action"] for p in rep["projects"] if p["name"] != "library"} == {"created"}

    mark = len(dst.request_log)
    again = import_into(cli, source.server, dst, tmp_path, exported)
    assert again.returncode == 0, again
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["summary"]["copied"] == 0 and rep["summary"]["skipped"] == len(source.refs())
    assert [r for r in list(dst.request_log)[mark:] if r.method in ("PUT", "POST", "PATCH")] == []


def test_import_maps_projects_and_dry_run_writes_nothing(
    source: Seeded, exported: Path, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    dst = harbor_factory()
    dry = import_into(cli, source.server, dst, tmp_path, exported, extra=("--dry-run",))
    assert dry.returncode == 0, dry
    assert "would create" in dry.out and [r for r in dst.request_log if r.method in ("PUT", "POST")] == []
    res = import_into(cli, source.server, dst, tmp_path, exported, extra=("--map", "zeta=omega"))
    assert res.returncode == 0, res
    assert RegistryReader(dst).digest("omega/app", "1") == source.tags["zeta/app"]["1"]
    assert projects_of(dst)["omega"] == source.projects["zeta"]


# --------------------------------------------------------------------------------------------
# volumes
# --------------------------------------------------------------------------------------------


def test_volumes_are_self_describing_none_larger_than_asked_and_import(
    source: Seeded, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    size = 40_000
    out = tmp_path / "vols"
    res = cli.run("export", source.server.url, str(out), "--src-creds", "admin", "--include-untagged", "--no-config",
                  "--volume-size", "40K", "--journal", str(tmp_path / "export.db"), "--quiet",
                  env={"FERRY_SRC_PASSWORD": source.server.creds("admin")[1]}, timeout=300)
    assert res.returncode == 0, res
    volumes = sorted(out.iterdir())
    assert [v.name for v in volumes] == [f"ferry-export-{n:03d}.tar" for n in range(1, len(volumes) + 1)]
    assert len(volumes) > 2 and all(v.stat().st_size <= size for v in volumes)
    heads = []
    for v in volumes:
        with tarfile.open(v) as tar:
            first = tar.next()
            assert first is not None and first.name == "ferry-volume.json"
            f = tar.extractfile(first)
            assert f is not None
            heads.append(json.loads(f.read()))
    assert [h["volume"] for h in heads] == list(range(1, len(volumes) + 1))
    assert {h["volumes"] for h in heads} == {len(volumes)} and len({h["export"] for h in heads}) == 1
    assert all(len(m["sha256"]) == 64 for h in heads for m in h["members"])

    dst = harbor_factory()
    imported = import_into(cli, source.server, dst, tmp_path, *reversed(volumes),
                           extra=("--work-dir", str(tmp_path / "unpacked")))
    assert imported.returncode == 0, imported
    assert_everything_equal(source, dst)
    assert cli.run("verify", str(tmp_path / "unpacked")).returncode == 0

    missing = cli.run("import", *map(str, volumes[1:]), dst.url, "--dest-creds", "admin",
                      "--work-dir", str(tmp_path / "other"), env=passwords(source.server, dst))
    assert missing.returncode == 2 and "volumes 1 of the export are missing" in missing.stderr


# --------------------------------------------------------------------------------------------
# damage on disk
# --------------------------------------------------------------------------------------------


def test_a_flipped_byte_is_named_by_verify_and_that_image_is_not_imported(
    source: Seeded, exported: Path, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(exported, damaged)
    layer = layer_of(damaged, "alpha/team/app:2.0")
    flip_byte(damaged, layer)

    check = cli.run("verify", str(damaged))
    assert check.returncode == 1
    assert f"blob {layer}: content does not match its digest" in check.stderr
    assert "1 image(s) not whole" in check.stderr

    dst = harbor_factory()
    res = import_into(cli, source.server, dst, tmp_path, damaged)
    assert res.returncode == 1
    rep = json.loads((tmp_path / "report.json").read_text())
    failed = [j for j in rep["jobs"] if j["status"] == "failed"]
    assert [j["destination"] for j in failed] == [f"{dst.host}/alpha/team/app:2.0"]
    assert layer in failed[0]["error"]
    reader = RegistryReader(dst)
    assert reader.digest("alpha/team/app", "2.0") is None
    for repo, ref, digest in source.refs():
        if (repo, ref) != ("alpha/team/app", "2.0"):
            assert reader.digest(repo, ref) == digest, f"{repo}:{ref}"


# --------------------------------------------------------------------------------------------
# plain registries, and kills
# --------------------------------------------------------------------------------------------


@pytest.fixture
def proxy() -> Iterator[Callable[[str], FaultProxy]]:
    started: list[FaultProxy] = []

    def make(upstream: str) -> FaultProxy:
        started.append(FaultProxy(upstream).start())
        return started[-1]

    yield make
    for p in started:
        p.stop()


def killed_at(px: FaultProxy, rule: Rule, args: list[str], tmp: Path) -> None:
    """Start ferry, SIGKILL it once ``rule`` holds its request; the proxy then lets everything through."""
    proc = spawn_ferry(*args, home=tmp / "home", env=FAST, log=tmp / "killed.log")
    try:
        px.wait(rule, timeout=120)
    finally:
        kill(proc)
    px.abandon()


def blob_gets(reg: Registry, since: int = 0) -> list[str]:
    return [r.path.rsplit("/", 1)[1] for r in reg.requests(since) if r.method == "GET" and "/blobs/sha256:" in r.path]


def test_plain_registry_export_killed_mid_blob_resumes_then_imports_into_a_registry(
    registry_source: RegistrySeeded, proxy: Callable[[str], FaultProxy], tmp_path: Path
) -> None:
    """The export is killed while one layer is held; the rerun fetches only the blobs that were not on
    disk yet, the export verifies, and its import into a plain registry is digest-exact."""
    w = registry_source.workload
    img = w.images[-1]
    layer = w.manifest(w.manifests_of(img.digest)[-1])["layers"][-1]["digest"]
    px = proxy(registry_source.registry.url)
    (rule,) = px.add(Rule(Stall(), "GET", rf"/blobs/{layer}$"))
    out = tmp_path / "export"
    args = ["export", f"http://{px.host}", str(out), "--retries", "0", "--journal", str(tmp_path / "export.db"),
            "--report", str(tmp_path / "export.json")]
    killed_at(px, rule, args, tmp_path)
    on_disk = {f"sha256:{f.name}" for f in (out / "blobs/sha256").iterdir() if not f.name.startswith("ferry-")}
    assert on_disk and layer not in on_disk and not (out / "ferry-export.json").exists()

    mark = registry_source.registry.mark()
    rerun = run_ferry(*args, home=tmp_path / "home", env=FAST)
    assert rerun.returncode == 0, rerun.stderr
    fetched = blob_gets(registry_source.registry, mark)
    assert layer in fetched and not set(fetched) & on_disk, "a blob complete on disk was fetched again"
    assert run_ferry("verify", str(out), home=tmp_path / "home").returncode == 0

    with start_registry(tmp_path / "dst") as dst:
        res = run_ferry("import", str(out), f"http://{dst.host}", "--journal", str(tmp_path / "import.db"),
                        home=tmp_path / "home", env=FAST)
        assert res.returncode == 0, res.stderr
        assert_mirrored(w, w.images, dst, skopeo=False)
        assert_whole(dst)


def test_import_killed_mid_push_resumes(
    registry_source: RegistrySeeded, proxy: Callable[[str], FaultProxy], tmp_path: Path
) -> None:
    w = registry_source.workload
    out = tmp_path / "export"
    assert run_ferry("export", f"http://{registry_source.host}", str(out), home=tmp_path / "home").returncode == 0
    img = w.images[len(w.images) // 2]
    with start_registry(tmp_path / "dst") as dst:
        px = proxy(dst.url)
        (rule,) = px.add(Rule(Stall(), "PUT", rf"/{img.repo}/manifests/{img.tag}$"))
        args = ["import", str(out), f"http://{px.host}", "--retries", "0", "--journal", str(tmp_path / "import.db"),
                "--report", str(tmp_path / "import.json")]
        killed_at(px, rule, args, tmp_path)
        pushed_before = len(manifest_puts(dst))
        assert_whole(dst)
        mark = dst.mark()
        rerun = run_ferry(*args, home=tmp_path / "home", env=FAST)
        assert rerun.returncode == 0, rerun.stderr
        rep = json.loads((tmp_path / "import.json").read_text())
        assert rep["summary"]["copied"] >= 1 and rep["summary"]["skipped"] >= 1
        assert len(manifest_puts(dst, mark)) < len(w.images) + pushed_before
        assert_mirrored(w, w.images, dst, skopeo=False)
        assert_whole(dst)


def test_export_and_import_errors_are_one_line(cli: FerryCLI, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    cases = [
        (("export", "http://127.0.0.1:1", str(tmp_path / "file")), 2, "exists and is not a directory"),
        (("export", "http://127.0.0.1:1", str(tmp_path / "d"), "--volume-size", "lots"), 2, "invalid --volume-size"),
        (("import", str(tmp_path), "http://127.0.0.1:1"), 2, "neither an export directory nor export volumes"),
        (("import", str(tmp_path)), 2, "needs an export"),
        (("verify", str(tmp_path)), 2, "is not a ferry export"),
    ]
    for args, code, text in cases:
        res = cli.run(*args)
        assert res.returncode == code and text in res.stderr and "Traceback" not in res.stderr, res
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "d").exists(), "a refused export leaves nothing behind"
