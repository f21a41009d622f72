"""image-syncer compatible auth/images/config files → AccessMap and Rules.

Quotes in comments are from image-syncer's README (v1.5, "Image sync configuration file" and
"Authentication file" sections) unless marked otherwise.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferry.access import Access, Credential
from ferry.errors import ConfigError
from ferry.plan.imagesyncer import expand_env, load_auth, load_config, load_images
from ferry.plan.model import Rule, TagSelector
from ferry.refs import RegistryRef

DIGEST = "sha256:14b267eb38aa85fd12d0e168fffa2d8a6187ac53a14a0212b0d4fce8d729598c"
OTHER_DIGEST = "sha256:" + "0" * 64


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def repo(text: str, tag: str | None = None) -> RegistryRef:
    registry, _, repository = text.partition("/")
    return RegistryRef(registry, repository, tag)


def summary(rules: list[Rule]) -> list[tuple[str, TagSelector, str]]:
    return [(str(r.source), r.select, str(r.destination)) for r in rules]


def config_error(excinfo: pytest.ExceptionInfo[ConfigError]) -> str:
    return excinfo.value.message


# --------------------------------------------------------------------------------------------------
# The README's own examples


README_IMAGES_YAML = f"""\
quay.io/coreos/kube-rbac-proxy: quay.io/ruohe/kube-rbac-proxy
quay.io/coreos/kube-rbac-proxy:v1.0: quay.io/ruohe/kube-rbac-proxy
quay.io/coreos/kube-rbac-proxy:v1.0,v2.0: quay.io/ruohe/kube-rbac-proxy
quay.io/coreos/kube-rbac-proxy@{DIGEST}: quay.io/ruohe/kube-rbac-proxy
quay.io/coreos/kube-rbac-proxy:v1.1:
  - quay.io/ruohe/kube-rbac-proxy1
  - quay.io/ruohe/kube-rbac-proxy2
