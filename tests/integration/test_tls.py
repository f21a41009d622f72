"""TLS against real registries: an unknown CA is refused with a hint to --cert-dir (exit 4);
``--src-cert-dir``/``--dest-cert-dir``/``--cert-dir`` with ``ca.crt`` make it work; mutual TLS with
``client.cert``/``client.key``; ``--tls-verify=false``; a plain-HTTP registry under the default
verification gives a clear error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import images as im
from tests.support.cli import FerryCLI, FerryResult
from tests.support.pki import CA
from tests.support.registry import Registry
from tests.support.skopeo import inspect_raw, push_layout

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(tmp_path: Path) -> FerryCLI:
    return FerryCLI(tmp_path / "cli")


def ok(r: FerryResult) -> FerryResult:
    assert r.returncode == 0, r
    assert "Traceback" not in r.stderr, r
    return r


def network_error(r: FerryResult, *needles: str) -> str:
    assert r.returncode == 4, r
    assert "Traceback" not in r.stderr and len(r.lines) == 1, r
    line = r.error
    assert line.startswith("ferry: "), r
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def test_unknown_ca_is_refused_with_cert_dir_hint(tls_registry: Registry, registry: Registry, layout: im.Layout,
                                                  cli: FerryCLI, tmp_path: Path) -> None:
    im.oci_image(layout, "img", seed=1)
    push_layout(layout.path, "img", tls_registry.ref("secure/app:v1"), cert_dir=tls_registry.cert_dir)
    stranger = CA.create(tmp_path / "stranger").write_cert_dir(tmp_path / "stranger-certs")
    as_source, as_dest, inspect, wrong_ca = cli.run_many([
        ["copy", "--dest-tls-verify=false", f"docker://{tls_registry.ref('secure/app:v1')}",
         f"docker://{registry.ref('plain/app:v1')}"],
        ["copy", "--src-tls-verify=false", f"docker://{registry.ref('plain/none:v1')}",
         f"docker://{tls_registry.ref('secure/copy:v1')}"],
        ["inspect", f"docker://{tls_registry.ref('secure/app:v1')}"],
        ["inspect", "--cert-dir", str(stranger), f"docker://{tls_registry.ref('secure/app:v1')}"],
    ])
    line = network_error(as_source, tls_registry.host, "--src-cert-dir")
    assert "certificate" in line.lower() or "tls" in line.lower()
    network_error(inspect, tls_registry.host, "--cert-dir")
    network_error(wrong_ca, tls_registry.host, "--cert-dir")
    network_error(as_dest, tls_registry.host, "--dest-cert-dir")  # checked alongside the (missing) source
    assert registry.request("GET", "/v2/plain/app/tags/list").status == 404


def test_cert_dirs_make_tls_work(tls_registry: Registry, layout: im.Layout, cli: FerryCLI) -> None:
    digest = im.oci_index(layout, "img", seed=2)
    cert_dir = str(tls_registry.cert_dir)
    push_layout(layout.path, "img", tls_registry.ref("secure/app:v1"), cert_dir=tls_registry.cert_dir)
    ok(cli.run("copy", "--src-cert-dir", cert_dir, "--dest-cert-dir", cert_dir,
               f"docker://{tls_registry.ref('secure/app:v1')}", f"docker://{tls_registry.ref('secure/copy:v1')}"))
    assert inspect_raw(tls_registry.ref("secure/copy:v1"), cert_dir=tls_registry.cert_dir) == \
        layout.manifest_bytes(digest)
    with_ca, unverified = cli.run_many([
        ["inspect", "--raw", "--cert-dir", cert_dir, f"docker://{tls_registry.ref('secure/copy:v1')}"],
        ["inspect", "--raw", "--tls-verify=false", f"docker://{tls_registry.ref('secure/copy:v1')}"],
    ])
    assert ok(with_ca).stdout == ok(unverified).stdout == layout.manifest_bytes(digest)
    assert all(r.path.startswith("/v2/") for r in tls_registry.requests())  # HTTPS only: the log is the TLS server's



def test_the_systems_cas_verify_when_no_cert_dir_is_named(tls_registry: Registry, ca: CA, layout: im.Layout,
                                                         cli: FerryCLI, tmp_path: Path) -> None:
    """Without a cert dir, a registry is verified against the system's CAs: here the test CA is the whole
    system bundle (``SSL_CERT_FILE``, which OpenSSL reads; no ``SSL_CERT_DIR``). The contexts aiohttp
    builds at import hold no CA in ferry (ferry.aio), so these work only through ferry's own."""
    digest = im.oci_image(layout, "img", seed=5)
    push_layout(layout.path, "img", tls_registry.ref("secure/app:v1"), cert_dir=tls_registry.cert_dir)
    (tmp_path / "no-cert-dir").mkdir()
    system = {"SSL_CERT_FILE": str(ca.cert_path), "SSL_CERT_DIR": str(tmp_path / "no-cert-dir")}
    copy, tags = cli.run_many([
        ["copy", f"docker://{tls_registry.ref('secure/app:v1')}", f"docker://{tls_registry.ref('secure/copy:v1')}"],
        ["list-tags", f"docker://{tls_registry.ref('secure/app')}"],
    ], env=system)
    ok(copy)
    assert inspect_raw(tls_registry.ref("secure/copy:v1"), cert_dir=tls_registry.cert_dir) == \
        layout.manifest_bytes(digest)
    assert json.loads(ok(tags).stdout)["Tags"] == ["v1"]
    sync = ok(cli.run("sync", "--src", "docker", "--dest", "docker", tls_registry.ref("secure/app"),
                      tls_registry.ref("synced"), env=system))
    assert "Traceback" not in sync.stderr
    assert inspect_raw(tls_registry.ref("synced/secure/app:v1"), cert_dir=tls_registry.cert_dir) == \
        layout.manifest_bytes(digest)
    assert all(r.path.startswith("/v2/") for r in tls_registry.requests())  # HTTPS only


