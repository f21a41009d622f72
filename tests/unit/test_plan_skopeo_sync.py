"""skopeo sync compatible sources (``--src yaml``, ``--src docker``) and ``--dest docker`` naming.

Quotes in comments are from skopeo-sync(1) (docs/skopeo-sync.1.md) unless marked otherwise.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferry.access import Access, Credential
from ferry.errors import ConfigError, UsageError
from ferry.plan.expand import check_plan, expand
from ferry.plan.model import Rule, TagSelector
from ferry.plan.skopeo_sync import (
    DestNaming,
    SyncSource,
    destination_repository,
    load_skopeo_yaml,
    rules_from_docker_source,
    rules_from_skopeo_yaml,
    rules_from_sources,
    source_from_docker,
)
from ferry.refs import RegistryRef

ZERO_ONE = "sha256:0000000000000000000000000000000011111111111111111111111111111111"

DOC_YAML = f"""\
registry.example.com:
    images:
        busybox: []
        redis:
            - "1.0"
            - "2.0"
            - "{ZERO_ONE}"
    images-by-tag-regex:
        nginx: ^1\\.13\\.[12]-alpine-perl$
    images-by-semver:
        alpine: ">= 3.12.0"
    credentials:
        username: john
        password: this is a secret
    tls-verify: true
    cert-dir: /home/john/certs
quay.io:
    tls-verify: false
    images:
        coreos/etcd:
            - latest
