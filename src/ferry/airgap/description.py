"""``ferry-export.json``: what an export holds, so that an import needs nothing from the source.

The format is documented in docs/export-format.md. Version 2 fills ``configuration`` (the neutral
description :func:`ferry.configuration.describe_configuration` reads) and ``charts`` (each version's
archive and provenance file are blobs of the layout) and may name the ``shard`` it holds; version 1
exports (images only) are still read. A description of a newer format version is refused.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ferry.errors import ProtocolError, UsageError
from ferry.transports.files import write_file_atomic

DESCRIPTION_FILE = "ferry-export.json"
FORMAT = "ferry-export"
VERSION = 2


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")  # a reader keeps what a newer writer of the same version adds


class Artifact(_Model):
    digest: str
    media_type: str = ""
    size: int | None = None  # Harbor's artifact size; None from a plain registry
    tags: list[str] = Field(default_factory=list)
    push_time: str | None = None  # Harbor's; None for accessories (Harbor lists them under their subject)
    subject: str | None = None  # an accessory's (a signature's) subject digest
    accessory_type: str | None = None  # Harbor's accessory type: signature.cosign, …


class Repository(_Model):
    name: str  # full name at the source, project included
    artifacts: list[Artifact] = Field(default_factory=list)


class Project(_Model):
    name: str
    public: bool = False
    metadata: dict[str, str] = Field(default_factory=dict)  # Harbor's project metadata, as it gave it
    storage_limit: int | None = None  # bytes, -1 unlimited, None unknown (not an administrator, plain registry)
    repositories: list[Repository] = Field(default_factory=list)


class Image(_Model):
    """One ``index.json`` entry: a tag, or the digest of an untagged artifact."""

    ref_name: str  # the org.opencontainers.image.ref.name of the entry: repository:tag or repository@digest
    repository: str
    project: str
    tag: str | None = None
    digest: str
    media_type: str  # the manifest's own media type (index.json may say the OCI one: docs/export-format.md)
    accessory: bool = False  # a signature or other accessory: imported after the images


class Blob(_Model):
    digest: str
    size: int


class Chart(_Model):
    """One Helm chart version: its ``.tgz`` (and provenance file) are blobs of the layout."""

    project: str
    name: str
    version: str
    filename: str  # the .tgz's name in the source's chart repository
    created: float = 0.0  # when ChartMuseum stored it (Unix time): the OCI chart's created annotation
    archive: Blob
    prov: Blob | None = None

    @property
    def label(self) -> str:
        return f"{self.project}/{self.name}:{self.version}"


class ShardInfo(_Model):
    index: int
    count: int


class Source(_Model):
    url: str
    kind: str  # "harbor" or "registry"


class Description(_Model):
    format: str = FORMAT
    version: int = VERSION
    source: Source
    created: str
    projects: list[Project] = Field(default_factory=list)
    images: list[Image] = Field(default_factory=list)
    shard: ShardInfo | None = None  # the share of the repositories this export holds (--shard)
    # {"system", "system_level", "kinds": kind → place → name → {body, ref}}; {} without configuration
    configuration: dict[str, Any] = Field(default_factory=dict)
    charts: list[Chart] = Field(default_factory=list)

    def project(self, name: str) -> Project | None:
        return next((p for p in self.projects if p.name == name), None)


def description_path(directory: str) -> str:
    return os.path.join(directory, DESCRIPTION_FILE)


def write_description(directory: str, description: Description) -> None:
    data = json.dumps(description.model_dump(mode="json"), indent=1, ensure_ascii=False).encode() + b"\n"
    write_file_atomic(description_path(directory), data)


def read_description(directory: str) -> Description:
    path = description_path(directory)
    try:
        with open(path, "rb") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise UsageError(f"{directory} is not a ferry export: it has no {DESCRIPTION_FILE}",
                         hint="export with ferry export, or let an interrupted export finish") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(f"{path} is not valid JSON ({e})", hint="the export is damaged; export again") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ProtocolError(f"{path} is not a ferry export description")
    if not isinstance(raw.get("version"), int) or raw["version"] > VERSION:
        raise UsageError(f"{path} has format version {raw.get('version')!r}; this ferry reads up to {VERSION}",
                         hint="import with the ferry version that exported it, or a newer one")
    try:
        return Description.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ProtocolError(f"{path}: {where}: {first['msg']}", hint="the export is damaged; export again") from None
