"""Rules → jobs with a fake ``list_tags``; semver constraints; the plan check."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferry.errors import ConfigError, NotFoundError
from ferry.plan.expand import check_plan, expand
from ferry.plan.imagesyncer import load_images
from ferry.plan.model import Job, Rule, TagSelector
from ferry.plan.semver import SemverError, Version, parse_constraint, parse_version
from ferry.refs import RegistryRef

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def ref(text: str) -> RegistryRef:
    registry, _, rest = text.partition("/")
    tag = None
    if ":" in rest:
        rest, tag = rest.split(":", 1)
    return RegistryRef(registry, rest, tag)


class FakeRegistry:
    """``list_tags`` over a dict; records calls and the most listings in flight at once."""

    def __init__(self, tags: dict[str, list[str]], delay: float = 0.0) -> None:
        self.tags = tags
        self.calls: list[str] = []
        self.delay = delay
        self.active = 0
        self.peak = 0

    async def __call__(self, repo: RegistryRef) -> list[str]:
        name = f"{repo.registry}/{repo.repository}"
        assert repo.tag is None and repo.digest is None
        self.calls.append(name)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(self.delay)
            if name not in self.tags:
                raise NotFoundError(f"repository {name} not found")
            return list(self.tags[name])
        finally:
            self.active -= 1


def rule(source: str, select: TagSelector, destination: str, origin: str = "", suffix: str = "") -> Rule:
    return Rule(ref(source), select, ref(destination), origin or f"rule {source}", tag_suffix=suffix)


def run(rules: list[Rule], fake: FakeRegistry, **kwargs: int) -> list[str]:
    return [job.key for job in asyncio.run(expand(rules, fake, **kwargs))]


# --------------------------------------------------------------------------------------------------
# expand


def test_fixed_tags_and_digests_need_no_listing() -> None:
    fake = FakeRegistry({})
    keys = run(
        [
            rule("src.io/a/b", TagSelector(tags=("1", "2", "1")), "dst.io/a/b"),
            rule("src.io/a/b", TagSelector(digests=(D1,)), "dst.io/a/b"),
            rule("src.io/a/b", TagSelector(digests=(D2,)), "dst.io/a/b:pinned"),
        ],
        fake,
    )
    assert fake.calls == []
    assert keys == [
        "src.io/a/b:1 -> dst.io/a/b:1",
        "src.io/a/b:2 -> dst.io/a/b:2",
        # a digest keeps its digest at the destination (pushed untagged) ...
        f"src.io/a/b@{D1} -> dst.io/a/b@{D1}",
        # ... or takes the renamed tag
        f"src.io/a/b@{D2} -> dst.io/a/b:pinned",
    ]


def test_listing_once_per_repository_in_rule_order() -> None:
    fake = FakeRegistry({"src.io/a/b": ["v1", "v2", "latest"], "src.io/c": ["x"]})
    keys = run(
        [
            rule("src.io/a/b", TagSelector(), "dst.io/one"),
            rule("src.io/c", TagSelector(), "dst.io/c"),
            rule("src.io/a/b", TagSelector(regex="^v"), "dst.io/two"),
        ],
        fake,
    )
    assert sorted(fake.calls) == ["src.io/a/b", "src.io/c"]
    assert keys == [
        "src.io/a/b:v1 -> dst.io/one:v1",
        "src.io/a/b:v2 -> dst.io/one:v2",
        "src.io/a/b:latest -> dst.io/one:latest",
        "src.io/c:x -> dst.io/c:x",
        "src.io/a/b:v1 -> dst.io/two:v1",
        "src.io/a/b:v2 -> dst.io/two:v2",
    ]


def test_regex_is_searched_not_anchored() -> None:
    # image-syncer README: "All the tags of source repository that matches the regular expression will be synced";
    # both tools use Go's regexp.MatchString, which finds a match anywhere in the tag.
    fake = FakeRegistry({"src.io/a": ["xa", "bbb", "aa-1", "A"]})
    assert run([rule("src.io/a", TagSelector(regex="a+"), "dst.io/a")], fake) == [
        "src.io/a:xa -> dst.io/a:xa",
        "src.io/a:aa-1 -> dst.io/a:aa-1",
    ]


def test_semver_selection() -> None:
    fake = FakeRegistry({"src.io/alpine": ["3.11.6", "3.12.0", "v3.12.1", "3.13", "4.0.0", "3.19.1-alpine", "latest"]})
    assert run([rule("src.io/alpine", TagSelector(semver=">= 3.12.0, < 4"), "dst.io/alpine")], fake) == [
        "src.io/alpine:3.12.0 -> dst.io/alpine:3.12.0",
        "src.io/alpine:v3.12.1 -> dst.io/alpine:v3.12.1",
        "src.io/alpine:3.13 -> dst.io/alpine:3.13",
    ]


def test_invalid_semver_in_rule() -> None:
    with pytest.raises(ConfigError, match=r"^origin-x: improper constraint '>= banana'$"):
        run([rule("src.io/a", TagSelector(semver=">= banana"), "dst.io/a", origin="origin-x")], FakeRegistry({}))


def test_tag_suffix() -> None:
    fake = FakeRegistry({"src.io/a": ["1", "2"]})
    assert run([rule("src.io/a", TagSelector(), "dst.io/a", suffix="-mirror")], fake) == [
        "src.io/a:1 -> dst.io/a:1-mirror",
        "src.io/a:2 -> dst.io/a:2-mirror",
    ]
    # a renamed tag is taken as written
    assert run([rule("src.io/a", TagSelector(tags=("1",)), "dst.io/a:new", suffix="-m")], fake) == [
        "src.io/a:1 -> dst.io/a:new"
    ]
    long_tag = FakeRegistry({"src.io/a": ["x" * 127]})
    with pytest.raises(ConfigError, match="with suffix '-mirror' is not a valid tag"):
        run([rule("src.io/a", TagSelector(), "dst.io/a", suffix="-mirror")], long_tag)
    with pytest.raises(ConfigError, match="a tag suffix cannot apply to images selected by digest"):
        run([rule("src.io/a", TagSelector(digests=(D1,)), "dst.io/a", suffix="-m")], fake)


@pytest.mark.parametrize(
    ("select", "message"),
    [
        (TagSelector(tags=("1", "2")), "the destination renames to one tag (new) but the rule selects several tags"),
        (TagSelector(), "the destination renames to one tag (new) but the rule selects tags by listing the repository"),
        (TagSelector(regex="x"), "the destination renames to one tag (new) but the rule selects tags by listing"),
    ],
)
def test_rename_needs_exactly_one_image(select: TagSelector, message: str) -> None:
    fake = FakeRegistry({"src.io/a": ["1"]})
    with pytest.raises(ConfigError, match="^" + re.escape(f"o: {message}")):
        run([rule("src.io/a", select, "dst.io/a:new", origin="o")], fake)
    assert fake.calls == []  # refused before any listing


def test_destination_digest_refused() -> None:
    bad = Rule(ref("src.io/a"), TagSelector(tags=("1",)), RegistryRef("dst.io", "a", digest=D1), "o")
    with pytest.raises(ConfigError, match=r"^o: a destination names a repository or a tag, not a digest$"):
        run([bad], FakeRegistry({}))


def test_invalid_and_duplicate_listed_tags(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeRegistry({"src.io/a": ["ok", "bad tag", "../x", "ok", "-lead"]})
    with caplog.at_level(logging.WARNING, logger="ferry.plan.expand"):
        assert run([rule("src.io/a", TagSelector(), "dst.io/a")], fake) == ["src.io/a:ok -> dst.io/a:ok"]
    assert "'bad tag'" in caplog.text and "not a valid tag" in caplog.text


def test_empty_selection_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeRegistry({"src.io/a": ["latest"]})
    with caplog.at_level(logging.WARNING, logger="ferry.plan.expand"):
        assert run([rule("src.io/a", TagSelector(semver="^1"), "dst.io/a", origin="o")], fake) == []
    assert "o: no tags of src.io/a match" in caplog.text


def test_listing_error_propagates_and_others_stop() -> None:
    fake = FakeRegistry({"src.io/slow": ["1"]}, delay=0.05)

    async def go() -> None:
        await expand(
            [rule("src.io/missing", TagSelector(), "dst.io/m"), rule("src.io/slow", TagSelector(), "dst.io/s")],
            fake,
        )

    with pytest.raises(NotFoundError, match=r"src\.io/missing"):
        asyncio.run(go())
    assert fake.active == 0


def test_concurrency_is_bounded() -> None:
    tags = {f"src.io/r{i}": ["1"] for i in range(12)}
    fake = FakeRegistry(tags, delay=0.01)
    keys = run([rule(f"src.io/r{i}", TagSelector(), f"dst.io/r{i}") for i in range(12)], fake, concurrency=3)
    assert len(keys) == 12 and fake.peak == 3


def test_image_syncer_file_end_to_end(tmp_path: Path) -> None:
    # image-syncer README rules 2, 3, 5, 7 together.
    path = tmp_path / "images.yaml"
    path.write_text(
        "quay.io/coreos/kube-rbac-proxy: quay.io/ruohe/kube-rbac-proxy\n"
        "quay.io/coreos/etcd:v3.5.0,v3.5.1: quay.io/ruohe/etcd:a,b\n"
        "quay.io/coreos/flannel:/^v0\\.1[0-9]/: quay.io/ruohe/flannel\n"
    )
    fake = FakeRegistry(
        {
            "quay.io/coreos/kube-rbac-proxy": ["v0.4.1", "v0.5.0"],
            "quay.io/coreos/flannel": ["v0.9.1", "v0.10.0", "v0.11.0-amd64", "v0.2.0"],
        }
    )
    jobs = check_plan(asyncio.run(expand(load_images(path), fake)))
    assert [job.key for job in jobs] == [
        "quay.io/coreos/kube-rbac-proxy:v0.4.1 -> quay.io/ruohe/kube-rbac-proxy:v0.4.1",
        "quay.io/coreos/kube-rbac-proxy:v0.5.0 -> quay.io/ruohe/kube-rbac-proxy:v0.5.0",
        "quay.io/coreos/etcd:v3.5.0 -> quay.io/ruohe/etcd:a",
        "quay.io/coreos/etcd:v3.5.1 -> quay.io/ruohe/etcd:b",
        "quay.io/coreos/flannel:v0.10.0 -> quay.io/ruohe/flannel:v0.10.0",
        "quay.io/coreos/flannel:v0.11.0-amd64 -> quay.io/ruohe/flannel:v0.11.0-amd64",
    ]
    assert jobs[2].origin == f'{path}:2: key "quay.io/coreos/etcd:v3.5.0,v3.5.1"'


# --------------------------------------------------------------------------------------------------
# check_plan


def job(source: str, destination: str, origin: str) -> Job:
    def parse(text: str) -> RegistryRef:
        if "@" in text:
            name, digest = text.split("@")
            return ref(name).with_digest(digest)
        return ref(text)

    return Job(parse(source), parse(destination), origin)


def test_identical_duplicates_merge() -> None:
    a = job("src.io/a:1", "dst.io/a:1", "rule one")
    b = job("src.io/a:1", "dst.io/a:1", "rule two")
    c = job("src.io/a:2", "dst.io/a:2", "rule one")
    assert check_plan([a, b, c]) == [a, c]


def test_same_digest_from_two_repositories_merges() -> None:
    a = job(f"src.io/a@{D1}", f"dst.io/x@{D1}", "one")
    b = job(f"mirror.io/a@{D1}", f"dst.io/x@{D1}", "two")
    assert check_plan([a, b]) == [a]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("src.io/a:1", "dst.io/x:1"), ("src.io/b:1", "dst.io/x:1")),
        (("src.io/a:1", "dst.io/x:1"), ("src.io/a:2", "dst.io/x:1")),
        ((f"src.io/a@{D1}", "dst.io/x:1"), ("src.io/a:1", "dst.io/x:1")),
    ],
)
def test_conflict_names_both_sources_and_origins(first: tuple[str, str], second: tuple[str, str]) -> None:
    with pytest.raises(ConfigError) as excinfo:
        check_plan([job(*first, 'images.yaml:1: key "a"'), job(*second, 'images.yaml:2: key "b"')])
    assert excinfo.value.message == (
        f'two sources go to dst.io/x:1: {first[0]} (images.yaml:1: key "a") and {second[0]} (images.yaml:2: key "b")'
    )
    assert excinfo.value.hint == "give one of them another destination"


# --------------------------------------------------------------------------------------------------
# semver (Masterminds/semver v3 semantics, as skopeo's images-by-semver)

RELEASES = ["0.0.3", "0.0.4", "0.2.3", "0.2.9", "0.3.0", "1.0.0", "1.2.0", "1.2.3", "1.2.9", "1.3.0", "2.0.0", "v2.1"]
TAGS = [*RELEASES, "1.2.3-rc.1", "3.19.1-alpine", "latest"]


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        # ^1.2.3 --> >=1.2.3 <2.0.0 ; ^1.2 --> >=1.2.0 <2.0.0 (Masterminds constraints.go)
        ("^1.2.3", ["1.2.3", "1.2.9", "1.3.0"]),
        ("^1.2", ["1.2.0", "1.2.3", "1.2.9", "1.3.0"]),
        # ^0.2.3 --> >=0.2.3 <0.3.0 ; ^0.0.3 --> >=0.0.3 <0.0.4
        ("^0.2.3", ["0.2.3", "0.2.9"]),
        ("^0.0.3", ["0.0.3"]),
        # ~1.2.3 --> >=1.2.3, <1.3.0 ; ~1 --> >=1.0.0, <2.0.0
        ("~1.2.3", ["1.2.3", "1.2.9"]),
        ("~>1.2", ["1.2.0", "1.2.3", "1.2.9"]),
        ("~1", ["1.0.0", "1.2.0", "1.2.3", "1.2.9", "1.3.0"]),
        ("1.2.x", ["1.2.0", "1.2.3", "1.2.9"]),
        ("2.*", ["2.0.0", "v2.1"]),
        ("*", RELEASES),
        (">= 1.2, < 2", ["1.2.0", "1.2.3", "1.2.9", "1.3.0"]),
        (">=1.2 <2", ["1.2.0", "1.2.3", "1.2.9", "1.3.0"]),
        ("1.2 - 1.3", ["1.2.0", "1.2.3", "1.2.9", "1.3.0"]),
        ("<0.2.9 || >=2", ["0.0.3", "0.0.4", "0.2.3", "2.0.0", "v2.1"]),
        ("=1.2.3", ["1.2.3"]),
        ("1.2.3", ["1.2.3"]),
        ("!=1.2.3, ^1.2", ["1.2.0", "1.2.9", "1.3.0"]),
        (">1.2", ["1.3.0", "2.0.0", "v2.1"]),  # ">1.2" needs the next minor
        ("<=1.2", ["0.0.3", "0.0.4", "0.2.3", "0.2.9", "0.3.0", "1.0.0", "1.2.0", "1.2.3", "1.2.9"]),
        # pre-releases only match a constraint that names one
        (">= 1.2.3-0, <= 1.2.3", ["1.2.3"]),
        (">=1.2.3-0", ["1.2.3", "1.2.9", "1.3.0", "2.0.0", "v2.1", "1.2.3-rc.1", "3.19.1-alpine"]),
        (">= 3", []),
    ],
)
def test_semver_constraints(constraint: str, expected: list[str]) -> None:
    parsed = parse_constraint(constraint)
    assert [tag for tag in TAGS if parsed.matches(tag)] == expected


@pytest.mark.parametrize("bad", ["", "  ", "latest", ">=", ">= 1 ||", "1.2foo", "=> > 1", "1.2.3.4", "^x.1.y("])
def test_semver_parse_errors(bad: str) -> None:
    with pytest.raises(SemverError):
        parse_constraint(bad)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("1.2.3", Version(1, 2, 3)),
        ("v1.2", Version(1, 2, 0)),
        ("3", Version(3, 0, 0)),
        ("1.2.3-rc.1+build.5", Version(1, 2, 3, "rc.1")),
        ("latest", None),
        ("1.2.3.4", None),
        ("1.2.3-", None),
        ("99999999999999999999999", None),
    ],
)
def test_parse_version(tag: str, expected: Version | None) -> None:
    assert parse_version(tag) == expected


def test_prerelease_ordering() -> None:
    # semver.org item 11: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta < 1.0.0-beta.2
    #   < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0
    ordered = ["alpha", "alpha.1", "alpha.beta", "beta", "beta.2", "beta.11", "rc.1", ""]
    versions = [Version(1, 0, 0, pre) for pre in ordered]
    for low, high in itertools.pairwise(versions):
        assert low.compare(high) == -1 and high.compare(low) == 1


releases = st.builds(Version, st.integers(0, 5), st.integers(0, 5), st.integers(0, 5))


@given(releases, releases)
def test_caret_and_tilde_as_ranges(v: Version, c: Version) -> None:
    tag = f"{v.major}.{v.minor}.{v.patch}"
    base = f"{c.major}.{c.minor}.{c.patch}"
    if c.major > 0:
        upper = f"{c.major + 1}.0.0"
    elif c.minor > 0:
        upper = f"0.{c.minor + 1}.0"
    else:
        upper = f"0.0.{c.patch + 1}"
    assert parse_constraint(f"^{base}").matches(tag) == parse_constraint(f">={base}, <{upper}").matches(tag)
    tilde_upper = f"{c.major}.{c.minor + 1}.0"
    if (c.major, c.minor, c.patch) == (0, 0, 0):
        return  # Masterminds: "~0.0.0 is a special case where all constraints are accepted"
    assert parse_constraint(f"~{base}").matches(tag) == parse_constraint(f">={base} <{tilde_upper}").matches(tag)


@given(st.text(max_size=40))
def test_constraint_parser_total(text: str) -> None:
    try:
        constraint = parse_constraint(text)
    except SemverError:
        return
    constraint.matches("1.2.3")
