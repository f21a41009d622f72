"""Bad input: whatever it is, ferry answers a value or a ferry error — never another exception — and on
the command line one line ``ferry: …``, exit 2, no traceback.

Hypothesis covers what the loader tests (``test_plan_*.py``) do not: arbitrary *bytes* (not UTF-8,
NULs, BOMs) in every config format loader, docker/containers auth files, journal files, manifest bytes
with any declared type and expected digest, ``WWW-Authenticate`` headers, ``--creds``, ``--map``,
migration URLs, skopeo sync sources and destinations. Then the malformed inputs people actually write go
through the real CLI (in process: ``ferry.cli.main.run``).
"""

from __future__ import annotations

import base64
import gc
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferry import media
from ferry.auth import credentials
from ferry.auth.challenge import Challenge, parse_challenge
from ferry.cli import collector
from ferry.cli.argv import parse_bool
from ferry.cli.main import run
from ferry.errors import FerryError
from ferry.journal import Journal
from ferry.migration import Endpoint
from ferry.plan import imagesyncer, skopeo_sync
from ferry.plan.inventory import parse_maps
from ferry.refs import RegistryRef, parse_docker_ref

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIGEST = "sha256:" + "a" * 64


def value_or_ferry_error(fn: Callable[[], Any]) -> Any:
    """Call ``fn``: a value, or a FerryError whose message is one line. Anything else fails the test."""
    try:
        return fn()
    except FerryError as err:
        assert "\n" not in str(err), str(err)
        assert str(err).strip(), "an empty message"
        return err


# --------------------------------------------------------------------------------------------------
# Files: every loader, arbitrary bytes

nasty_bytes = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.text(max_size=120).map(lambda t: b"\xef\xbb\xbf" + t.encode("utf-8", "replace")),  # a BOM
    st.text(max_size=120).map(lambda t: t.encode("utf-16")),
    st.sampled_from([b"\x00", b"{\x00}", b"\t- a\n", b"--- !!python/object:os.system ls\n", b"&a [*a, *a]",
                     b"a: &x {b: *x}", b"{" * 200, b"[" * 1100, b"\xff\xfe{}", b"null", b"42", b'"s"']),
)


def _loaders(path: Path) -> list[Callable[[], Any]]:
    return [
        lambda: imagesyncer.load_auth(path),
        lambda: imagesyncer.load_images(path, default_registry="h.io", default_namespace="n"),
        lambda: imagesyncer.load_config(path),
        lambda: skopeo_sync.load_skopeo_yaml(path),
        lambda: credentials.read_auth_file(path),
        lambda: credentials.lookup_in_file(path, "reg.io", "a/b"),
    ]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=nasty_bytes, name=st.sampled_from(["f.json", "f.yaml", "f.yml", "f"]))
def test_every_loader_takes_any_bytes(data: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        for load in _loaders(path):
            value_or_ferry_error(load)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=12), c, max_size=3),
    max_leaves=15,
)
auth_entry = st.fixed_dictionaries({}, optional={
    "auth": st.one_of(st.binary(max_size=30).map(lambda b: base64.b64encode(b).decode()), st.text(max_size=20),
                      json_values),
    "identitytoken": st.text(max_size=10) | json_values,
    "username": st.text(max_size=10) | json_values,
    "password": st.text(max_size=10) | json_values,
})
docker_auth = st.fixed_dictionaries({}, optional={
    "auths": st.dictionaries(st.sampled_from(["reg.io", "https://reg.io/v1/", "reg.io/a", "reg.io/a/b", "x"])
                             | st.text(max_size=12), auth_entry | json_values, max_size=4) | json_values,
    # helper names that cannot run (ferry must say so, not crash); never a real helper
    "credHelpers": st.dictionaries(st.sampled_from(["reg.io", "other"]),
                                   st.sampled_from(["ferry-test-nonexistent", "", "a\x00b", "../x"]) | json_values,
                                   max_size=2),
    "credsStore": st.sampled_from(["", "ferry-test-nonexistent", "nul\x00"]) | json_values,
})


