"""A listing kept column by column reads back as the artifacts listed; a planned tag's job is its own
verification entry and makes the refs a job of full refs has."""

from __future__ import annotations

import hashlib

import pytest

from ferry.digests import pack, unpack
from ferry.harbor.artifacts import Accessory, Artifact, ArtifactList, accessory_digests
from ferry.plan.inventory import ArtifactIndex
from ferry.plan.model import Job, Route
from ferry.refs import RegistryRef

OCI = "application/vnd.oci.image.manifest.v1+json"
DOCKER = "application/vnd.docker.distribution.manifest.v2+json"


def _arts() -> list[Artifact]:
    return [
        Artifact("p/app", "sha256:a", OCI, 10, ("v1",), push_time="2026-01-01T00:00:00.000Z"),
        Artifact("p/app", "sha256:b", OCI, 3_000_000_000, ("v2", "latest"), push_time="2026-01-02T00:00:00.000Z",
                 tag_push_times=("", "2026-01-03T00:00:00.000Z")),
        Artifact("p/app", "sha256:c", OCI, 0, (), (Accessory("sha256:s", "signature.cosign", "sha256:c"),),
                 ("sha256:child",), push_time="2026-01-04T00:00:00.123456Z"),  # another length of time
    ]


def test_a_column_listing_reads_back_every_field() -> None:
    listed = ArtifactList("p/app", _arts())
    assert list(listed) == _arts()
    assert listed[-1] == _arts()[-1] and listed[1:] == _arts()[1:]
    assert accessory_digests(listed) == {"sha256:s"} == accessory_digests(_arts())
    index = ArtifactIndex({"p/app": listed})
    assert index[("p/app", "sha256:b")] == _arts()[1]
    assert ("p/app", "sha256:x") not in index and len(index) == 3


def test_columns_of_one_kind_and_of_several_read_back_alike() -> None:
    real = "sha256:" + hashlib.sha256(b"x").hexdigest()
    arts = [Artifact("p/app", real if i == 3 else f"sha256:{i:064x}", OCI if i % 2 else DOCKER, i * 2**33, (f"v{i}",),
                     push_time=f"2026-01-{i % 28 + 1:02d}T00:00:00.000Z") for i in range(130)]
    uniform = [Artifact(a.repository, a.digest, OCI, a.size, a.tags, push_time="2026-01-01T00:00:00Z") for a in arts]
    odd = [*arts, Artifact("p/app", "sha512:" + "ab" * 64, OCI, 1, ("x",), push_time=""),
           Artifact("p/app", "SHA256:" + "AB" * 32, OCI, 2, ("y",), push_time="2026-01-01T00:00:00.5Z")]
    for given in (arts, uniform, odd):
        listed = ArtifactList("p/app", given)
        assert list(listed) == given and len(listed) == len(given)
        with pytest.raises(IndexError):
            listed[len(given)]
        assert listed.sizes() == {pack(a.digest): a.size for a in given}
        assert [listed.find(a.digest) for a in given] == list(range(len(given)))
    assert ArtifactList("p/app", odd).find("sha256:" + "0" * 64) == 0 and ArtifactList("p/app").find(real) == -1


def test_digests_are_packed_and_read_back_as_they_were() -> None:
    for digest in ("sha256:" + "0" * 64, "sha256:" + "f" * 64, "sha256:" + hashlib.sha256(b"").hexdigest()):
        assert isinstance(pack(digest), int) and unpack(pack(digest)) == digest
    for text in ("sha256:" + "F" * 64, "sha256:" + "0" * 63, "sha256:" + "_1" * 32, "sha512:" + "0" * 128, "x"):
        assert pack(text) == text and unpack(text) == text


def test_a_named_job_equals_the_job_of_its_full_refs() -> None:
    src, dst = RegistryRef("src.example", "p/app"), RegistryRef("dst.example", "q/app")
    route = Route(src, dst, "p")
    tagged = Job.named(route, "v1", "sha256:a")
    assert tagged == Job(src.with_tag("v1"), dst.with_tag("v1"), "p", digest="sha256:a")
    assert tagged.key == "src.example/p/app:v1 -> dst.example/q/app:v1" and tagged.project == "p"
    assert len({tagged, Job(src.with_tag("v1"), dst.with_tag("v1"), "p", digest="sha256:a")}) == 1
    by_digest = Job.named(route, "sha256:a", "sha256:a")
    assert str(by_digest.destination) == "dst.example/q/app@sha256:a"
    assert by_digest.destination_parts() == (dst, "sha256:a")
    assert Job(src.with_tag("v1"), dst.with_tag("v2")).destination_parts() == (dst, "v2")
    assert tagged.source_repository == "p/app"
