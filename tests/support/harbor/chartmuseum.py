"""Harbor's ChartMuseum front (Harbor up to 2.7): ``/api/chartrepo/…`` (the chart API) and
``/chartrepo/<project>/…`` (the Helm repository: ``index.yaml`` and the ``.tgz``/``.prov`` files).

Shapes follow Harbor 2.7's ``legacy_swagger.yaml`` (ChartInfoEntry, ChartVersion,
ChartVersionDetails) and ChartMuseum's own answers (``{"saved": true}``, ``{"error": …}``);
permissions are Harbor's: reading needs a readable project, uploading developer or more,
deleting maintainer or more. Charts are kept in memory; a server started as Harbor 2.8 or
later has no ChartMuseum and answers 404 on every one of these paths.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import yaml
from aiohttp import web

from tests.support.harbor.common import HarborError, forbidden, ts, unauthorized
from tests.support.harbor.model import Caller, HarborProject

if TYPE_CHECKING:
    from tests.support.harbor.server import HarborServer

API_PREFIX = "/api/chartrepo/"
REPO_PREFIX = "/chartrepo/"


@dataclass
class StoredChart:
    name: str
    version: str
    archive: bytes
    prov: bytes | None
    metadata: dict[str, Any]
    created: float

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.tgz"

    @property
    def digest(self) -> str:  # ChartMuseum's index digest: bare sha256 hex
        return hashlib.sha256(self.archive).hexdigest()

    def version_json(self) -> dict[str, Any]:
        """Swagger ``ChartVersion`` (Chart.yaml's fields plus the repository's)."""
        return {**self.metadata, "urls": [f"charts/{self.filename}"], "created": ts(self.created),
                "digest": self.digest, "removed": False, "engine": "gotpl", "labels": []}


class BadChart(ValueError):
    pass


def read_chart_yaml(archive: bytes) -> dict[str, Any]:
    """Chart.yaml of a chart archive, as ChartMuseum reads it on upload."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for member in tar.getmembers():
                if member.name.count("/") == 1 and member.name.endswith("/Chart.yaml"):
                    data = tar.extractfile(member)
                    meta = yaml.safe_load(data.read()) if data else None
                    if isinstance(meta, dict) and meta.get("name") and meta.get("version"):
                        return meta
    except (tarfile.TarError, OSError, EOFError, yaml.YAMLError) as e:
        raise BadChart(f"invalid chart archive: {e}") from None
    raise BadChart("chart archive has no Chart.yaml with a name and a version")