@SETTINGS
@given(data=docker_auth)
def test_docker_auth_files_of_any_shape(data: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "auth.json"
        path.write_text(json.dumps(data))
        for registry, repo in (("reg.io", "a/b"), ("docker.io", "library/x"), ("other", "")):
            value_or_ferry_error(lambda registry=registry, repo=repo: credentials.lookup_in_file(path, registry, repo))


@settings(max_examples=40, deadline=None)
@given(data=nasty_bytes)
def test_journal_files_of_any_content(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journal.db"
        path.write_bytes(data)
        journal = value_or_ferry_error(lambda: Journal(path))
        if isinstance(journal, Journal):
            assert data == b"", "only an empty file may be taken as a new journal"
            journal.close()


# --------------------------------------------------------------------------------------------------
# Protocol values from a server

manifest_like = st.one_of(
    st.binary(max_size=400),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"schemaVersion": st.sampled_from([1, 2, "2", None])}, optional={
        "mediaType": st.sampled_from(sorted(media.MANIFEST_TYPES)) | st.text(max_size=10) | json_values,
        "manifests": st.lists(json_values | st.fixed_dictionaries(
            {"digest": st.sampled_from([DIGEST, "sha256:zz", ""]), "size": st.integers() | json_values}),
            max_size=3) | json_values,
        "config": json_values | st.fixed_dictionaries({"digest": st.just(DIGEST), "size": st.integers()}),
        "layers": st.lists(json_values, max_size=2) | json_values,
        "fsLayers": st.lists(st.fixed_dictionaries({"blobSum": st.sampled_from([DIGEST, "x"])}) | json_values,
                             max_size=2) | json_values,
        "signatures": st.lists(json_values | st.fixed_dictionaries({"protected": st.text(max_size=30)
                                                                    | json_values}), max_size=2) | json_values,
        "subject": json_values,
        "blobs": json_values,
    }).map(lambda d: json.dumps(d).encode()),
)


@SETTINGS
@given(raw=manifest_like, declared=st.none() | st.sampled_from(sorted(media.MANIFEST_TYPES)) | st.text(max_size=30),
       digest=st.none() | st.sampled_from([DIGEST, "sha512:" + "b" * 128, "md5:x"]))
def test_manifest_bytes_parse_or_fail_cleanly(raw: bytes, declared: str | None, digest: str | None) -> None:
    value_or_ferry_error(lambda: media.parse_manifest(raw, declared, digest))
    assert value_or_ferry_error(lambda: media.manifest_digest(raw)) is not None


@SETTINGS
@given(st.text(max_size=200) | st.sampled_from([
    'Bearer realm="https://a/token",service="s",scope="repository:a:pull"', "Bearer", "Basic", 'Bearer realm=',
    'Bearer realm="unterminated', 'Bearer ,,,,', 'bearer REALM="x"', 'Negotiate abc', 'Bearer realm="a\\"b"']))
def test_any_www_authenticate_header(header: str) -> None:
    ch = parse_challenge(header)
    assert ch is None or isinstance(ch, Challenge)


# --------------------------------------------------------------------------------------------------
# Values people type


@SETTINGS
@given(st.text(max_size=80))
def test_command_line_values(text: str) -> None:
    value_or_ferry_error(lambda: credentials.parse_creds(text, password_env="FERRY_TEST_UNSET_PASSWORD"))
    value_or_ferry_error(lambda: parse_maps([text]))
    value_or_ferry_error(lambda: Endpoint.parse(text, "source"))
    value_or_ferry_error(lambda: parse_bool(text, "--tls-verify"))
    value_or_ferry_error(lambda: skopeo_sync.source_from_docker(text))
    value_or_ferry_error(lambda: skopeo_sync.destination_repository(text, RegistryRef("reg.io", "proj/app")))
    value_or_ferry_error(lambda: imagesyncer.expand_env(text, "key", {"HOME": "/home/x"}))
    value_or_ferry_error(lambda: parse_docker_ref(text, default_tag=False))


@SETTINGS
@given(st.text(max_size=40), st.text(max_size=40))
def test_credentials_in_a_url_are_never_echoed(user: str, password: str) -> None:
    """``user:password@host``: refused, and the message never quotes the password."""
    secret = f"Pw-{password}-Canary"
    for text in (f"{user}:{secret}@reg.io/a/b:v1", f"https://{user}:{secret}@reg.io"):
        err = value_or_ferry_error(lambda text=text: (parse_docker_ref(text) if not text.startswith("https")
                                                      else Endpoint.parse(text, "source")))
        if isinstance(err, FerryError):
            assert secret not in str(err)


