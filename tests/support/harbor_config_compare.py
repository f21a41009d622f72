"""A Harbor's configuration read back through its API, normalised by the tests (not by ferry), to
compare two Harbors object by object: everything issue 10 moves, without ids and timestamps."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.support.harbor import HarborServer
from tests.support.harbor_config_seed import listing, ok


def selectors(rule: dict[str, Any]) -> Any:
    def sel(s: dict[str, Any]) -> tuple[str, str, str]:
        return (s["kind"], s["decoration"], s["pattern"])

    return ([sel(s) for s in rule.get("tag_selectors") or []],
            {k: [sel(s) for s in v] for k, v in (rule.get("scope_selectors") or {}).items()})


def configuration(server: HarborServer, projects: tuple[str, ...] = ("team-a", "team-b")) -> dict[str, Any]:
    """Everything issue 10 moves, without ids and timestamps, by project."""
    out: dict[str, Any] = {
        "system_allowlist": sorted(i["cve_id"] for i in ok(server, "GET", "/system/CVEAllowlist")["items"] or []),
        "global_labels": {x["name"]: (x["color"], x["description"]) for x in listing(server, "/labels?scope=g")},
        "system_robots": {r["name"]: robot(r) for r in listing(server, "/robots?q=Level%3Dsystem")},
    }
    for name in projects:
        p = ok(server, "GET", f"/projects/{name}")
        pid = p["project_id"]
        meta = {k: v for k, v in p["metadata"].items() if k != "retention_id"}
        retention = ok(server, "GET", f"/retentions/{p['metadata']['retention_id']}") \
            if p["metadata"].get("retention_id") else None
        out[name] = {
            "metadata": meta,
            "allowlist": sorted(i["cve_id"] for i in (p.get("cve_allowlist") or {}).get("items") or []),
            "members": {(m["entity_type"], m["entity_name"]): m["role_id"]
                        for m in listing(server, f"/projects/{name}/members") if m["entity_name"] != "admin"},
            "robots": {r["name"]: robot(r) for r in listing(server, f"/robots?q=Level%3Dproject%2CProjectID%3D{pid}")},
            "retention": None if retention is None else (
                retention["algorithm"], retention["trigger"]["settings"],
                [(r["template"], r["params"], selectors(r)) for r in retention["rules"]]),
            "immutable": sorted((r["disabled"], json.dumps(selectors(r)))
                                for r in listing(server, f"/projects/{name}/immutabletagrules")),
            "labels": {x["name"]: (x["color"], x["description"])
                       for x in listing(server, f"/labels?scope=p&project_id={pid}")},
            "webhooks": {w["name"]: (w["description"], w["enabled"], sorted(w["event_types"]), [
                (t["address"], t.get("auth_header"), t["skip_cert_verify"]) for t in w["targets"]])
                for w in listing(server, f"/projects/{name}/webhook/policies")},
            "descriptions": {r["name"]: r.get("description")
                             for r in listing(server, f"/projects/{name}/repositories")},
            "artifact_labels": {
                (r["name"], a["digest"]): sorted(x["name"] for x in a.get("labels") or [])
                for r in listing(server, f"/projects/{name}/repositories")
                for a in listing(server, f"/projects/{name}/repositories/"
                                         f"{quote(quote(r['name'].split('/', 1)[1], safe=''), safe='')}"
                                         "/artifacts?with_label=true")},
        }
    return out


def robot(r: dict[str, Any]) -> Any:
    perms = sorted((p["namespace"], sorted((a["resource"], a["action"]) for a in p["access"]))
                   for p in r["permissions"])
    return (r["description"], r["disable"], r["duration"], perms)
