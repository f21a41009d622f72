"""Helm charts as OCI artifacts, made exactly as ``helm push`` makes them (Helm's pkg/registry:
client.go ``Push``, chart.go, constants.go), so a chart moved out of ChartMuseum is the artifact
``helm pull oci://…`` expects and has the digest ``helm push`` of the same ``.tgz`` would give.

- config ``application/vnd.cncf.helm.config.v1+json``: ``json.Marshal`` of Helm's ``chart.Metadata``
  as its loader fills it from Chart.yaml (and requirements.yaml): Go's field order, empty fields left
  out, ``apiVersion`` v1 when Chart.yaml has none;
- layers sorted by digest: the ``.tgz`` unchanged (``…chart.content.v1.tar+gzip``) and the
  provenance file (``…chart.provenance.v1.prov``) where there is one;
- manifest annotations from the metadata: description, title, version, url, created, source,
  authors, then Chart.yaml's annotations (never overriding title and version). ``helm push`` sets
  ``created`` from the archive's mtime; ferry uses the time ChartMuseum stored the version, so a
  rerun builds the same bytes.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import tarfile
import zlib
from dataclasses import dataclass
from typing import Any

from ferry.media import Descriptor, Manifest, parse_manifest, sha256_digest

CONFIG_MEDIA_TYPE = "application/vnd.cncf.helm.config.v1+json"
CHART_LAYER_MEDIA_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
PROV_LAYER_MEDIA_TYPE = "application/vnd.cncf.helm.chart.provenance.v1.prov"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"

# chart.Metadata, chart.Maintainer and chart.Dependency: (json name, kind) in Go's field order
_METADATA = (("name", str), ("home", str), ("sources", list), ("version", str), ("description", str),
             ("keywords", list), ("maintainers", "maintainers"), ("icon", str), ("apiVersion", str),
             ("condition", str), ("tags", str), ("appVersion", str), ("deprecated", bool),
             ("annotations", dict), ("kubeVersion", str), ("dependencies", "dependencies"), ("type", str))
_MAINTAINER = (("name", str), ("email", str), ("url", str))
_DEPENDENCY = (("name", str), ("version", str), ("repository", str), ("condition", str), ("tags", list),
               ("enabled", bool), ("import-values", "any"), ("alias", str))
_ALWAYS = {"name", "repository"}  # Dependency's fields without omitempty


class ChartError(ValueError):
    """Not a chart archive Helm could load."""


@dataclass(frozen=True, slots=True)
class OCIChart:
    """The blobs and manifest of one chart version."""

    config: bytes
    archive: bytes
    prov: bytes | None
    manifest: Manifest

    def blob(self, desc: Descriptor) -> bytes:
        for data in (self.config, self.archive, self.prov):
            if data is not None and sha256_digest(data) == desc.digest:
                return data
        raise KeyError(desc.digest)


def oci_tag(version: str) -> str:
    """``+`` is not allowed in an OCI tag: ``helm push`` writes ``_`` (and ``helm pull`` reads it back)."""
    return version.replace("+", "_")


def go_json(value: Any) -> bytes:
    """``encoding/json.Marshal``'s bytes: no spaces, UTF-8, ``<>&`` and U+2028/9 escaped, map keys sorted."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text.encode()


