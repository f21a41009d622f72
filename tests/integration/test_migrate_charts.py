"""Helm charts across the 2.8 boundary (issue 11): a Harbor 2.7 with ChartMuseum migrated into a
current Harbor (OCI charts, as ``helm push`` makes them) and into another 2.7 (its chart repository).

The source holds real chart archives (tests.support.charts): ``apps/web`` in two versions (one with
``+`` in it), ``apps/api`` with a provenance file, ``infra/ingress``, and ``infra/broken`` whose
archive is not gzip. The destination is checked without ferry: manifests and blobs read from its
registry, ``skopeo copy`` of a chart as an OCI artifact, its ChartMuseum's stored files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.support.charts import EPOCH, chart_archive, provenance
from tests.support.cli import FerryCLI, FerryResult
from tests.support.harbor import HarborServer
from tests.support.harbor_marks import HARBOR_TESTS, Factory
from tests.support.harbor_seed import SeedClient
from tests.support.skopeo import skopeo

pytest_plugins = ["tests.support.harbor_fixtures"]

pytestmark = HARBOR_TESTS

CONFIG = "application/vnd.cncf.helm.config.v1+json"
CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
PROV_LAYER = "application/vnd.cncf.helm.chart.provenance.v1.prov"

WEB1 = chart_archive("web", "1.0.0")
WEB2 = chart_archive("web", "1.1.0+build.5", maintainers=[{"name": "Ann", "email": "ann@example.test"}])
API = chart_archive("api", "0.3.0", home="https://example.test/api")
API_PROV = provenance("api", "0.3.0", API)
INGRESS = chart_archive("ingress", "2.0.0", appVersion="1.9")
GOOD = {("apps", "web", "1.0.0"): WEB1, ("apps", "web", "1.1.0+build.5"): WEB2, ("apps", "api", "0.3.0"): API,
        ("infra", "ingress", "2.0.0"): INGRESS}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def source(harbor_factory: Factory) -> HarborServer:
    src = harbor_factory(harbor_version="v2.7.4", projects={"apps": {}, "infra": {"public": True}})
    assert src.chartmuseum is not None
    src.chartmuseum.add("apps", WEB1, created=EPOCH)
    src.chartmuseum.add("apps", WEB2, created=EPOCH + 60)
    src.chartmuseum.add("apps", API, API_PROV, created=EPOCH + 120)
    src.chartmuseum.add("infra", INGRESS, created=EPOCH + 180)
    src.chartmuseum.add("infra", b"this is not a gzip file", name="broken", version="0.1.0", created=EPOCH)
    return src


def run(tmp: Path, src: HarborServer, dst: HarborServer, *extra: str) -> FerryResult:
    args = ["migrate", src.url, dst.url, "--src-creds", "admin", "--dest-creds", "admin", *extra]
    if "--dry-run" not in extra:
        args += ["--journal", str(tmp / "journal.db"), "--report", str(tmp / "report.json")]
    env = {"FERRY_SRC_PASSWORD": src.creds("admin")[1], "FERRY_DEST_PASSWORD": dst.creds("admin")[1]}
    return FerryCLI(tmp / "cli").run(*args, env=env, timeout=300)


def chart_writes(server: HarborServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in list(server.request_log)
            if r.method in ("POST", "PUT", "PATCH", "DELETE") and not r.path.startswith("/api/v2.0/projects")]


def report(tmp: Path) -> dict:
    return json.loads((tmp / "report.json").read_text())["charts"]


def assert_broken_reported(result: FerryResult) -> None:
    assert result.returncode == 1, result
    assert "infra/broken:0.1.0" in result.stderr and "not a gzip file" in result.stderr, result
    assert "1 chart version(s) failed" in result.error, result


def test_charts_become_oci_charts_in_a_harbor_without_chartmuseum(tmp_path: Path, source: HarborServer,
                                                                  harbor_factory: Factory) -> None:
    dst = harbor_factory()
    assert dst.chartmuseum is None
    result = run(tmp_path, source, dst)
    assert_broken_reported(result)
    reader = SeedClient(dst)
    for (project, name, version), archive in GOOD.items():
        tag = version.replace("+", "_")
        status, headers, raw = reader.get_manifest(f"{project}/{name}", tag)
        assert status == 200, (project, name, version)
        assert headers["Content-Type"] == "application/vnd.oci.image.manifest.v1+json"
        manifest = json.loads(raw)
        assert manifest["config"]["mediaType"] == CONFIG
        prov = API_PROV if name == "api" else None
        expected_layers = sorted([(CHART_LAYER, sha(archive), len(archive))]
                                 + ([(PROV_LAYER, sha(prov), len(prov))] if prov else []), key=lambda t: t[1])
        assert [(d["mediaType"], d["digest"], d["size"]) for d in manifest["layers"]] == expected_layers
        assert set(manifest) == {"schemaVersion", "config", "layers", "annotations"}
        assert manifest["annotations"]["org.opencontainers.image.title"] == name
        assert manifest["annotations"]["org.opencontainers.image.version"] == version
        status, _, blob = reader.request("GET", f"/v2/{project}/{name}/blobs/{sha(archive)}",
                                         scope=f"repository:{project}/{name}:pull")
        assert status == 200 and blob == archive  # the .tgz unchanged
        status, _, config = reader.request("GET", f"/v2/{project}/{name}/blobs/{manifest['config']['digest']}",
                                           scope=f"repository:{project}/{name}:pull")
        assert json.loads(config)["name"] == name and json.loads(config)["version"] == version
    web = json.loads(reader.get_manifest("apps/web", "1.0.0")[2])
    config = reader.request("GET", f"/v2/apps/web/blobs/{web['config']['digest']}", scope="repository:apps/web:pull")
    assert config[2] == (b'{"name":"web","version":"1.0.0","description":"web, a test chart","apiVersion":"v2",'
                         b'"type":"application"}')  # json.Marshal of Helm's chart.Metadata
    created = json.loads(reader.get_manifest("apps/web", "1.1.0_build.5")[2])["annotations"]
    assert created["org.opencontainers.image.created"] == "2020-09-13T12:27:40Z"  # ChartMuseum's time, not now
    assert created["org.opencontainers.image.authors"] == "Ann (ann@example.test)"
    rows = report(tmp_path)["projects"]
    assert rows["apps"] == {"charts": 2, "versions": 3, "copied": 3, "skipped": 0, "failed": 0, "not_verified": 0}
    assert rows["infra"]["failed"] == 1 and rows["infra"]["copied"] == 1

    # skopeo pulls a chart as an OCI artifact, bytes and all
    layout = tmp_path / "layout"
    skopeo("copy", "--src-tls-verify=false", f"--src-creds=admin:{dst.creds('admin')[1]}",
           f"docker://{dst.host}/apps/api:0.3.0", f"oci:{layout}:api")
    assert (layout / "blobs" / "sha256" / sha(API).partition(":")[2]).read_bytes() == API
    assert (layout / "blobs" / "sha256" / sha(API_PROV).partition(":")[2]).read_bytes() == API_PROV

    # a rerun copies nothing and builds the same manifests
    digests = {k: sha(reader.get_manifest(f"{k[0]}/{k[1]}", k[2].replace("+", "_"))[2]) for k in GOOD}
    dst.reset_counts()
    again = run(tmp_path, source, dst)
    assert_broken_reported(again)
    assert chart_writes(dst) == []
    assert report(tmp_path)["projects"]["apps"]["skipped"] == 3
    assert digests == {k: sha(reader.get_manifest(f"{k[0]}/{k[1]}", k[2].replace("+", "_"))[2]) for k in GOOD}


def test_charts_go_into_the_chart_repository_of_a_harbor_27(tmp_path: Path, source: HarborServer,
                                                            harbor_factory: Factory) -> None:
    dst = harbor_factory(harbor_version="v2.7.4")
    assert dst.chartmuseum is not None
    assert_broken_reported(run(tmp_path, source, dst))
    for (project, name, version), archive in GOOD.items():
        stored = dst.chartmuseum.get(project, name, version)
        assert stored is not None and stored.archive == archive, (project, name, version)
        assert stored.prov == (API_PROV if name == "api" else None)
    assert dst.chartmuseum.get("infra", "broken", "0.1.0") is None
    assert SeedClient(dst).get_manifest("apps/web", "1.0.0")[0] == 404  # not as OCI charts
    dst.reset_counts()
    assert_broken_reported(run(tmp_path, source, dst))
    assert chart_writes(dst) == []


def test_charts_as_oci_into_a_harbor_27_and_selection(tmp_path: Path, source: HarborServer,
                                                      harbor_factory: Factory) -> None:
    dst = harbor_factory(harbor_version="v2.7.4")
    result = run(tmp_path, source, dst, "--charts-as", "oci", "--project", "apps", "--repo", "web",
                 "--tag", "1.1.*")
    assert result.returncode == 0, result
    reader = SeedClient(dst)
    assert reader.get_manifest("apps/web", "1.1.0_build.5")[0] == 200
    assert reader.get_manifest("apps/web", "1.0.0")[0] == 404
    assert reader.get_manifest("apps/api", "0.3.0")[0] == 404
    assert dst.chartmuseum is not None and dst.chartmuseum.get("apps", "web", "1.1.0+build.5") is None


def test_dry_run_lists_chart_versions_and_no_charts_leaves_them(tmp_path: Path, source: HarborServer,
                                                                harbor_factory: Factory) -> None:
    dst = harbor_factory()
    plan = run(tmp_path, source, dst, "--dry-run")
    assert plan.returncode == 0, plan
    for line in ("apps/web:1.0.0", "apps/web:1.1.0+build.5", "apps/api:0.3.0", "infra/ingress:2.0.0",
                 "infra/broken:0.1.0", f"{dst.host}/apps/web:1.1.0_build.5"):
        assert line in plan.out, plan
    assert chart_writes(dst) == []
    result = run(tmp_path, source, dst, "--no-charts")
    assert result.returncode == 0, result
    assert report(tmp_path) is None
    assert SeedClient(dst).get_manifest("apps/web", "1.0.0")[0] == 404


def test_a_harbor_28_answers_404_on_chartmuseum_paths(harbor_factory: Factory) -> None:
    import urllib.error
    import urllib.request

    dst = harbor_factory()
    for path in ("/api/chartrepo/health", "/api/chartrepo/library/charts", "/chartrepo/library/index.yaml"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(dst.url + path, timeout=10)
        assert err.value.code == 404


def test_chartmuseum_follows_harbors_permissions(source: HarborServer) -> None:
    """The test server's chart repository: private projects hidden, pushing needs developer or more."""
    import base64
    import urllib.error
    import urllib.request

    source.add_user("guest", "Guest12345")
    source.add_user("dev", "Dev12345")
    source.add_member("apps", "guest", "guest")
    source.add_member("apps", "dev", "developer")

    def call(path: str, user: str | None = None, password: str = "", data: bytes | None = None,
             ctype: str = "") -> int:
        req = urllib.request.Request(source.url + path, data=data, method="POST" if data else "GET")
        if user:
            req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        if ctype:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code

    assert call("/api/chartrepo/apps/charts") == 401  # private project, anonymous
    assert call("/api/chartrepo/infra/charts") == 200  # public project
    assert call("/api/chartrepo/apps/charts", "guest", "Guest12345") == 200
    assert call("/chartrepo/apps/charts/web-1.0.0.tgz", "guest", "Guest12345") == 200
    assert call("/chartrepo/apps/charts/web-1.0.0.tgz.prov", "guest", "Guest12345") == 404  # unsigned
    archive = chart_archive("new", "0.0.1")
    body = (b'--b\r\nContent-Disposition: form-data; name="chart"; filename="new-0.0.1.tgz"\r\n\r\n' + archive
            + b"\r\n--b--\r\n")
    form = "multipart/form-data; boundary=b"
    assert call("/api/chartrepo/apps/charts", "guest", "Guest12345", body, form) == 403
    assert call("/api/chartrepo/apps/charts", "dev", "Dev12345", body, form) == 201
    assert call("/api/chartrepo/apps/charts", "dev", "Dev12345", body, form) == 409  # no overwrite
    assert source.chartmuseum is not None and source.chartmuseum.get("apps", "new", "0.0.1").archive == archive
