"""What a user sees when something is wrong: one ``ferry: …`` line, the documented exit code, no traceback.

The CLI runs as a subprocess (``python -m ferry``) so exit codes and stderr are the real ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import images as im
from tests.support.cli import EXIT_CODES, FerryCLI, FerryResult
from tests.support.registry import Registry
from tests.support.skopeo import push_layout

pytestmark = pytest.mark.integration

INSECURE = ["--src-tls-verify=false", "--dest-tls-verify=false"]


@pytest.fixture
def cli(tmp_path: Path) -> FerryCLI:
    return FerryCLI(tmp_path / "cli")


def assert_one_line_error(r: FerryResult, code: int, *needles: str) -> str:
    """Exit ``code``, nothing on stdout, stderr exactly one ``ferry: `` line containing every needle."""
    assert r.returncode == code, r
    assert r.stdout == b"", r
    assert "Traceback" not in r.stderr, r
    assert len(r.lines) == 1, r
    line = r.lines[0]
    assert line.startswith("ferry: "), r
    for needle in needles:
        assert needle.lower() in line.lower(), f"{needle!r} not in {line!r}"
    return line


def test_unknown_host(cli: FerryCLI, registry: Registry) -> None:
    """Name resolution fails (the test harness resolves only loopback names): exit 4, names the host."""
    host = "registry.ferry-test.invalid"
    copy, inspect = cli.run_many(
        [
            ["copy", *INSECURE, f"docker://{host}/proj/app:v1", f"docker://{registry.ref('proj/app:v1')}"],
            ["inspect", f"docker://{host}:5000/proj/app:v1"],
        ]
    )
    assert_one_line_error(copy, 4, host, "unknown host")
    assert_one_line_error(inspect, 4, f"{host}:5000", "unknown host")


def test_connection_refused(cli: FerryCLI, registry: Registry, layout: im.Layout, refused_host: str) -> None:
    """A port with nothing listening, as source or destination: exit 4, names the address and asks
    whether the registry runs (after the retries)."""
    im.oci_image(layout, "img", seed=1)
    push_layout(layout.path, "img", registry.ref("proj/app:v1"))
    dead = refused_host
    src, dst = cli.run_many(
        [
            ["copy", *INSECURE, f"docker://{dead}/proj/app:v1", f"docker://{registry.ref('proj/copy:v1')}"],
            ["copy", *INSECURE, f"docker://{registry.ref('proj/app:v1')}", f"docker://{dead}/proj/app:v1"],
        ]
    )
    assert_one_line_error(src, 4, dead, "proj/app", "running")
    assert_one_line_error(dst, 4, dead, "proj/app", "running")
    assert registry.request("GET", "/v2/proj/copy/tags/list").status == 404


def test_unknown_repository_and_tag(cli: FerryCLI, registry: Registry, layout: im.Layout) -> None:
    """Exit 5, and the line names the repository and the tag that were not found."""
    im.oci_image(layout, "img", seed=1)
    push_layout(layout.path, "img", registry.ref("proj/app:v1"))
    results = cli.run_many(
        [
            ["inspect", "--tls-verify=false", f"docker://{registry.ref('proj/nothing:v1')}"],
            ["inspect", "--tls-verify=false", f"docker://{registry.ref('proj/app:v9')}"],
            ["copy", *INSECURE, f"docker://{registry.ref('proj/app:v9')}", f"docker://{registry.ref('other/app:v1')}"],
            ["list-tags", "--tls-verify=false", f"docker://{registry.ref('proj/nothing')}"],
            ["delete", "--tls-verify=false", f"docker://{registry.ref('proj/app:v9')}"],
        ]
    )
    repo_inspect, tag_inspect, tag_copy, tags, delete = results
    assert_one_line_error(repo_inspect, 5, registry.host, "proj/nothing")
    assert_one_line_error(tag_inspect, 5, registry.host, "proj/app", "v9")
    assert_one_line_error(tag_copy, 5, registry.host, "proj/app", "v9")
    assert_one_line_error(tags, 5, registry.host, "proj/nothing")
    assert_one_line_error(delete, 5, registry.host, "proj/app", "v9")
    assert registry.request("GET", "/v2/other/app/tags/list").status == 404  # the failed copy wrote nothing


MALFORMED = {
    "empty docker reference": "docker://",
    "http scheme": "http://registry.example/x",
    "no transport": "foo",
    "upper case repository": "docker://Host/UPPER",
    "short digest": "docker://registry.example:5000/app@sha256:abc",
    "bad tag": "docker://registry.example:5000/app:-bad",
}


def test_malformed_references(cli: FerryCLI) -> None:
    """Exit 2 before any connection (the hosts here do not exist): the line quotes the reference."""
    names = list(MALFORMED)
    digest = "sha256:" + "a" * 64
    results = cli.run_many(
        [
            *(["copy", MALFORMED[n], "docker://127.0.0.1:9/x/y:v1"] for n in names),
            # a destination that names a digest is refused too, before anything is read
            ["copy", "docker://127.0.0.1:9/a/b:v1", f"docker://127.0.0.1:9/a/b@{digest}"],
        ]
    )
    for name, r in zip(names, results, strict=False):
        line = assert_one_line_error(r, 2)
        assert MALFORMED[name] in line or MALFORMED[name].removeprefix("docker://") in line, (name, line)
    assert_one_line_error(results[-1], 2, "digest")


def test_bad_flags_and_arguments(cli: FerryCLI, tmp_path: Path) -> None:
    missing, bad_bool, unknown_flag, no_file = cli.run_many(
        [
            ["copy", "docker://127.0.0.1:9/a/b:v1"],
            ["copy", "--src-tls-verify=maybe", "docker://127.0.0.1:9/a/b:v1", "docker://127.0.0.1:9/c/d:v1"],
            ["inspect", "--no-such-flag", "docker://127.0.0.1:9/a/b:v1"],
            ["manifest-digest", str(tmp_path / "does-not-exist.json")],
        ]
    )
    assert_one_line_error(missing, 2, "DESTINATION-IMAGE")
    assert_one_line_error(bad_bool, 2, "--src-tls-verify", "maybe")
    assert_one_line_error(unknown_flag, 2, "--no-such-flag")
    assert_one_line_error(no_file, 2, "does-not-exist.json")


def test_debug_shows_traceback_and_keeps_exit_code(cli: FerryCLI, refused_host: str) -> None:
    dead = refused_host
    usage, network = cli.run_many(
        [
            ["--debug", "inspect", "docker://Host/UPPER"],
            ["--debug", "inspect", "--tls-verify=false", f"docker://{dead}/a/b:v1"],
        ]
    )
    for r, code in ((usage, 2), (network, 4)):
        assert r.returncode == code, r
        assert "Traceback" in r.stderr, r
        assert r.error.startswith("ferry: "), r  # the same one line closes the debug output
    assert "UPPER" in usage.error and dead in network.error


def test_exit_codes_are_documented(cli: FerryCLI) -> None:
    """The codes the tests above rely on are the ones errors.py documents (and nothing else)."""
    from ferry import errors

    documented = {
        cls.exit_code for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.FerryError)
    }
    assert documented <= EXIT_CODES
    assert {
        errors.UsageError.exit_code,
        errors.AuthError.exit_code,
        errors.NetworkError.exit_code,
        errors.NotFoundError.exit_code,
    } == {2, 3, 4, 5}
    for code in range(8):
        assert f"\n{code}   " in errors.__doc__, code
