"""The quick reading of rules files (``ferry.plan.plain_rules``) against the pydantic models of record
(``ferry.plan.rule_models``): over every rules file the tests, the README, the docs and the seed
notes hold, and over generated entries, both give the same rules and access settings, and the same
``ferry: …`` error for a bad file."""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferry.errors import ConfigError
from ferry.plan import imagesyncer, plain_rules, rule_models, skopeo_sync
from ferry.plan.files import Document, Format, YStr, read_document

ROOT = Path(__file__).resolve().parents[2]
SEED = Path("/work/shared/seed")


def _stand_in(node: ast.expr) -> str:
    """What a test computes, as a value of the same kind: a host where it names one, else a tag."""
    return "127.0.0.1:5000" if re.search(r"host|registry|url|port", ast.unparse(node), re.I) else "v1"


def _rendered(node: ast.JoinedStr) -> str:
    """An f-string with each placeholder stood in for: still the file the test writes, give or take a value."""
    return "".join(part.value if isinstance(part, ast.Constant) else _stand_in(part) for part in node.values)


def _literal(node: ast.expr) -> Any:
    """A dict or list display of a test as data (what it dumps into a rules file), computed parts stood in for."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return _rendered(node)
    if isinstance(node, ast.Dict):
        pairs = zip(node.keys, node.values, strict=True)
        return {_literal(k) if k is not None else _stand_in(v): _literal(v) for k, v in pairs}
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(item) for item in node.elts]
    return _stand_in(node)


def _strings_of(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "\n" in node.value.strip():
            yield node.value
        elif isinstance(node, ast.JoinedStr):
            text = _rendered(node)
            if "\n" in text.strip():
                yield text
        elif isinstance(node, ast.Dict) and any(isinstance(v, ast.Dict) for v in node.values):
            yield json.dumps(_literal(node), default=str)  # a rules file a test dumps


def _blocks_of(text: str) -> Iterator[str]:
    """Fenced code blocks of Markdown, and the ``{ … }`` blocks of plain notes (the seed's auth.json)."""
    yield from re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    yield from re.findall(r"^\{\n.*?^\}$", text, flags=re.S | re.M)


#: image-syncer's auth.json example as the seed notes quote it (its comments are Chinese there), so that
#: the corpus holds it where /work/shared is not mounted.
SEED_AUTH = """\
{
// one object per registry: a username and password; anonymous when absent
"quay.io": { // "registry" or "registry/namespace"
"username": "xxx", // may be "${env}" or "$env"
"password": "xxxxxxxxx",
"insecure": true // plain HTTP
},
"registry.cn-beijing.aliyuncs.com": {
"username": "xxx",
"password": "xxxxxxxxx"
},
"registry.hub.docker.com": {
"username": "xxx",
"password": "xxxxxxxxxx"
},
"quay.io/coreos": {
"username": "abc",
"password": "xxxxxxxxx",
"insecure": true
}
}
"""


@functools.cache
def corpus() -> list[str]:
    """Every multi-line string of the tests, the code blocks of README and docs, the seed notes' files,
    and the rules-file examples of the modules' docstrings."""
    texts: list[str] = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        texts.extend(_strings_of(path))
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(SEED.glob("*"))]:
        if path.is_file():
            texts.extend(_blocks_of(path.read_text(encoding="utf-8", errors="replace")))
    for module in (skopeo_sync, imagesyncer):
        texts.extend(block for block in (module.__doc__ or "").split("::\n") if block.startswith("\n    "))
    texts.append(SEED_AUTH)
    texts.append('{"127.0.0.1:5000": {"tls-verify": false, "images": {"proj0/repo0": [], "a/b": ["t1"]}}}')  # bench
    return list(dict.fromkeys(texts))


#: Tricky entries, each one either read alike by both paths or left by the quick one to the models.
TRICKY = """\
plain.example:
  images: {busybox: []}
quoted-bool.example:
  tls-verify: "true"
  images: {a: []}
words.example:
  tls-verify: off
  images: {a: []}
yes.example:
  tls-verify: yes
tagged-bool.example:
  tls-verify: !!bool "false"
int-bool.example:
  tls-verify: !!int 1
null-bool.example:
  tls-verify: ~
float.example:
  cert-dir: !!float 1.5
null-dir.example:
  cert-dir: ~
empty-dir.example:
  cert-dir: ""
creds.example:
  credentials: {username: john, password: ~, identitytoken: ""}
creds-null.example:
  credentials: ~
creds-empty.example:
  credentials: {}
creds-number.example:
  credentials: {username: !!int 7}
creds-list.example:
  credentials: [john, secret]
creds-extra.example:
  credentials: {user: john}
underscore.example:
  tls_verify: true
field-name.example:
  images_by_tag_regex: {a: x}
images-list.example:
  images: [busybox]
images-null.example:
  images: ~
images-string.example:
  images: busybox
images-odd-key.example:
  images: {!!int 3: []}
images-null-key.example:
  images: {~: []}
unknown.example:
  image: {busybox: []}
scalar.example: busybox
list.example: [busybox]
binary.example:
  cert-dir: !!binary aGVsbG8=
"""


def _parsed(tmp_path: Path, text: str, name: str, fmt: Format) -> Document | None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    try:
        return read_document(path, fmt=fmt, expected="rules")
    except ConfigError:
        return None


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", call()
    except ConfigError as err:
        return "error", (str(err), err.hint)


def _both(monkeypatch: pytest.MonkeyPatch, call: Callable[[], Any]) -> tuple[tuple[str, Any], tuple[str, Any]]:
    """``call`` as ferry runs it, then with the quick reading switched off (the models read everything)."""
    quick = _outcome(call)
    with monkeypatch.context() as m:
        m.setattr(plain_rules, "skopeo_entry", lambda raw: None)
        m.setattr(plain_rules, "auth_entry", lambda raw: None)
        models = _outcome(call)
    return quick, models


