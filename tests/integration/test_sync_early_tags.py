"""A sync's first tag lists asked for during start-up (:func:`ferry.warmup.list_tags`) and handed to the
client's ``list_tags``, which then sends no request of its own. Without a credential they go out at
once, beside the greeting; with one, only once the greeting finds a registry that asks for none, so a
registry that asks for credentials gets no anonymous listing."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from ferry import warmup
from ferry.access import Access, Credential
from ferry.http import RegistryHTTP
from ferry.transports.registry import RegistryClient
from tests.support import images as im
from tests.support.registry import ALICE, Registry
from tests.support.skopeo import push_layout

pytestmark = pytest.mark.integration

#: ``--src-tls-verify=false``: HTTPS first, then plain HTTP, as the test registries speak
ACCESS = Access(tls_verify=False)


@pytest.fixture(autouse=True)
def own_greetings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Greetings of this test only (they are per process, keyed by host:port)."""
    monkeypatch.setattr(warmup, "_started", {})
    monkeypatch.setattr(warmup, "_listings", {})


def _tag_lists(reg: Registry, since: int) -> list[tuple[str, int]]:
    return [(q.path, q.status) for q in reg.requests(since) if q.path.endswith("/tags/list")]


def _wait_for(reg: Registry, since: int, path: str) -> None:
    deadline = time.monotonic() + 30
    while not any(q.path == path for q in reg.requests(since)):
        assert time.monotonic() < deadline, reg.requests(since)
        time.sleep(0.05)


async def _list(reg: Registry, repository: str) -> tuple[list[str], int]:
    http = RegistryHTTP(reg.host, ACCESS)
    try:
        return await RegistryClient(http).list_tags(repository), http.stats.requests
    finally:
        await http.close()


def test_an_early_tag_list_is_handed_to_the_client_which_asks_no_more(
        registry: Registry, layout: im.Layout, tmp_path: Path) -> None:
    im.oci_image(layout, "img", seed=3)
    for tag in ("v1", "v2"):
        push_layout(layout.path, "img", registry.ref(f"team/app:{tag}"))
    mark = registry.mark()
    warmup.greet(registry.host, ACCESS)
    warmup.list_tags(registry.host, ACCESS, "team/app")
    _wait_for(registry, mark, "/v2/team/app/tags/list")  # sent before any client exists

    tags, requests = asyncio.run(_list(registry, "team/app"))
    assert sorted(tags) == ["v1", "v2"]
    assert requests == 1  # the early listing, counted where the client's own would be
    assert _tag_lists(registry, mark) == [("/v2/team/app/tags/list", 200)]  # the client sent none

    tags, _ = asyncio.run(_list(registry, "team/app"))  # taken once: a later listing asks again
    assert sorted(tags) == ["v1", "v2"]
    assert len(_tag_lists(registry, mark)) == 2


def test_without_a_credential_the_listing_does_not_wait_for_the_greeting(
        registry: Registry, layout: im.Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    im.oci_image(layout, "img", seed=5)
    push_layout(layout.path, "img", registry.ref("team/app:v1"))
    held = threading.Event()
    exchange = warmup._exchange
    monkeypatch.setattr(warmup, "_exchange", lambda *a: (held.wait(30), exchange(*a))[1])  # a far greeting
    try:
        mark = registry.mark()
        warmup.greet(registry.host, ACCESS)
        warmup.list_tags(registry.host, ACCESS, "team/app")
        _wait_for(registry, mark, "/v2/team/app/tags/list")  # while the greeting is still on its way
        assert [q.path for q in registry.requests(mark)] == ["/v2/team/app/tags/list"]
    finally:
        held.set()
    tags, requests = asyncio.run(_list(registry, "team/app"))
    assert (tags, requests) == (["v1"], 1)
    assert len(_tag_lists(registry, mark)) == 1


def test_a_registry_that_asks_for_credentials_gets_no_anonymous_listing(
        token_registry: Registry, layout: im.Layout) -> None:
    im.oci_image(layout, "img", seed=4)
    push_layout(layout.path, "img", token_registry.ref("team/app:v1"), creds=ALICE)
    mark = token_registry.mark()
    access = Access(credential=Credential(*ALICE), tls_verify=False)
    warmup.greet(token_registry.host, access)
    warmup.list_tags(token_registry.host, access, "team/app")
    early = warmup.listing(token_registry.host, access, "team/app")
    assert early is not None and early.result(timeout=30) is None
    seen = [(q.method, q.path, q.status) for q in token_registry.requests(mark)]
    assert seen == [("GET", "/v2/", 401)], seen  # the greeting's challenge, and nothing sent after it