@dataclass
class ChartMuseum:
    """The charts of every project: ``charts[project][name][version]``."""

    charts: dict[str, dict[str, dict[str, StoredChart]]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def add(self, project: str, archive: bytes, prov: bytes | None = None, *, name: str | None = None,
            version: str | None = None, created: float | None = None) -> StoredChart:
        """Store a chart (seeding). ``name``/``version`` store an archive ChartMuseum could not read
        (a file damaged on its disk) under that name."""
        meta = {"name": name, "version": version} if name and version else read_chart_yaml(archive)
        chart = StoredChart(str(meta["name"]), str(meta["version"]), archive, prov, meta, created or time.time())
        with self.lock:
            self.charts.setdefault(project, {}).setdefault(chart.name, {})[chart.version] = chart
        return chart

    def get(self, project: str, name: str, version: str) -> StoredChart | None:
        with self.lock:
            return self.charts.get(project, {}).get(name, {}).get(version)

    def versions(self, project: str, name: str) -> list[StoredChart]:
        with self.lock:
            return list(self.charts.get(project, {}).get(name, {}).values())

    def names(self, project: str) -> list[str]:
        with self.lock:
            return sorted(n for n, v in self.charts.get(project, {}).items() if v)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _project(srv: HarborServer, caller: Caller, name: str, need: str = "read") -> HarborProject:
    project = srv.require_project(caller, name, is_name=True)
    allowed = {"read": caller.can_read, "push": caller.can_push, "delete": caller.can_delete}[need](project)
    if not allowed:
        raise forbidden() if caller.authenticated else unauthorized()
    return project


async def handle(srv: HarborServer, request: web.Request, path: str) -> web.Response:
    """Every ``/api/chartrepo/`` and ``/chartrepo/`` request."""
    museum: ChartMuseum | None = srv.chartmuseum
    if museum is None:
        return HarborError(404, f"path {path} was not found").response()
    caller = srv.caller(request)
    body = await request.read() if request.method == "POST" else b""
    try:
        if path.startswith(API_PREFIX):
            return _api(srv, museum, caller, request, [unquote(s) for s in path[len(API_PREFIX):].split("/")], body)
        return _repo(srv, museum, caller, request, [unquote(s) for s in path[len(REPO_PREFIX):].split("/")])
    except HarborError as e:
        return e.response()


def _api(srv: HarborServer, museum: ChartMuseum, caller: Caller, request: web.Request, segs: list[str],
         body: bytes) -> web.Response:
    method = request.method
    if segs == ["health"] and method == "GET":
        return web.json_response({"healthy": True})
    if len(segs) < 2 or segs[1] != "charts":
        raise HarborError(404, "not found")
    project = segs[0]
    if len(segs) == 2 and method == "GET":
        _project(srv, caller, project)
        return web.json_response([_info(museum.versions(project, n)) for n in museum.names(project)])
    if len(segs) == 2 and method == "POST":
        _project(srv, caller, project, "push")
        return _upload(museum, project, request, body)
    if len(segs) == 3 and method == "GET":
        _project(srv, caller, project)
        versions = museum.versions(project, segs[2])
        if not versions:
            return _error(404, "chart not found")
        return web.json_response([c.version_json() for c in sorted(versions, key=lambda c: -c.created)])
    if len(segs) == 4 and method in ("GET", "DELETE"):
        _project(srv, caller, project, "read" if method == "GET" else "delete")
        chart = museum.get(project, segs[2], segs[3])
        if chart is None:
            return _error(404, "improper constraint: " + segs[3])
        if method == "DELETE":
            with museum.lock:
                del museum.charts[project][chart.name][chart.version]
            return web.json_response({"deleted": True})
        return web.json_response(_details(chart))
    raise HarborError(405 if len(segs) <= 4 else 404, f"method {method} is not allowed")


def _info(versions: list[StoredChart]) -> dict[str, Any]:
    """Swagger ``ChartInfoEntry``."""
    latest = max(versions, key=lambda c: c.created)
    return {"name": latest.name, "total_versions": len(versions), "latest_version": latest.version,
            "created": ts(min(c.created for c in versions)), "updated": ts(latest.created),
            "icon": latest.metadata.get("icon", ""), "home": latest.metadata.get("home", ""),
            "deprecated": bool(latest.metadata.get("deprecated", False))}


def _details(chart: StoredChart) -> dict[str, Any]:
    """Swagger ``ChartVersionDetails``."""
    return {"metadata": chart.version_json(), "dependencies": chart.metadata.get("dependencies", []),
            "values": {}, "files": {}, "labels": [],
            "security": {"signature": {"signed": chart.prov is not None,
                                       "prov_file": f"charts/{chart.filename}.prov" if chart.prov else ""}}}


def _upload(museum: ChartMuseum, project: str, request: web.Request, body: bytes) -> web.Response:
    """``POST /api/chartrepo/{repo}/charts``: multipart ``chart`` and optional ``prov``."""
    parts = _multipart(request.headers.get("Content-Type", ""), body)
    archive = parts.get("chart")
    if archive is None:
        return _error(400, "no chart file in the request (form field 'chart')")
    try:
        meta = read_chart_yaml(archive)
    except BadChart as e:
        return _error(400, str(e))
    if museum.get(project, str(meta["name"]), str(meta["version"])) is not None:
        return _error(409, "file already exists")
    museum.add(project, archive, parts.get("prov"))
    return web.json_response({"saved": True}, status=201)


def _multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """The fields of a ``multipart/form-data`` body by name."""
    from email.parser import BytesParser
    from email.policy import HTTP

    if not content_type.startswith("multipart/form-data"):
        return {}
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    return fields


def _repo(srv: HarborServer, museum: ChartMuseum, caller: Caller, request: web.Request,
          segs: list[str]) -> web.Response:
    if request.method != "GET" or len(segs) < 2:
        raise HarborError(404, "not found")
    project = segs[0]
    _project(srv, caller, project)
    if segs[1:] == ["index.yaml"]:
        return web.Response(body=_index(museum, project), content_type="application/x-yaml")
    if len(segs) == 3 and segs[1] == "charts":
        filename = segs[2]
        for name in museum.names(project):
            for chart in museum.versions(project, name):
                if filename == chart.filename:
                    return web.Response(body=chart.archive, content_type="application/x-tar")
                if filename == chart.filename + ".prov" and chart.prov is not None:
                    return web.Response(body=chart.prov, content_type="application/pgp-signature")
        return _error(404, "not found")
    raise HarborError(404, "not found")


def _index(museum: ChartMuseum, project: str) -> bytes:
    entries = {name: [c.version_json() for c in museum.versions(project, name)] for name in museum.names(project)}
    return yaml.safe_dump({"apiVersion": "v1", "entries": entries, "generated": ts(time.time())}).encode()


def has_chartmuseum(harbor_version: str) -> bool:
    """Harbor ships ChartMuseum up to 2.7 (``v2.7.4``…); 2.8 removed it."""
    numbers = harbor_version.lstrip("v").split("-")[0].split(".")
    try:
        return (int(numbers[0]), int(numbers[1])) < (2, 8)
    except (IndexError, ValueError):
        return False
