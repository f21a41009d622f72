"""signedBy's parts that need no gpg: signedIdentity matching as containers/image's
``policy_reference_match.go`` decides it, the policy's signedIdentity parsed to the letter, and the
registries.d lookaside a reference gets (scopes, merging, the signature URLs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from ferry import lookaside, policy
from ferry.errors import ConfigError
from ferry.refs import parse_docker_ref, parse_image_ref
from ferry.signed_by import identity_accepted, intended_identity

D = "sha256:" + "d" * 64
_IDENTITY: TypeAdapter[Any] = TypeAdapter(policy.SignedIdentity)


def _accepts(identity: dict[str, str], image: str, signed: str) -> bool:
    return identity_accepted(_IDENTITY.validate_python(identity), intended_identity(parse_image_ref(image)), signed)


@pytest.mark.parametrize(("identity", "image", "signed", "accepted"), [
    # matchRepoDigestOrExact (the default): a tag exactly; by digest, the repository
    ({"type": "matchRepoDigestOrExact"}, "docker://h:1/a/b:v1", "h:1/a/b:v1", True),
    ({"type": "matchRepoDigestOrExact"}, "docker://h:1/a/b:v1", "h:1/a/b:v2", False),
    ({"type": "matchRepoDigestOrExact"}, "docker://h:1/a/b", "h:1/a/b:latest", True),  # the implied tag
    ({"type": "matchRepoDigestOrExact"}, "docker://h:1/a/b:v1", "h:1/a/b", False),  # a name-only signature
    ({"type": "matchRepoDigestOrExact"}, f"docker://h:1/a/b@{D}", "h:1/a/b:v9", True),
    ({"type": "matchRepoDigestOrExact"}, f"docker://h:1/a/b@{D}", "h:1/a/c:v9", False),
    ({"type": "matchRepoDigestOrExact"}, "docker://busybox:1", "docker.io/library/busybox:1", True),
    ({"type": "matchRepoDigestOrExact"}, "docker://docker.io/library/busybox:1", "busybox:1", True),  # normalised
    ({"type": "matchRepoDigestOrExact"}, "docker://h:1/a/b:v1", "not a reference!", False),
    # matchExact: the very same reference, so by digest only a signature naming that digest
    ({"type": "matchExact"}, "docker://h:1/a/b:v1", "h:1/a/b:v1", True),
    ({"type": "matchExact"}, f"docker://h:1/a/b@{D}", "h:1/a/b:v1", False),
    ({"type": "matchExact"}, f"docker://h:1/a/b@{D}", f"h:1/a/b@{D}", True),
    # matchRepository: any tag of the repository, even none
    ({"type": "matchRepository"}, "docker://h:1/a/b:v1", "h:1/a/b:other", True),
    ({"type": "matchRepository"}, "docker://h:1/a/b:v1", "h:1/a/b", True),
    ({"type": "matchRepository"}, "docker://h:1/a/b:v1", "h:1/a/bc:v1", False),
    # exactReference / exactRepository: the image's own name does not matter
    ({"type": "exactReference", "dockerReference": "h:1/x:v1"}, "docker://h:1/a/b:v7", "h:1/x:v1", True),
    ({"type": "exactReference", "dockerReference": "h:1/x:v1"}, "docker://h:1/a/b:v7", "h:1/x:v2", False),
    ({"type": "exactReference", "dockerReference": "h:1/x:v1"}, "dir:/tmp/img", "h:1/x:v1", True),
    ({"type": "exactRepository", "dockerRepository": "h:1/x"}, "docker://h:1/a/b:v7", "h:1/x:any", True),
    ({"type": "exactRepository", "dockerRepository": "h:1/x"}, "docker://h:1/a/b:v7", "h:1/y:any", False),
    # remapIdentity: a prefix of the name (whole components) replaced, then matchRepoDigestOrExact
    ({"type": "remapIdentity", "prefix": "m:1/mirror", "signedPrefix": "h:1"}, "docker://m:1/mirror/a/b:v1",
     "h:1/a/b:v1", True),
    ({"type": "remapIdentity", "prefix": "m:1/mirror", "signedPrefix": "h:1"}, "docker://m:1/mirrorx/a:v1",
     "h:1x/a:v1", False),
    ({"type": "remapIdentity", "prefix": "m:1/mirror", "signedPrefix": "h:1"}, "docker://m:1/other/a:v1",
     "m:1/other/a:v1", True),  # no prefix: the image's own name
    ({"type": "remapIdentity", "prefix": "m:1", "signedPrefix": "docker.io"}, "docker://m:1/library/busybox:1",
     "busybox:1", True),
    # an image without a docker reference (dir:) matches nothing that needs one
    ({"type": "matchRepoDigestOrExact"}, "dir:/tmp/img", "h:1/x:v1", False),
    ({"type": "matchRepository"}, "dir:/tmp/img", "h:1/x:v1", False),
])
def test_signed_identity_matches_as_containers_image(identity: dict[str, str], image: str, signed: str,
                                                     accepted: bool) -> None:
    assert _accepts(identity, image, signed) is accepted


@pytest.mark.parametrize(("requirement", "words"), [
    ({"signedIdentity": {"type": "matchEverything"}}, "Input tag 'matchEverything'"),
    ({"signedIdentity": {"type": "exactReference", "dockerReference": "h:1/x"}}, "neither a tag nor a digest"),
    ({"signedIdentity": {"type": "exactReference", "dockerReference": "H:1/X:v1"}}, "invalid docker reference"),
    ({"signedIdentity": {"type": "exactRepository"}}, "dockerRepository"),
    ({"signedIdentity": {"type": "remapIdentity", "prefix": "a//b", "signedPrefix": "h"}}, "is not valid"),
    ({"signedIdentity": {"type": "matchExact", "dockerReference": "h:1/x:v1"}}, "Extra inputs"),
    ({"keyPath": None, "keyData": "not base64!"}, "keyData must be base64"),
])
def test_a_malformed_signed_by_is_refused_when_the_policy_is_read(tmp_path: Path, requirement: dict[str, Any],
                                                                  words: str) -> None:
    body = {"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg", **requirement}
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"default": [{k: v for k, v in body.items() if v is not None}]}))
    with pytest.raises(ConfigError) as err:
        policy.load(path)
    assert words in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_only_gpg_signed_by_is_left_to_the_signature_check(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {
        "h:1": [{"type": "signedBy", "keyType": "GPGKeys", "keyData": "AAAA"}]}}}))
    loaded = policy.load(path)
    assert policy.has_signed_by(loaded)
    [required] = policy.check(loaded, parse_image_ref("docker://h:1/a:v1"))
    assert required.signedIdentity.type == "matchRepoDigestOrExact"  # the default
    assert policy.check(loaded, parse_image_ref("docker://h:2/a:v1")) == []


def _registries_d(tmp_path: Path, **files: str) -> lookaside.RegistriesD:
    directory = tmp_path / "registries.d"
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(text)
    return lookaside.RegistriesD.load(directory)


def test_the_first_matching_docker_scope_gives_the_lookaside(tmp_path: Path) -> None:
    config = _registries_d(
        tmp_path,
        a="default-docker:\n  lookaside: file:///default\n",
        b="docker:\n  h:1/proj:\n    sigstore: https://old-name\n  h:1/proj/app:v1:\n    lookaside: file:///tag\n"
          "  h:1/proj/write-only:\n    lookaside-staging: file:///staging\n  '*.example.com':\n"
          "    lookaside: https://wild\n")
    assert config.configured(parse_docker_ref("h:1/proj/app:v1")) == "file:///tag"
    assert config.configured(parse_docker_ref("h:1/proj/app:v2")) == "https://old-name"
    assert config.configured(parse_docker_ref("h:1/proj/write-only:v1")) == "https://old-name"  # staging: writes
    assert config.configured(parse_docker_ref("reg.example.com/x:v1")) == "https://wild"
    assert config.configured(parse_docker_ref("h:2/x:v1")) == "file:///default"
    ref = parse_docker_ref("h:1/proj/app:v1")
    assert lookaside.signature_url("file:///tag/", ref, D, 2) == f"file:///tag/proj/app@sha256={'d' * 64}/signature-2"


def test_registries_d_files_merge_and_a_scope_given_twice_is_an_error(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r'docker namespace "h:1" is also defined in .*a\.yaml'):
        _registries_d(tmp_path, a="docker:\n  h:1:\n    lookaside: file:///a\n",
                      b="docker:\n  h:1:\n    lookaside: file:///b\n")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(lookaside, "SYSTEM_DIR", tmp_path / "nowhere")
    none = lookaside.RegistriesD.load(None)  # no directory at all: nothing configured, the built-in place
    ref = parse_docker_ref("h:1/a:v1")
    assert none.configured(ref) is None
    assert none.base(ref) in (lookaside.BUILTIN_ROOT, f"file://{tmp_path}/home/.local/share/containers/sigstore")
