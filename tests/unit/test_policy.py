"""policy.json: scope matching as containers/image does it, requirements decided or refused, malformed
files refused with the place of the mistake, and the default file lookup."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ferry import policy, policy_source
from ferry.cli.trust import TrustPolicy
from ferry.errors import AuthError, ConfigError
from ferry.refs import parse_image_ref

ACCEPT = [{"type": "insecureAcceptAnything"}]
REJECT = [{"type": "reject"}]
SIGNED_BY = [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/etc/pki/key.gpg"}]


def _policy(tmp_path: Path, body: dict[str, Any]) -> policy.Policy:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(body))
    return policy.load(path, insecure=False)


def _allowed(p: policy.Policy, ref: str) -> bool:
    try:
        policy.check(p, parse_image_ref(ref))
    except AuthError:
        return False
    return True


def test_docker_namespaces_go_from_the_repository_up_to_wildcard_domains() -> None:
    assert policy.docker_namespaces("reg.example.com:5000/proj/team/app") == [
        "reg.example.com:5000/proj/team/app", "reg.example.com:5000/proj/team", "reg.example.com:5000/proj",
        "reg.example.com:5000", "*.example.com", "*.com"]
    transport, identity, _ = policy.policy_identity(parse_image_ref("docker://busybox"))
    assert (transport, identity) == ("docker", "docker.io/library/busybox:latest")
    _, identity, _ = policy.policy_identity(parse_image_ref("docker://h:1/a@sha256:" + "a" * 64))
    assert identity == "h:1/a@sha256:" + "a" * 64


@pytest.mark.parametrize(("scope", "rejected", "allowed"), [
    ("127.0.0.1:5000", "docker://127.0.0.1:5000/proj/app:v1", "docker://127.0.0.1:5001/proj/app:v1"),
    ("127.0.0.1:5000/proj", "docker://127.0.0.1:5000/proj/sub/app:v1", "docker://127.0.0.1:5000/projx/app:v1"),
    ("127.0.0.1:5000/proj/app", "docker://127.0.0.1:5000/proj/app:v2", "docker://127.0.0.1:5000/proj/app2:v1"),
    ("127.0.0.1:5000/proj/app:v1", "docker://127.0.0.1:5000/proj/app:v1", "docker://127.0.0.1:5000/proj/app:v2"),
    ("*.example.com", "docker://reg.example.com:443/app:v1", "docker://example.com/app:v1"),
    ("docker.io/library", "docker://busybox", "docker://docker.io/other/busybox"),
])
def test_a_reject_scope_matches_what_containers_image_matches(tmp_path: Path, scope: str, rejected: str,
                                                              allowed: str) -> None:
    p = _policy(tmp_path, {"default": ACCEPT, "transports": {"docker": {scope: REJECT}}})
    assert not _allowed(p, rejected)
    assert _allowed(p, allowed)


def test_the_most_specific_scope_wins_and_the_default_is_the_last_resort(tmp_path: Path) -> None:
    p = _policy(tmp_path, {"default": REJECT, "transports": {"docker": {
        "": REJECT, "h:1": ACCEPT, "h:1/proj": REJECT, "h:1/proj/open": ACCEPT}}})
    assert _allowed(p, "docker://h:1/other:v1")
    assert not _allowed(p, "docker://h:1/proj/app:v1")
    assert _allowed(p, "docker://h:1/proj/open:v1")
    assert not _allowed(p, "docker://h:2/app:v1")  # the transport's "" scope
    assert not _allowed(p, "oci:/tmp/layout:v1")  # no oci section: default
    p = _policy(tmp_path, {"default": REJECT, "transports": {"docker": {"h:1": ACCEPT}}})
    assert not _allowed(p, "docker://h:2/app:v1")  # no "" scope: default


def test_every_requirement_of_a_scope_must_hold(tmp_path: Path) -> None:
    p = _policy(tmp_path, {"default": [*ACCEPT, *REJECT]})
    with pytest.raises(AuthError, match=r"policy rejects docker://h:1/a:v1: default in .*policy.json is reject"):
        policy.check(p, parse_image_ref("docker://h:1/a:v1"))


def test_path_transports_match_the_directory_and_its_parents(tmp_path: Path) -> None:
    (tmp_path / "images" / "app").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "images")
    p = _policy(tmp_path, {"default": ACCEPT, "transports": {
        "oci": {str(tmp_path / "images"): REJECT}, "dir": {str(tmp_path / "images" / "app"): REJECT}}})
    assert not _allowed(p, f"oci:{tmp_path}/link/app:v1")  # resolved like containers/image: symlinks followed
    assert _allowed(p, f"oci:{tmp_path}/other:v1")
    assert not _allowed(p, f"dir:{tmp_path}/images/app")
    assert _allowed(p, f"dir:{tmp_path}/images/app2")
    p = _policy(tmp_path, {"default": ACCEPT, "transports": {"docker-archive": {"": REJECT}}})
    assert not _allowed(p, f"docker-archive:{tmp_path}/a.tar")


@pytest.mark.parametrize("requirement", [
    [{**SIGNED_BY[0], "keyType": "X509Certificates"}],
    [{"type": "sigstoreSigned", "keyPath": "/etc/cosign.pub"}],
    [{"type": "signedBaseLayer", "baseLayerIdentity": {"type": "matchRepository"}}],
])
def test_a_requirement_ferry_cannot_check_refuses_only_the_images_it_applies_to(
        tmp_path: Path, requirement: list[dict[str, Any]]) -> None:
    p = _policy(tmp_path, {"default": ACCEPT, "transports": {"docker": {"signed.example": requirement}}})
    assert _allowed(p, "docker://127.0.0.1:5000/app:v1")
    with pytest.raises(AuthError) as err:
        policy.check(p, parse_image_ref("docker://signed.example/app:v1"))
    what = "signedBy keyType X509Certificates" if requirement[0]["type"] == "signedBy" else requirement[0]["type"]
    assert f"policy requirement {what} for transports.docker[\"signed.example\"]" in str(err.value)
    assert "is not supported by ferry" in str(err.value)


@pytest.mark.parametrize(("body", "words"), [
    ("{", "invalid JSON"),
    ({"transports": {}}, 'key "default": invalid policy: Field required'),
    ({"default": []}, 'key "default": invalid policy: List should have at least 1 item'),
    ({"default": ACCEPT, "extra": 1}, 'key "extra": invalid policy: Extra inputs'),
    ({"default": [{"type": "acceptEverything"}]}, 'key "default" → entry 1: invalid policy: Input tag'),
    ({"default": [{"type": "reject", "why": "no"}]}, 'key "default" → entry 1 → "why": invalid policy: Extra'),
    ({"default": [{"type": "signedBy", "keyType": "GPGKeys"}]}, "exactly one of keyPath"),
    ({"default": ACCEPT, "transports": {"docker": {"h:1": []}}}, 'key "transports" → "docker" → "h:1"'),
    ({"default": ACCEPT, "transports": {"dir": {"relative/path": ACCEPT}}}, "must be an absolute path"),
    ({"default": ACCEPT, "transports": {"oci": {"/a/../b": ACCEPT}}}, "non-canonical path, write /b"),
    ({"default": ACCEPT, "transports": {"docker-archive": {"/a.tar": ACCEPT}}}, "no scope but the default"),
    ('{"default": [{"type": "reject"}], "default": []}', 'key "default" appears twice'),
])
def test_a_malformed_policy_is_refused_with_where_and_why(tmp_path: Path, body: Any, words: str) -> None:
    path = tmp_path / "policy.json"
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    with pytest.raises(ConfigError) as err:
        policy.load(path)
    assert err.value.exit_code == 2
    assert str(err.value).startswith(f"{path}:") and words in str(err.value) and "\n" not in str(err.value)


def test_default_lookup_user_file_then_system_file_then_accept_anything(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    system = tmp_path / "etc-policy.json"
    monkeypatch.setattr(policy_source, "SYSTEM_POLICY", system)
    assert policy.load(None).origin == "no policy.json"  # skopeo would refuse to run; ferry never had a policy
    assert _allowed(policy.load(None), "docker://h:1/a:v1")
    system.write_text(json.dumps({"default": REJECT}))
    assert policy.load(None).origin == str(system)
    user = tmp_path / ".config" / "containers" / "policy.json"
    user.parent.mkdir(parents=True)
    user.write_text(json.dumps({"default": ACCEPT}))
    assert policy.load(None).origin == str(user)
    assert not _allowed(policy.load(system), "docker://h:1/a:v1")
    assert _allowed(policy.load(system, insecure=True), "docker://h:1/a:v1")  # --insecure-policy wins
    with pytest.raises(ConfigError, match=r"missing\.json: no such file"):
        policy.load(tmp_path / "missing.json")


@pytest.mark.parametrize(("doc", "open_"), [
    ({"default": ACCEPT}, True),
    ({"default": ACCEPT, "transports": {"docker-daemon": {"": ACCEPT}}}, True),  # Debian's own file
    ({"default": ACCEPT, "transports": {"docker": {"h:1/a": ACCEPT}}}, True),
    ({"default": REJECT}, False),
    ({"default": ACCEPT, "transports": {"docker": {"h:1/a": REJECT}}}, False),
    ({"default": ACCEPT, "transports": {"oci": {"relative/dir": ACCEPT}}}, False),  # for the models to refuse
    ({"default": [{"type": "insecureAcceptAnything", "extra": 1}]}, False),
    ({"default": ACCEPT, "other": 1}, False),
    ("{not json", False),
])
def test_a_policy_that_accepts_anything_is_known_without_the_models(tmp_path: Path, doc: Any, open_: bool) -> None:
    """The distributions' default policy is recognised without building the policy's models; anything
    else goes through them, so that their errors and refusals stay as they were."""
    path = tmp_path / "policy.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    assert policy_source.accepts_anything(path) is open_
    trust = TrustPolicy(str(path))
    if open_:
        trust.check(parse_image_ref("docker://h:1/a:v1"))
        assert trust.admission() is None and trust._loaded is None
    elif isinstance(doc, dict) and doc.get("default") == REJECT:
        with pytest.raises(AuthError, match="policy rejects"):
            trust.check(parse_image_ref("docker://h:1/a:v1"))
    elif isinstance(doc, dict) and "docker" in doc.get("transports", {}):
        with pytest.raises(AuthError):
            trust.check(parse_image_ref("docker://h:1/a:v1"))
    else:
        with pytest.raises(ConfigError):
            trust.check(parse_image_ref("docker://h:1/a:v1"))