# --------------------------------------------------------------------------------------------------
# Through the command line: one line, exit 2, no traceback


def cli(argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        cwd: Path) -> tuple[int, str, str]:
    monkeypatch.chdir(cwd)
    for var in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG", "XDG_RUNTIME_DIR", "FERRY_SRC_PASSWORD", "FERRY_DEST_PASSWORD",
                "DEFAULT_REGISTRY", "DEFAULT_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(cwd / "home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(cwd / "state"))
    try:
        with pytest.raises(SystemExit) as exit_info:
            run(argv)
    finally:  # the collector as the test process had it (run defers collections for its start-up)
        collector.resume()
        gc.unfreeze()
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


FILES: dict[str, bytes] = {
    "tabs.yaml": b"reg.io:\n\timages:\n\t\tbusybox: []\n",
    "syncer-tabs.yaml": b"reg.io/a/b: dst.io/a/b\n\treg.io/c/d: dst.io/c/d\n",
    "comment-auth.json": b'{\n  // my registry\n  "auths": {"reg.io": {"auth": "YTpi"}}\n}\n',
    "trailing-comma.json": b'{"reg.io/a/b": "dst.io/a/b",}',
    "empty.json": b"",
    "empty.yaml": b"  \n",
    "unknown-key.yaml": b"reg.io:\n  images:\n    busybox: []\n  tls_verify: false\n",
    "unknown-auth-key.json": b'{"quay.io": {"username": "u", "pasword": "p"}}',
    "unknown-config-key.yaml": b"auth: {}\nimages:\n  reg.io/a/b: dst.io/a/b\nextra: 1\n",
    "images-string.yaml": b"reg.io:\n  images: busybox\n",
    "tls-yes.yaml": b'reg.io:\n  tls-verify: "yes"\n  images:\n    busybox: []\n',
    "username-number.json": b'{"quay.io": {"username": 5, "password": "p"}}',
    "images-list.json": b'["reg.io/a/b"]',
    "missing-tag.json": b'{"reg.io/a/b:": "dst.io/a/b"}',
    "ok-images.json": b'{"reg.io/a/b:v1": "dst.io/a/b:v1"}',
    "http-in-ref.json": b'{"http://reg.io/a/b:v1": "dst.io/a/b"}',
    "duplicate.json": b'{"reg.io/a/b": "dst.io/a/b", "reg.io/a/b": "dst.io/x/y"}',
    "latin1.json": '{"reg.io/a/b": "dst.io/café"}'.encode("latin-1"),
    "docker-auth-binary.json": b"\xff\xfe\x00\x01",
    "docker-auth-bad-base64.json": b'{"auths": {"reg.io": {"auth": "!!not base64"}}}',
    "docker-auth-list.json": b'{"auths": [1, 2]}',
    "config-list.yaml": b"- a\n- b\n",
}

