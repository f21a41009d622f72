"""Deleting artifacts and tags through the API, as Harbor's artifact handler does (200 on success,
403 without the delete permission, 404 for an unknown reference). Deleting an artifact removes
its tags with it; the registry's storage is edited in place (the server bookkeeps nothing)."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from aiohttp import web

from tests.support.harbor import artifacts
from tests.support.harbor.common import HarborError, forbidden
from tests.support.harbor.repositories import repository_param, require_repo, resolve
from tests.support.harbor.routes import Route

if TYPE_CHECKING:
    from tests.support.harbor.model import Caller
    from tests.support.harbor.server import HarborServer

_ARTIFACT = "projects/{project}/repositories/{repository}/artifacts/{reference}"


def _manifests(srv: HarborServer, repository: str) -> str:
    return str(srv.storage.root / "repositories" / repository / "_manifests")


def delete_artifact(srv: HarborServer, caller: Caller, project_name: str, repo_path: str,
                    reference: str) -> web.Response:
    project, view = require_repo(srv, caller, project_name, repo_path)
    if not caller.can_delete(project):
        raise forbidden()
    digest = resolve(view, reference)
    base = _manifests(srv, view.name)
    for tag, (target, _pushed) in view.tags.items():
        if target == digest:
            shutil.rmtree(f"{base}/tags/{tag}", ignore_errors=True)
    shutil.rmtree(f"{base}/revisions/sha256/{digest.partition(':')[2]}", ignore_errors=True)
    return web.Response(status=200)


def delete_tag(srv: HarborServer, caller: Caller, project_name: str, repo_path: str, reference: str,
               tag: str) -> web.Response:
    project, view = require_repo(srv, caller, project_name, repo_path)
    if not caller.can_delete(project):
        raise forbidden()
    digest = resolve(view, reference)
    if view.tags.get(tag, ("", 0.0))[0] != digest:
        raise HarborError(404, f"tag {tag} of artifact {view.name}@{digest} not found")
    shutil.rmtree(f"{_manifests(srv, view.name)}/tags/{tag}", ignore_errors=True)
    return web.Response(status=200)


_DELETES = {
    _ARTIFACT: lambda srv, call: delete_artifact(srv, call.caller, call.params["project"], repository_param(call),
                                                 call.params["reference"]),
    _ARTIFACT + "/tags/{tag}": lambda srv, call: delete_tag(srv, call.caller, call.params["project"],
                                                            repository_param(call), call.params["reference"],
                                                            call.params["tag"]),
}
# Listed before artifacts.ROUTES: a path's first matching route answers, so each carries the
# methods artifacts.py serves on the same pattern as well.
ROUTES = [Route(pattern, {**next((r.methods for r in artifacts.ROUTES if r.pattern == pattern), {}),
                          "DELETE": handler})
          for pattern, handler in _DELETES.items()]
