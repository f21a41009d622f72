"""``ferry export`` / ``ferry import`` carry a Harbor's configuration and Helm charts, not only its images
(issues 13 and 15).

The source is one Harbor 2.7 test server per module (it has ChartMuseum): the configuration of the
migration tests (:mod:`tests.support.harbor_config_seed`: members, project and system robots,
retention, an immutable rule, labels on an artifact, a webhook with an auth header, descriptions,
settings, allowlists, users), a description on a second repository, and real chart archives (one
with a provenance file). It is exported once per module; each test imports into a fresh Harbor and
reads both back through their API (:mod:`tests.support.harbor_config_compare`) to compare them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_migrate import RegistryReader, passwords
from tests.integration.test_migrate_charts import API, API_PROV, WEB1, WEB2
from tests.support.charts import EPOCH
from tests.support.cli import FerryCLI, FerryResult
from tests.support.harbor import HarborServer
from tests.support.harbor_config_compare import configuration
from tests.support.harbor_config_seed import CI_SECRET, HOOK_HEADER, USERS, ok, seed_configuration
from tests.support.harbor_marks import HARBOR_TESTS, Factory
from tests.support.harbor_seed import HarborSeeder, SeedClient, Seeded

pytest_plugins = ["tests.support.harbor_fixtures"]

pytestmark = HARBOR_TESTS

#: project, chart, version → (archive, provenance)
CHARTS = {("team-a", "web", "1.0.0"): (WEB1, None), ("team-a", "web", "1.1.0+build.5"): (WEB2, None),
          ("team-b", "api", "0.3.0"): (API, API_PROV)}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    work = tmp_path_factory.mktemp("harbor-27-source")
    with HarborServer(work / "server", harbor_version="v2.7.4") as server:
        seeder = HarborSeeder(server, work)
        seeder.project("team-a", public=False)
        seeder.project("team-b", public=True)
        seeder.image("team-a/app:v1", seed=1)  # shard 0 of 2 (its labels and description with it)
        seeder.image("team-a/app:v2", seed=2)
        seeder.image("team-a/db:1", seed=3)  # shard 1 of 2, with a description of its own
        seeder.image("team-b/tool:1", seed=4)  # shard 1 of 2
        seed_configuration(server)
        ok(server, "PUT", "/projects/team-a/repositories/db", {"description": "the database"})
        assert server.chartmuseum is not None
        for n, ((project, _, _), (archive, prov)) in enumerate(CHARTS.items()):
            server.chartmuseum.add(project, archive, prov, created=EPOCH + 60 * n)
        yield seeder.seeded


def export(cli: FerryCLI, src: HarborServer, directory: Path, *extra: str) -> FerryResult:
    return cli.run("export", src.url, str(directory), "--src-creds", "admin", "--system", "--quiet", *extra,
                   env={"FERRY_SRC_PASSWORD": src.creds("admin")[1]}, timeout=300)


@pytest.fixture(scope="module")
def exported(source: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("export-config")
    res = export(FerryCLI(work / "cli"), source.server, work / "dir", "--journal", str(work / "journal.db"))
    assert res.returncode == 0, res
    return work / "dir"


@pytest.fixture
def cli(tmp_path: Path) -> FerryCLI:
    return FerryCLI(tmp_path / "cli")


def import_into(cli: FerryCLI, src: HarborServer, dst: HarborServer, tmp: Path, *sources: str | Path,
                extra: tuple[str, ...] = ()) -> FerryResult:
    known = tmp / "known.yaml"
    known.write_text(f"robot$team-a+ci: {CI_SECRET}\n")
    n = len(list(tmp.glob("report-*.json")))  # every run its own secrets files (never overwritten)
    return cli.run("import", *map(str, sources), dst.url, "--dest-creds", "admin", "--create-users",
                   "--robot-secrets", str(known), "--robot-secrets-out", str(tmp / f"robots-{n}.json"),
                   "--user-passwords-out", str(tmp / f"users-{n}.json"), "--journal", str(tmp / "journal.db"),
                   "--report", str(tmp / f"report-{n}.json"), "--quiet", *extra, env=passwords(src, dst),
                   timeout=300)


def last_report(tmp: Path) -> dict[str, Any]:
    reports = sorted(tmp.glob("report-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    return json.loads(reports[-1].read_text())


def without_hook_headers(conf: dict[str, Any]) -> dict[str, Any]:
    """The configuration with webhook auth headers left out: an export carries no credentials."""
    out = dict(conf)
    for project in ("team-a", "team-b"):
        hooks = {name: (*rest, [(addr, None, skip) for addr, _header, skip in targets])
                 for name, (*rest, targets) in conf[project]["webhooks"].items()}
        out[project] = {**conf[project], "webhooks": hooks}
    return out


def assert_same_destination(source: Seeded, dst: HarborServer, *, museum: bool = False) -> None:
    """Configuration (less webhook auth headers, which are absent), every image digest, every chart."""
    got = configuration(dst)
    assert [t[1] for h in got["team-a"]["webhooks"].values() for t in h[-1]] == [""]  # not carried: none set
    if not museum:  # OCI charts are repositories of their own at the destination
        charts = {f"{project}/{name}" for project, name, _ in CHARTS}
        for project in ("team-a", "team-b"):
            got[project]["descriptions"] = {r: d for r, d in got[project]["descriptions"].items() if r not in charts}
            got[project]["artifact_labels"] = {k: v for k, v in got[project]["artifact_labels"].items()
                                               if k[0] not in charts}
    assert without_hook_headers(got) == without_hook_headers(configuration(source.server))
    reader = RegistryReader(dst)
    for repo, ref, digest in source.refs():
        assert reader.digest(repo, ref) == digest, f"{repo}:{ref}"
    for (project, name, version), (archive, prov) in CHARTS.items():
        if museum:
            assert dst.chartmuseum is not None
            stored = dst.chartmuseum.get(project, name, version)
            assert stored is not None and (stored.archive, stored.prov) == (archive, prov), (name, version)
            continue
        status, _, raw = SeedClient(dst).get_manifest(f"{project}/{name}", version.replace("+", "_"))
        assert status == 200, (project, name, version)
        layers = {d["digest"] for d in json.loads(raw)["layers"]}
        assert layers == {sha(archive)} | ({sha(prov)} if prov else set()), (name, version)


def api_writes(server: HarborServer, since: int = 0) -> list[str]:
    return [f"{r.method} {r.path}" for r in list(server.request_log)[since:] if r.method in WRITES]


# --------------------------------------------------------------------------------------------


def test_the_export_describes_configuration_and_charts_and_holds_no_secret(
    exported: Path, cli: FerryCLI, tmp_path: Path
) -> None:
    text = (exported / "ferry-export.json").read_text()
    desc = json.loads(text)
    assert desc["version"] == 2
    kinds = desc["configuration"]["kinds"]
    assert {"metadata", "allowlist", "members", "robots", "retention", "immutability", "labels", "webhooks",
            "descriptions", "artifact-labels", "users"} <= set(kinds)
    assert set(kinds["robots"]) == {"(system)", "team-a", "team-b"}
    assert kinds["descriptions"]["team-a"] == {"app": {"body": {"description": "the app"}, "ref": None},
                                               "db": {"body": {"description": "the database"}, "ref": None}}
    for secret in (CI_SECRET, HOOK_HEADER, *USERS.values()):
        assert secret not in text
    charts = {(c["project"], c["name"], c["version"]): c for c in desc["charts"]}
    assert set(charts) == set(CHARTS)
    for key, (archive, prov) in CHARTS.items():
        assert charts[key]["archive"] == {"digest": sha(archive), "size": len(archive)}
        assert (exported / "blobs/sha256" / sha(archive).split(":")[1]).read_bytes() == archive
        assert charts[key]["prov"] == (None if prov is None else {"digest": sha(prov), "size": len(prov)})
    check = cli.run("verify", str(exported), "--report", str(tmp_path / "check.json"))
    assert check.returncode == 0, check
    assert "3 chart versions: 4 and 3 whole" in check.stderr
    assert json.loads((tmp_path / "check.json").read_text())["charts"] == 3


def test_import_replays_the_configuration_and_pushes_the_charts_then_reruns_idle(
    source: Seeded, exported: Path, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    dst = harbor_factory()  # Harbor 2.8+: no ChartMuseum, the charts arrive as OCI charts
    first = import_into(cli, source.server, dst, tmp_path, exported)
    assert first.returncode == 0, first
    assert_same_destination(source, dst)
    rep = last_report(tmp_path)
    sections = rep["configuration"]
    hook = sections["team-a"]["webhooks"][0]
    assert hook["action"] == "created" and "re-enter the auth header of http://127.0.0.1:9/hook" in hook["note"]
    ci = next(e for e in sections["team-a"]["robots"] if e["name"] == "ci")
    assert ci["note"] == "secret from the robot secrets file"
    assert set(json.loads((tmp_path / "robots-0.json").read_text())) == {"robot$team-b+old", "robot$sync"}
    assert rep["charts"]["mode"] == "oci" and rep["charts"]["not_verified"] == []
    assert rep["charts"]["projects"]["team-a"]["copied"] == 2

    mark = len(dst.request_log)
    again = import_into(cli, source.server, dst, tmp_path, exported)
    assert again.returncode == 0, again
    assert api_writes(dst, mark) == []
    assert last_report(tmp_path)["charts"]["projects"]["team-b"]["skipped"] == 1


def test_a_flipped_byte_in_a_chart_blob_is_caught_by_verify_and_by_the_import(
    source: Seeded, exported: Path, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(exported, damaged)
    path = damaged / "blobs/sha256" / sha(API).split(":")[1]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    check = cli.run("verify", str(damaged))
    assert check.returncode == 1, check
    assert f"chart team-b/api:0.3.0: content does not match its digest (damaged on disk) (blob {sha(API)})" \
        in check.stderr
    assert "1 chart version(s) not whole" in check.stderr

    dst = harbor_factory()
    res = import_into(cli, source.server, dst, tmp_path, damaged, extra=("--no-config",))
    assert res.returncode == 1, res
    assert "1 chart version(s) failed" in res.stderr
    charts = last_report(tmp_path)["charts"]
    failed = [j for j in charts["jobs"] if j["status"] == "failed"]
    assert [j["source"] for j in failed] == ["team-b/api:0.3.0"] and "damaged on disk" in failed[0]["error"]
    assert SeedClient(dst).get_manifest("team-b/api", "0.3.0")[0] == 404
    assert SeedClient(dst).get_manifest("team-a/web", "1.0.0")[0] == 200


def test_through_volumes_into_a_harbor_with_chartmuseum(
    source: Seeded, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    vols = tmp_path / "vols"
    res = export(cli, source.server, vols, "--volume-size", "40K", "--journal", str(tmp_path / "export.db"))
    assert res.returncode == 0, res
    volumes = sorted(vols.glob("ferry-export-*.tar"))
    assert len(volumes) >= 2
    dst = harbor_factory(harbor_version="v2.7.4")
    imported = import_into(cli, source.server, dst, tmp_path, *volumes,
                           extra=("--work-dir", str(tmp_path / "unpacked")))
    assert imported.returncode == 0, imported
    assert_same_destination(source, dst, museum=True)
    assert last_report(tmp_path)["charts"]["mode"] == "chartmuseum"


def test_two_shards_exported_and_imported_make_the_same_destination_as_one(
    source: Seeded, exported: Path, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    env = {"FERRY_SRC_PASSWORD": source.server.creds("admin")[1]}
    runs = cli.run_many([["export", source.server.url, str(tmp_path / f"shard{i}"), "--src-creds", "admin",
                          "--system", "--shard", f"{i}/2", "--quiet"] for i in (0, 1)], env=env, timeout=300)
    assert [r.returncode for r in runs] == [0, 0], runs
    d0, d1 = (json.loads((tmp_path / f"shard{i}/ferry-export.json").read_text()) for i in (0, 1))
    assert (d0["shard"], d1["shard"]) == ({"index": 0, "count": 2}, {"index": 1, "count": 2})
    assert {i["repository"] for i in d0["images"]} == {"team-a/app"}
    assert {i["repository"] for i in d1["images"]} == {"team-a/db", "team-b/tool"}
    # shard 0 carries the project-wide configuration and the charts; a repository's own objects go with it
    assert len(d0["charts"]) == 3 and d1["charts"] == []
    assert set(d1["configuration"]["kinds"]) == {"descriptions"}
    assert set(d1["configuration"]["kinds"]["descriptions"]["team-a"]) == {"db"}
    assert set(d0["configuration"]["kinds"]["descriptions"]["team-a"]) == {"app"}

    dst = harbor_factory()
    for i in (0, 1):
        res = import_into(cli, source.server, dst, tmp_path, tmp_path / f"shard{i}")
        assert res.returncode == 0, res
    assert_same_destination(source, dst)

    # the other way: two shards of the import of one whole export
    whole = harbor_factory()
    for i in (0, 1):
        res = import_into(cli, source.server, whole, tmp_path, exported, extra=("--shard", f"{i}/2"))
        assert res.returncode == 0, res
        assert last_report(tmp_path)["shard"] == {"index": i, "count": 2}
    assert_same_destination(source, whole)
