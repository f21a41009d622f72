"""The glance at the command line (:mod:`ferry.cli.early`): which registries a copy, inspect, list-tags
or delete greets before typer is imported, with which TLS settings, and when it leaves that to the
command. What it greets must be keyed as the command's own greeting is, or the command greets again."""

from __future__ import annotations

import pytest

from ferry import warmup
from ferry.access import Access
from ferry.cli import early
from ferry.cli.argv import normalize_argv

Greeted = list[tuple[str, bool, str | None]]


@pytest.fixture
def greeted(monkeypatch: pytest.MonkeyPatch) -> Greeted:
    """What :func:`ferry.warmup.greet` was asked to greet: registry, TLS verification, certificate directory."""
    calls: Greeted = []

    def record(registry: str, access: Access) -> None:
        assert access.credential is None and not access.plain_http
        calls.append((registry, access.tls_verify, access.cert_dir))

    monkeypatch.setattr(warmup, "greet", record)
    return calls


SRC, DST = "docker://127.0.0.1:5000/team/app:v1", "docker://127.0.0.1:6000/copy/app:v1"


@pytest.mark.parametrize(("args", "expected"), [
    (["copy", SRC, DST], [("127.0.0.1:5000", True, None), ("127.0.0.1:6000", True, None)]),
    (["copy", "--src-tls-verify=false", SRC, DST], [("127.0.0.1:5000", False, None), ("127.0.0.1:6000", True, None)]),
    (["copy", "--dest-tls-verify", "false", SRC, DST, "--src-cert-dir", "/certs"],
     [("127.0.0.1:5000", True, "/certs"), ("127.0.0.1:6000", False, None)]),
    # a bare valued boolean is true (normalize_argv), and the next argument stays an argument
    (["copy", "--src-tls-verify=false", "--src-tls-verify", SRC, DST],
     [("127.0.0.1:5000", True, None), ("127.0.0.1:6000", True, None)]),
    (["--debug", "--insecure-policy", "copy", "--src-tls-verify=FALSE", SRC, "oci:/tmp/out:v1"],
     [("127.0.0.1:5000", False, None)]),
    (["copy", "oci:/tmp/in:v1", DST], [("127.0.0.1:6000", True, None)]),
    (["copy", "--dest-tls-verify=false", SRC, SRC.replace("team", "other")], [("127.0.0.1:5000", True, None)]),
    (["inspect", "--tls-verify=false", "--cert-dir=/c", SRC], [("127.0.0.1:5000", False, "/c")]),
    (["list-tags", "--raw", SRC.removesuffix(":v1")], [("127.0.0.1:5000", True, None)]),
    (["delete", "--creds", "alice", SRC], [("127.0.0.1:5000", True, None)]),
], ids=["defaults", "src-insecure", "space-forms", "bare-flag", "leading-flags", "layout-source", "one-registry",
        "inspect", "list-tags", "delete"])
def test_the_glance_greets_the_registries_with_the_flags_the_command_reads(
        greeted: Greeted, args: list[str], expected: Greeted) -> None:
    early.greet(normalize_argv(args))  # as ferry.cli.main hands them over
    assert greeted == expected


@pytest.mark.parametrize("args", [
    ["copy", "--max-requests", "10", SRC, DST],  # every request draws on the budget: no greeting
    ["copy", "--help", SRC, DST],
    ["--policy", "p.json", "copy", SRC, DST],  # a global option that takes a value: the command is not sure
    ["copy", "--src-creds", "dir:secret", SRC, DST],  # three reference-looking words for two places
    ["copy", SRC],
    ["copy", "--src-tls-verify=maybe", SRC, DST],
    ["copy", "docker://-bad-/x", DST],
    ["sync", "--src", "docker", "--dest", "docker", SRC, DST],
    ["copy"],
    [],
], ids=["max-requests", "help", "valued-global", "ambiguous", "too-few", "bad-bool", "bad-ref", "sync", "bare", "none"])
def test_the_glance_leaves_the_greeting_to_the_command_when_unsure(greeted: Greeted, args: list[str]) -> None:
    early.greet(normalize_argv(args))  # as ferry.cli.main hands them over
    assert greeted == []


def test_the_table_names_the_options_and_arguments_each_command_has() -> None:
    """``SIDES`` and ``LEADING_FLAGS`` against the commands typer builds: a renamed flag or a new image
    argument would otherwise make the glance greet with settings the command does not use."""
    import typer.main

    from ferry.cli import images  # noqa: F401  (registers the everyday commands)
    from ferry.cli.app import app

    group = typer.main.get_command(app)
    flags = {o for p in group.params if getattr(p, "is_flag", False) for o in p.opts}
    assert flags >= early.LEADING_FLAGS
    for name, prefixes in early.SIDES.items():
        command = group.commands[name]  # type: ignore[attr-defined]
        options = {o for p in command.params for o in p.opts}
        arguments = [p for p in command.params if p.param_type_name == "argument"]
        assert len(arguments) == len(prefixes), name
        for prefix in prefixes:
            assert {f"--{prefix}tls-verify", f"--{prefix}cert-dir"} <= options, name
