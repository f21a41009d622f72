"""image-syncer compatible input: ``--auth`` and ``--images`` files, and the older ``--config`` file.

Formats are JSON (with ``//``/``/* */`` comments allowed, as in image-syncer's README) or YAML; the
extension decides (``.json``, ``.yaml``/``.yml``), otherwise the first significant character does.

Authentication file (``--auth``)
    ``{"registry[/namespace]": {"username": …, "password": …, "insecure": bool, "identityToken": …}}``.
    The longest matching ``registry/namespace`` prefix wins (``AccessMap``). ``username``/``password``
    may be ``${VAR}`` or ``$VAR`` (expanded from the environment; an unset variable is an error naming
    it, ``$$`` is a literal ``$``, and a ``$`` not followed by a name stays as it is). ``insecure: true``
    means a plain-HTTP registry. Unknown keys and wrong types are refused. Docker Hub keys written
    ``registry.hub.docker.com`` or ``index.docker.io`` (older image-syncer examples) mean ``docker.io``.

Image rules file (``--images``): ``{source: destination | [destination, …]}``, as image-syncer's README
(v1.5) states them:

1. "Neither of the source images url and the destination images url should be empty." — except that an
   empty destination still means ``DEFAULT_REGISTRY/DEFAULT_NAMESPACE/<repo>`` when the caller passes
   both defaults (the ``--registry``/``--namespace`` flags of image-syncer < 1.5, with env fallbacks
   resolved by the caller). ``<repo>`` is the source path without its first component, the way
   image-syncer split ``registry/namespace/repository``: ``quay.io/coreos/kube-rbac-proxy`` →
   ``kube-rbac-proxy``; ``harbor.local/proj/team/app`` → ``team/app``; ``quay.io/app`` → ``app``.
2. "If the source images url contains no tags or digest, all the tags of source repository will be
   synced." (the destination may then name no tag).
3. "The source images url can have more than one tags, which should be seperated by comma".
4. "The source images url can have at most one digest, and the destination images url should only have
   no digest or the same digest". A digest source with a tagged destination pushes that image under the
   tag. (``repo:tag@digest`` means the digest, as in image-syncer.)
5. "The 'tags' part of source images url can be a regular expression which needs to have an additional
   prefix and suffix string ``/``" — ``repo:/^v1\\./`` (matched with ``re.search``, like Go's
   ``MatchString``). One regex per rule.
6. "If the destination images url has no digest or tags, it means the source images will keep the same
   tags or digest after being synced."
7. "The destination images url can have more than one tags, the number of which must be the same with
   the tags in the source images url … (correspond from left to right)."
8. "The 'destination images url' can also be an array, each of which follows the rules above."

Destinations (not sources) are environment-expanded, as image-syncer does since it accepted lists.

The older single ``--config`` file holds ``auth`` and ``images`` keys; image-syncer does not expand
environment variables in its ``auth`` part, so neither does :func:`load_config` unless asked.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ferry.access import Access, AccessMap, Credential
from ferry.errors import ConfigError, UsageError
from ferry.plan import plain_rules
from ferry.plan.files import (
    Document,
    Format,
    access_key,
    compile_tag_regex,
    expect_mapping,
    key_as_read,
    line_of,
    normalize_hub,
    read_document,
    repository_ref,
)
from ferry.plan.model import Rule, TagSelector
from ferry.refs import RegistryRef, is_tag, parse_docker_ref

__all__ = ["expand_env", "load_auth", "load_config", "load_images", "parse_auth", "parse_images"]

_AUTH_EXPECTED = 'a mapping of "registry[/namespace]" to {username, password, insecure}'
_IMAGES_EXPECTED = "a mapping of source image to destination image (or a list of them)"
_CONFIG_EXPECTED = 'a mapping with "auth" and "images"'


# --------------------------------------------------------------------------------------------------
# Environment variables

_VAR = re.compile(r"\$(?:\{(?P<braced>[^}]*)\}|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<dollar>\$)|(?P<open>\{))")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def expand_env(value: str, where: str, env: Mapping[str, str] | None = None) -> str:
    """Expand ``${VAR}`` and ``$VAR``; an unset variable is a ConfigError naming it and ``where``."""
    environ = os.environ if env is None else env

    def sub(m: re.Match[str]) -> str:
        if m.group("dollar"):
            return "$"
        if m.group("open"):
            raise ConfigError(f"{where}: unterminated ${{ (write $$ for a literal $)")
        name = m.group("braced") if m.group("braced") is not None else m.group("name")
        if not _NAME.match(name):
            shown = json.dumps("${" + name + "}", ensure_ascii=False)
            raise ConfigError(f"{where}: {shown} is not a valid environment variable reference")
        if name not in environ:
            raise ConfigError(f"{where}: environment variable {name} is not set", hint="export it, or write $$")
        return environ[name]

    return _VAR.sub(sub, value)


# --------------------------------------------------------------------------------------------------
# Authentication


def _auth_text(value: str | None, where: str, env: bool) -> str:
    if value is None:
        return ""
    return expand_env(value, where) if env else value


def parse_auth(doc: Document, data: Any, path: Sequence[str | int] = (), *, env: bool = True) -> AccessMap:
    """Turn the auth mapping (already read) into an AccessMap; ``path`` locates it inside ``doc``."""
    entries: dict[str, Access] = {}
    mapping = expect_mapping(doc, data, path, _AUTH_EXPECTED)
    for key, value in mapping.items():
        key_path = (*path, key)
        where = doc.where(key_path, line_of(key))
        if value is None:
            value = {}
        entry = plain_rules.auth_entry(value)
        if entry is None:  # not plainly well-formed: the model of record reads it, or says what is wrong
            from ferry.plan import rule_models

            entry = rule_models.auth_entry(doc, key_path, value)
        prefix = access_key(key, where)
        if prefix in entries:
            raise ConfigError(f"{where}: names the same registry prefix {prefix!r} as another key")
        username = _auth_text(entry.username, f"{where}: username", env)
        password = _auth_text(entry.password, f"{where}: password", env)
        token = _auth_text(entry.identity_token, f"{where}: identityToken", env) or None
        credential = Credential(username, password, token) if (username or password or token) else None
        insecure = bool(entry.insecure)
        entries[prefix] = Access(credential=credential, tls_verify=not insecure, plain_http=insecure)
    return AccessMap(entries=entries)


def load_auth(path: str | Path, *, env: bool = True) -> AccessMap:
    """Read an image-syncer ``--auth`` file."""
    doc = read_document(path, expected=_AUTH_EXPECTED)
    return parse_auth(doc, doc.data, env=env)


# --------------------------------------------------------------------------------------------------
# Image rules


def _split_tags(text: str) -> tuple[str, str | None]:
    """``name[:tags]`` → (name, tags or None); the tag colon is the last one after the last slash."""
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        return text[:colon], text[colon + 1 :]
    return text, None


def _ref(text: str, where: str, what: str) -> RegistryRef:
    try:
        return normalize_hub(parse_docker_ref(text, default_tag=False))
    except UsageError as err:
        raise ConfigError(f"{where}: {what}: {err.message}", hint=err.hint) from None


def _tag_list(tags: str, where: str, what: str) -> tuple[str, ...]:
    # tag names repeat across repositories (latest, 1.0, …): interned, a million-tag file keeps each once
    result = tuple(sys.intern(t.strip()) for t in tags.split(","))
    for tag in result:
        if not is_tag(tag):
            shown = json.dumps(tag)
            raise ConfigError(f"{where}: {what}: {shown} is not a valid tag (letters, digits, _ . -, at most 128)")
    return result


class _Side:
    """One side of a rule: a repository plus what it names (tags, one digest, one regex, or nothing)."""

    def __init__(
        self, repo: RegistryRef, tags: tuple[str, ...] = (), digest: str | None = None, regex: str | None = None
    ) -> None:
        self.repo, self.tags, self.digest, self.regex = repo, tags, digest, regex


def _parse_side(text: str, where: str, what: str, *, allow_regex: bool) -> _Side:
    text = text.strip()
    if not text:
        raise ConfigError(f"{where}: the {what} is empty")
    if "://" in text:
        _ref(text, where, what)  # raises: a scheme does not belong in an image reference
    marker = text.find(":/")
    if marker > 0:
        if not allow_regex:
            raise ConfigError(f"{where}: the {what} {json.dumps(text)} cannot be a tag regex")
        body = text[marker + 1 :]
        if len(body) < 2 or not body.endswith("/"):
            raise ConfigError(
                f"{where}: {what} {json.dumps(text)}: a tag regex is written between slashes: repo:/regex/"
            )
        pattern = compile_tag_regex(body[1:-1], f"{where}: {what}")
        return _Side(repository_ref(text[:marker], where, what), regex=pattern)
    if "@" in text:
        ref = _ref(text, where, what)
        return _Side(ref.repo_ref(), digest=ref.digest)
    name, tags = _split_tags(text)
    if tags is not None and "," in tags:
        return _Side(repository_ref(name, where, what), tags=_tag_list(tags, where, what))
    ref = _ref(text, where, what)
    return _Side(ref.repo_ref(), tags=(ref.tag,) if ref.tag else ())


def _default_destination(source: RegistryRef, registry: str | None, namespace: str | None, where: str) -> str:
    if not (registry and namespace):
        raise ConfigError(
            f"{where}: the destination is empty; that needs both a default registry and a default namespace",
            hint="pass --registry and --namespace (or set DEFAULT_REGISTRY and DEFAULT_NAMESPACE), or write one",
        )
    parts = source.repository.split("/")
    repo = "/".join(parts[1:]) if len(parts) > 1 else parts[0]
    return f"{registry.strip().rstrip('/')}/{namespace.strip().strip('/')}/{repo}"


def _rules_for(source: _Side, dest: _Side, origin: str) -> list[Rule]:
    src_text = str(source.repo)
    if source.tags and dest.tags:
        if len(dest.tags) != len(source.tags):
            raise ConfigError(
                f"{origin}: the source names {len(source.tags)} tag(s) and the destination {len(dest.tags)}; "
                f"renamed tags pair up left to right, so the counts must match"
            )
        if dest.digest:
            raise ConfigError(f"{origin}: a destination digest needs a source with the same digest")
        return [
            Rule(source.repo, TagSelector(tags=(s,)), dest.repo.with_tag(d), origin)
            for s, d in zip(source.tags, dest.tags, strict=True)
        ]
    if source.digest:
        if dest.digest and dest.digest != source.digest:
            raise ConfigError(f"{origin}: the destination digest differs from the source digest {source.digest}")
        if len(dest.tags) > 1:
            raise ConfigError(f"{origin}: a digest source can be pushed under one tag, not {len(dest.tags)}")
        target = dest.repo.with_tag(dest.tags[0]) if dest.tags else dest.repo
        return [Rule(source.repo, TagSelector(digests=(source.digest,)), target, origin)]
    if dest.tags or dest.digest:
        if source.regex is not None:
            kind = f"selects tags by the regex /{source.regex}/"
        elif source.tags:
            kind = "names tags"
        else:
            kind = f"has no tag, so it copies every tag of {src_text}"
        named = "a digest" if dest.digest else "a tag"
        raise ConfigError(f"{origin}: the source {kind}; the destination must not name {named} then")
    if source.regex is not None:
        return [Rule(source.repo, TagSelector(regex=source.regex), dest.repo, origin)]
    return [Rule(source.repo, TagSelector(tags=source.tags), dest.repo, origin)]


def parse_images(
    doc: Document,
    data: Any,
    path: Sequence[str | int] = (),
    *,
    default_registry: str | None = None,
    default_namespace: str | None = None,
) -> list[Rule]:
    """Turn the images mapping (already read) into rules, in file order."""
    rules: list[Rule] = []
    mapping = expect_mapping(doc, data, path, _IMAGES_EXPECTED)
    for key, value in mapping.items():
        key_path = (*path, key)
        line = line_of(key)
        where = doc.where(key_path, line)
        source = _parse_side(key, where, "source", allow_regex=True)
        if value is None:
            value = ""
        if isinstance(value, str):
            destinations: list[tuple[str, tuple[str | int, ...]]] = [(value, key_path)]
        elif isinstance(value, list):
            if not value:
                raise ConfigError(f"{where}: the destination list is empty")
            destinations = []
            for index, item in enumerate(value):
                if not isinstance(item, str):
                    raise ConfigError(
                        f"{doc.where((*key_path, index), line_of(item) or line)}: a destination must be a string"
                    )
                destinations.append((item, (*key_path, index)))
        else:
            raise ConfigError(f"{where}: the destination must be a string or a list of strings")
        for text, dest_path in destinations:
            origin = doc.where(dest_path, line_of(text) or line)
            expanded = expand_env(text, origin).strip()
            if not expanded:
                expanded = _default_destination(source.repo, default_registry, default_namespace, origin)
            dest = _parse_side(expanded, origin, "destination", allow_regex=False)
            rules.extend(_rules_for(source, dest, origin))
    return rules


def load_images(
    path: str | Path, *, default_registry: str | None = None, default_namespace: str | None = None
) -> list[Rule]:
    """Read an image-syncer ``--images`` file into rules (one per source/destination pair, or per
    renamed tag). ``default_registry``/``default_namespace`` serve empty destinations."""
    doc = read_document(path, expected=_IMAGES_EXPECTED)
    return parse_images(doc, doc.data, default_registry=default_registry, default_namespace=default_namespace)


def load_config(
    path: str | Path,
    *,
    default_registry: str | None = None,
    default_namespace: str | None = None,
    expand_auth_env: bool = False,
) -> tuple[list[Rule], AccessMap]:
    """Read the older single ``--config`` file (``auth`` and ``images`` keys; ``auth`` is optional)."""
    doc = read_document(path, fmt=Format.AUTO, expected=_CONFIG_EXPECTED)
    top = expect_mapping(doc, doc.data, (), _CONFIG_EXPECTED)
    unknown = [k for k in top if k not in ("auth", "images")]
    if unknown:
        key = unknown[0]
        raise ConfigError(f"{doc.where((key,), line_of(key))}: unknown key (expected auth and images)")
    if "images" not in top:
        raise doc.error('no "images" key; it holds the sync rules')
    images_key = key_as_read(top, "images")
    rules = parse_images(
        doc,
        top["images"],
        (images_key,),
        default_registry=default_registry,
        default_namespace=default_namespace,
    )
    auth_key = key_as_read(top, "auth")
    if auth_key is None or top[auth_key] is None:
        access = AccessMap()
    else:
        access = parse_auth(doc, top[auth_key], (auth_key,), env=expand_auth_env)
    return rules, access
