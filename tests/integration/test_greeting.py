"""Start-up greetings (:mod:`ferry.warmup`): each registry's ``GET /v2/`` goes out while ferry is still
importing, and what it learns (the scheme, the auth challenge) spares the first requests their round
trips; under ``--max-requests`` there is no greeting, and the first request meets the 401 itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import images as im
from tests.support.cli import FerryCLI, FerryResult
from tests.support.registry import ALICE, Registry
from tests.support.skopeo import inspect_raw, push_layout

pytestmark = pytest.mark.integration

INSECURE = ["--src-tls-verify=false", "--dest-tls-verify=false"]


def ok(r: FerryResult) -> FerryResult:
    assert r.returncode == 0, r
    return r


@pytest.fixture
def cli(tmp_path: Path) -> FerryCLI:
    return FerryCLI(tmp_path / "cli")


@pytest.fixture
def source(token_registry: Registry, layout: im.Layout) -> tuple[Registry, bytes]:
    """A bearer-token registry holding team/app:v1, and that image's manifest."""
    digest = im.oci_image(layout, "img", seed=7)
    push_layout(layout.path, "img", token_registry.ref("team/app:v1"), creds=ALICE)
    return token_registry, layout.manifest_bytes(digest)


def _copy(cli: FerryCLI, src: Registry, dst: Registry, *extra: str) -> FerryResult:
    return ok(cli.run("copy", *INSECURE, *extra, "--src-creds", ALICE[0], f"docker://{src.ref('team/app:v1')}",
                      f"docker://{dst.ref('copy/app:v1')}", env={"FERRY_SRC_PASSWORD": ALICE[1]}))


def test_the_greeting_learns_the_challenge_so_no_image_request_meets_a_401(
        source: tuple[Registry, bytes], registry: Registry, cli: FerryCLI) -> None:
    src, manifest = source
    mark = src.mark()
    _copy(cli, src, registry)
    seen = [(q.method, q.path, q.status) for q in src.requests(mark)]
    assert seen[0] == ("GET", "/v2/", 401), seen  # the greeting, over plain HTTP after HTTPS failed
    # one greeting: the one sent before typer was imported (ferry.cli.early) is the one the command took
    assert [s for s in seen if s[1] == "/v2/"] == [seen[0]], seen
    assert [s for s in seen[1:] if s[2] == 401] == [], seen  # the first manifest request had its token
    assert inspect_raw(registry.ref("copy/app:v1")) == manifest


def test_no_greeting_under_max_requests_the_first_request_meets_the_challenge(
        source: tuple[Registry, bytes], registry: Registry, cli: FerryCLI) -> None:
    src, manifest = source
    mark = src.mark()
    _copy(cli, src, registry, "--max-requests", "1000")
    seen = [(q.method, q.path, q.status) for q in src.requests(mark)]
    assert ("GET", "/v2/", 401) not in seen, seen
    assert seen[0][1] == "/v2/team/app/manifests/v1" and seen[0][2] == 401, seen
    assert inspect_raw(registry.ref("copy/app:v1")) == manifest
