"""``ferry migrate`` moves a Harbor's configuration, not only its images (issue 10).

The source is one Harbor test server per module, its configuration written through its Harbor API
(never by ferry, :mod:`tests.support.harbor_config_seed`): members with every kind of role, project
and system robots, a retention policy, an immutable tag rule, global and project labels (two on an
artifact), a webhook with an auth header, a repository description, project settings and CVE
allowlists. Each test migrates into a
fresh destination with the real ``ferry`` command and reads both Harbors back through their API,
normalised by this module (not by ferry), to compare them object by object.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import FerryCLI, FerryResult
from tests.support.harbor import HarborServer
from tests.support.harbor_config_compare import configuration
from tests.support.harbor_config_seed import CI_SECRET, HOOK_HEADER, USERS, call, listing, ok, seed_configuration
from tests.support.harbor_marks import HARBOR_TESTS, Factory
from tests.support.harbor_seed import HarborSeeder

pytest_plugins = ["tests.support.harbor_fixtures"]

pytestmark = HARBOR_TESTS

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def api_writes(server: HarborServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in list(server.request_log) if r.method in WRITES]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HarborServer]:
    work = tmp_path_factory.mktemp("harbor-config-source")
    with HarborServer(work / "server") as server:
        seeder = HarborSeeder(server, work)
        seeder.project("team-a", public=False)
        seeder.project("team-b", public=True)
        seeder.image("team-a/app:v1", seed=1)
        seeder.image("team-a/app:v2", seed=2)
        seeder.image("team-b/tool:1", seed=3)
        seed_configuration(server)
        yield server


# --------------------------------------------------------------------------------------------
# running ferry
# --------------------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path) -> FerryCLI:
    return FerryCLI(tmp_path / "cli")


def migrate(cli: FerryCLI, src: HarborServer, dst: HarborServer, tmp: Path, *extra: str) -> FerryResult:
    args = ["migrate", src.url, dst.url, "--src-creds", "admin", "--dest-creds", "admin", *extra]
    if "--dry-run" not in extra:
        args += ["--journal", str(tmp / "journal.db")]
    env = {"FERRY_SRC_PASSWORD": src.admin_creds[1], "FERRY_DEST_PASSWORD": dst.admin_creds[1]}
    return cli.run(*args, env=env, timeout=300)


def secrets_file(tmp: Path) -> Path:
    path = tmp / "known.yaml"
    path.write_text(f"robot$team-a+ci: {CI_SECRET}\n")
    return path


def assert_no_secret(text: str, *secrets: str) -> None:
    for s in (CI_SECRET, HOOK_HEADER, *USERS.values(), *secrets):
        assert s not in text


# --------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------


def test_whole_configuration_migrates_robot_keeps_its_secret_and_rerun_changes_nothing(
    source: HarborServer, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    dst = harbor_factory()
    out, passwords, report = tmp_path / "robots.json", tmp_path / "users.json", tmp_path / "report.json"
    first = migrate(cli, source, dst, tmp_path, "--system", "--robot-secrets", str(secrets_file(tmp_path)),
                    "--robot-secrets-out", str(out), "--user-passwords-out", str(passwords), "--report", str(report))
    assert first.returncode == 0, first.stderr

    assert configuration(dst) == configuration(source)

    # robots without a known secret got new ones, in a private file; the known one is not there
    new = json.loads(out.read_text())
    assert set(new) == {"robot$team-b+old", "robot$sync"}
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    users = json.loads(passwords.read_text())
    assert set(users) == set(USERS) and stat.S_IMODE(os.stat(passwords).st_mode) == 0o600
    assert_no_secret(first.out + first.stderr + report.read_text(), *new.values(), *users.values())

    # the migrated robot logs in at the destination with the secret the pipelines already have
    inspect = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds",
                              f"robot$team-a+ci:{CI_SECRET}", f"docker://{dst.ref('team-a/app:v1')}"],
                             capture_output=True, text=True, timeout=60)
    assert inspect.returncode == 0, inspect.stderr
    created_user = ("alice", users["alice"])
    assert call(dst, "GET", "/users/current", creds=created_user)[0] == 200

    sections = json.loads(report.read_text())["configuration"]
    assert {e["name"]: e["action"] for e in sections["team-a"]["members"]} == \
        {"user:admin": "unchanged", "user:alice": "created", "user:bob": "created"}
    assert [e["action"] for e in sections["(system)"]["users"]] == ["created"] * 3
    hook = sections["team-a"]["webhooks"][0]
    assert hook["action"] == "created" and hook["note"] == ""  # the source revealed the header

    before = len(api_writes(dst))
    again = migrate(cli, source, dst, tmp_path, "--system", "--robot-secrets", str(secrets_file(tmp_path)),
                    "--robot-secrets-out", str(tmp_path / "robots-2.json"), "--user-passwords-out",
                    str(tmp_path / "users-2.json"))
    assert again.returncode == 0, again
    assert "nothing to change" in again.stderr
    assert api_writes(dst)[before:] == []
    assert not (tmp_path / "robots-2.json").exists()


def test_differing_objects_are_updated_and_the_report_shows_the_difference(
    source: HarborServer, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    dst = harbor_factory()
    dst.add_user("alice", USERS["alice"])
    ok(dst, "POST", "/projects", {"project_name": "team-a", "metadata": {"public": "false"}})
    ok(dst, "POST", "/projects/team-a/members", {"role_id": 3, "member_user": {"username": "alice"}})
    ok(dst, "POST", "/labels", {"name": "prod", "color": "#FFFFFF", "description": "in production", "scope": "g"})
    report = tmp_path / "report.json"
    result = migrate(cli, source, dst, tmp_path, "--create-users", "--project", "team-a", "--skip-config", "robots",
                     "--robot-secrets-out", str(tmp_path / "robots.json"),
                     "--user-passwords-out", str(tmp_path / "users.json"), "--report", str(report))
    assert result.returncode == 0, result.stderr
    sections = json.loads(report.read_text())["configuration"]
    alice = next(e for e in sections["team-a"]["members"] if e["name"] == "user:alice")
    assert alice == {"name": "user:alice", "action": "updated", "note": "",
                     "differences": ["role: source developer, destination guest"]}
    prod = sections["(system)"]["labels"][0]
    assert prod["action"] == "updated" and prod["differences"] == ["color: source #C92100, destination #FFFFFF"]
    assert "updated" in result.stderr and "role: source developer, destination guest" in result.stderr
    got, want = configuration(dst, ("team-a",))["team-a"], configuration(source, ("team-a",))["team-a"]
    assert {k: v for k, v in got.items() if k != "robots"} == {k: v for k, v in want.items() if k != "robots"}
    assert got["robots"] == {}  # skipped


def test_config_only_moves_configuration_without_images(source: HarborServer, harbor_factory: Factory,
                                                        cli: FerryCLI, tmp_path: Path) -> None:
    dst = harbor_factory()
    result = migrate(cli, source, dst, tmp_path, "--config-only", "--create-users", "--skip-config",
                     "labels,descriptions", "--robot-secrets", str(secrets_file(tmp_path)),
                     "--robot-secrets-out", str(tmp_path / "robots.json"),
                     "--user-passwords-out", str(tmp_path / "users.json"))
    assert result.returncode == 0, result.stderr
    got, want = configuration(dst), configuration(source)
    assert listing(dst, "/projects/team-a/repositories") == []
    for kind in ("members", "robots", "retention", "immutable", "webhooks", "metadata", "allowlist"):
        assert got["team-a"][kind] == want["team-a"][kind], kind
    assert got["team-a"]["labels"] == {}


def test_dry_run_shows_the_plan_with_what_cannot_be_done_and_writes_nothing(
    source: HarborServer, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    dst = harbor_factory()
    report = tmp_path / "plan.json"
    result = migrate(cli, source, dst, tmp_path, "--dry-run", "--report", str(report),
                     "--robot-secrets", str(secrets_file(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert api_writes(dst) == []
    sections = json.loads(report.read_text())["configuration"]
    bob = next(e for e in sections["team-a"]["members"] if e["name"] == "user:bob")
    assert bob["action"] == "cannot" and "--create-users" in bob["note"]
    assert {e["name"]: e["action"] for e in sections["team-a"]["robots"]} == {"ci": "create"}
    assert sections["team-a"]["immutability"][0]["action"] == "create"
    assert "configuration plan" in result.out
    assert_no_secret(result.out + result.stderr + report.read_text())


def test_a_refused_object_is_reported_and_the_rest_migrates_then_exit_1(
    source: HarborServer, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    dst = harbor_factory()  # database auth, and alice, bob, carol are unknown to it
    report = tmp_path / "report.json"
    result = migrate(cli, source, dst, tmp_path, "--robot-secrets-out", str(tmp_path / "robots.json"),
                     "--report", str(report))
    assert result.returncode == 1, result.stderr
    assert "configuration object(s) not migrated" in result.stderr
    assert "user 'alice' does not exist at the destination" in result.stderr
    got, want = configuration(dst), configuration(source)
    assert got["team-a"]["robots"] == want["team-a"]["robots"]
    assert got["team-a"]["webhooks"] == want["team-a"]["webhooks"]
    assert got["team-a"]["members"] == {}


def test_malformed_robot_secrets_file_is_one_line_exit_2_before_anything_is_written(
    source: HarborServer, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    dst = harbor_factory()
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"robot$team-a+ci: [{CI_SECRET}]\n")
    result = migrate(cli, source, dst, tmp_path, "--robot-secrets", str(bad))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ferry: robot secrets file")
    assert_no_secret(result.stderr)
    assert api_writes(dst) == []


def test_an_existing_robot_secrets_out_file_is_refused_before_anything_is_created(
    source: HarborServer, harbor_factory: Factory, cli: FerryCLI, tmp_path: Path
) -> None:
    dst = harbor_factory()
    existing = tmp_path / "robot-secrets.json"
    existing.write_text("{}\n")
    result = migrate(cli, source, dst, tmp_path, "--robot-secrets-out", str(existing))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "already exists and is never overwritten" in lines[0], result.stderr
    assert api_writes(dst) == [] and existing.read_text() == "{}\n"


def test_no_config_copies_images_only(source: HarborServer, harbor_factory: Factory, cli: FerryCLI,
                                      tmp_path: Path) -> None:
    dst = harbor_factory()
    result = migrate(cli, source, dst, tmp_path, "--no-config")
    assert result.returncode == 0, result.stderr
    assert not any("/members" in w or "/robots" in w or "/labels" in w for w in api_writes(dst))
    assert configuration(dst)["team-a"]["robots"] == {}


def test_an_ldap_destination_onboards_members_and_groups_by_name(harbor_factory: Factory, cli: FerryCLI,
                                                                 tmp_path: Path) -> None:
    src, dst = harbor_factory(auth_mode="ldap_auth"), harbor_factory(auth_mode="ldap_auth")
    src.add_user("alice", USERS["alice"])
    src.create_project("team-x", public=False)
    src.add_member("team-x", "alice", "developer")
    src.add_group("devs", 1, "cn=devs,dc=example,dc=test")
    src.add_group_member("team-x", "devs", "maintainer")
    result = migrate(cli, src, dst, tmp_path, "--config-only", "--robot-secrets-out", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr
    assert configuration(dst, ("team-x",))["team-x"]["members"] == {("u", "alice"): 2, ("g", "devs"): 4}
    group = next(g for g in listing(dst, "/usergroups") if g["group_name"] == "devs")
    assert (group["group_type"], group["ldap_group_dn"]) == (1, "cn=devs,dc=example,dc=test")