IMG = ["docker://reg.io/a/b:v1", "docker://dst.io/a/b:v1"]
CASES: list[tuple[str, list[str], str]] = [
    ("yaml tabs (skopeo)", ["sync", "--src", "yaml", "--dest", "docker", "tabs.yaml", "dst.io/m"], "tab character"),
    ("yaml tabs (image-syncer)", ["sync", "--images", "syncer-tabs.yaml"], "tab character"),
    ("json comment in an auth file", ["copy", "--authfile", "comment-auth.json", *IMG], "not valid JSON"),
    ("trailing comma", ["sync", "--images", "trailing-comma.json"], "trailing comma"),
    ("empty images file", ["sync", "--images", "empty.json"], "empty"),
    ("empty skopeo yaml", ["sync", "--src", "yaml", "--dest", "docker", "empty.yaml", "dst.io/m"], "empty"),
    ("empty config", ["sync", "--config", "empty.yaml"], "empty"),
    ("unknown key (skopeo)", ["sync", "--src", "yaml", "--dest", "docker", "unknown-key.yaml", "dst.io/m"],
     "tls_verify"),
    ("unknown key (auth)", ["sync", "--auth", "unknown-auth-key.json", "--images", "ok-images.json"], "pasword"),
    ("unknown key (config)", ["sync", "--config", "unknown-config-key.yaml"], "extra"),
    ("wrong type: images", ["sync", "--src", "yaml", "--dest", "docker", "images-string.yaml", "dst.io/m"],
     "expected a mapping"),
    ("wrong type: tls-verify", ["sync", "--src", "yaml", "--dest", "docker", "tls-yes.yaml", "dst.io/m"],
     "true or false"),
    ("wrong type: username", ["sync", "--auth", "username-number.json", "--images", "ok-images.json"],
     "must be a string"),
    ("wrong type: images list", ["sync", "--images", "images-list.json"], "found a list"),
    ("wrong type: config list", ["sync", "--config", "config-list.yaml"], "config-list.yaml"),
    ("missing tag in a file", ["sync", "--images", "missing-tag.json"], "invalid tag"),
    ("missing tag on the command line", ["copy", "docker://reg.io/a/b:", "docker://dst.io/a/b:v1"], "invalid tag"),
    ("http:// in a file", ["sync", "--images", "http-in-ref.json"], "http://"),
    ("http:// inside docker://", ["copy", "docker://http://reg.io/a/b:v1", "docker://dst.io/a/b:v1"], "http://"),
    ("http:// as sync source", ["sync", "--src", "docker", "--dest", "docker", "http://reg.io/a/b", "dst.io/m"],
     "http://"),
    ("duplicate key", ["sync", "--images", "duplicate.json"], "twice"),
    ("not UTF-8", ["sync", "--images", "latin1.json"], "UTF-8"),
    ("auth file not UTF-8", ["copy", "--authfile", "docker-auth-binary.json", *IMG], "UTF-8"),
    ("auth file bad base64", ["copy", "--authfile", "docker-auth-bad-base64.json", *IMG], "base64"),
    ("auth file wrong shape", ["copy", "--authfile", "docker-auth-list.json", *IMG], "auths"),
    ("a directory for a file", ["sync", "--images", "."], "directory"),
    ("a file that is not there", ["sync", "--images", "nope.json"], "nope.json"),
    ("bad --platform", ["copy", "--platform", "linux", *IMG], "platform"),
    ("bad --platform (inspect)", ["inspect", "--platform", "x/y/z/w", IMG[0]], "platform"),
    ("bad --map", ["migrate", "http://a.io", "http://b.io", "--map", "x"], "--map"),
    ("bad migrate URL", ["migrate", "ftp://a.io", "http://b.io"], "ftp://a.io"),
    ("migrate URL with a path", ["migrate", "https://a.io/v2/", "http://b.io"], "a.io/v2/"),
    ("same registry twice", ["migrate", "http://a.io", "http://a.io"], "same registry"),
    ("creds without a user", ["copy", "--src-creds", ":", *IMG], "username"),
    ("bad --tls-verify value", ["list-tags", "--tls-verify=yes please", "docker://reg.io/a/b"], "--tls-verify"),
    ("list-tags without docker://", ["list-tags", "reg.io/a/b"], "docker://"),
    ("list-tags with a tag", ["list-tags", "docker://reg.io/a/b:v1"], "tag"),
    ("sync with half the arguments", ["sync", "--src", "docker", "reg.io/a/b"], "--dest"),
    ("unsupported --dest", ["sync", "--src", "docker", "--dest", "oci", "reg.io/a/b", "x"], "--dest"),
]


@pytest.mark.parametrize(("argv", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_input_on_the_command_line(argv: list[str], needle: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(data)
    code, out, err = cli(argv, capsys, monkeypatch, tmp_path)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("ferry: warning:")]
    assert code == 2, err
    assert "Traceback" not in err and out == "", (out, err)
    assert len(lines) == 1 and lines[0].startswith("ferry: "), err
    assert needle.lower() in lines[0].lower(), lines[0]


def test_yaml_tab_error_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    text = yaml.safe_dump({"reg.io": {"images": {"a/b": ["v1"]}}}) + "\tc/d: [v2]\n"
    (tmp_path / "sync.yaml").write_text(text)
    code, _, err = cli(["sync", "--src", "yaml", "--dest", "docker", "sync.yaml", "dst.io/m"], capsys, monkeypatch,
                       tmp_path)
    assert code == 2 and f"sync.yaml:{len(text.splitlines())}:" in err, err