def _entries(data: object) -> Iterator[object]:
    """Values that a loader could hand to an entry check: those of the document's mappings, two deep."""
    if isinstance(data, dict):
        for value in data.values():
            yield value
            if isinstance(value, dict):
                yield from value.values()


@pytest.mark.parametrize("fmt", [Format.YAML, Format.JSON])
def test_both_paths_read_every_known_rules_file_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      fmt: Format) -> None:
    name = "rules.json" if fmt is Format.JSON else "rules.yaml"
    quick_reads = files = 0
    for index, text in enumerate([*corpus(), TRICKY]):
        doc = _parsed(tmp_path, text, f"{index}-{name}", fmt)
        if doc is None or not isinstance(doc.data, dict):
            continue
        files += 1
        path = tmp_path / f"{index}-{name}"
        calls: list[Callable[[], Any]] = [
            lambda path=path: imagesyncer.load_auth(path, env=False),
            lambda path=path: imagesyncer.load_config(path, default_registry="r.example", default_namespace="ns"),
        ]
        if fmt is Format.YAML:
            calls.append(lambda path=path: skopeo_sync.rules_from_skopeo_yaml(path, "dest.example/mirror"))
        for call in calls:
            quick, models = _both(monkeypatch, call)
            assert quick == models, (text, quick, models)
        for raw in _entries(doc.data):
            quick_reads += plain_rules.skopeo_entry(raw) is not None or plain_rules.auth_entry(raw) is not None
            _same_entry(doc, raw)
    assert files > 100 and quick_reads > 30, (files, quick_reads)  # the corpus is read, the quick path taken


def _same_entry(doc: Document, raw: object) -> None:
    """Whatever the quick reading vouches for, the models accept and read identically."""
    quick = plain_rules.skopeo_entry(raw)
    if quick is not None:
        assert rule_models.skopeo_entry(doc, ("r",), raw) == quick, raw
    quick_auth = plain_rules.auth_entry({} if raw is None else raw)
    if quick_auth is not None:
        assert rule_models.auth_entry(doc, ("r",), {} if raw is None else raw) == quick_auth, raw


def test_the_quick_path_takes_plain_entries_and_leaves_the_doubtful_to_the_models(tmp_path: Path) -> None:
    doc = _parsed(tmp_path, TRICKY, "tricky.yaml", Format.YAML)
    assert doc is not None
    taken = {str(key) for key, raw in doc.data.items() if plain_rules.skopeo_entry(raw) is not None}
    assert taken == {
        "plain.example", "words.example", "yes.example", "tagged-bool.example", "null-bool.example",
        "null-dir.example", "empty-dir.example", "creds.example", "creds-null.example", "creds-empty.example",
        "images-null.example",
    }
    words = plain_rules.skopeo_entry(doc.data["words.example"])
    assert words == plain_rules.SkopeoEntry(tls_verify=False)
    creds = plain_rules.skopeo_entry(doc.data["creds.example"])
    assert creds is not None and creds.credentials == plain_rules.Credentials("john", "", "")
    assert type(creds.credentials.username) is str  # not the reader's YStr: what the models give


def test_a_bad_entry_still_gets_the_models_message(tmp_path: Path) -> None:
    path = tmp_path / "sync.yaml"
    path.write_text('quay.io:\n  tls-verify: "yes"\n  images: {a: []}\n')
    with pytest.raises(ConfigError, match=r'sync\.yaml:1: key "quay\.io": "tls-verify" must be true or false'):
        skopeo_sync.load_skopeo_yaml(path)
    path.write_text("quay.io:\n  image: {a: []}\n")
    with pytest.raises(ConfigError, match=r'unknown key "image" \(expected images, images-by-tag-regex'):
        skopeo_sync.load_skopeo_yaml(path)
    auth = tmp_path / "auth.json"
    auth.write_text('{"quay.io": {"username": 7}}')
    with pytest.raises(ConfigError, match=r'auth\.json: key "quay\.io": "username" must be a string, found 7'):
        imagesyncer.load_auth(auth)


# Generated entries: keys the models know (and near misses), values of every kind the YAML reader makes.

def _ystr(text: str, plain: bool) -> YStr:
    value = YStr(text)
    value.plain = plain
    return value


_WORDS = st.sampled_from(["true", "false", "yes", "No", "on", "OFF", "y", "", "john", "/certs", "1", "~"])
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 2), st.floats(allow_nan=False, width=16),
    st.builds(_ystr, _WORDS, st.booleans()), _WORDS, st.binary(max_size=2),
)
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=2),
    st.dictionaries(st.one_of(_WORDS, st.builds(_ystr, _WORDS, st.booleans()), st.none()), inner, max_size=2),
), max_leaves=6)
_ENTRY_KEYS = st.sampled_from([
    "images", "images-by-tag-regex", "images-by-semver", "credentials", "tls-verify", "cert-dir",
    "username", "password", "identitytoken", "identityToken", "insecure", "tls_verify", "image",
])
_CREDS = st.dictionaries(st.sampled_from(["username", "password", "identitytoken", "user"]), _VALUES, max_size=3)
_ENTRIES = st.one_of(_VALUES, st.dictionaries(_ENTRY_KEYS, st.one_of(_VALUES, _CREDS), max_size=4))


@settings(max_examples=400, deadline=None)
@given(_ENTRIES)
def test_generated_entries_the_quick_path_takes_read_as_the_models_read_them(raw: object) -> None:
    _same_entry(Document("gen.yaml", raw, Format.YAML), raw)