def test_mutual_tls(mtls_registry: Registry, ca: CA, layout: im.Layout, cli: FerryCLI, tmp_path: Path) -> None:
    """client.cert/client.key from the cert dir are presented; without them the registry refuses the
    connection and ferry says so in one line (exit 4)."""
    digest = im.oci_image(layout, "img", seed=3)
    push_layout(layout.path, "img", mtls_registry.ref("secure/app:v1"), cert_dir=mtls_registry.cert_dir)
    full = str(mtls_registry.cert_dir)
    ca_only = str(ca.write_cert_dir(tmp_path / "ca-only"))
    copy, without_client_cert = cli.run_many([
        ["copy", "--src-cert-dir", full, "--dest-cert-dir", full,
         f"docker://{mtls_registry.ref('secure/app:v1')}", f"docker://{mtls_registry.ref('secure/copy:v1')}"],
        ["inspect", "--raw", "--cert-dir", ca_only, f"docker://{mtls_registry.ref('secure/app:v1')}"],
    ])
    ok(copy)
    assert inspect_raw(mtls_registry.ref("secure/copy:v1"), cert_dir=mtls_registry.cert_dir) == \
        layout.manifest_bytes(digest)
    line = network_error(without_client_cert, mtls_registry.host, "TLS", "client.cert", "--cert-dir")
    assert "running" not in line, line  # not mistaken for an unreachable registry


def test_plain_http_registry_needs_tls_verify_false(registry: Registry, layout: im.Layout, cli: FerryCLI) -> None:
    digest = im.oci_image(layout, "img", seed=4)
    push_layout(layout.path, "img", registry.ref("plain/app:v1"))
    inspect, copy_src, copy_dst, works = cli.run_many([
        ["inspect", "--raw", f"docker://{registry.ref('plain/app:v1')}"],
        ["copy", "--dest-tls-verify=false", f"docker://{registry.ref('plain/app:v1')}",
         f"docker://{registry.ref('plain/copy:v1')}"],
        ["copy", "--src-tls-verify=false", f"docker://{registry.ref('plain/app:v1')}",
         f"docker://{registry.ref('plain/copy:v1')}"],
        ["copy", "--src-tls-verify=false", "--dest-tls-verify=false", f"docker://{registry.ref('plain/app:v1')}",
         f"docker://{registry.ref('plain/copy:v2')}"],
    ])
    network_error(inspect, registry.host, "HTTPS", "--tls-verify=false")
    network_error(copy_src, registry.host, "HTTPS", "--src-tls-verify=false")
    network_error(copy_dst, registry.host, "HTTPS", "--dest-tls-verify=false")
    ok(works)
    assert inspect_raw(registry.ref("plain/copy:v2")) == layout.manifest_bytes(digest)
    assert registry.request("GET", "/v2/plain/copy/manifests/v1").status == 404
