"""Manifest parsing: what each manifest kind references, and refusal of broken input."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferry import media
from ferry.errors import DigestMismatchError, ProtocolError

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")


def _raw(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_image_manifest_lists_config_then_layers() -> None:
    raw = _raw({"schemaVersion": 2, "mediaType": media.DOCKER_MANIFEST,
                "config": {"mediaType": "c", "digest": D1, "size": 3},
                "layers": [{"mediaType": "l", "digest": D2, "size": 5}]})
    m = media.parse_manifest(raw)
    assert m.media_type == media.DOCKER_MANIFEST
    assert [b.digest for b in m.blobs] == [D1, D2]
    assert m.config is not None and m.config.digest == D1
    assert [b.digest for b in m.layers] == [D2]
    assert m.digest == media.sha256_digest(raw)


def test_index_lists_children_with_platforms() -> None:
    raw = _raw({"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": [
        {"mediaType": media.OCI_MANIFEST, "digest": D1, "size": 1,
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": media.OCI_MANIFEST, "digest": D2, "size": 1,
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}]})
    m = media.parse_manifest(raw)
    assert m.is_index and not m.blobs
    assert [c.platform_string for c in m.children] == ["linux/amd64", "linux/arm64/v8"]


def test_media_type_from_content_type_when_body_has_none() -> None:
    raw = _raw({"schemaVersion": 2, "manifests": []})
    assert media.parse_manifest(raw, media.DOCKER_LIST + "; charset=utf-8").media_type == media.DOCKER_LIST
    assert media.parse_manifest(raw).media_type == media.OCI_INDEX


def test_artifact_subject_is_kept() -> None:
    raw = _raw({"schemaVersion": 2, "mediaType": media.OCI_MANIFEST, "artifactType": "application/x-sig",
                "config": {"mediaType": media.OCI_EMPTY, "digest": D1, "size": 2}, "layers": [],
                "subject": {"mediaType": media.OCI_MANIFEST, "digest": D3, "size": 9}})
    m = media.parse_manifest(raw)
    assert m.subject is not None and m.subject.digest == D3


def test_schema1_blobs_are_deduplicated_and_size_unknown() -> None:
    raw = _raw({"schemaVersion": 1, "fsLayers": [{"blobSum": D1}, {"blobSum": D1}, {"blobSum": D2}]})
    m = media.parse_manifest(raw)
    assert m.media_type == media.DOCKER_SCHEMA1
    assert [(b.digest, b.size) for b in m.blobs] == [(D1, -1), (D2, -1)]


def test_digest_is_verified() -> None:
    raw = _raw({"schemaVersion": 2, "manifests": []})
    with pytest.raises(DigestMismatchError):
        media.parse_manifest(raw, digest=D1)


@pytest.mark.parametrize("raw", [b"not json", b"[]", _raw({"schemaVersion": 2, "layers": "x"}),
                                 _raw({"schemaVersion": 2, "layers": [{"digest": "md5:x", "size": 1}]}),
                                 _raw({"schemaVersion": 2, "layers": [{"digest": D1, "size": -4}]}),
                                 b"{" + b" " * media.MAX_MANIFEST_BYTES + b"}"])
def test_broken_manifests_are_protocol_errors(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        media.parse_manifest(raw)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
                    max_leaves=20))
def test_any_json_parses_or_fails_cleanly(obj: object) -> None:
    with contextlib.suppress(ProtocolError):
        media.parse_manifest(_raw(obj))


def test_manifest_digest_of_signed_schema1_strips_signatures() -> None:
    payload = b'{\n   "schemaVersion": 1,\n   "fsLayers": []\n}'
    length = len(payload) - 2
    tail = payload[length:]
    protected = base64.urlsafe_b64encode(json.dumps(
        {"formatLength": length, "formatTail": base64.urlsafe_b64encode(tail).decode().rstrip("=")}).encode()
    ).decode().rstrip("=")
    signed = payload[:length] + b',\n   "signatures": [{"protected": "' + protected.encode() + b'"}]' + tail
    assert media.manifest_digest(signed) == media.sha256_digest(payload)
    assert media.manifest_digest(payload) == media.sha256_digest(payload)


def test_referrers_tag() -> None:
    assert media.referrers_tag("sha256:" + "a" * 64) == "sha256-" + "a" * 64
