"""Artifacts of a repository, with their tags, index references and accessories."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.support.harbor.common import API, IMAGE_ICON, HarborError, ts
from tests.support.harbor.immutable import is_immutable
from tests.support.harbor.labels import labels_of
from tests.support.harbor.model import Caller, HarborProject
from tests.support.harbor.query import bool_param, match, page, paging, parse_q, sort_key, sorted_rows
from tests.support.harbor.repositories import repository_param, require_repo, resolve
from tests.support.harbor.routes import Route
from tests.support.harbor.storage import Accessory, RepoView, artifact_kind

if TYPE_CHECKING:
    from tests.support.harbor.server import HarborServer


def tag_json(srv: HarborServer, view: RepoView, digest: str, tag: str, pushed: float) -> dict[str, Any]:
    project = srv.find_project(view.project, is_name=True)
    return {
        "artifact_id": srv.id_of("artifact", view.name, digest),
        "id": srv.id_of("tag", view.name, tag),
        "immutable": project is not None and is_immutable(srv, project, view.path, tag),
        "name": tag,
        "pull_time": ts(srv.pull_times.get((view.name, tag))),
        "push_time": ts(pushed),
        "repository_id": srv.id_of("repository", view.name),
    }



def accessory_json(srv: HarborServer, view: RepoView, acc: Accessory) -> dict[str, Any]:
    out = {
        "artifact_id": srv.id_of("artifact", view.name, acc.digest),
        "creation_time": ts(view.artifacts[acc.digest][1]),
        "digest": acc.digest,
        "icon": "",
        "id": srv.id_of("accessory", view.name, acc.digest),
        "size": srv.storage.artifact_size(view, acc.digest),
        "subject_artifact_digest": acc.subject,
        "subject_artifact_repo": view.name,
        "type": acc.type,
    }
    if acc.subject in view.artifacts:
        out["subject_artifact_id"] = srv.id_of("artifact", view.name, acc.subject)
    return dict(sorted(out.items()))



def artifact_json(
    srv: HarborServer, view: RepoView, project: HarborProject, digest: str, *, with_tag: bool, with_accessory: bool,
    with_label: bool = False,
) -> dict[str, Any]:
    m, pushed = view.artifacts[digest]
    art_type, media_type = artifact_kind(m)
    art_id = srv.id_of("artifact", view.name, digest)
    out: dict[str, Any] = {
        "accessories": None,
        "digest": digest,
        "id": art_id,
        "labels": labels_of(srv, view.name, digest) if with_label else None,
        "manifest_media_type": m.media_type,
        "media_type": media_type,
        "project_id": project.project_id,
        "pull_time": ts(srv.pull_times.get((view.name, digest))),
        "push_time": ts(pushed),
        "references": None,
        "repository_id": srv.id_of("repository", view.name),
        "repository_name": view.name,
        "size": srv.storage.artifact_size(view, digest),
        "tags": None,
        "type": art_type,
    }
    if m.artifact_type:
        out["artifact_type"] = m.artifact_type
    annotations = m.doc.get("annotations")
    if isinstance(annotations, dict) and annotations:
        out["annotations"] = {str(k): str(v) for k, v in annotations.items()}
    if art_type == "IMAGE":
        out["icon"] = IMAGE_ICON
    if art_type == "IMAGE" and not m.is_index and m.config:
        cfg = srv.storage.config(m.config.get("digest", "")) or {}
        extra = {k: cfg.get(k) for k in ("architecture", "author", "created", "os") if k in cfg}
        if isinstance(cfg.get("config"), dict):
            extra["config"] = cfg["config"]
        if extra:
            out["extra_attrs"] = extra
        repo_escaped = urllib.parse.quote(urllib.parse.quote(view.path, safe=""), safe="")
        prefix = f"{API}/projects/{view.project}/repositories/{repo_escaped}/artifacts/{digest}/additions"
        out["addition_links"] = {
            "build_history": {"absolute": False, "href": f"{prefix}/build_history"},
            "vulnerabilities": {"absolute": False, "href": f"{prefix}/vulnerabilities"},
        }
    if m.is_index:
        refs = []
        for c in m.children:
            ref: dict[str, Any] = {
                "child_digest": c["digest"],
                "child_id": srv.id_of("artifact", view.name, c["digest"]) if c["digest"] in view.artifacts else 0,
                "parent_id": art_id,
                "urls": c.get("urls") or None,
            }
            if isinstance(c.get("platform"), dict):
                pf = c["platform"]
                platform: dict[str, Any] = {"'os.features'": pf.get("os.features") or None}
                for key, out_key in (
                    ("architecture", "architecture"),
                    ("os", "os"),
                    ("variant", "variant"),
                    ("os.version", "'os.version'"),
                ):
                    if pf.get(key):
                        platform[out_key] = pf[key]
                ref["platform"] = platform
            if isinstance(c.get("annotations"), dict) and c["annotations"]:
                ref["annotations"] = c["annotations"]
            if not ref["child_id"]:
                del ref["child_id"]
            refs.append(dict(sorted(ref.items())))
        out["references"] = refs or None
    if with_tag:
        out["tags"] = [tag_json(srv, view, digest, t, pt) for t, pt in view.tags_of(digest)] or None
    if with_accessory:
        accs = [a for a in view.accessories.values() if a.subject == digest]
        accs.sort(key=lambda a: -view.artifacts[a.digest][1])
        out["accessories"] = [accessory_json(srv, view, a) for a in accs] or None
    return dict(sorted(out.items()))


def list_artifacts(
    srv: HarborServer, request: web.Request, caller: Caller, project_name: str, repo_path: str
) -> web.Response:
    paging(request)
    with_tag = bool_param(request, "with_tag", True)
    with_accessory = bool_param(request, "with_accessory", False)
    with_label = bool_param(request, "with_label", False)
    for flag in ("with_scan_overview", "with_sbom_overview", "with_immutable_status"):
        bool_param(request, flag, False)
    conds = parse_q(request.query.get("q"))
    project, view = require_repo(srv, caller, project_name, repo_path)
    base = conds.pop("base", None)
    if base is not None and base != ("exact", "*"):
        raise HarborError(400, 'the value of "base" query can only be exact match value with "*"')
    digests = view.listed(base_all=base is not None)
    tagged = {d for d, _ in view.tags.values()}
    if "tags" in conds:
        kind, value = conds["tags"]
        if kind == "exact" and value == "*":
            digests = [d for d in digests if d in tagged]
        elif kind == "exact" and value == "nil":
            digests = [d for d in digests if d not in tagged]
        elif kind in ("exact", "fuzzy"):
            digests = [d for d in digests if any(match((kind, value), t) for t, _ in view.tags_of(d))]
        else:
            raise HarborError(
                400,
                'the value of "tags" query can only be fuzzy match value or exact match value with "*" and "nil"',
            )
    rows = []
    for d in digests:
        m, pushed = view.artifacts[d]
        art_type, media_type = artifact_kind(m)
        rows.append(
            {
                "digest": d,
                "id": srv.id_of("artifact", view.name, d),
                "push_time": pushed,
                "type": art_type,
                "media_type": media_type,
                "manifest_media_type": m.media_type,
                "artifact_type": m.artifact_type,
            }
        )
    for key, cond in conds.items():
        if key in ("digest", "type", "media_type", "manifest_media_type", "artifact_type"):
            rows = [r for r in rows if match(cond, r[key])]
    rows = sorted_rows(rows, sort_key(request.query.get("sort"), [("push_time", True), ("id", True)]))
    chosen, headers = page(request, rows)
    body = [
        artifact_json(srv, view, project, r["digest"], with_tag=with_tag, with_accessory=with_accessory,
                      with_label=with_label)
        for r in chosen
    ]
    return web.json_response(body, headers=headers)



def get_artifact(
    srv: HarborServer, request: web.Request, caller: Caller, project_name: str, repo_path: str, reference: str
) -> web.Response:
    paging(request)
    with_tag = bool_param(request, "with_tag", True)
    with_accessory = bool_param(request, "with_accessory", False)
    with_label = bool_param(request, "with_label", False)
    project, view = require_repo(srv, caller, project_name, repo_path)
    digest = resolve(view, reference)
    return web.json_response(
        artifact_json(srv, view, project, digest, with_tag=with_tag, with_accessory=with_accessory,
                      with_label=with_label)
    )



def list_tags(
    srv: HarborServer, request: web.Request, caller: Caller, project_name: str, repo_path: str, reference: str
) -> web.Response:
    paging(request)
    _, view = require_repo(srv, caller, project_name, repo_path)
    digest = resolve(view, reference)
    tags = [tag_json(srv, view, digest, t, pt) for t, pt in view.tags_of(digest)]
    chosen, headers = page(request, tags)
    return web.json_response(chosen, headers=headers)



def list_accessories(
    srv: HarborServer, request: web.Request, caller: Caller, project_name: str, repo_path: str, reference: str
) -> web.Response:
    paging(request)
    _, view = require_repo(srv, caller, project_name, repo_path)
    digest = resolve(view, reference)
    accs = [accessory_json(srv, view, a) for a in view.accessories.values() if a.subject == digest]
    chosen, headers = page(request, accs)
    return web.json_response(chosen, headers=headers)


_ARTIFACT = "projects/{project}/repositories/{repository}/artifacts"
ROUTES = [
    Route(_ARTIFACT, {
        "GET": lambda srv, call: list_artifacts(srv, call.request, call.caller, call.params["project"],
                                                repository_param(call)),
    }),
    Route(_ARTIFACT + "/{reference}", {
        "GET": lambda srv, call: get_artifact(srv, call.request, call.caller, call.params["project"],
                                              repository_param(call), call.params["reference"]),
    }),
    Route(_ARTIFACT + "/{reference}/tags", {
        "GET": lambda srv, call: list_tags(srv, call.request, call.caller, call.params["project"],
                                           repository_param(call), call.params["reference"]),
    }),
    Route(_ARTIFACT + "/{reference}/accessories", {
        "GET": lambda srv, call: list_accessories(srv, call.request, call.caller, call.params["project"],
                                                  repository_param(call), call.params["reference"]),
    }),
]
