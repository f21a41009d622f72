"""A synthetic Harbor API: the listings of a huge Harbor generated on the fly from indices, no registry
behind it, for the inventory scale bench (issue 14: 1,000 projects, 100,000 repositories, 1,000,000 tags).

It answers exactly what ``ferry migrate --dry-run --no-config --no-charts`` asks a Harbor:
``/users/current`` (the credential check; a wrong password is 401 here, which ferry reads as
"refused" just as it reads real Harbor's anonymous downgrade), ``/systeminfo``, ``/projects`` and
``/projects/<name>``, ``/quotas``, ``/projects/<p>/repositories`` and their ``…/artifacts`` with tags,
with Harbor's paging (``page``/``page_size`` ≤ 100, ``X-Total-Count``, ``Link``; the test server's
:mod:`tests.support.harbor.query` builds them) and Harbor's JSON shapes (the fields a real artifact
row carries, so that a page weighs what a real one does). ``/v2/`` answers 200 and every manifest 404.

Names and digests come from indices: project ``p0007``, repository ``p0007/team-3/app-000042``, tags
``1.<artifact>.<n>``; a digest is the sha256 of ``repository@index``. Nothing is stored, so a million
tags cost the server no memory.

It counts what it serves: ``GET /_synthetic/stats`` (requests by kind, the process's CPU seconds, the
handlers' wall seconds), ``POST /_synthetic/reset``. It runs as its own process, so that its CPU is
measured apart from the client's:

    python -m bench.synthetic_harbor --port 0 --projects 1000 --repositories 100000 --tags 1000000
    # prints "listening http://127.0.0.1:<port>" once it answers
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web

import bench  # noqa: F401  (puts the repository root on sys.path for tests.support)
from tests.support.harbor.common import HarborError
from tests.support.harbor.query import link_header, paging

API = "/api/v2.0"
USER, PASSWORD = "admin", "Harbor12345"
MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
TIME = "2026-01-02T03:04:05.678Z"


@dataclass(frozen=True, slots=True)
class Shape:
    """How many of each: repositories spread evenly over projects, tags over repositories,
    ``tags_per_artifact`` tags on each artifact (the last artifact of a repository takes the rest)."""

    projects: int
    repositories: int
    tags: int
    tags_per_artifact: int = 1

    def project(self, i: int) -> str:
        return f"p{i:04d}"

    def repos_of(self, project: int) -> int:
        base, extra = divmod(self.repositories, self.projects) if self.projects else (0, 0)
        return base + (1 if project < extra else 0)

    def repo_name(self, project: int, j: int) -> str:
        return f"{self.project(project)}/team-{j % 7}/app-{j:06d}"

    def tags_of(self, repo_index: int) -> int:
        base, extra = divmod(self.tags, self.repositories) if self.repositories else (0, 0)
        return base + (1 if repo_index < extra else 0)

    def repo_index(self, project: int, j: int) -> int:
        """A repository's place among all (for its share of the tags)."""
        base, extra = divmod(self.repositories, self.projects)
        return project * base + min(project, extra) + j

    def artifacts(self, n_tags: int) -> list[int]:
        """Tags on each artifact of a repository with ``n_tags`` tags, newest artifact first."""
        k = self.tags_per_artifact
        counts = [k] * (n_tags // k) + ([n_tags % k] if n_tags % k else [])
        return counts[::-1]

    def pages(self, size: int = 100) -> dict[str, int]:
        """Pages a full inventory reads at ``size`` per page (an empty list is one page too)."""
        def n(items: int) -> int:
            return max(1, -(-items // size))

        repo_pages = sum(n(self.repos_of(p)) for p in range(self.projects))
        artifact_pages = 0
        for p in range(self.projects):
            for j in range(self.repos_of(p)):
                artifact_pages += n(len(self.artifacts(self.tags_of(self.repo_index(p, j)))))
        return {"projects": n(self.projects), "quotas": n(self.projects), "repositories": repo_pages,
                "artifacts": artifact_pages}


def _digest(repository: str, index: int) -> str:
    return "sha256:" + hashlib.sha256(f"{repository}@{index}".encode()).hexdigest()


class Synthetic:
    """The handlers, over one :class:`Shape`; names are parsed back into indices."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self.requests: Counter[str] = Counter()
        self.handler_seconds = 0.0
        self._auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    # -- plumbing ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get(API + "/users/current", self.current_user)
        app.router.add_get(API + "/systeminfo", self.systeminfo)
        app.router.add_get(API + "/projects", self.projects)
        app.router.add_get(API + "/quotas", self.quotas)
        app.router.add_get(API + "/projects/{project}", self.project)
        app.router.add_get(API + "/projects/{project}/repositories", self.repositories)
        app.router.add_get(API + "/projects/{project}/repositories/{repo}/artifacts", self.artifacts)
        app.router.add_get("/v2/", self.v2)
        app.router.add_route("*", "/v2/{tail:.*}", self.not_found)
        app.router.add_get("/_synthetic/stats", self.stats)
        app.router.add_post("/_synthetic/reset", self.reset)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/_synthetic/"):
            return await handler(request)
        start = time.perf_counter()
        resource = request.match_info.route.resource
        kind = resource.canonical if resource is not None else "unrouted"
        self.requests[f"{request.method} {kind}"] += 1
        try:
            if request.headers.get("Authorization") != self._auth:
                raise HarborError(401, "unauthorized")
            return await handler(request)
        except HarborError as e:
            return web.json_response({"errors": [{"code": "UNAUTHORIZED" if e.status == 401 else "NOT_FOUND",
                                                  "message": str(e)}]}, status=e.status)
        finally:
            self.handler_seconds += time.perf_counter() - start

    def _page(self, request: web.Request, total: int, row: Any) -> web.Response:
        """One page of ``total`` rows, ``row(i)`` building the i-th, with Harbor's paging headers."""
        page, size = paging(request)
        lo, hi = ((page - 1) * size, min(total, page * size)) if size > 0 else (0, total)
        body = json.dumps([row(i) for i in range(lo, hi)], separators=(",", ":"))
        headers = {"X-Total-Count": str(total)}
        if link := link_header(request, total, page, size):
            headers["Link"] = link
        return web.Response(text=body, content_type="application/json", headers=headers)

    def _project_index(self, name: str) -> int:
        if len(name) == 5 and name[0] == "p" and name[1:].isdigit() and int(name[1:]) < self.shape.projects:
            return int(name[1:])
        raise HarborError(404, f"project {name} not found")

    # -- handlers ----------------------------------------------------------------------------

    async def current_user(self, _request: web.Request) -> web.Response:
        return web.json_response({"user_id": 1, "username": USER, "sysadmin_flag": True, "email": "admin@example.com",
                                  "realname": "system admin", "creation_time": TIME, "update_time": TIME})

    async def systeminfo(self, _request: web.Request) -> web.Response:
        return web.json_response({"harbor_version": "v2.11.0-synthetic", "auth_mode": "db_auth",
                                  "project_creation_restriction": "everyone", "self_registration": False,
                                  "has_ca_root": False, "registry_url": "127.0.0.1"})

    def _project_json(self, i: int) -> dict[str, Any]:
        return {"creation_time": TIME, "current_user_role_id": 1, "current_user_role_ids": [1],
                "cve_allowlist": {"creation_time": TIME, "id": i + 1, "items": [], "project_id": i + 1,
                                  "update_time": TIME},
                "metadata": {"public": "false"}, "name": self.shape.project(i), "owner_id": 1,
                "owner_name": USER, "project_id": i + 1, "repo_count": self.shape.repos_of(i), "togglable": True,
                "update_time": TIME}

    async def projects(self, request: web.Request) -> web.Response:
        return self._page(request, self.shape.projects, self._project_json)

    async def project(self, request: web.Request) -> web.Response:
        return web.json_response(self._project_json(self._project_index(request.match_info["project"])))

    async def quotas(self, request: web.Request) -> web.Response:
        def row(i: int) -> dict[str, Any]:
            return {"creation_time": TIME, "hard": {"storage": -1}, "id": i + 1,
                    "ref": {"id": i + 1, "name": self.shape.project(i), "owner_name": USER},
                    "update_time": TIME, "used": {"storage": 1024 * (i + 1)}}

        return self._page(request, self.shape.projects, row)

    async def repositories(self, request: web.Request) -> web.Response:
        p = self._project_index(request.match_info["project"])
        shape = self.shape

        def row(j: int) -> dict[str, Any]:
            return {"artifact_count": len(shape.artifacts(shape.tags_of(shape.repo_index(p, j)))),
                    "creation_time": TIME, "id": shape.repo_index(p, j) + 1, "name": shape.repo_name(p, j),
                    "project_id": p + 1, "pull_count": 0, "update_time": TIME}

        return self._page(request, shape.repos_of(p), row)

    async def artifacts(self, request: web.Request) -> web.Response:
        p = self._project_index(request.match_info["project"])
        inner = unquote(unquote(request.match_info["repo"]))
        _, _, tail = inner.rpartition("app-")
        shape = self.shape
        j = int(tail) if tail.isdigit() else -1
        if not 0 <= j < shape.repos_of(p) or shape.repo_name(p, j) != f"{shape.project(p)}/{inner}":
            raise HarborError(404, f"repository {inner} not found")
        name, index = shape.repo_name(p, j), shape.repo_index(p, j)
        counts = shape.artifacts(shape.tags_of(index))
        first = [0]  # the index of each artifact's first tag
        for c in counts:
            first.append(first[-1] + c)

        def row(a: int) -> dict[str, Any]:
            digest = _digest(name, a)
            art_id = index * 1000 + a + 1
            tags = [{"artifact_id": art_id, "id": art_id * 100 + t, "immutable": False,
                     "name": f"1.{a}.{t}", "pull_time": "0001-01-01T00:00:00.000Z", "push_time": TIME,
                     "repository_id": index + 1} for t in range(counts[a])]
            return {"accessories": None, "addition_links": {
                        "build_history": {"absolute": False, "href": f"{API}/projects/{shape.project(p)}/"
                                          f"repositories/{request.match_info['repo']}/artifacts/{digest}/"
                                          "additions/build_history"}},
                    "digest": digest, "extra_attrs": {"architecture": "amd64", "os": "linux", "created": TIME},
                    "icon": "sha256:0048162a053eef4d4ce3fe7518615bef084403614f8bca43b40ae2e762e11e06",
                    "id": art_id, "labels": None, "manifest_media_type": MEDIA_TYPE, "media_type":
                    "application/vnd.docker.container.image.v1+json", "project_id": p + 1,
                    "pull_time": "0001-01-01T00:00:00.000Z", "push_time": TIME, "references": None,
                    "repository_id": index + 1, "repository_name": name, "size": 1_000_000 + a,
                    "tags": tags or None, "type": "IMAGE"}

        return self._page(request, len(counts), row)

    async def v2(self, _request: web.Request) -> web.Response:
        return web.json_response({})

    async def not_found(self, _request: web.Request) -> web.Response:
        raise HarborError(404, "manifest unknown")

    # -- counters ----------------------------------------------------------------------------

    async def stats(self, _request: web.Request) -> web.Response:
        cpu = time.process_time()
        return web.json_response({"requests": sum(self.requests.values()), "by_kind": dict(self.requests),
                                  "cpu_seconds": cpu, "handler_seconds": self.handler_seconds})

    async def reset(self, _request: web.Request) -> web.Response:
        self.requests.clear()
        self.handler_seconds = 0.0
        return web.json_response({"cpu_seconds": time.process_time()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.synthetic_harbor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--repositories", type=int, default=100_000)
    parser.add_argument("--tags", type=int, default=1_000_000)
    parser.add_argument("--tags-per-artifact", type=int, default=1)
    args = parser.parse_args(argv)
    shape = Shape(args.projects, args.repositories, args.tags, args.tags_per_artifact)
    runner = web.AppRunner(Synthetic(shape).app(), access_log=None)

    async def serve() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port)
        await site.start()
        port = runner.addresses[0][1]
        print(f"listening http://127.0.0.1:{port}", flush=True)
        while True:
            await asyncio.sleep(3600)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