"""

TAGS = {
    "registry.example.com/busybox": ["1-glibc", "1-musl", "latest"],
    "registry.example.com/nginx": ["1.13.1-alpine-perl", "1.13.2-alpine-perl", "1.13.3-alpine-perl", "1.13.1"],
    "registry.example.com/alpine": ["3.11.6", "3.12.0", "3.12.1", "4.0.0", "3.19.1-alpine", "latest", "edge"],
}


async def fake_list_tags(repo: RegistryRef) -> list[str]:
    return list(TAGS[f"{repo.registry}/{repo.repository}"])


def write(tmp_path: Path, text: str, name: str = "sync.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def keys(rules: list[Rule]) -> list[str]:
    jobs = check_plan(asyncio.run(expand(rules, fake_list_tags)))
    return [job.key for job in jobs]


# --------------------------------------------------------------------------------------------------
# The manual page's YAML example


def test_doc_yaml_sources_and_access(tmp_path: Path) -> None:
    path = write(tmp_path, DOC_YAML)
    sources, access = load_skopeo_yaml(path)
    assert [(str(s.source), s.select) for s in sources] == [
        # "Repository registry.example.com/busybox: all images, as no tags are specified."
        ("registry.example.com/busybox", TagSelector()),
        # "Repository registry.example.com/redis: images tagged "1.0" and "2.0" along with image with digest …"
        ("registry.example.com/redis", TagSelector(tags=("1.0", "2.0"))),
        ("registry.example.com/redis", TagSelector(digests=(ZERO_ONE,))),
        ("registry.example.com/nginx", TagSelector(regex="^1\\.13\\.[12]-alpine-perl$")),
        ("registry.example.com/alpine", TagSelector(semver=">= 3.12.0")),
        # "Repository quay.io/coreos/etcd: images tagged "latest"."
        ("quay.io/coreos/etcd", TagSelector(tags=("latest",))),
    ]
    assert sources[0].origin == f'{path}:3: key "registry.example.com" → "images" → "busybox"'
    # "For the registry registry.example.com, the "john"/"this is a secret" credentials are used, with server
    #  TLS certificates located at /home/john/certs."
    john = Access(credential=Credential("john", "this is a secret"), cert_dir="/home/john/certs")
    assert access.for_path("registry.example.com/redis") == john
    # "TLS verification is enabled for registry.example.com, while is disabled for quay.io."
    assert access.for_path("quay.io/coreos/etcd") == Access(tls_verify=False)
    # The entry's settings cover the images it lists, not the whole host (skopeo's per-entry context).
    assert access.for_path("registry.example.com/other") == Access()


def test_doc_yaml_to_destination(tmp_path: Path) -> None:
    # "$ skopeo sync --src yaml --dest docker sync.yml my-registry.local.lan/repo/"
    rules, _ = rules_from_skopeo_yaml(write(tmp_path, DOC_YAML), "my-registry.local.lan/repo/")
    dest = "my-registry.local.lan/repo"
    assert keys(rules) == [
        f"registry.example.com/busybox:1-glibc -> {dest}/busybox:1-glibc",
        f"registry.example.com/busybox:1-musl -> {dest}/busybox:1-musl",
        f"registry.example.com/busybox:latest -> {dest}/busybox:latest",
        f"registry.example.com/redis:1.0 -> {dest}/redis:1.0",
        f"registry.example.com/redis:2.0 -> {dest}/redis:2.0",
        f"registry.example.com/redis@{ZERO_ONE} -> {dest}/redis@{ZERO_ONE}",
        # "Repository registry.example.com/nginx: images tagged "1.13.1-alpine-perl" and "1.13.2-alpine-perl"."
        f"registry.example.com/nginx:1.13.1-alpine-perl -> {dest}/nginx:1.13.1-alpine-perl",
        f"registry.example.com/nginx:1.13.2-alpine-perl -> {dest}/nginx:1.13.2-alpine-perl",
        # "all images with tags match the semantic version constraint ">= 3.12.0" ("3.12.0, "3.12.1", …,"4.0.0", …)"
        f"registry.example.com/alpine:3.12.0 -> {dest}/alpine:3.12.0",
        f"registry.example.com/alpine:3.12.1 -> {dest}/alpine:3.12.1",
        f"registry.example.com/alpine:4.0.0 -> {dest}/alpine:4.0.0",
        # ferry keeps the whole repository path (skopeo would write {dest}/etcd)
        f"quay.io/coreos/etcd:latest -> {dest}/coreos/etcd:latest",
    ]


# --------------------------------------------------------------------------------------------------
# --src docker and destination naming


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # "If no image tag is specified, skopeo sync copies all the tags found in that repository."
        ("registry.example.com/busybox", SyncSource(RegistryRef("registry.example.com", "busybox"), TagSelector())),
        (
            "registry.example.com/busybox:1.36",
            SyncSource(RegistryRef("registry.example.com", "busybox"), TagSelector(tags=("1.36",))),
        ),
        (
            f"registry.example.com/busybox@{ZERO_ONE}",
            SyncSource(RegistryRef("registry.example.com", "busybox"), TagSelector(digests=(ZERO_ONE,))),
        ),
        ("busybox", SyncSource(RegistryRef("docker.io", "library/busybox"), TagSelector())),
        ("index.docker.io/library/busybox", SyncSource(RegistryRef("docker.io", "library/busybox"), TagSelector())),
    ],
)
def test_source_from_docker(source: str, expected: SyncSource) -> None:
    got = source_from_docker(source)
    assert (got.source, got.select) == (expected.source, expected.select)
    assert got.origin == f"--src docker {source}"


def test_source_from_docker_invalid() -> None:
    with pytest.raises(UsageError, match="invalid repository name"):
        source_from_docker("registry.example.com/BusyBox")


@pytest.mark.parametrize(
    ("source", "destination", "naming", "expected"),
    [
        # "$ skopeo sync --src docker --dest docker registry.example.com/busybox my-registry.local.lan"
        # → "registry.local.lan/busybox" (sic): one path component, every naming agrees.
        ("registry.example.com/busybox", "my-registry.local.lan", DestNaming.PATH, "my-registry.local.lan/busybox"),
        ("registry.example.com/busybox", "my-registry.local.lan", DestNaming.BASENAME, "my-registry.local.lan/busybox"),
        # "Synchronizing to a container registry keeping the repository":
        # "registry.example.com/repo/busybox my-registry.local.lan/repo" → "registry.local.lan/repo/busybox"
        (
            "registry.example.com/repo/busybox",
            "my-registry.local.lan/repo",
            DestNaming.BASENAME,
            "my-registry.local.lan/repo/busybox",
        ),
        # ferry's default keeps the source path under DEST
        (
            "registry.example.com/repo/busybox",
            "my-registry.local.lan/repo",
            DestNaming.PATH,
            "my-registry.local.lan/repo/repo/busybox",
        ),
        # "--scoped … registry.example.com/busybox /media/usb" → "/media/usb/registry.example.com/busybox:1-glibc"
        (
            "registry.example.com/busybox",
            "my-registry.local.lan",
            DestNaming.SCOPED,
            "my-registry.local.lan/registry.example.com/busybox",
        ),
        ("busybox", "my-registry.local.lan", DestNaming.SCOPED, "my-registry.local.lan/docker.io/library/busybox"),
        ("busybox", "my-registry.local.lan", DestNaming.PATH, "my-registry.local.lan/library/busybox"),
        ("busybox", "my-registry.local.lan", DestNaming.BASENAME, "my-registry.local.lan/busybox"),
        ("localhost:5000/proj/app", "dst.io:5000/m/", DestNaming.SCOPED, "dst.io:5000/m/localhost_5000/proj/app"),
        ("Reg.Example.COM/proj/app", "dst.io", DestNaming.SCOPED, "dst.io/reg.example.com/proj/app"),
        ("[::1]:5000/app", "dst.io", DestNaming.SCOPED, "dst.io/1_5000/app"),
        # skopeo joins DEST and the name before normalising: a DEST without a host is on Docker Hub
        ("registry.example.com/busybox", "myuser", DestNaming.PATH, "docker.io/myuser/busybox"),
    ],
)
def test_destination_naming(source: str, destination: str, naming: DestNaming, expected: str) -> None:
    src = source_from_docker(source).source
    assert str(destination_repository(destination, src, naming)) == expected


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("", "the destination is empty"),
        ("  /", "the destination is empty"),
        ("dst.io/m:tag", "destination 'dst.io/m:tag' names a tag or digest; a registry or registry/path is expected"),
        (f"dst.io/m@{ZERO_ONE}", f"destination 'dst.io/m@{ZERO_ONE}' names a tag or digest"),
        ("dst.io/UPPER", "destination 'dst.io/UPPER' for registry.example.com/busybox: invalid repository name"),
    ],
)
def test_destination_errors(destination: str, message: str) -> None:
    with pytest.raises(UsageError) as excinfo:
        rules_from_docker_source("registry.example.com/busybox", destination)
    assert excinfo.value.message.startswith(message)


def test_docker_source_rules_and_append_suffix() -> None:
    # "$ skopeo sync --src docker --dest docker --append-suffix '-mirror' registry.example.com/busybox
    #  my-registry.local.lan" → "1-glibc-mirror, 1-musl-mirror, 1-ubuntu-mirror, ..., latest-mirror"
    rules = rules_from_docker_source("registry.example.com/busybox", "my-registry.local.lan", append_suffix="-mirror")
    assert keys(rules) == [
        "registry.example.com/busybox:1-glibc -> my-registry.local.lan/busybox:1-glibc-mirror",
        "registry.example.com/busybox:1-musl -> my-registry.local.lan/busybox:1-musl-mirror",
        "registry.example.com/busybox:latest -> my-registry.local.lan/busybox:latest-mirror",
    ]
    (tagged,) = rules_from_docker_source("registry.example.com/busybox:1-musl", "my-registry.local.lan")
    assert tagged.select == TagSelector(tags=("1-musl",)) and tagged.destination.tag is None


def test_append_suffix_refuses_digests() -> None:
    with pytest.raises(ConfigError, match="--append-suffix cannot apply to images selected by digest"):
        rules_from_docker_source(f"registry.example.com/busybox@{ZERO_ONE}", "dst.io", append_suffix="-m")


def test_path_naming_keeps_same_named_repositories_apart() -> None:
    sources = [source_from_docker("reg.io/proj0/app:1"), source_from_docker("reg.io/proj1/app:1")]
    assert keys(rules_from_sources(sources, "dst.io")) == [
        "reg.io/proj0/app:1 -> dst.io/proj0/app:1",
        "reg.io/proj1/app:1 -> dst.io/proj1/app:1",
    ]
    # skopeo's flattening puts both on dst.io/app:1; the plan check names both
    with pytest.raises(ConfigError) as excinfo:
        keys(rules_from_sources(sources, "dst.io", naming=DestNaming.BASENAME))
    assert excinfo.value.message == (
        "two sources go to dst.io/app:1: reg.io/proj0/app:1 (--src docker reg.io/proj0/app:1) and "
        "reg.io/proj1/app:1 (--src docker reg.io/proj1/app:1)"
    )


# --------------------------------------------------------------------------------------------------
# YAML details


def test_scalars_keep_their_text_and_null_means_all(tmp_path: Path) -> None:
    text = "reg.io:\n  images:\n    redis: [3.10, 7]\n    busybox:\n"
    sources, _ = load_skopeo_yaml(write(tmp_path, text))
    assert [s.select for s in sources] == [TagSelector(tags=("3.10", "7")), TagSelector()]


def test_registry_path_prefix_and_null_entry(tmp_path: Path) -> None:
    text = "harbor.local/proj:\n  images:\n    app: [v1]\nempty.io:\n"
    sources, _ = load_skopeo_yaml(write(tmp_path, text))
    assert [str(s.source) for s in sources] == ["harbor.local/proj/app"]


def test_base_access_is_kept_unless_overridden(tmp_path: Path) -> None:
    # skopeo: "Only override TLS verification if explicitly specified in YAML" (cmd/skopeo/sync.go)
    base = Access(credential=Credential("cli", "pw"), tls_verify=False, cert_dir="/cli/certs")
    text = (
        "a.io:\n  images: {x: []}\n"
        "b.io:\n  tls-verify: yes\n  credentials: {username: u, password: p}\n  images: {y: []}\n"
    )
    _, access = load_skopeo_yaml(write(tmp_path, text), base=base)
    assert access.for_path("a.io/x") == base
    assert access.for_path("b.io/y") == Access(Credential("u", "p"), tls_verify=True, cert_dir="/cli/certs")
    assert access.default == base


def test_identity_token(tmp_path: Path) -> None:
    text = "a.io:\n  credentials: {identitytoken: tok3n}\n  images: {x: []}\n"
    _, access = load_skopeo_yaml(write(tmp_path, text))
    assert access.for_path("a.io/x").credential == Credential("", "", "tok3n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "reg.io:\n  image: {x: []}\n",
            ':1: key "reg.io": unknown key "image" (expected images, images-by-tag-regex, images-by-semver, '
            "credentials, tls-verify, cert-dir)",
        ),
        ("reg.io:\n  tls-verify: 'false'\n", ':1: key "reg.io": "tls-verify" must be true or false'),
        (
            "reg.io:\n  credentials: {user: x}\n",
            ':1: key "reg.io" → "credentials": unknown key "user" (expected username, password, identitytoken)',
        ),
        (
            "reg.io:\n  credentials: {username: [x]}\n",
            ':1: key "reg.io" → "credentials": "username" must be a string, found a list',
        ),
        ("reg.io:\n  images: [busybox]\n", ':1: key "reg.io" → "images": expected a mapping'),
        ("reg.io:\n  - x\n", ':1: key "reg.io": expected a mapping with images, images-by-tag-regex'),
        (
            "reg.io:\n  images:\n    redis: latest\n",
            ':3: key "reg.io" → "images" → "redis": expected a list of tags or digests ([] for all tags)',
        ),
        (
            "reg.io:\n  images:\n    redis:\n      - 1.0\n      - bad/tag\n",
            ':5: key "reg.io" → "images" → "redis" → entry 2: "bad/tag" is neither a tag (letters, digits, _ . -, '
            "at most 128) nor a sha256: digest",
        ),
        (
            "reg.io:\n  images:\n    redis:1.0: []\n",
            ':3: key "reg.io" → "images" → "redis:1.0": image "reg.io/redis:1.0" must not name a tag or digest',
        ),
        (
            "reg.io:\n  images-by-tag-regex:\n    nginx: '^1.(13'\n",
            ':3: key "reg.io" → "images-by-tag-regex" → "nginx": invalid regular expression "^1.(13": '
            "missing ), unterminated subpattern at position 3",
        ),
        (
            "reg.io:\n  images-by-tag-regex:\n    nginx: ''\n",
            ':3: key "reg.io" → "images-by-tag-regex" → "nginx": the tag regex is empty',
        ),
        (
            "reg.io:\n  images-by-semver:\n    alpine: '>= three'\n",
            ':3: key "reg.io" → "images-by-semver" → "alpine": improper constraint \'>= three\'',
        ),
        (
            "reg.io:\n  images-by-semver:\n    alpine: [1]\n",
            ':3: key "reg.io" → "images-by-semver" → "alpine": the semver constraint must be a string, found a list',
        ),
        (
            "docker.io:\n  images: {busybox: []}\nindex.docker.io:\n  tls-verify: false\n  images: {busybox: []}\n",
            ':5: key "index.docker.io" → "images" → "busybox": docker.io/library/busybox is listed under another '
            "registry key with other settings",
        ),
        (
            "- reg.io\n",
            ": expected a mapping of registry to {images, images-by-tag-regex, images-by-semver, credentials, "
            "tls-verify}, found a list",
        ),
        ("", ": the file is empty; expected a mapping of registry to"),
        ("reg.io:\n  images: {x: [\n", ":3:1: invalid YAML: expected the node content, but found '<stream end>'"),
        ("reg.io:\n\timages: {}\n", ":2: a tab character indents this line; YAML indents with spaces only"),
    ],
)
def test_yaml_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as excinfo:
        load_skopeo_yaml(path)
    assert excinfo.value.message.startswith(f"{path}{message}")


def test_semver_error_has_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "reg.io:\n  images-by-semver: {alpine: 'latest'}\n")
    with pytest.raises(ConfigError) as excinfo:
        load_skopeo_yaml(path)
    assert "^1.2" in (excinfo.value.hint or "")


def test_json_is_yaml_too(tmp_path: Path) -> None:
    sources, _ = load_skopeo_yaml(write(tmp_path, '{"reg.io": {"images": {"x": ["1"]}}}', name="sync.json"))
    assert [(str(s.source), s.select) for s in sources] == [("reg.io/x", TagSelector(tags=("1",)))]


# --------------------------------------------------------------------------------------------------
# Any input: a value or a ConfigError, never another exception

scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4),
    max_leaves=20,
)
entry_like = st.dictionaries(
    st.sampled_from(["images", "images-by-tag-regex", "images-by-semver", "credentials", "tls-verify", "cert-dir"]),
    st.dictionaries(
        st.sampled_from(["busybox", "a/b", "X", "username", "password"]) | st.text(max_size=8),
        st.lists(st.sampled_from(["1.0", "latest", ZERO_ONE, "bad/tag"]) | st.text(max_size=8), max_size=3)
        | st.sampled_from([">= 1.2", "^1", "x(", ".*", "1.x || 2"])
        | scalars,
        max_size=3,
    )
    | scalars,
    max_size=4,
)
yaml_like = st.dictionaries(
    st.sampled_from(["reg.io", "docker.io", "h:5000/p", "x"]) | st.text(max_size=8), entry_like | scalars
)


def _value_or_config_error(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sync.yml"
        path.write_bytes(content)
        try:
            sources, _ = load_skopeo_yaml(path)
            rules_from_sources(sources, "dst.io/m")
        except ConfigError as err:
            assert "\n" not in str(err)
        except UsageError as err:  # naming under DEST: a source path too long for a repository, …
            assert "\n" not in str(err)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_arbitrary_text(content: str) -> None:
    _value_or_config_error(content.encode("utf-8", "replace"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yaml_like | json_values, st.booleans())
def test_arbitrary_structures(data: object, as_json: bool) -> None:
    text = json.dumps(data) if as_json else yaml.safe_dump(data, allow_unicode=True)
    _value_or_config_error(text.encode())
