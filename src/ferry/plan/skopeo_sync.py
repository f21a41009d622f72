"""skopeo sync compatible input: ``--src yaml FILE`` and ``--src docker SOURCE``, to ``--dest docker DEST``.

Sources
-------
``--src docker SOURCE`` (skopeo-sync(1): "If no image tag is specified, skopeo sync copies all the tags
found in that repository"): ``host/repo`` → every tag; ``host/repo:tag`` → that image;
``host/repo@sha256:…`` → that digest. Docker normalisation applies (``busybox`` is
``docker.io/library/busybox``).

``--src yaml FILE``, the format of skopeo-sync(1)'s EXAMPLES::

    registry.example.com:              # a registry, optionally with a path: the image names go under it
      images:                          # repository → list of tags or digests; [] (or nothing) = all tags
        busybox: []
        redis: ["1.0", "2.0", "sha256:…"]
      images-by-tag-regex:             # repository → regular expression on tags (unanchored search)
        nginx: ^1\\.13\\.[12]-alpine-perl$
      images-by-semver:                # repository → Masterminds semver constraint (see plan/semver.py)
        alpine: ">= 3.12.0"
      credentials: {username: john, password: this is a secret}   # also "identitytoken"
      tls-verify: true                 # absent: keep the command line's --src-tls-verify
      cert-dir: /home/john/certs       # absent: keep --src-cert-dir

Where skopeo only logs an error and skips the entry (a tag that is neither a valid tag nor a digest, an
image name with a tag, a bad regex or constraint), ferry refuses the file with the entry's location:
a half-applied sync file is worse than none. Unknown keys are refused too (``image:`` for ``images:``
would otherwise sync nothing, silently). Scalars keep their text: ``redis: [3.10]`` means tag ``3.10``.

Each registry entry's settings apply to the repositories it lists (that is skopeo's scope: the entry's
context is used for those images only), so :func:`load_skopeo_yaml` keys its AccessMap by each full
source repository; the map's default is the ``base`` Access built from the ``--src-*`` flags.
Destination access is the caller's to add (with ``--dest-*`` flags).

Destination naming (``--dest docker DEST``)
-------------------------------------------
skopeo puts an image at ``DEST/<last path component>[:tag]`` and, with ``--scoped``, at
``DEST/<source host>/<source path>[:tag]``. Flattening to the last component silently merges
``proj0/app`` and ``proj1/app``, so ferry's default keeps the whole repository path:

============ ============================================== ====================================
naming       ``registry.example.com/proj/app:1`` to ``DEST`` skopeo equivalent
============ ============================================== ====================================
``path``     ``DEST/proj/app:1`` (default)                  none (skopeo flattens)
``scoped``   ``DEST/registry.example.com/proj/app:1``       ``--scoped``
``basename`` ``DEST/app:1``                                 skopeo without ``--scoped``
============ ============================================== ====================================

Docker Hub official images keep their ``library/`` component in ``path`` and ``scoped`` naming
(``DEST/library/busybox``), as the path is the repository's. In ``scoped`` naming a host's port
becomes ``_PORT`` (``localhost:5000`` → ``localhost_5000``) and the host is lower-cased, because a
repository path component cannot hold ``:`` or capitals (skopeo fails on such hosts instead).
Two sources that still land on one destination are reported by ``check_plan``.

``--append-suffix SUFFIX`` appends to every destination tag (``Rule.tag_suffix``); images selected by
digest have no tag to suffix, so that combination is refused (skopeo fails on it when copying).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from ferry.access import Access, AccessMap, Credential
from ferry.errors import ConfigError, UsageError
from ferry.plan import plain_rules
from ferry.plan.files import (
    Document,
    Format,
    compile_tag_regex,
    expect_mapping,
    expect_str,
    key_as_read,
    line_in_path,
    line_of,
    normalize_hub,
    read_document,
    repository_ref,
)
from ferry.plan.model import Rule, TagSelector
from ferry.plan.plain_rules import SKOPEO_SECTIONS, SkopeoEntry
from ferry.refs import RegistryRef, is_digest, is_tag, parse_docker_ref, parse_repository

__all__ = [
    "DestNaming",
    "SyncSource",
    "destination_repository",
    "load_skopeo_yaml",
    "rules_from_docker_source",
    "rules_from_skopeo_yaml",
    "rules_from_sources",
    "source_from_docker",
]

_EXPECTED = "a mapping of registry to {images, images-by-tag-regex, images-by-semver, credentials, tls-verify}"


class DestNaming(StrEnum):
    """How a source repository is named under ``DEST`` (see the module docstring)."""

    PATH = "path"
    SCOPED = "scoped"
    BASENAME = "basename"


@dataclass(frozen=True, slots=True)
class SyncSource:
    """A source repository and its tag selection, before a destination is known."""

    source: RegistryRef  # repository only
    select: TagSelector
    origin: str = ""


# --------------------------------------------------------------------------------------------------
# --src docker


def source_from_docker(text: str) -> SyncSource:
    """``--src docker SOURCE``: a repository (all tags), or one tagged or digested image."""
    ref = normalize_hub(parse_docker_ref(text.strip(), default_tag=False))
    if ref.digest:
        select = TagSelector(digests=(ref.digest,))
    elif ref.tag:
        select = TagSelector(tags=(ref.tag,))
    else:
        select = TagSelector()
    return SyncSource(ref.repo_ref(), select, origin=f"--src docker {text}")


# --------------------------------------------------------------------------------------------------
# --src yaml


def load_skopeo_yaml(path: str | Path, *, base: Access | None = None) -> tuple[list[SyncSource], AccessMap]:
    """Read a ``skopeo sync --src yaml`` file: its sources (file order, then ``images``,
    ``images-by-tag-regex``, ``images-by-semver`` within a registry) and their access settings."""
    base = base or Access()
    doc = read_document(path, fmt=Format.YAML, expected=_EXPECTED)
    top = expect_mapping(doc, doc.data, (), _EXPECTED)
    sources: list[SyncSource] = []
    access: dict[str, Access] = {}
    for registry, raw in top.items():
        key_path = (registry,)
        where = doc.where(key_path, line_of(registry))
        if raw is None:
            continue  # skopeo: "No images specified for registry"
        entry = plain_rules.skopeo_entry(raw)
        if entry is None:  # not plainly well-formed: the models of record read it, or say what is wrong
            from ferry.plan import rule_models

            entry = rule_models.skopeo_entry(doc, key_path, raw)
        if not str(registry).strip():
            raise ConfigError(f"{where}: the registry name is empty")
        settings = _entry_access(entry, base)
        mapping: dict[Any, Any] = raw
        found = _entry_sources(doc, registry, mapping)
        for item in found:
            key = AccessMap.key(item.source.registry, item.source.repository)
            if access.get(key, settings) != settings:
                raise ConfigError(f"{item.origin}: {key} is listed under another registry key with other settings")
            access[key] = settings
        sources.extend(found)
    return sources, AccessMap(entries=access, default=base)


def _entry_access(entry: SkopeoEntry, base: Access) -> Access:
    result = base
    creds = entry.credentials
    if creds is not None and (creds.username or creds.password or creds.identitytoken):
        result = replace(result, credential=Credential(creds.username, creds.password, creds.identitytoken or None))
    if entry.tls_verify is not None:
        result = replace(result, tls_verify=entry.tls_verify)
    if entry.cert_dir:
        result = replace(result, cert_dir=entry.cert_dir)
    return result


def _entry_sources(doc: Document, registry: str, raw: dict[Any, Any]) -> list[SyncSource]:
    result: list[SyncSource] = []
    for section in SKOPEO_SECTIONS:
        if raw.get(section) is None:
            continue
        section_key = key_as_read(raw, section)
        for name, value in raw[section].items():
            path = (registry, section_key, name)
            where = doc.where(path, line_in_path(path))
            repo_text = f"{str(registry).strip().rstrip('/')}/{str(name).strip().lstrip('/')}"
            repo = repository_ref(repo_text, where, "image")
            if section == "images":
                # TagSelector holds one form: a list mixing tags and digests becomes two sources.
                result.extend(SyncSource(repo, select, where) for select in _image_refs(doc, path, value))
                continue
            if section == "images-by-tag-regex":
                pattern = expect_str(doc, value, path, "the tag regex")
                if not pattern:
                    raise ConfigError(f"{where}: the tag regex is empty")
                select = TagSelector(regex=compile_tag_regex(pattern, where))
            else:
                from ferry.plan.semver import SemverError, parse_constraint  # for this section only

                constraint = expect_str(doc, value, path, "the semver constraint")
                try:
                    parse_constraint(constraint)
                except SemverError as err:
                    raise ConfigError(f"{where}: {err}", hint='e.g. ">= 1.2, < 2", "^1.2", "~1.2.3", "1.x"') from None
                select = TagSelector(semver=constraint)
            result.append(SyncSource(repo, select, where))
    return result


def _image_refs(doc: Document, path: tuple[Any, ...], value: object) -> list[TagSelector]:
    if value is None or value == []:
        return [TagSelector()]  # all tags
    if not isinstance(value, list):
        raise doc.error("expected a list of tags or digests ([] for all tags)", path, line_in_path(path))
    tags: list[str] = []
    digests: list[str] = []
    for index, item in enumerate(value):
        item_path = (*path, index)
        text = expect_str(doc, item, item_path, "a tag or digest")
        if is_digest(text):
            digests.append(text)
        elif is_tag(text):
            tags.append(text)
        else:
            raise doc.error(
                f"{json.dumps(text)} is neither a tag (letters, digits, _ . -, at most 128) nor a sha256: digest",
                item_path,
                line_of(item) or line_in_path(path),
            )
    selectors = [TagSelector(tags=tuple(tags))] if tags else []
    return selectors + ([TagSelector(digests=tuple(digests))] if digests else [])


# --------------------------------------------------------------------------------------------------
# Destinations


def _scope_host(registry: str) -> str:
    """A registry host as one repository path component: lower case, ``:`` → ``_`` (``localhost_5000``)."""
    host = registry.lower().replace("[", "").replace("]", "").replace(":", "_")
    host = re.sub(r"[^a-z0-9._-]", "_", host)
    return re.sub(r"_+", "_", host).strip("._-")


def destination_repository(destination: str, source: RegistryRef, naming: DestNaming = DestNaming.PATH) -> RegistryRef:
    """Where ``source`` goes under ``--dest docker DEST`` (see the naming table above)."""
    if naming is DestNaming.BASENAME:
        suffix = source.repository.rsplit("/", 1)[-1]
    elif naming is DestNaming.SCOPED:
        suffix = f"{_scope_host(source.registry)}/{source.repository}"
    else:
        suffix = source.repository
    base = destination.strip().rstrip("/")
    if not base:
        raise UsageError("the destination is empty", hint="write a registry, optionally with a path: host/path")
    if "@" in base or _has_tag(base):
        raise UsageError(f"destination {base!r} names a tag or digest; a registry or registry/path is expected")
    try:
        return normalize_hub(parse_repository(f"{base}/{suffix}"))
    except UsageError as err:
        raise UsageError(f"destination {base!r} for {source}: {err.message}", hint=err.hint) from None


def _has_tag(text: str) -> bool:
    """A ``:`` in the last path component (the first component may be host:port)."""
    return "/" in text and ":" in text.rsplit("/", 1)[-1]


def rules_from_sources(
    sources: Iterable[SyncSource],
    destination: str,
    *,
    naming: DestNaming = DestNaming.PATH,
    append_suffix: str = "",
) -> list[Rule]:
    """Attach a ``--dest docker DEST`` to sources."""
    rules: list[Rule] = []
    for item in sources:
        if append_suffix and item.select.digests:
            raise ConfigError(
                f"{item.origin}: --append-suffix cannot apply to images selected by digest (they have no tag)"
            )
        dest = destination_repository(destination, item.source, naming)
        rules.append(Rule(item.source, item.select, dest, item.origin, tag_suffix=append_suffix))
    return rules


def rules_from_docker_source(
    source: str,
    destination: str,
    *,
    naming: DestNaming = DestNaming.PATH,
    append_suffix: str = "",
) -> list[Rule]:
    """``skopeo sync --src docker SOURCE --dest docker DEST``."""
    return rules_from_sources([source_from_docker(source)], destination, naming=naming, append_suffix=append_suffix)


def rules_from_skopeo_yaml(
    path: str | Path,
    destination: str,
    *,
    naming: DestNaming = DestNaming.PATH,
    append_suffix: str = "",
    base: Access | None = None,
) -> tuple[list[Rule], AccessMap]:
    """``skopeo sync --src yaml FILE --dest docker DEST``: rules and the sources' access settings."""
    sources, access = load_skopeo_yaml(path, base=base)
    return rules_from_sources(sources, destination, naming=naming, append_suffix=append_suffix), access
