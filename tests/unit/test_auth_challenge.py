from __future__ import annotations

import time

from ferry.auth.challenge import TokenCache, parse_challenge


def test_bearer_challenge_with_error() -> None:
    ch = parse_challenge('Bearer realm="https://h/service/token",service="harbor-registry",'
                         'scope="repository:a/b:pull,push",error="insufficient_scope"')
    assert ch is not None and ch.scheme == "bearer"
    assert ch.realm == "https://h/service/token"
    assert ch.service == "harbor-registry"
    assert ch.params["scope"] == "repository:a/b:pull,push"
    assert ch.error == "insufficient_scope"


def test_basic_and_unknown_challenges() -> None:
    basic = parse_challenge('Basic realm="basic-realm"')
    assert basic is not None and basic.scheme == "basic"
    assert parse_challenge("Negotiate abc") is None
    assert parse_challenge(None) is None


def test_token_cache_is_keyed_by_scope_and_expires() -> None:
    cache = TokenCache()
    scopes = frozenset({"repository:a:pull"})
    cache.put("r", "s", scopes, "tok", 300)
    assert cache.get("r", "s", scopes) == "tok"
    assert cache.get("r", "s", frozenset({"repository:b:pull"})) is None
    cache.put("r", "s", scopes, "old", 5)  # within the safety margin: treated as expired
    assert cache.get("r", "s", scopes) is None
    assert time.monotonic() > 0


def test_wider_token_serves_narrower_request() -> None:
    cache = TokenCache()
    cache.put("r", "s", frozenset({"repository:a:pull,push"}), "wide", 300)
    assert cache.get("r", "s", frozenset({"repository:a:pull"})) == "wide"
    assert cache.get("r", "s", frozenset({"repository:b:pull"})) is None
    assert cache.get("r", "other", frozenset({"repository:a:pull"})) is None