quay.io/coreos/kube-rbac-proxy:/a+/: quay.io/ruohe/kube-rbac-proxy
"""

SRC = "quay.io/coreos/kube-rbac-proxy"
DST = "quay.io/ruohe/kube-rbac-proxy"


def test_readme_images_yaml(tmp_path: Path) -> None:
    rules = load_images(write(tmp_path, "images.yaml", README_IMAGES_YAML))
    assert summary(rules) == [
        # 2. "If the source images url contains no tags or digest, all the tags of source repository will be synced."
        (SRC, TagSelector(), DST),
        # 6. "If the destination images url has no digest or tags, it means the source images will keep the same tags"
        (SRC, TagSelector(tags=("v1.0",)), DST),
        # 3. "The source images url can have more than one tags, which should be seperated by comma"
        (SRC, TagSelector(tags=("v1.0", "v2.0")), DST),
        # 4. "The source images url can have at most one digest"
        (SRC, TagSelector(digests=(DIGEST,)), DST),
        # 8. "The 'destination images url' can also be an array, each of which follows the rules above."
        (SRC, TagSelector(tags=("v1.1",)), DST + "1"),
        (SRC, TagSelector(tags=("v1.1",)), DST + "2"),
        # 5. "The 'tags' part of source images url can be a regular expression which needs to have an additional
        #    prefix and suffix string `/`."
        (SRC, TagSelector(regex="a+"), DST),
    ]
    assert rules[0].origin == 'images.yaml:1: key "quay.io/coreos/kube-rbac-proxy"'.replace(
        "images.yaml", str(tmp_path / "images.yaml")
    )
    assert rules[5].origin.endswith('images.yaml:7: key "quay.io/coreos/kube-rbac-proxy:v1.1" → entry 2')


def test_readme_images_json_with_comments(tmp_path: Path) -> None:
    # The README writes its JSON examples with // comments; ferry strips comments outside strings.
    text = """{
    // Rules of image synchronization, each rule is a kv pair of source(key) and destination(value).
    "quay.io/coreos/kube-rbac-proxy": "quay.io/ruohe/kube-rbac-proxy",   /* all tags */
    "xxx/xxx/xx:tag1,tag2,tag3":"xxx/xxx/xx"
    // If a source doesn't include tags, it means all the tags of this repository need to be synchronized,
}"""
    rules = load_images(write(tmp_path, "images.json", text))
    assert summary(rules) == [
        (SRC, TagSelector(), DST),
        ("docker.io/xxx/xxx/xx", TagSelector(tags=("tag1", "tag2", "tag3")), "docker.io/xxx/xxx/xx"),
    ]


def test_comment_markers_inside_strings_are_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "auth.json", '{"reg.io": {"username": "a//b", "password": "/*x*/"}} // end')
    access = load_auth(path).for_path("reg.io/x")
    assert access.credential == Credential("a//b", "/*x*/")


# --------------------------------------------------------------------------------------------------
# Rule forms


@pytest.mark.parametrize(
    ("source", "destination", "expected"),
    [
        # "If a source includes just one tag (e.g., "a/b/c:1") ... if the destination doesn't include a tag,
        # synchronized image will keep the same tag." (README before v1.5)
        ("reg.io/a/b:1", "dst.io/x/y", [("reg.io/a/b", TagSelector(tags=("1",)), "dst.io/x/y")]),
        # "The repository name and tag of destination can be deferent from source"
        ("reg.io/a/b:1", "dst.io/x/renamed:2", [("reg.io/a/b", TagSelector(tags=("1",)), "dst.io/x/renamed:2")]),
        # 7. "The destination images url can have more than one tags, the number of which must be the same with
        #    the tags in the source images url ... (correspond from left to right)."
        (
            "reg.io/a/b:1,2",
            "dst.io/x/y:one,two",
            [
                ("reg.io/a/b", TagSelector(tags=("1",)), "dst.io/x/y:one"),
                ("reg.io/a/b", TagSelector(tags=("2",)), "dst.io/x/y:two"),
            ],
        ),
        # 4. "... the destination images url should only have no digest or the same digest at the same time."
        (
            f"reg.io/a/b@{DIGEST}",
            f"dst.io/x/y@{DIGEST}",
            [("reg.io/a/b", TagSelector(digests=(DIGEST,)), "dst.io/x/y")],
        ),
        (
            f"reg.io/a/b@{DIGEST}",
            "dst.io/x/y:pinned",
            [("reg.io/a/b", TagSelector(digests=(DIGEST,)), "dst.io/x/y:pinned")],
        ),
        # image-syncer reads repo:tag@digest as the digest (reference.Canonical wins)
        (f"reg.io/a/b:1.0@{DIGEST}", "dst.io/x/y", [("reg.io/a/b", TagSelector(digests=(DIGEST,)), "dst.io/x/y")]),
        (
            "reg.io/a/b:/^v1\\.[0-9]+$/",
            "dst.io/x/y",
            [("reg.io/a/b", TagSelector(regex="^v1\\.[0-9]+$"), "dst.io/x/y")],
        ),
        # a regex may itself hold slashes and colons
        ("reg.io/a/b:/^x:/y$/", "dst.io/x/y", [("reg.io/a/b", TagSelector(regex="^x:/y$"), "dst.io/x/y")]),
        (
            "localhost:5000/a:1",
            "localhost:5001/b",
            [("localhost:5000/a", TagSelector(tags=("1",)), "localhost:5001/b")],
        ),
        ("nginx:1.25", "dst.io/x/nginx", [("docker.io/library/nginx", TagSelector(tags=("1.25",)), "dst.io/x/nginx")]),
        # Docker Hub spelled the old image-syncer way is docker.io
        (
            "registry.hub.docker.com/library/nginx",
            "dst.io/x/nginx",
            [("docker.io/library/nginx", TagSelector(), "dst.io/x/nginx")],
        ),
        ("reg.io/a/b:1, 2", "dst.io/x/y", [("reg.io/a/b", TagSelector(tags=("1", "2")), "dst.io/x/y")]),
    ],
)
def test_rule_forms(
    tmp_path: Path, source: str, destination: str, expected: list[tuple[str, TagSelector, str]]
) -> None:
    path = write(tmp_path, "images.json", json.dumps({source: destination}))
    assert summary(load_images(path)) == expected


@pytest.mark.parametrize(
    ("source", "destination", "message"),
    [
        # 2. "... all the tags of source repository will be synced" — and then no tag can be named.
        (
            "reg.io/a/b",
            "dst.io/x/y:1",
            "the source has no tag, so it copies every tag of reg.io/a/b; the destination must not name a tag then",
        ),
        (
            "reg.io/a/b:/v.*/",
            "dst.io/x/y:1",
            "the source selects tags by the regex /v.*/; the destination must not name a tag then",
        ),
        (
            "reg.io/a/b:1,2",
            "dst.io/x/y:3",
            "the source names 2 tag(s) and the destination 1; renamed tags pair up left to right, "
            "so the counts must match",
        ),
        ("reg.io/a/b:1", f"dst.io/x/y@{DIGEST}", "the source names tags; the destination must not name a digest then"),
        (
            f"reg.io/a/b@{DIGEST}",
            f"dst.io/x/y@{OTHER_DIGEST}",
            f"the destination digest differs from the source digest {DIGEST}",
        ),
        (f"reg.io/a/b@{DIGEST}", "dst.io/x/y:1,2", "a digest source can be pushed under one tag, not 2"),
        (
            "reg.io/a/b:/v(/",
            "dst.io/x/y",
            'source: invalid regular expression "v(": missing ), unterminated subpattern at position 1',
        ),
        (
            "reg.io/a/b:/abc",
            "dst.io/x/y",
            'source "reg.io/a/b:/abc": a tag regex is written between slashes: repo:/regex/',
        ),
        ("reg.io/a/b:1,,2", "dst.io/x/y", 'source: "" is not a valid tag (letters, digits, _ . -, at most 128)'),
        ("reg.io/a/b:1", "dst.io/x/y:/re/", 'the destination "dst.io/x/y:/re/" cannot be a tag regex'),
        ("reg.io/A/b", "dst.io/x/y", "source: invalid repository name 'A/b' in 'reg.io/A/b'"),
        (
            "https://reg.io/a/b",
            "dst.io/x/y",
            "source: invalid reference 'https://reg.io/a/b': a scheme like http:// does not belong in an "
            "image reference",
        ),
    ],
)
def test_rule_errors(tmp_path: Path, source: str, destination: str, message: str) -> None:
    path = write(tmp_path, "images.json", json.dumps({source: destination}))
    with pytest.raises(ConfigError) as excinfo:
        load_images(path)
    assert config_error(excinfo) == f"{path}: key {json.dumps(source)}: {message}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # "When a destination is an empty string, source will be synchronized to
        #  "default-registry/default-namespace" with the same repository name and tags" (README before v1.5);
        # image-syncer split urls as registry/namespace/repository, so "repository" is the path after the
        # first component.
        ("quay.io/coreos/kube-rbac-proxy", "harbor.local/mirror/kube-rbac-proxy"),
        ("harbor.old/proj/team/app:1", "harbor.local/mirror/team/app"),
        ("quay.io/app", "harbor.local/mirror/app"),
        ("nginx", "harbor.local/mirror/nginx"),
    ],
)
def test_empty_destination_uses_defaults(tmp_path: Path, source: str, expected: str) -> None:
    path = write(tmp_path, "images.yaml", f'{source}: ""\n')
    (rule,) = load_images(path, default_registry="harbor.local", default_namespace="mirror")
    assert str(rule.destination) == expected
    assert rule.select.tags == (("1",) if source.endswith(":1") else ())


def test_empty_destination_without_defaults(tmp_path: Path) -> None:
    # 1. "Neither of the source images url and the destination images url should be empty." (v1.5)
    path = write(tmp_path, "images.yaml", "quay.io/a/b:\n")  # YAML null, as empty
    with pytest.raises(ConfigError) as excinfo:
        load_images(path, default_registry="harbor.local")
    assert config_error(excinfo) == (
        f'{path}:1: key "quay.io/a/b": the destination is empty; that needs both a default registry '
        "and a default namespace"
    )
    assert "DEFAULT_REGISTRY" in (excinfo.value.hint or "")


def test_destination_list_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "images.json", '{"reg.io/a/b": []}')
    with pytest.raises(ConfigError, match=r'key "reg.io/a/b": the destination list is empty$'):
        load_images(path)
    path = write(tmp_path, "images.json", '{"reg.io/a/b": ["dst.io/x/y", 3]}')
    with pytest.raises(ConfigError, match=r'key "reg.io/a/b" → entry 2: a destination must be a string$'):
        load_images(path)
    path = write(tmp_path, "images.json", '{"reg.io/a/b": {"x": 1}}')
    with pytest.raises(ConfigError, match=r"the destination must be a string or a list of strings$"):
        load_images(path)


def test_destination_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIRROR", "harbor.local/mirror")
    path = write(tmp_path, "images.yaml", "reg.io/a/b: ${MIRROR}/b\n")
    assert str(load_images(path)[0].destination) == "harbor.local/mirror/b"
    monkeypatch.delenv("MIRROR")
    with pytest.raises(ConfigError) as excinfo:
        load_images(path)
    assert config_error(excinfo) == f'{path}:1: key "reg.io/a/b": environment variable MIRROR is not set'
    assert excinfo.value.hint == "export it, or write $$"


def test_yaml_scalars_keep_their_text(tmp_path: Path) -> None:
    # Go's YAML decoders put a scalar's text into a string field: 3.10 is "3.10", not the float 3.1.
    path = write(tmp_path, "images.yaml", "reg.io/a/b:3.10: reg.io/c/d:3.1\n")
    (rule,) = load_images(path)
    assert rule.select.tags == ("3.10",)
    assert rule.destination.tag == "3.1"


# --------------------------------------------------------------------------------------------------
# Authentication


README_AUTH_JSON = """{
    // Authentication fields, each object has a URL as key and a username/password pair as value,
    "quay.io": {        // This "registry" or "registry/namespace" string should be the same as registry
        "username": "xxx",       // Optional, if the value is a string of "${env}" or "$env", ...
        "password": "${QUAY_PASSWORD}",
        "insecure": true         // "insecure" field needs to be true if this registry is a http service
    },
    "registry.cn-beijing.aliyuncs.com": {
        "username": "$ALI_USER",
        "password": "xxxxxxxxx"
    },
    "registry.hub.docker.com": {
        "username": "hub",
        "password": "xxxxxxxxxx"
    },
    "quay.io/coreos": {     // "registry/namespace" format is supported after v1.0.3 of image-syncer
        "username": "abc",
        "password": "xxxxxxxxx",
        "insecure": true
    }
}"""


def test_readme_auth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUAY_PASSWORD", "s3cret")
    monkeypatch.setenv("ALI_USER", "ali")
    access = load_auth(write(tmp_path, "auth.json", README_AUTH_JSON))
    quay = access.for_path("quay.io/prometheus/node-exporter")
    # "insecure" field needs to be true if this registry is a http service
    assert quay == Access(credential=Credential("xxx", "s3cret"), tls_verify=False, plain_http=True)
    assert access.for_path("registry.cn-beijing.aliyuncs.com/ns/app").credential == Credential("ali", "xxxxxxxxx")
    # "The format of "registry/namespace" will be more prior matched than "registry""
    assert access.for_path("quay.io/coreos/etcd").credential == Credential("abc", "xxxxxxxxx")
    assert access.for_path("quay.io/coreosx/etcd").credential == Credential("xxx", "s3cret")  # prefix is per component
    # the old Docker Hub spelling applies to docker.io references
    assert access.for_path("docker.io/library/nginx").credential == Credential("hub", "xxxxxxxxxx")
    # "Access will be anonymous if no authentication information is found."
    assert access.for_path("ghcr.io/x/y") == Access()


def test_auth_yaml_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("env", "from-env")
    text = """\
