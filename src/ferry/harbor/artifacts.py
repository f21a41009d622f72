"""Harbor repositories and artifacts, with every tag, index child and accessory."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from ferry.errors import ProtocolError
from ferry.harbor.client import HarborAPI, project_path, repository_path


@dataclass(frozen=True, slots=True)
class Accessory:
    digest: str
    type: str  # signature.cosign, signature.notation, sbom.harbor, …
    subject_digest: str


@dataclass(frozen=True, slots=True)
class Artifact:
    repository: str  # full name, project included
    digest: str
    media_type: str
    size: int
    tags: tuple[str, ...]
    accessories: tuple[Accessory, ...] = ()
    references: tuple[str, ...] = ()  # child digests of an index
    push_time: str = ""  # Harbor's ISO time (UTC, ``Z``): sorts as text
    tag_push_times: tuple[str, ...] = ()  # one per tag, in the order of ``tags``; "": the artifact's

    def pushed(self, tag: str | None) -> str:
        """When ``tag`` (or the artifact itself, for None or an unknown tag) was pushed at the source."""
        if tag in self.tags and len(self.tag_push_times) == len(self.tags):
            return self.tag_push_times[self.tags.index(tag)] or self.push_time
        return self.push_time


async def list_repositories(api: HarborAPI, project: str) -> list[str]:
    """Full repository names (``project/…``) of one project."""
    names = []
    async for r in api.list(f"{project_path(project)}/repositories"):
        name = r.get("name")
        if not isinstance(name, str) or not name.startswith(project + "/"):
            raise ProtocolError(f"{api.host}: repository {name!r} listed outside project {project!r}")
        names.append(name)
    return names


async def list_artifacts(api: HarborAPI, repository: str) -> list[Artifact]:
    params = {"with_tag": "true", "with_accessory": "true", "with_label": "false",
              "with_scan_overview": "false"}
    out = []
    async for a in api.list(f"{repository_path(repository)}/artifacts", params):
        digest = a.get("digest")
        if not isinstance(digest, str):
            raise ProtocolError(f"{api.host}: artifact without digest in {repository}")
        tag_rows = [t for t in (a.get("tags") or []) if isinstance(t, dict) and t.get("name")]
        tags = tuple(str(t["name"]) for t in tag_rows)
        accessories = tuple(
            Accessory(str(x.get("digest")), str(x.get("type", "")), str(x.get("subject_artifact_digest") or digest))
            for x in (a.get("accessories") or []) if isinstance(x, dict) and x.get("digest")
        )
        refs = tuple(str(r.get("child_digest")) for r in (a.get("references") or [])
                     if isinstance(r, dict) and r.get("child_digest"))
        # a million artifacts repeat a few media types, and most tags were pushed with their artifact:
        # interned and left empty, they cost nothing per tag
        pushed = str(a.get("push_time") or "")
        tag_times = tuple("" if t.get("push_time") in (None, pushed) else str(t["push_time"]) for t in tag_rows)
        media_type = sys.intern(str(a.get("manifest_media_type") or a.get("media_type") or ""))
        out.append(Artifact(repository, digest, media_type, int(a.get("size") or 0), tags, accessories, refs,
                            pushed, tag_times if any(tag_times) else ()))
    return out
