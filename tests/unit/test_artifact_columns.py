"""A listing kept column by column reads back as the artifacts listed; a planned tag's job is its own
verification entry and makes the refs a job of full refs has."""

from __future__ import annotations

from ferry.harbor.artifacts import Accessory, Artifact, ArtifactList, Texts, accessory_digests
from ferry.plan.inventory import ArtifactIndex
from ferry.plan.model import Job
from ferry.refs import RegistryRef

OCI = "application/vnd.oci.image.manifest.v1+json"


def _arts() -> list[Artifact]:
    return [
        Artifact("p/app", "sha256:a", OCI, 10, ("v1",), push_time="2026-01-01T00:00:00.000Z"),
        Artifact("p/app", "sha256:b", OCI, 3_000_000_000, ("v2", "latest"), push_time="2026-01-02T00:00:00.000Z",
                 tag_push_times=("", "2026-01-03T00:00:00.000Z")),
        Artifact("p/app", "sha256:c", OCI, 0, (), (Accessory("sha256:s", "signature.cosign", "sha256:c"),),
                 ("sha256:child",), push_time="2026-01-04T00:00:00.123456Z"),  # another length of time
    ]


def test_a_column_listing_reads_back_every_field() -> None:
    listed = ArtifactList("p/app")
    for art in _arts():
        listed.append(art)
    assert list(listed) == _arts()
    assert listed[-1] == _arts()[-1] and listed[1:] == _arts()[1:]
    assert accessory_digests(listed) == {"sha256:s"} == accessory_digests(_arts())
    index = ArtifactIndex({"p/app": listed})
    assert index[("p/app", "sha256:b")] == _arts()[1]
    assert ("p/app", "sha256:x") not in index and len(index) == 3


def test_texts_of_one_length_and_then_another() -> None:
    texts, given = Texts(), [f"2026-01-{i % 28 + 1:02d}T00:00:00.000Z" for i in range(130)]
    for t in given:
        texts.append(t)
    assert [texts[i] for i in range(len(texts))] == given
    texts.append("")
    assert [texts[i] for i in range(len(texts))] == [*given, ""]


def test_a_named_job_equals_the_job_of_its_full_refs() -> None:
    src, dst = RegistryRef("src.example", "p/app"), RegistryRef("dst.example", "q/app")
    tagged = Job.named(src, dst, "v1", "p", "sha256:a")
    assert tagged == Job(src.with_tag("v1"), dst.with_tag("v1"), "p", digest="sha256:a")
    assert tagged.key == "src.example/p/app:v1 -> dst.example/q/app:v1" and tagged.project == "p"
    assert len({tagged, Job(src.with_tag("v1"), dst.with_tag("v1"), "p", digest="sha256:a")}) == 1
    by_digest = Job.named(src, dst, "sha256:a", "p", "sha256:a")
    assert str(by_digest.destination) == "dst.example/q/app@sha256:a"
    assert by_digest.destination_parts() == (dst, "sha256:a")
    assert Job(src.with_tag("v1"), dst.with_tag("v2")).destination_parts() == (dst, "v2")
    assert tagged.source_repository == "p/app"