def read_chart_files(archive: bytes) -> dict[str, bytes]:
    """Chart.yaml and requirements.yaml of a chart archive (paths inside its top directory)."""
    if archive[:2] != b"\x1f\x8b":
        raise ChartError("not a gzip file")
    wanted: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for member in tar:
                _, _, inner = member.name.partition("/")
                if member.isfile() and inner in ("Chart.yaml", "requirements.yaml"):
                    data = tar.extractfile(member)
                    wanted[inner] = data.read() if data else b""
    except (tarfile.TarError, OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise ChartError(f"not a valid chart archive ({e})") from None
    if "Chart.yaml" not in wanted:
        raise ChartError("the archive has no Chart.yaml")
    return wanted


def _typed(fields: tuple[tuple[str, Any], ...], data: Any, where: str) -> dict[str, Any]:
    """A Go struct's JSON from YAML data: known fields in struct order, empty ones omitted."""
    if not isinstance(data, dict):
        raise ChartError(f"{where} is not a mapping")
    out: dict[str, Any] = {}
    for key, kind in fields:
        value = data.get(key)
        if value is None:
            if key in _ALWAYS and where != "Chart.yaml":
                out[key] = ""
            continue
        if kind == "maintainers" or kind == "dependencies":
            if not isinstance(value, list):
                raise ChartError(f"{where}: {key} is not a list")
            sub = _MAINTAINER if kind == "maintainers" else _DEPENDENCY
            value = [_typed(sub, v, f"{where} {key}") for v in value]
        elif kind == "any":
            value = json.loads(json.dumps(value, sort_keys=True, default=str))  # Go sorts map keys
        elif kind is dict:
            if not isinstance(value, dict):
                raise ChartError(f"{where}: {key} is not a mapping")
            items = sorted((str(k), v) for k, v in value.items())
            value = {k: _scalar(v, f"{where}: {key}.{k}") for k, v in items}
        elif kind is list:
            if not isinstance(value, list):
                raise ChartError(f"{where}: {key} is not a list")
            value = [_scalar(v, f"{where}: {key}") for v in value]
        elif kind is bool:
            if not isinstance(value, bool):
                raise ChartError(f"{where}: {key} is not true or false")
        elif not isinstance(value, str):
            raise ChartError(f"{where}: {key} is not a string")
        if value in ("", [], {}, False) and key not in _ALWAYS:
            continue
        out[key] = value
    return out


def _scalar(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ChartError(f"{where} is not a string")
    return value


def chart_metadata(archive: bytes) -> dict[str, Any]:
    """Helm's ``chart.Metadata`` of an archive, as JSON-ready data in Go's field order."""
    import yaml  # only where a chart is read: a migrate without charts never loads it (~2.6 MB)

    files = read_chart_files(archive)
    try:
        chart = yaml.safe_load(files["Chart.yaml"]) or {}
        requirements = yaml.safe_load(files["requirements.yaml"]) if "requirements.yaml" in files else None
    except yaml.YAMLError as e:
        raise ChartError(f"cannot load Chart.yaml: {e}") from None
    if not isinstance(chart, dict):
        raise ChartError("Chart.yaml is not a mapping")
    chart = dict(chart)
    if not chart.get("apiVersion"):
        chart["apiVersion"] = "v1"
    if isinstance(requirements, dict) and "dependencies" in requirements:
        chart["dependencies"] = requirements["dependencies"]
    meta = _typed(_METADATA, chart, "Chart.yaml")
    if not meta.get("name") or not meta.get("version"):
        raise ChartError("Chart.yaml has no name or no version")
    return meta


def rfc3339(created: float) -> str:
    """Go's ``time.Format(time.RFC3339)`` of a UTC time: whole seconds, ``Z``."""
    return dt.datetime.fromtimestamp(int(created), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def annotations(meta: dict[str, Any], created: str) -> dict[str, str]:
    """chart.go ``generateOCIAnnotations``."""
    out: dict[str, str] = {}

    def add(key: str, value: str) -> None:
        if value.strip():
            out[key] = value

    add("org.opencontainers.image.description", meta.get("description", ""))
    add("org.opencontainers.image.title", meta["name"])
    add("org.opencontainers.image.version", meta["version"])
    add("org.opencontainers.image.url", meta.get("home", ""))
    add("org.opencontainers.image.created", created)
    if meta.get("sources"):
        add("org.opencontainers.image.source", meta["sources"][0])
    if meta.get("maintainers"):
        authors = ", ".join(m.get("name", "") + (f" ({m['email']})" if m.get("email") else "")
                            for m in meta["maintainers"])
        add("org.opencontainers.image.authors", authors)
    immutable = {"org.opencontainers.image.title", "org.opencontainers.image.version"}
    out.update({k: v for k, v in meta.get("annotations", {}).items() if k not in immutable})
    return out


def _descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}


def build_oci_chart(archive: bytes, prov: bytes | None, created: float) -> OCIChart:
    """The OCI artifact ``helm push`` makes of ``archive`` (and its provenance file)."""
    meta = chart_metadata(archive)
    config = go_json(meta)
    layers = [_descriptor(CHART_LAYER_MEDIA_TYPE, archive)]
    if prov is not None:
        layers.append(_descriptor(PROV_LAYER_MEDIA_TYPE, prov))
    layers.sort(key=lambda d: d["digest"])
    body = {"schemaVersion": 2, "config": _descriptor(CONFIG_MEDIA_TYPE, config), "layers": layers,
            "annotations": dict(sorted(annotations(meta, rfc3339(created)).items()))}
    return OCIChart(config, archive, prov, parse_manifest(go_json(body), OCI_MANIFEST))
