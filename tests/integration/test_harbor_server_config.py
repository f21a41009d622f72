"""The Harbor test server's configuration API (issue 10) against Harbor's swagger and rules:
project metadata and CVE allowlists, members, users and groups, configurations and read-only
mode, robots logging in with exactly their permissions, retention, immutable tag rules enforced
on push, labels on artifacts, webhook policies, repository descriptions, the system allowlist."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.harbor import ADMIN_PASSWORD, HarborPushError, HarborServer
from tests.support.harbor_http import api, call, token_access

if TYPE_CHECKING:
    from tests.support.harbor_spec import Spec

pytest_plugins = ["tests.support.harbor_fixtures", "tests.support.harbor_spec"]
pytestmark = pytest.mark.integration

ADMIN = ("admin", ADMIN_PASSWORD)
DEV = ("dev", "Dev12345")
OWNER = ("own", "Own12345")
Factory = Callable[..., HarborServer]


@pytest.fixture
def srv(harbor_factory: Factory) -> HarborServer:
    """Projects ``team`` (private; ``own`` projectAdmin, ``dev`` developer) and ``other``."""
    return harbor_factory(
        users={"dev": (DEV[1], False), "own": (OWNER[1], False)},
        projects={"team": {"members": {"own": "projectAdmin", "dev": "developer"}}, "other": {}},
    )


def created_id(status: int, headers: dict[str, str], body: Any) -> int:
    assert status == 201, body
    return int(headers["Location"].rsplit("/", 1)[1])


def error(body: Any) -> str:
    return body["errors"][0]["message"]


def test_project_metadata_and_cve_allowlist(srv: HarborServer, spec: Spec) -> None:
    status, _, _ = api(srv, "/projects/team/metadatas/", OWNER, method="POST", body={"auto_scan": "True"})
    assert status == 200
    status, _, body = api(srv, "/projects/team/metadatas", OWNER)
    assert (status, body) == (200, {"public": "false", "auto_scan": "true"})
    assert api(srv, "/projects/team/metadatas/auto_scan", DEV)[2] == {"auto_scan": "true"}
    status, _, body = api(srv, "/projects/team/metadatas/", DEV, method="POST", body={"prevent_vul": "true"})
    assert status == 403
    status, _, body = api(srv, "/projects/team/metadatas/", OWNER, method="POST", body={"colour": "red"})
    assert (status, error(body)) == (400, "invalid key: colour")
    status, _, body = api(srv, "/projects/team/metadatas/", OWNER, method="POST", body={"severity": "urgent"})
    assert (status, error(body)) == (400, "invalid value: urgent")
    status, _, _ = api(srv, "/projects/team/metadatas/auto_scan", OWNER, method="PUT", body={"auto_scan": "false"})
    assert status == 200
    assert api(srv, "/projects/team/metadatas/auto_scan", OWNER, method="DELETE")[0] == 200
    assert api(srv, "/projects/team/metadatas/auto_scan", OWNER)[0] == 404

    req = {"metadata": {"severity": "High", "reuse_sys_cve_allowlist": "false"}, "storage_limit": 5,
           "cve_allowlist": {"items": [{"cve_id": "CVE-2024-1"}, {"cve_id": "CVE-2024-2"}], "expires_at": 2000000000}}
    assert api(srv, "/projects/team", OWNER, method="PUT", body=req)[0] == 200
    assert api(srv, "/projects/team", DEV, method="PUT", body=req)[0] == 403
    status, _, project = api(srv, "/projects/team", OWNER)
    spec.check("Project", project)
    assert project["metadata"]["severity"] == "high"
    assert [i["cve_id"] for i in project["cve_allowlist"]["items"]] == ["CVE-2024-1", "CVE-2024-2"]
    assert project["cve_allowlist"]["expires_at"] == 2000000000
    assert srv.project("team").storage_limit == -1  # ignored by PUT /projects, as on Harbor

    req = {"project_name": "fresh", "metadata": {"public": "false", "auto_sbom_generation": "true"},
           "cve_allowlist": {"items": [{"cve_id": "CVE-2025-7"}]}}
    assert api(srv, "/projects", ADMIN, method="POST", body=req)[0] == 201
    fresh = api(srv, "/projects/fresh", ADMIN)[2]
    spec.check("Project", fresh)
    assert fresh["cve_allowlist"]["items"] == [{"cve_id": "CVE-2025-7"}] and "expires_at" not in fresh["cve_allowlist"]
    status, _, body = api(srv, "/projects", ADMIN, method="POST",
                          body={"project_name": "bad", "metadata": {"auto_scan": "maybe"}})
    assert (status, error(body)) == (400, "invalid value: maybe")


def test_members(srv: HarborServer, spec: Spec, harbor_factory: Factory) -> None:
    srv.add_user("carol", "Carol123")
    status, headers, body = api(srv, "/projects/team/members", OWNER, method="POST",
                                body={"role_id": 3, "member_user": {"username": "carol"}})
    mid = created_id(status, headers, body)
    status, headers, members = api(srv, "/projects/team/members", DEV)
    assert status == 200 and headers["X-Total-Count"] == "4"
    spec.check_list("ProjectMemberEntity", members)
    assert {(m["entity_name"], m["role_name"]) for m in members} == {
        ("admin", "projectAdmin"), ("own", "projectAdmin"), ("dev", "developer"), ("carol", "guest"),
    }
    status, _, body = api(srv, "/projects/team/members", OWNER, method="POST",
                          body={"role_id": 2, "member_user": {"username": "carol"}})
    assert (status, error(body)) == (409, "The project member specified already exist")
    status, _, body = api(srv, "/projects/team/members", OWNER, method="POST",
                          body={"role_id": 2, "member_user": {"username": "nobody"}})
    assert (status, error(body)) == (404, "user nobody is not found")
    assert api(srv, "/projects/team/members", DEV, method="POST",
               body={"role_id": 2, "member_user": {"username": "carol"}})[0] == 403
    status, _, body = api(srv, "/projects/team/members", OWNER, method="POST",
                          body={"role_id": 9, "member_user": {"username": "own"}})
    assert status == 409  # the duplicate is found before the role is checked, as in Harbor's controller
    status, headers, first = api(srv, "/projects/team/members?page=1&page_size=3", DEV)
    assert len(first) == 3 and headers["X-Total-Count"] == "4"
    assert headers["Link"] == '</api/v2.0/projects/team/members?page=2&page_size=3>; rel="next"'
    assert api(srv, f"/projects/team/members/{mid}", OWNER, method="PUT", body={"role_id": 4})[0] == 200
    status, _, member = api(srv, f"/projects/team/members/{mid}", OWNER)
    spec.check("ProjectMemberEntity", member)
    assert (member["role_id"], member["role_name"]) == (4, "maintainer")
    assert api(srv, f"/projects/team/members/{mid}", OWNER, method="DELETE")[0] == 200
    assert api(srv, f"/projects/team/members/{mid}", OWNER)[0] == 404

    ldap = harbor_factory(auth_mode="ldap_auth", projects={"team": {}})
    status, headers, body = api(ldap, "/projects/team/members", ADMIN, method="POST",
                                body={"role_id": 2, "member_user": {"username": "ldapuser"}})
    created_id(status, headers, body)
    assert "ldapuser" in ldap.users  # onboarded from the directory
    status, headers, body = api(ldap, "/projects/team/members", ADMIN, method="POST",
                                body={"role_id": 3, "member_group": {"group_name": "devs", "group_type": 1}})
    created_id(status, headers, body)
    members = api(ldap, "/projects/team/members", ADMIN)[2]
    assert {(m["entity_name"], m["entity_type"]) for m in members} >= {("ldapuser", "u"), ("devs", "g")}


def test_users_groups_and_configurations(srv: HarborServer, spec: Spec) -> None:
    status, headers, users = api(srv, "/users", ADMIN)
    assert status == 200 and headers["X-Total-Count"] == "3"
    spec.check_list("UserResp", users)
    assert api(srv, "/users", DEV)[0] == 403
    status, headers, body = api(srv, "/users", ADMIN, method="POST",
                                body={"username": "new", "password": "New12345", "email": "n@x.test", "realname": "N"})
    uid = created_id(status, headers, body)
    assert api(srv, "/users", ADMIN, method="POST", body={"username": "new", "password": "New12345"})[0] == 409
    assert api(srv, "/users", ADMIN, method="POST", body={"username": "weak", "password": "short"})[0] == 400
    status, _, found = api(srv, "/users/search?username=ne", DEV)
    spec.check_list("UserSearchRespItem", found)
    assert found == [{"user_id": uid, "username": "new"}]

    status, headers, body = api(srv, "/usergroups", ADMIN, method="POST",
                                body={"group_name": "ops", "group_type": 2})
    gid = created_id(status, headers, body)
    assert api(srv, "/usergroups", ADMIN, method="POST", body={"group_name": "ops", "group_type": 2})[0] == 409
    status, _, groups = api(srv, "/usergroups", ADMIN)
    spec.check_list("UserGroup", groups)
    assert [g["id"] for g in groups] == [gid]
    status, headers, body = api(srv, "/projects/team/members", OWNER, method="POST",
                                body={"role_id": 2, "member_group": {"group_name": "ops", "group_type": 2}})
    created_id(status, headers, body)
    new = ("new", "New12345")
    assert token_access(srv, "repository:team/app:pull,push", new)[0]["actions"] == []
    srv.add_user_to_group("new", "ops")  # the group's developer role now applies to its user
    assert token_access(srv, "repository:team/app:pull,push", new)[0]["actions"] == ["pull", "push"]

    status, _, conf = api(srv, "/configurations", ADMIN)
    spec.check("ConfigurationsResponse", conf)
    assert conf["auth_mode"] == {"editable": False, "value": "db_auth"}  # users exist: no longer editable
    assert api(srv, "/configurations", DEV)[0] == 403
    assert api(srv, "/configurations", ADMIN, method="PUT", body={"read_only": True})[0] == 200
    assert api(srv, "/systeminfo", ADMIN)[2]["read_only"] is True
    status, _, body = api(srv, "/projects/team/metadatas/", OWNER, method="POST", body={"auto_scan": "true"})
    assert (status, body["errors"][0]["code"]) == (403, "DENIED")
    assert error(body) == "The system is in read only mode. Any modification is prohibited."
    with pytest.raises(HarborPushError) as e:
        srv.client(DEV).push_image("team/app", "v1")
    assert e.value.status == 403 and b"read only" in e.value.body
    assert api(srv, "/projects/team", DEV)[0] == 200  # reads still work
    assert api(srv, "/configurations", ADMIN, method="PUT", body={"read_only": False})[0] == 200
    srv.client(DEV).push_image("team/app", "v1")


def robot_body(name: str, project: str, *actions: str, **extra: Any) -> dict[str, Any]:
    access = [{"resource": "repository", "action": a} for a in actions]
    return {"name": name, "level": "project", "duration": -1, "description": "ci",
            "permissions": [{"kind": "project", "namespace": project, "access": access}], **extra}


def test_robot_logs_in_with_exactly_its_permissions(srv: HarborServer, spec: Spec) -> None:
    srv.client(ADMIN).push_image("team/app", "v1")
    srv.client(ADMIN).push_image("other/app", "v1")
    status, headers, created = api(srv, "/robots", OWNER, method="POST", body=robot_body("ci", "team", "pull"))
    spec.check("RobotCreated", created)
    rid = created_id(status, headers, created)
    assert created["name"] == "robot$team+ci" and created["expires_at"] == -1
    robot = (created["name"], created["secret"])

    status, _, shown = api(srv, f"/robots/{rid}", OWNER)
    spec.check("Robot", shown)
    assert "secret" not in shown and shown["permissions"][0]["namespace"] == "team"
    status, headers, listed = api(srv, f"/robots?q=Level=project,ProjectID={srv.project('team').project_id}", DEV)
    assert status == 200 and [r["id"] for r in listed] == [rid]
    assert api(srv, "/robots", DEV)[0] == 403  # system robots: sysadmins only
    assert api(srv, "/robots?q=Level=project", OWNER)[0] == 400
    assert api(srv, "/robots", OWNER, method="POST", body=robot_body("ci", "team", "pull"))[0] == 409
    assert api(srv, "/robots", DEV, method="POST", body=robot_body("x", "team", "pull"))[0] == 403
    status, _, body = api(srv, "/robots", OWNER, method="POST", body=robot_body("Bad+Name", "team", "pull"))
    assert (status, error(body)) == (400, "robot name is not in lower case or contains illegal characters")
    status, _, body = api(srv, "/robots", OWNER, method="POST", body=robot_body("x", "team", "fly"))
    assert (status, error(body)) == (400, "bad request permission: repository:fly")

    # registry: pull team, not push team, nothing in other
    assert token_access(srv, "repository:team/app:pull,push", robot)[0]["actions"] == ["pull"]
    assert token_access(srv, "repository:other/app:pull", robot)[0]["actions"] == []
    assert srv.client(robot).get_manifest("team/app", "v1")[0] == 200
    assert srv.client(robot).get_manifest("other/app", "v1")[0] == 401
    with pytest.raises(HarborPushError):
        srv.client(robot).push_image("team/app", "v2")
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    assert call(srv, "/v2/team/app/manifests/v1", robot, headers=accept)[0] == 200  # Basic on /v2/
    assert call(srv, "/v2/other/app/manifests/v1", robot, headers=accept)[0] == 401

    # the API sees the robot as a project member with its own permissions
    assert api(srv, "/projects/team/repositories/app/artifacts", robot)[0] == 200
    assert api(srv, "/projects/other", robot)[0] == 403
    assert api(srv, "/projects/team/members", robot)[0] == 403  # no member permission

    # a known secret is set by PATCH; a weak one is refused; a generated one is shown once
    status, _, body = api(srv, f"/robots/{rid}", OWNER, method="PATCH", body={"secret": "weak"})
    assert status == 400 and "8-128" in error(body)
    status, _, body = api(srv, f"/robots/{rid}", OWNER, method="PATCH", body={"secret": "Known1234"})
    assert status == 200 and not body.get("secret")
    assert token_access(srv, "repository:team/app:pull", robot)[0]["actions"] == []  # old secret: anonymous
    known = (robot[0], "Known1234")
    assert token_access(srv, "repository:team/app:pull", known)[0]["actions"] == ["pull"]
    status, _, body = api(srv, f"/robots/{rid}", OWNER, method="PATCH", body={})
    spec.check("RobotSec", body)
    assert len(body["secret"]) == 32

    # update: push granted, then disabled → refused
    new = robot_body(created["name"], "team", "pull", "push", disable=False)
    assert api(srv, f"/robots/{rid}", OWNER, method="PUT", body=new)[0] == 200
    fresh = (robot[0], body["secret"])
    srv.client(fresh).push_image("team/app", "v2")
    assert api(srv, f"/robots/{rid}", OWNER, method="PUT", body={**new, "name": "ci"})[0] == 400
    assert api(srv, f"/robots/{rid}", OWNER, method="PUT", body={**new, "disable": True})[0] == 200
    assert token_access(srv, "repository:team/app:pull", fresh)[0]["actions"] == []
    assert api(srv, f"/robots/{rid}", OWNER, method="DELETE")[0] == 200
    assert api(srv, f"/robots/{rid}", OWNER)[0] == 404

    system = srv.add_robot("mirror", "Mirror123", permissions=[
        {"kind": "project", "namespace": "*", "access": [{"resource": "repository", "action": "pull"}]}])
    status, _, robots = api(srv, "/robots", ADMIN)
    spec.check_list("Robot", robots)
    assert [r["name"] for r in robots] == ["robot$mirror"]
    assert token_access(srv, "repository:other/app:pull", (system.full_name, "Mirror123"))[0]["actions"] == ["pull"]
    expired = srv.add_robot("old", "Old12345", project="team", expires_at=1)
    assert token_access(srv, "repository:team/app:pull", (expired.full_name, "Old12345"))[0]["actions"] == []


def test_retention(srv: HarborServer, spec: Spec) -> None:
    status, _, meta = api(srv, "/retentions/metadatas", DEV)
    spec.check("RetentionMetadata", meta)
    pid = srv.project("team").project_id
    rule = {"priority": 1, "disabled": False, "action": "retain", "template": "latestPushedK",
            "params": {"latestPushedK": 3}, "tag_selectors": [{"kind": "doublestar", "decoration": "matches",
                                                                "pattern": "**"}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}}
    policy = {"algorithm": "or", "rules": [rule], "scope": {"level": "project", "ref": pid},
              "trigger": {"kind": "Schedule", "settings": {"cron": "0 0 0 * * *"}, "references": {}}}
    status, _, body = api(srv, "/retentions", OWNER, method="POST", body={**policy, "rules": [rule, rule]})
    assert (status, error(body)) == (409, "rule 1 is conflict with rule 0")
    assert api(srv, "/retentions", DEV, method="POST", body=policy)[0] == 403
    status, headers, body = api(srv, "/retentions", OWNER, method="POST", body=policy)
    rid = created_id(status, headers, body)
    assert api(srv, "/projects/team/metadatas/retention_id", OWNER)[2] == {"retention_id": str(rid)}
    status, _, body = api(srv, "/retentions", OWNER, method="POST", body=policy)
    assert (status, error(body)) == (400, f"project {pid} already has retention policy {rid}")
    status, _, got = api(srv, f"/retentions/{rid}", DEV)
    spec.check("RetentionPolicy", got)
    assert got["rules"][0]["params"] == {"latestPushedK": 3} and got["trigger"]["settings"]["cron"] == "0 0 0 * * *"
    rule2 = {**rule, "params": {"latestPushedK": 5}}
    assert api(srv, f"/retentions/{rid}", OWNER, method="PUT", body={**policy, "rules": [rule2]})[0] == 200
    assert api(srv, f"/retentions/{rid}", OWNER)[2]["rules"][0]["params"] == {"latestPushedK": 5}
    assert api(srv, f"/retentions/{rid}", OWNER, method="DELETE")[0] == 200
    assert "retention_id" not in api(srv, "/projects/team/metadatas", OWNER)[2]


def test_immutable_rules_refuse_overwriting_a_tag(srv: HarborServer, spec: Spec) -> None:
    client = srv.client(DEV)
    client.push_image("team/app", "v1", seed=1)
    rule = {"action": "immutable", "template": "immutable_template", "disabled": False, "priority": 0,
            "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "v*"}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}}
    assert api(srv, "/projects/team/immutabletagrules", DEV, method="POST", body=rule)[0] == 403
    status, headers, body = api(srv, "/projects/team/immutabletagrules", OWNER, method="POST", body=rule)
    rule_id = created_id(status, headers, body)
    status, _, body = api(srv, "/projects/team/immutabletagrules", OWNER, method="POST", body=rule)
    assert (status, error(body)) == (409, "immutable rule already exists")
    status, headers, rules = api(srv, "/projects/team/immutabletagrules", DEV)
    spec.check_list("ImmutableRule", rules)
    assert headers["X-Total-Count"] == "1" and rules[0]["id"] == rule_id

    with pytest.raises(HarborPushError) as e:
        client.push_image("team/app", "v1", seed=2)
    assert e.value.status == 412
    assert json.loads(e.value.body) == {"errors": [{
        "code": "PRECONDITION", "message": "Failed to process request due to 'app:v1' configured as immutable."}]}
    client.push_image("team/app", "v2", seed=2)  # a new tag may be pushed once
    client.push_image("team/app", "latest", seed=3)
    client.push_image("team/app", "latest", seed=4)  # not matched
    status, _, tags = api(srv, "/projects/team/repositories/app/artifacts/v1/tags", DEV)
    assert tags[0]["immutable"] is True
    assert api(srv, "/projects/team/repositories/app/artifacts/latest/tags", DEV)[2][0]["immutable"] is False
    v1 = srv.client(OWNER).get_manifest("team/app", "v1")[1]["Docker-Content-Digest"]
    status, _, body = srv.client(OWNER).request("DELETE", f"/v2/team/app/manifests/{v1}",
                                                scope="repository:team/app:delete")
    assert (status, json.loads(body)["errors"][0]["message"]) == (412, "the tag v1 configured as immutable, "
                                                                       "cannot be deleted")
    disabled = {**rule, "disabled": True}
    assert api(srv, f"/projects/team/immutabletagrules/{rule_id}", OWNER, method="PUT", body=disabled)[0] == 200
    client.push_image("team/app", "v1", seed=5)
    assert api(srv, f"/projects/team/immutabletagrules/{rule_id}", OWNER, method="DELETE")[0] == 200
    assert api(srv, "/projects/team/immutabletagrules", OWNER)[2] == []


def test_labels_on_artifacts(srv: HarborServer, spec: Spec) -> None:
    digest, _ = srv.client(DEV).push_image("team/app", "v1")
    status, headers, body = api(srv, "/labels", ADMIN, method="POST",
                                body={"name": "prod", "color": "#FF0000", "scope": "g", "description": "live"})
    global_id = created_id(status, headers, body)
    assert api(srv, "/labels", OWNER, method="POST", body={"name": "x", "scope": "g"})[0] == 403
    assert api(srv, "/labels", ADMIN, method="POST", body={"name": "prod", "scope": "g"})[0] == 409
    pid = srv.project("team").project_id
    status, headers, body = api(srv, "/labels", OWNER, method="POST",
                                body={"name": "prod", "scope": "p", "project_id": pid})
    project_id = created_id(status, headers, body)
    status, _, labels = api(srv, "/labels?scope=g", None)
    spec.check_list("Label", labels)
    assert [lb["id"] for lb in labels] == [global_id]
    assert api(srv, "/labels?scope=p", DEV)[0] == 400
    status, _, labels = api(srv, f"/labels?scope=p&project_id={pid}", DEV)
    assert [lb["id"] for lb in labels] == [project_id]
    assert api(srv, f"/labels?scope=p&project_id={srv.project('other').project_id}", DEV)[0] == 403

    art = "/projects/team/repositories/app/artifacts/v1/labels"
    for lid in (global_id, project_id):
        assert api(srv, art, DEV, method="POST", body={"id": lid})[0] == 200
    status, _, body = api(srv, art, DEV, method="POST", body={"id": global_id})
    assert status == 409
    other = srv.add_label("elsewhere", project="other")
    assert api(srv, art, DEV, method="POST", body={"id": other})[0] == 400
    status, _, artifact = api(srv, "/projects/team/repositories/app/artifacts/v1?with_label=true", DEV)
    spec.check("Artifact", artifact)
    assert [lb["id"] for lb in artifact["labels"]] == [global_id, project_id]
    assert api(srv, "/projects/team/repositories/app/artifacts/v1", DEV)[2]["labels"] is None
    assert api(srv, f"{art}/{global_id}", DEV, method="DELETE")[0] == 200
    assert api(srv, f"{art}/{global_id}", DEV, method="DELETE")[0] == 404
    listed = api(srv, "/projects/team/repositories/app/artifacts?with_label=true", DEV)[2]
    assert [lb["name"] for lb in listed[0]["labels"]] == ["prod"] and listed[0]["digest"] == digest


def test_webhook_policies(srv: HarborServer, spec: Spec) -> None:
    status, _, events = api(srv, "/projects/team/webhook/events", OWNER)
    spec.check("SupportedWebhookEventTypes", events)
    assert "PUSH_ARTIFACT" in events["event_type"]
    policy = {"name": "ci", "description": "notify", "enabled": True, "event_types": ["PUSH_ARTIFACT"],
              "targets": [{"type": "http", "address": "http://127.0.0.1:9/hook?x=1", "auth_header": "Bearer s3cr3t",
                           "skip_cert_verify": True}]}
    assert api(srv, "/projects/team/webhook/policies", DEV, method="POST", body=policy)[0] == 403
    status, headers, body = api(srv, "/projects/team/webhook/policies", OWNER, method="POST", body=policy)
    wid = created_id(status, headers, body)
    assert api(srv, "/projects/team/webhook/policies", OWNER, method="POST", body=policy)[0] == 409
    status, _, body = api(srv, "/projects/team/webhook/policies", OWNER, method="POST",
                          body={**policy, "name": "x", "event_types": ["NOPE"]})
    assert (status, error(body)) == (400, "unsupported event type NOPE")
    status, _, got = api(srv, f"/projects/team/webhook/policies/{wid}", OWNER)
    spec.check("WebhookPolicy", got)
    assert got["targets"] == [{"address": "http://127.0.0.1:9/hook", "auth_header": "Bearer s3cr3t",
                               "payload_format": "Default", "skip_cert_verify": True, "type": "http"}]
    status, _, listed = api(srv, "/projects/team/webhook/policies", OWNER)
    spec.check_list("WebhookPolicy", listed)
    assert api(srv, f"/projects/other/webhook/policies/{wid}", ADMIN)[0] == 404
    assert api(srv, f"/projects/team/webhook/policies/{wid}", OWNER, method="PUT",
               body={**policy, "enabled": False})[0] == 200
    assert api(srv, f"/projects/team/webhook/policies/{wid}", OWNER)[2]["enabled"] is False
    assert api(srv, f"/projects/team/webhook/policies/{wid}", OWNER, method="DELETE")[0] == 200


def test_repository_description_and_system_allowlist(srv: HarborServer, spec: Spec) -> None:
    srv.client(DEV).push_image("team/app", "v1")
    body = {"description": "the app"}
    assert api(srv, "/projects/team/repositories/app", DEV, method="PUT", body=body)[0] == 403
    assert api(srv, "/projects/team/repositories/app", OWNER, method="PUT", body=body)[0] == 200
    status, _, repo = api(srv, "/projects/team/repositories/app", DEV)
    spec.check("Repository", repo)
    assert repo["description"] == "the app"

    status, _, allow = api(srv, "/system/CVEAllowlist", DEV)
    assert status == 200
    spec.check("CVEAllowlist", allow)
    assert allow["items"] is None
    req = {"items": [{"cve_id": "CVE-2023-9"}], "expires_at": 1900000000}
    assert api(srv, "/system/CVEAllowlist", DEV, method="PUT", body=req)[0] == 403
    assert api(srv, "/system/CVEAllowlist", ADMIN, method="PUT", body=req)[0] == 200
    allow = api(srv, "/system/CVEAllowlist", DEV)[2]
    spec.check("CVEAllowlist", allow)
    assert allow["items"] == [{"cve_id": "CVE-2023-9"}] and allow["expires_at"] == 1900000000
