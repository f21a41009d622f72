"""``ferry copy --policy FILE``: a ``reject`` for the source's scope refuses the copy (exit 3, one line,
nothing written); ``insecureAcceptAnything`` copies; ``--insecure-policy`` overrides the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import images as im
from tests.support.cli import FerryCLI
from tests.support.registry import Registry
from tests.support.skopeo import manifest_digest, push_layout, skopeo

pytestmark = pytest.mark.integration

INSECURE = ["--src-tls-verify=false", "--dest-tls-verify=false"]


def _write_policy(path: Path, scopes: dict[str, list[dict[str, str]]]) -> Path:
    path.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": scopes}}))
    return path


def test_copy_obeys_the_policy_for_the_source_scope(tmp_path: Path, registry: Registry) -> None:
    layout = im.Layout(tmp_path / "layout")
    im.docker_schema2_image(layout, "v1", seed=16)
    push_layout(layout.path, "v1", registry.ref("locked/app:v1"))
    push_layout(layout.path, "v1", registry.ref("open/app:v1"))
    digest = manifest_digest(registry.ref("locked/app:v1"))
    host = registry.host
    policy = _write_policy(tmp_path / "policy.json", {
        f"{host}/locked": [{"type": "reject"}],
        f"{host}/open": [{"type": "insecureAcceptAnything"}],
    })
    cli = FerryCLI(tmp_path / "cli")

    src = f"docker://{registry.ref('locked/app:v1')}"
    r = cli.run("copy", "--policy", str(policy), *INSECURE, src, f"docker://{registry.ref('copied/locked:v1')}")
    assert r.returncode == 3, r
    assert r.stderr.strip() == (f'ferry: policy rejects {src}: transports.docker["{host}/locked"] in {policy} '
                                "is reject"), r.stderr
    assert skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry.ref('copied/locked:v1')}",
                  check=False).returncode != 0  # nothing was copied

    r = cli.run("copy", "--policy", str(policy), *INSECURE, f"docker://{registry.ref('open/app:v1')}",
                f"docker://{registry.ref('copied/open:v1')}")
    assert r.returncode == 0, r
    assert manifest_digest(registry.ref("copied/open:v1")) == digest

    r = cli.run("copy", "--insecure-policy", "--policy", str(policy), *INSECURE, src,
                f"docker://{registry.ref('copied/locked:v1')}")
    assert r.returncode == 0, r
    assert manifest_digest(registry.ref("copied/locked:v1")) == digest


def test_a_malformed_policy_stops_the_copy_with_exit_2(tmp_path: Path, registry: Registry) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "rejct"}]}))
    r = FerryCLI(tmp_path / "cli").run("copy", "--policy", str(policy), *INSECURE,
                                       f"docker://{registry.ref('a/b:v1')}", f"docker://{registry.ref('c/d:v1')}")
    assert r.returncode == 2, r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f'ferry: {policy}: key "default" → entry 1: invalid policy'), r.stderr
