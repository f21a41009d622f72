"""Credential lookup order and auth file writing."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from ferry.access import Credential
from ferry.auth import credentials
from ferry.errors import ConfigError


def _auth(user: str, pw: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{pw}".encode()).decode()}


def test_longest_key_wins_and_scheme_is_ignored(tmp_path: Path) -> None:
    f = tmp_path / "auth.json"
    f.write_text(json.dumps({"auths": {"https://h.io": _auth("a", "1"), "h.io/team": _auth("b", "2")}}))
    assert credentials.lookup_in_file(f, "h.io", "team/app") == Credential("b", "2")
    assert credentials.lookup_in_file(f, "h.io", "other/app") == Credential("a", "1")
    assert credentials.lookup_in_file(f, "x.io", "a") is None


def test_authfile_flag_replaces_standard_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    std = tmp_path / "std.json"
    std.write_text(json.dumps({"auths": {"h.io": _auth("std", "1")}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(std))
    assert credentials.lookup("h.io") == Credential("std", "1")
    explicit = tmp_path / "explicit.json"
    explicit.write_text("{}")
    assert credentials.lookup("h.io", authfile=str(explicit)) is None


def test_credential_helper_is_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helper = tmp_path / "docker-credential-fake"
    helper.write_text('#!/bin/sh\nread server\necho "{\\"Username\\":\\"hu\\",\\"Secret\\":\\"hs-$server\\"}"\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    f = tmp_path / "config.json"
    f.write_text(json.dumps({"credHelpers": {"h.io": "fake"}}))
    assert credentials.lookup_in_file(f, "h.io") == Credential("hu", "hs-h.io")


def test_login_file_is_private_and_docker_compatible(tmp_path: Path) -> None:
    f = tmp_path / "sub" / "auth.json"
    credentials.write_login(f, "h.io", Credential("u", "p:w"))
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert json.loads(f.read_text())["auths"]["h.io"] == _auth("u", "p:w")
    assert credentials.lookup_in_file(f, "h.io") == Credential("u", "p:w")
    assert credentials.remove_login(f, "h.io")
    assert credentials.lookup_in_file(f, "h.io") is None


@pytest.mark.parametrize("content", ["{", "[]", '{"auths": []}', '{"auths": {"h.io": {"auth": "!!"}}}'])
def test_broken_auth_files_are_config_errors(tmp_path: Path, content: str) -> None:
    f = tmp_path / "auth.json"
    f.write_text(content)
    with pytest.raises(ConfigError):
        credentials.lookup_in_file(f, "h.io")


def test_credential_repr_hides_password() -> None:
    assert "hunter2" not in repr(Credential("u", "hunter2"))
