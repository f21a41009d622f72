"""OCI charts built as ``helm push`` builds them (Helm's pkg/registry, checked field by field)."""

from __future__ import annotations

import hashlib
import json

import pytest

from ferry.charts import (
    CHART_LAYER_MEDIA_TYPE,
    CONFIG_MEDIA_TYPE,
    PROV_LAYER_MEDIA_TYPE,
    ChartError,
    build_oci_chart,
    go_json,
    oci_tag,
)
from tests.support.charts import EPOCH, chart_archive, provenance, tgz


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


RICH = dict(home="https://example.test/web", sources=["https://git.example.test/web", "https://mirror.test/web"],
            maintainers=[{"name": "Ann", "email": "ann@example.test"}, {"name": "Bob"}],
            annotations={"team": "a&b <ops>", "org.opencontainers.image.title": "spoofed"},
            appVersion="1.2.3", keywords=["web"])


def test_config_is_helms_metadata_json_in_go_field_order() -> None:
    chart = build_oci_chart(chart_archive("web", "1.0.0", **RICH), None, EPOCH)
    assert chart.config == (
        b'{"name":"web","home":"https://example.test/web","sources":["https://git.example.test/web",'
        b'"https://mirror.test/web"],"version":"1.0.0","description":"web, a test chart","keywords":["web"],'
        b'"maintainers":[{"name":"Ann","email":"ann@example.test"},{"name":"Bob"}],"apiVersion":"v2",'
        b'"appVersion":"1.2.3","annotations":{"org.opencontainers.image.title":"spoofed",'
        b'"team":"a\\u0026b \\u003cops\\u003e"},"type":"application"}'
    )


def test_manifest_is_what_helm_push_writes() -> None:
    archive = chart_archive("web", "1.0.0", **RICH)
    prov = provenance("web", "1.0.0", archive)
    chart = build_oci_chart(archive, prov, EPOCH + 0.75)
    layers = sorted([{"mediaType": CHART_LAYER_MEDIA_TYPE, "digest": sha(archive), "size": len(archive)},
                     {"mediaType": PROV_LAYER_MEDIA_TYPE, "digest": sha(prov), "size": len(prov)}],
                    key=lambda d: d["digest"])
    expected = {
        "schemaVersion": 2,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": sha(chart.config), "size": len(chart.config)},
        "layers": layers,
        "annotations": {
            "org.opencontainers.image.authors": "Ann (ann@example.test), Bob",
            "org.opencontainers.image.created": "2020-09-13T12:26:40Z",
            "org.opencontainers.image.description": "web, a test chart",
            "org.opencontainers.image.source": "https://git.example.test/web",
            "org.opencontainers.image.title": "web",  # Chart.yaml's annotation never overrides it
            "org.opencontainers.image.url": "https://example.test/web",
            "org.opencontainers.image.version": "1.0.0",
            "team": "a&b <ops>",
        },
    }
    assert chart.manifest.raw == go_json(expected)
    assert json.loads(chart.manifest.raw) == expected
    assert chart.manifest.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert chart.blob(chart.manifest.layers[0]) in (archive, prov)


def test_same_chart_same_digest_and_no_prov_layer_without_prov() -> None:
    archive = chart_archive("api", "0.3.0")
    one, two = build_oci_chart(archive, None, EPOCH), build_oci_chart(archive, None, EPOCH)
    assert one.manifest.digest == two.manifest.digest
    assert [d.media_type for d in one.manifest.layers] == [CHART_LAYER_MEDIA_TYPE]
    assert one.manifest.layers[0].digest == sha(archive)


def test_v1_chart_gets_api_version_v1_and_requirements_dependencies() -> None:
    archive = tgz({"old/Chart.yaml": "name: old\nversion: 0.1.0\n",
                   "old/requirements.yaml": "dependencies:\n- name: redis\n  version: 1.x\n"
                                            "  repository: https://charts.example.test\n"})
    config = json.loads(build_oci_chart(archive, None, EPOCH).config)
    assert config == {"name": "old", "version": "0.1.0", "apiVersion": "v1",
                      "dependencies": [{"name": "redis", "version": "1.x", "repository": "https://charts.example.test"}]}


@pytest.mark.parametrize(("archive", "message"), [
    (b"not a gzip file at all", "not a gzip file"),
    (chart_archive("web", "1.0.0", files={"Chart.yaml": None}), "no Chart.yaml"),
    (chart_archive("web", "1.0.0")[:40], "not a valid chart archive"),
    (tgz({"web/Chart.yaml": "name: web\n"}), "no name or no version"),
])
def test_not_a_chart_is_refused(archive: bytes, message: str) -> None:
    with pytest.raises(ChartError, match=message):
        build_oci_chart(archive, None, EPOCH)


def test_plus_in_a_version_becomes_underscore_in_the_tag() -> None:
    assert oci_tag("1.1.0+build.5") == "1.1.0_build.5"