quay.io:
  username: xxx
  password: 0123   # Go reads the text, not an octal number
  insecure: yes    # a YAML 1.1 boolean, as yaml.v2 reads it
docker.io:
  username: "${env}"
  password: "$env"
localhost:5000/team/:
  identityToken: s3cr3t-token
"""
    access = load_auth(write(tmp_path, "auth.yaml", text))
    assert access.for_path("quay.io/a/b") == Access(Credential("xxx", "0123"), tls_verify=False, plain_http=True)
    assert access.for_path("docker.io/library/x").credential == Credential("from-env", "from-env")
    token = access.for_path("localhost:5000/team/app").credential
    assert token is not None and token.identity_token == "s3cr3t-token" and token.username == ""
    assert "s3cr3t" not in repr(token)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        ("${A}", "alpha"),
        ("$A", "alpha"),
        ("x-${A}-$B-y", "x-alpha-beta-y"),
        ("pa$$word", "pa$word"),  # $$ is a literal $
        ("cost$", "cost$"),  # a $ not followed by a name stays
        ("$1x", "$1x"),
        ("${A}${B}", "alphabeta"),
    ],
)
def test_expand_env(value: str, expected: str) -> None:
    assert expand_env(value, "f", {"A": "alpha", "B": "beta"}) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("${MISSING}", "f: environment variable MISSING is not set"),
        ("$MISSING", "f: environment variable MISSING is not set"),
        ("${A", "f: unterminated ${ (write $$ for a literal $)"),
        ("${1A}", 'f: "${1A}" is not a valid environment variable reference'),
        ("${a\nb}", 'f: "${a\\nb}" is not a valid environment variable reference'),
    ],
)
def test_expand_env_errors(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        expand_env(value, "f", {"A": "alpha"})
    assert excinfo.value.message == message


def test_unset_variable_in_auth_names_key_and_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE", raising=False)
    path = write(tmp_path, "auth.yaml", "quay.io:\n  username: u\n  password: ${NOPE}\n")
    with pytest.raises(ConfigError) as excinfo:
        load_auth(path)
    assert config_error(excinfo) == f'{path}:1: key "quay.io": password: environment variable NOPE is not set'


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("auth.json", '{"quay.io": {"insecure": "true"}}', 'key "quay.io": "insecure" must be true or false'),
        ("auth.yaml", 'quay.io:\n  insecure: "true"\n', ':1: key "quay.io": "insecure" must be true or false'),
        ("auth.yaml", "quay.io:\n  insecure: 1\n", ':1: key "quay.io": "insecure" must be true or false'),
        ("auth.json", '{"quay.io": {"username": 7}}', 'key "quay.io": "username" must be a string, found 7'),
        (
            "auth.json",
            '{"quay.io": {"user": "x"}}',
            'key "quay.io": unknown key "user" (expected username, password, identityToken, insecure)',
        ),
        (
            "auth.json",
            '{"quay.io": "x"}',
            'key "quay.io": expected a mapping with username, password, identityToken, insecure',
        ),
        (
            "auth.json",
            '{"myuser": {}}',
            'key "myuser": expected a registry host (with a dot, a port, or localhost), optionally followed by '
            "/namespace",
        ),
        (
            "auth.json",
            '{"https://quay.io": {}}',
            'key "https://quay.io": a registry key has no scheme; write "quay.io"',
        ),
        (
            "auth.json",
            '{"quay.io/Team": {}}',
            'key "quay.io/Team": "Team" is not a valid namespace path (lowercase a-z 0-9 . _ -)',
        ),
        ("auth.json", '{"quay.io": {}, "quay.io": {}}', 'key "quay.io" appears twice'),
        (
            "auth.json",
            '{"docker.io": {}, "index.docker.io": {}}',
            "key \"index.docker.io\": names the same registry prefix 'docker.io' as another key",
        ),
        (
            "auth.json",
            '["quay.io"]',
            'expected a mapping of "registry[/namespace]" to {username, password, insecure}, found a list',
        ),
    ],
)
def test_auth_errors(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as excinfo:
        load_auth(path)
    got = config_error(excinfo)
    assert got.startswith(str(path))
    assert got[len(str(path)) :] in (f": {message}", message)


def test_auth_null_entry_is_anonymous(tmp_path: Path) -> None:
    access = load_auth(write(tmp_path, "auth.yaml", "quay.io:\n"))
    assert access.for_path("quay.io/a/b") == Access()


# --------------------------------------------------------------------------------------------------
# File-level errors


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "images.json",
            "",
            "the file is empty; expected a mapping of source image to destination image (or a list of them)",
        ),
        (
            "images.json",
            "// only a comment\n",
            "the file is empty; expected a mapping of source image to destination image (or a list of them)",
        ),
        (
            "images.yaml",
            "# nothing\n",
            "the file is empty; expected a mapping of source image to destination image (or a list of them)",
        ),
        ("images.json", '{"a/b/c": "x/y/z",\n "d": }', ":2:7: invalid JSON: Expecting value"),
        ("images.json", '{"a/b/c": "x/y/z",\n}', ":1: invalid JSON: a comma before } (JSON has no trailing commas)"),
        ("images.json", '{"a/b/c": "x/y/z", "a/b/c": "x/y/w"}', ': key "a/b/c" appears twice'),
        ("images.yaml", "a/b/c: x/y/z\nd/e/f: [x\n", ":3:1: invalid YAML: expected ',' or ']', but got '<stream end>'"),
        ("images.yaml", "a/b/c:\n\t- x/y/z\n", ":2: a tab character indents this line; YAML indents with spaces only"),
        ("images.yaml", "a/b/c: x\na/b/c: y\n", ':2: key "a/b/c" appears twice'),
        ("images.yaml", "a: b\n---\nc: d\n", ": holds 2 YAML documents (separated by ---); expected one"),
        (
            "images.yaml",
            "- a/b/c\n",
            ": expected a mapping of source image to destination image (or a list of them), found a list",
        ),
        (
            "images.yaml",
            "just text\n",
            ": expected a mapping of source image to destination image (or a list of them), "
            'found the string "just text"',
        ),
        ("images.yaml", "? [a, b]\n: c\n", ":1: a mapping key must be a plain value, not a list or mapping"),
    ],
)
def test_file_errors(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(ConfigError) as excinfo:
        load_images(path)
    got = config_error(excinfo)
    assert got == f"{path}{message}" or got == f"{path}: {message}"


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing.json: no such file$"):
        load_images(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match=r": is a directory, expected a file$"):
        load_images(tmp_path)
    bad = tmp_path / "images.yaml"
    bad.write_bytes(b"a/b/c: x/y/z\nd: \xff\n")
    with pytest.raises(ConfigError, match=r"images.yaml:2: not UTF-8 text$"):
        load_images(bad)


def test_format_guessed_without_extension(tmp_path: Path) -> None:
    assert len(load_images(write(tmp_path, "rules", '// c\n{"reg.io/a/b": "reg.io/c/d"}'))) == 1
    assert len(load_images(write(tmp_path, "rules.txt", "reg.io/a/b: reg.io/c/d\n"))) == 1


# --------------------------------------------------------------------------------------------------
# The older --config file


def test_load_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW", "expanded")
    text = """{
    "auth": {"quay.io": {"username": "u", "password": "${PW}"}},
    "images": {"quay.io/coreos/etcd:v3": ""}
}"""
    path = write(tmp_path, "config.json", text)
    rules, access = load_config(path, default_registry="harbor.local", default_namespace="m")
    assert summary(rules) == [("quay.io/coreos/etcd", TagSelector(tags=("v3",)), "harbor.local/m/etcd")]
    assert rules[0].origin == f'{path}: key "images" → "quay.io/coreos/etcd:v3"'
    # image-syncer expands environment variables only in a separate --auth file
    assert access.for_path("quay.io/x/y").credential == Credential("u", "${PW}")
    _, access = load_config(path, default_registry="h.io", default_namespace="m", expand_auth_env=True)
    assert access.for_path("quay.io/x/y").credential == Credential("u", "expanded")


def test_load_config_yaml_without_auth(tmp_path: Path) -> None:
    rules, access = load_config(write(tmp_path, "config.yaml", "images:\n  reg.io/a/b: reg.io/c/d\n"))
    assert len(rules) == 1 and access.entries == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"auth": {}}', ': no "images" key; it holds the sync rules'),
        ('{"images": {}, "extra": 1}', ': key "extra": unknown key (expected auth and images)'),
        (
            '{"images": [], "auth": {}}',
            ': key "images": expected a mapping of source image to destination image (or a list of them), found a list',
        ),
        (
            '{"images": {}, "auth": {"quay.io": {"insecure": 1}}}',
            ': key "auth" → "quay.io": "insecure" must be true or false',
        ),
    ],
)
def test_load_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "config.json", text)
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert config_error(excinfo) == f"{path}{message}"


# --------------------------------------------------------------------------------------------------
# Any input: a value or a ConfigError, never another exception

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=30), children, max_size=4),
    max_leaves=20,
)
image_like = st.sampled_from(
    ["reg.io/a/b", "reg.io/a/b:1", "reg.io/a/b:1,2", f"reg.io/a/b@{DIGEST}", "reg.io/a/b:/x+/", "", "quay.io", "$X"]
)
structured = st.dictionaries(
    image_like | st.text(max_size=20), image_like | st.lists(image_like, max_size=3) | json_values, max_size=4
)
auth_like = st.dictionaries(
    st.sampled_from(["quay.io", "quay.io/ns", "docker.io", "x", "localhost:5000"]) | st.text(max_size=10),
    st.dictionaries(
        st.sampled_from(["username", "password", "insecure", "identityToken", "other"]),
        st.booleans() | st.text(max_size=10) | st.integers(),
        max_size=4,
    )
    | json_values,
    max_size=4,
)

LOADERS = [
    lambda p: load_auth(p),
    lambda p: load_images(p, default_registry="h.io", default_namespace="n"),
    lambda p: load_config(p),
]


def _must_be_value_or_config_error(name: str, content: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(content.encode("utf-8", "replace") if isinstance(content, str) else content)
        for load in LOADERS:
            try:
                load(path)
            except ConfigError as err:
                assert "\n" not in str(err), "messages are one line"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.text(max_size=200), name=st.sampled_from(["f.json", "f.yaml", "f"]))
def test_arbitrary_text(content: str, name: str) -> None:
    _must_be_value_or_config_error(name, content)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=structured | auth_like | json_values, as_yaml=st.booleans())
def test_arbitrary_structures(data: object, as_yaml: bool) -> None:
    if as_yaml:
        _must_be_value_or_config_error("f.yaml", yaml.safe_dump(data, allow_unicode=True))
    else:
        _must_be_value_or_config_error("f.json", json.dumps(data))
