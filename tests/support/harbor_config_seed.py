"""Harbor configuration for migration tests and the demo, written through a Harbor test server's API
as admin (never by ferry): members with every kind of role, project and system robots (one with a
secret pipelines know), a retention policy, an immutable tag rule, global and project labels (two on
an artifact), a webhook with an auth header, a repository description, project settings and CVE
allowlists. The projects ``team-a`` and ``team-b`` and the labelled image must exist."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

from tests.support.harbor import API, HarborServer

CI_SECRET = "CiSecret2026x"  # the source robot's secret the pipelines know
HOOK_HEADER = "Bearer hook-Secret-42"
USERS = {"alice": "Alice12345", "bob": "Bob123456", "carol": "Carol12345"}

def call(server: HarborServer, method: str, path: str, body: Any = None,
         creds: tuple[str, str] | None = None) -> tuple[int, Any]:
    auth = base64.b64encode(":".join(creds or server.admin_creds).encode()).decode()
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.url + API + path, data=data, method=method,
                                 headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw.strip() else None
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def ok(server: HarborServer, method: str, path: str, body: Any = None) -> Any:
    status, answer = call(server, method, path, body)
    assert status in (200, 201), (method, path, status, answer)
    return answer


def listing(server: HarborServer, path: str) -> list[dict[str, Any]]:
    sep = "&" if "?" in path else "?"
    return ok(server, "GET", f"{path}{sep}page=1&page_size=100")


def project_id(server: HarborServer, name: str) -> int:
    return int(ok(server, "GET", f"/projects/{name}")["project_id"])


def seed_configuration(server: HarborServer, labelled: str = "app:v1") -> None:
    """Configure ``team-a`` and ``team-b``; ``labelled`` (``repository:tag`` in team-a) gets two labels
    and its repository a description."""
    repo, _, tag = labelled.partition(":")
    for name, password in USERS.items():
        ok(server, "POST", "/users", {"username": name, "password": password, "email": f"{name}@example.test",
                                      "realname": name.title()})
    a, b = project_id(server, "team-a"), project_id(server, "team-b")
    ok(server, "PUT", "/projects/team-a", {"metadata": {"auto_scan": "true", "severity": "high", "prevent_vul": "true"},
                                           "cve_allowlist": {"items": [{"cve_id": "CVE-2021-44228"}],
                                                             "expires_at": 4102444800}})
    ok(server, "PUT", "/system/CVEAllowlist", {"items": [{"cve_id": "CVE-2020-1"}], "expires_at": None})
    for project, user, role in (("team-a", "alice", 2), ("team-a", "bob", 4), ("team-b", "carol", 3),
                                ("team-b", "alice", 5)):
        ok(server, "POST", f"/projects/{project}/members", {"role_id": role, "member_user": {"username": user}})
    pull_push = [{"resource": "repository", "action": "pull"}, {"resource": "repository", "action": "push"}]
    created = ok(server, "POST", "/robots", {"name": "ci", "description": "CI pipeline", "level": "project",
                                             "duration": -1, "disable": False, "permissions": [
                                                 {"kind": "project", "namespace": "team-a", "access": pull_push}]})
    ok(server, "PATCH", f"/robots/{created['id']}", {"secret": CI_SECRET})
    ok(server, "POST", "/robots", {"name": "old", "description": "retired", "level": "project", "duration": 30,
                                   "disable": True, "permissions": [{"kind": "project", "namespace": "team-b",
                                                                     "access": pull_push[:1]}]})
    ok(server, "POST", "/robots", {"name": "sync", "description": "mirror", "level": "system", "duration": -1,
                                   "disable": False, "permissions": [
                                       {"kind": "project", "namespace": p, "access": pull_push[:1]}
                                       for p in ("team-a", "team-b")]})
    ok(server, "POST", "/retentions", {
        "algorithm": "or", "scope": {"level": "project", "ref": a},
        "trigger": {"kind": "Schedule", "settings": {"cron": "0 0 2 * * *"}},
        "rules": [{"priority": 1, "disabled": False, "action": "retain", "template": "latestPushedK",
                   "params": {"latestPushedK": 5},
                   "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**"}],
                   "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches",
                                                       "pattern": "**"}]}}]})
    ok(server, "POST", "/projects/team-a/immutabletagrules", {
        "disabled": False, "action": "immutable", "template": "immutable_template", "project_id": a,
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "v*"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}})
    ok(server, "POST", "/labels", {"name": "prod", "color": "#C92100", "description": "in production", "scope": "g"})
    ok(server, "POST", "/labels", {"name": "reviewed", "color": "#00AB9A", "description": "", "scope": "p",
                                   "project_id": a})
    ok(server, "POST", "/labels", {"name": "legacy", "color": "#000000", "description": "old", "scope": "p",
                                   "project_id": b})
    labels = {x["name"]: x["id"] for x in listing(server, "/labels?scope=g")
              + listing(server, f"/labels?scope=p&project_id={a}")}
    for label in ("prod", "reviewed"):
        ok(server, "POST", f"/projects/team-a/repositories/{repo}/artifacts/{tag}/labels", {"id": labels[label]})
    ok(server, "POST", "/projects/team-a/webhook/policies", {
        "name": "notify", "description": "chat", "enabled": True, "event_types": ["PUSH_ARTIFACT", "DELETE_ARTIFACT"],
        "targets": [{"type": "http", "address": "http://127.0.0.1:9/hook", "auth_header": HOOK_HEADER,
                     "skip_cert_verify": True}]})
    ok(server, "PUT", f"/projects/team-a/repositories/{repo}", {"description": "the app"})
