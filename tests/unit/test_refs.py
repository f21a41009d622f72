"""Reference parsing: skopeo's transports and docker's normalisation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferry.errors import UsageError
from ferry.refs import PathRef, RegistryRef, parse_docker_ref, parse_image_ref, parse_repository

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("docker://busybox", RegistryRef("docker.io", "library/busybox", "latest")),
        ("docker://busybox:1.36", RegistryRef("docker.io", "library/busybox", "1.36")),
        ("docker://quay.io/coreos/etcd", RegistryRef("quay.io", "coreos/etcd", "latest")),
        ("docker://127.0.0.1:5000/proj/team/app:v1", RegistryRef("127.0.0.1:5000", "proj/team/app", "v1")),
        ("docker://localhost/app", RegistryRef("localhost", "app", "latest")),
        (f"docker://h.io/a@{DIGEST}", RegistryRef("h.io", "a", None, DIGEST)),
        (f"docker://h.io/a:t@{DIGEST}", RegistryRef("h.io", "a", "t", DIGEST)),
        ("docker://user/app", RegistryRef("docker.io", "user/app", "latest")),
    ],
)
def test_docker_references(text: str, expected: RegistryRef) -> None:
    assert parse_image_ref(text) == expected


def test_reference_prefers_digest_over_tag() -> None:
    ref = parse_docker_ref(f"h.io/a:t@{DIGEST}")
    assert ref.reference == DIGEST
    assert str(ref) == f"h.io/a:t@{DIGEST}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("oci:/tmp/layout:v1", PathRef("oci", "/tmp/layout", "v1")),
        ("oci:/tmp/layout", PathRef("oci", "/tmp/layout", None)),
        ("dir:/tmp/d", PathRef("dir", "/tmp/d")),
        ("docker-archive:/x.tar:app:v1", PathRef("docker-archive", "/x.tar", "app:v1")),
    ],
)
def test_path_references(text: str, expected: PathRef) -> None:
    assert parse_image_ref(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("busybox", "transport"),
        ("docker:busybox", "docker://"),
        ("docker://", "empty"),
        ("docker://http://h.io/a", "scheme"),
        ("docker://h.io/UPPER", "repository name"),
        ("docker://h.io/a:bad:tag", "repository name"),
        ("docker://h.io/a@sha256:123", "digest"),
        ("docker://h.io/a:" + "t" * 200, "tag"),
        ("oci:", "path"),
        ("ftp://x", "transport"),
    ],
)
def test_malformed_references_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_image_ref(text)
    assert words in str(err.value)
    assert err.value.exit_code == 2


def test_repository_refuses_tag() -> None:
    assert parse_repository("h.io/a/b") == RegistryRef("h.io", "a/b")
    with pytest.raises(UsageError):
        parse_repository("h.io/a/b:t")


@given(st.text(max_size=80))
def test_any_text_parses_or_fails_cleanly(text: str) -> None:
    try:
        ref = parse_image_ref(text)
    except UsageError:
        return
    assert isinstance(ref, RegistryRef | PathRef)


@given(st.from_regex(r"[a-z0-9]{1,8}(\.[a-z]{2,3})?(:[0-9]{2,5})?/[a-z0-9]{1,8}(/[a-z0-9]{1,8})?(:[A-Za-z0-9_]{1,10})?",
                     fullmatch=True))
def test_printed_references_parse_back(text: str) -> None:
    ref = parse_docker_ref(text)
    assert parse_docker_ref(str(ref)) == ref
