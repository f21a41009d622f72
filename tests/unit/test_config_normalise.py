"""Configuration kinds: normalising Harbor's answers (ids, timestamps, project ids away), translating
for the destination, comparing, and the secrets files (issue 10)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from ferry.configuration import ConfigOptions, parse_skip, steps
from ferry.errors import UsageError
from ferry.harbor.members import member_key
from ferry.harbor.resource import Context, differences
from ferry.harbor.retention import rule
from ferry.harbor.robots import Robots, permissions, prefix, short_name
from ferry.harbor.secrets import SecretSink, load_robot_secrets, new_secret
from ferry.harbor.webhooks import hidden_header, target


def test_differences_name_each_field_the_source_sets_and_ignore_destination_defaults() -> None:
    desired = {"auto_scan": "true", "severity": "high"}
    existing = {"auto_scan": "false", "severity": "high", "public": "false"}
    assert differences(desired, existing) == ["auto_scan: source true, destination false"]
    assert differences(desired, {**existing, "auto_scan": "true"}) == []


def test_differences_render_structures_on_one_line() -> None:
    assert differences({"event_types": ["PUSH_ARTIFACT"]}, {}) == \
        ['event_types: source ["PUSH_ARTIFACT"], destination null']


def test_robot_names() -> None:
    assert short_name("robot$team-a+ci") == "ci"
    assert short_name("robot$sync") == "sync"
    assert prefix("bot$team-a+ci") == "bot$"


def test_robot_permissions_are_sorted_and_default_to_allow() -> None:
    raw = [{"kind": "project", "namespace": "b", "access": [{"resource": "repository", "action": "push"},
                                                             {"resource": "artifact", "action": "read"}]},
           {"kind": "project", "namespace": "a", "access": []}]
    perms = permissions(raw)
    assert [p["namespace"] for p in perms] == ["a", "b"]
    assert perms[1]["access"] == [{"resource": "artifact", "action": "read", "effect": "allow"},
                                  {"resource": "repository", "action": "push", "effect": "allow"}]
    reordered = permissions([raw[1], {**raw[0], "access": list(reversed(raw[0]["access"]))}])
    assert reordered == perms


def test_robot_permissions_follow_the_project_map_but_not_wildcards() -> None:
    ctx = Context(src=None, dst=None, project_map={"team-a": "team-b"})  # type: ignore[arg-type]
    body = {"permissions": [{"kind": "project", "namespace": "team-a", "access": []},
                            {"kind": "project", "namespace": "*", "access": []}]}
    assert [p["namespace"] for p in Robots().translate(body, ctx)["permissions"]] == ["*", "team-b"]


def test_member_keys_tell_users_from_groups() -> None:
    assert member_key({"entity_type": "u", "entity_name": "alice"}) == "user:alice"
    assert member_key({"entity_type": "g", "entity_name": "devs"}) == "group:devs"


def test_retention_rule_drops_ids_and_empty_extras() -> None:
    raw = {"id": 7, "priority": 1, "action": "retain", "template": "latestPushedK", "params": {"latestPushedK": 3},
           "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**", "extras": ""}],
           "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}}
    out = rule(raw)
    assert "id" not in out
    assert out["tag_selectors"] == [{"kind": "doublestar", "decoration": "matches", "pattern": "**"}]


def test_webhook_targets_leave_the_auth_header_out() -> None:
    t = {"type": "http", "address": "http://127.0.0.1:9/hook", "auth_header": "Bearer s3cret"}
    assert "auth_header" not in target(t)
    assert not hidden_header(t)
    assert hidden_header({"address": "x"}) and hidden_header({"auth_header": "******"})
    assert not hidden_header({"auth_header": ""})


def test_skip_config_accepts_commas_and_refuses_unknown_kinds() -> None:
    assert parse_skip(["robots,members", "webhooks"]) == {"robots", "members", "webhooks"}
    with pytest.raises(UsageError, match="unknown kind robot"):
        parse_skip(["robot"])


def test_steps_follow_dependency_order_and_skipping_labels_skips_artifact_labels() -> None:
    names = [s.kind.name for s in steps(ConfigOptions(system=True), system_level=True)]
    assert names.index("users") < names.index("labels") < names.index("members") < names.index("robots")
    assert names.index("robots") < names.index("artifact-labels") < names.index("immutability")
    skipped = [s.kind.name for s in steps(ConfigOptions(skip=frozenset({"labels"})), system_level=False)]
    assert "labels" not in skipped and "artifact-labels" not in skipped and "users" not in skipped


@pytest.mark.parametrize(("text", "message"), [
    ("[1, 2]", "is not a mapping"),
    ("robot$a+ci: [x]", "secret of 'robot$a+ci' is not a non-empty string"),
    ("{unclosed", "neither JSON nor YAML"),
])
def test_malformed_robot_secrets_name_the_problem_not_the_secret(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=re.escape(message)):
        load_robot_secrets(str(path))


def test_robot_secrets_read_json_and_yaml(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"robot$a+ci": "Secret123"}')
    (tmp_path / "b.yaml").write_text("robot$a+ci: Secret123\n")
    assert load_robot_secrets(str(tmp_path / "a.json")) == load_robot_secrets(str(tmp_path / "b.yaml"))


def test_secret_sink_is_private_never_overwrites_and_keeps_every_entry(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    sink = SecretSink(str(path), "--robot-secrets-out")
    sink.check()
    assert not path.exists()  # nothing written until there is a secret
    sink.add("robot$a+ci", "one")
    sink.add("robot$a+cd", "two")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().count("robot$") == 2
    with pytest.raises(UsageError, match="already exists"):
        SecretSink(str(path), "--robot-secrets-out").check()


def test_new_secrets_satisfy_harbor() -> None:
    s = new_secret()
    assert len(s) == 32 and any(c.isupper() for c in s) and any(c.islower() for c in s) and any(c.isdigit() for c in s)
