"""Reading rule and credential files, and turning their values into typed data with precise errors.

Every failure is a :class:`~ferry.errors.ConfigError` whose one line names the file, the line or the
key, and what was expected: ``auth.yaml:3: key "quay.io": "insecure" must be true or false``.

Formats
-------
* JSON, optionally with ``//`` and ``/* */`` comments (image-syncer's examples carry them); comments
  are blanked out character for character, so JSON error positions stay exact.
* YAML, read the way Go's yaml decoders read a document into typed fields: every plain scalar is kept
  as its original *text* (``tag: 3.10`` stays ``"3.10"``, not the float 3.1; ``password: 0123`` stays
  ``"0123"``), and a plain ``true``/``false``/``yes``/``no``/``on``/``off`` counts as a boolean only
  where a boolean is expected (:func:`expect_bool`). ``~``/``null``/empty is ``None``.
* Duplicate keys are refused in both formats (Go's JSON decoder silently keeps the last one, which
  silently drops a rule; its YAML decoders refuse them too).

YAML strings are :class:`YStr` (a ``str``) remembering their line, so later checks can point at it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.errors import ConfigError, UsageError
from ferry.plan.ystr import YStr
from ferry.refs import DEFAULT_REGISTRY, RegistryRef, parse_docker_ref

if TYPE_CHECKING:
    from pydantic import ValidationError  # imported by the models that raise it (ferry.plan.rule_models)

__all__ = [
    "DOCKER_HUB_ALIASES",
    "Document",
    "Format",
    "YStr",
    "access_key",
    "compile_tag_regex",
    "describe",
    "expect_bool",
    "expect_mapping",
    "expect_str",
    "key_as_read",
    "line_in_path",
    "line_of",
    "normalize_hub",
    "read_document",
    "repository_ref",
    "strip_json_comments",
    "validation_error",
]


class Format(StrEnum):
    JSON = "json"
    YAML = "yaml"
    AUTO = "auto"  # by extension (.json/.yaml/.yml), else by the first significant character


def line_of(value: object) -> int | None:
    return getattr(value, "line", None)


def describe(file: str, path: Sequence[str | int] = (), line: int | None = None) -> str:
    """``file[:line][: key "a" → "b" entry 2]`` — the location prefix of every message."""
    where = f"{file}:{line}" if line else file
    if not path:
        return where
    parts: list[str] = []
    for item in path:
        if isinstance(item, int):
            parts.append(f"entry {item + 1}")
        else:
            parts.append(json.dumps(str(item), ensure_ascii=False))
    return f"{where}: key " + " → ".join(parts)


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed file: ``name`` is the path as the user wrote it (used in every message)."""

    name: str
    data: Any
    format: Format

    def where(self, path: Sequence[str | int] = (), line: int | None = None) -> str:
        return describe(self.name, path, line)

    def error(self, message: str, path: Sequence[str | int] = (), line: int | None = None) -> ConfigError:
        return ConfigError(f"{self.where(path, line)}: {message}")


# --------------------------------------------------------------------------------------------------
# Reading


def read_document(path: str | Path, *, fmt: Format = Format.AUTO, expected: str) -> Document:
    """Read and parse one JSON or YAML file; ``expected`` describes the content for the messages
    about an empty file or a wrong top level ("a mapping of registry to credentials")."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{name}: is a directory, expected a file") from None
    except OSError as err:
        raise ConfigError(f"{name}: cannot read: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError(f"{name}:{line}: not UTF-8 text") from None

    if fmt is Format.AUTO:
        fmt = _guess_format(name, text)
    if fmt is Format.JSON:
        stripped = strip_json_comments(text)
        if not stripped.strip():
            raise ConfigError(f"{name}: the file is empty; expected {expected}")
        data = _parse_json(name, stripped)
    else:
        from ferry.plan import yaml_text  # PyYAML (~17 ms): not for the JSON files image-syncer writes

        data = yaml_text.parse(name, text)
        if data is None:
            raise ConfigError(f"{name}: the file is empty; expected {expected}")
    return Document(name, data, fmt)


def _guess_format(name: str, text: str) -> Format:
    lower = name.lower()
    if lower.endswith(".json"):
        return Format.JSON
    if lower.endswith((".yaml", ".yml")):
        return Format.YAML
    first = strip_json_comments(text).lstrip()[:1]
    return Format.JSON if first in ("{", "[") or text.lstrip().startswith(("//", "/*")) else Format.YAML


def strip_json_comments(text: str) -> str:
    """Blank out ``//`` and ``/* */`` comments outside strings, keeping every newline and column.

    An unterminated ``/*`` is blanked to the end, which then reads as a truncated document.
    """
    out = list(text)
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
        elif c == '"':
            in_string = True
            i += 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                out[i] = " "
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            stop = n if end < 0 else end + 2
            for j in range(i, stop):
                if out[j] not in "\r\n":
                    out[j] = " "
            i = stop
        else:
            i += 1
    return "".join(out)


def _no_duplicates(name: str) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ConfigError(f"{name}: key {json.dumps(key, ensure_ascii=False)} appears twice")
            result[key] = value
        return result

    return hook


def _parse_json(name: str, text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates(name))
    except json.JSONDecodeError as err:
        before = text[: err.pos].rstrip()
        if before.endswith(",") and text[err.pos : err.pos + 1] in ("}", "]"):
            line = text.count("\n", 0, len(before)) + 1
            raise ConfigError(
                f"{name}:{line}: invalid JSON: a comma before {text[err.pos]} (JSON has no trailing commas)"
            ) from None
        raise ConfigError(f"{name}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}") from None
    except RecursionError:
        raise ConfigError(f"{name}: invalid JSON: nested too deeply") from None


# YAML booleans: a plain scalar of these counts as one where a boolean is expected (:func:`expect_bool`).

_YAML_BOOLS = {
    **dict.fromkeys(("true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"), True),
    **dict.fromkeys(("false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N"), False),
}


# --------------------------------------------------------------------------------------------------
# Typed values


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def expect_mapping(doc: Document, value: object, path: Sequence[str | int], expected: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        where = doc.where(path, line_of(path[-1]) if path else None)
        raise ConfigError(f"{where}: expected {expected}, found {_kind(value)}")
    for key in value:
        if not isinstance(key, str):
            raise ConfigError(f"{doc.where(path, line_of(key))}: keys must be strings, found {_kind(key)}")
    return value


def expect_str(doc: Document, value: object, path: Sequence[str | int], what: str) -> str:
    if isinstance(value, str):
        return value
    raise doc.error(f"{what} must be a string, found {_kind(value)}", path, line_in_path(path))


def expect_bool(value: object) -> object:
    """A YAML plain ``true``/``no``/… becomes a bool; anything else is returned for the caller to refuse."""
    if isinstance(value, YStr) and value.plain and str(value) in _YAML_BOOLS:
        return _YAML_BOOLS[str(value)]
    return value


def line_in_path(path: Iterable[object]) -> int | None:
    """The line of the innermost key along ``path`` that remembers one."""
    line = None
    for item in path:
        line = line_of(item) or line
    return line


def key_as_read(mapping: Mapping[Any, Any], name: str) -> Any:
    """The key ``name`` of ``mapping`` as read (a :class:`YStr` carries its line), or None."""
    return next((key for key in mapping if key == name), None)


def validation_error(
    doc: Document, path: Sequence[str | int], err: ValidationError, keys: Mapping[tuple[str | int, ...], str]
) -> ConfigError:
    """The first problem pydantic found in the value at ``path`` as one line for people; ``keys`` lists
    the keys expected at a location inside that value (``()``: the value itself) for the messages."""
    first = err.errors()[0]
    loc = tuple(first["loc"])
    kind = first["type"]
    field = json.dumps(str(loc[-1])) if loc else "the value"
    where = loc[:-1]  # the mapping holding the offending key
    if kind == "extra_forbidden":
        message = f"unknown key {field}" + (f" (expected {keys[where]})" if where in keys else "")
    elif kind == "bool_type":
        message = f"{field} must be true or false"
    elif kind == "string_type":
        found = first.get("input")
        shown = json.dumps(found) if isinstance(found, str | int | float | bool) or found is None else _kind(found)
        message = f"{field} must be a string, found {shown}"
    elif kind == "list_type":
        message = f"{field} must be a list"
    elif kind in ("model_type", "dict_type"):
        where, message = loc, "expected a mapping" + (f" with {keys[loc]}" if loc in keys else "")
    else:
        where, message = loc, first["msg"]
    return ConfigError(f"{describe(doc.name, (*path, *where), line_in_path(path))}: {message}")


# --------------------------------------------------------------------------------------------------
# References

DOCKER_HUB_ALIASES = frozenset({"index.docker.io", "registry.hub.docker.com", "registry-1.docker.io"})

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOSTISH = re.compile(rf"^(?:localhost|\[[0-9A-Fa-f:.]+\]|{_LABEL}(?:\.{_LABEL})+)(?::[0-9]+)?$|^{_LABEL}:[0-9]+$")
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")


def normalize_hub(ref: RegistryRef) -> RegistryRef:
    """Docker Hub under another name (``registry.hub.docker.com``, ``index.docker.io``) → ``docker.io``.

    Old image-syncer releases called Docker Hub ``registry.hub.docker.com`` and its auth examples still
    do; newer ones and skopeo say ``docker.io``. One name keeps credential prefixes and duplicate checks
    working whichever spelling a file uses.
    """
    if ref.registry not in DOCKER_HUB_ALIASES:
        return ref
    repository = ref.repository if "/" in ref.repository else f"library/{ref.repository}"
    return RegistryRef(DEFAULT_REGISTRY, repository, ref.tag, ref.digest)


def repository_ref(text: str, where: str, what: str = "repository") -> RegistryRef:
    """``host/path`` (docker normalisation) as a repository without tag or digest, or a ConfigError."""
    try:
        ref = parse_docker_ref(text, default_tag=False)
    except UsageError as err:
        raise ConfigError(f"{where}: {err.message}", hint=err.hint) from None
    if ref.tag or ref.digest:
        raise ConfigError(f"{where}: {what} {json.dumps(text)} must not name a tag or digest")
    return normalize_hub(ref)


def access_key(text: str, where: str) -> str:
    """A credentials key, ``registry`` or ``registry/namespace[/…]``, normalised for prefix matching.

    The first component must be a registry host (a dot, a port, or ``localhost``): a bare ``myuser``
    would never match anything in image-syncer either, so it is refused rather than silently unused.
    """
    key = text.strip().rstrip("/")
    if "://" in key:
        raise ConfigError(f"{where}: a registry key has no scheme; write {json.dumps(key.split('://', 1)[1])}")
    host, _, path = key.partition("/")
    if not _HOSTISH.match(host):
        raise ConfigError(
            f"{where}: expected a registry host (with a dot, a port, or localhost), optionally followed by /namespace"
        )
    if path and not all(_PATH_COMPONENT.match(part) for part in path.split("/")):
        raise ConfigError(f"{where}: {json.dumps(path)} is not a valid namespace path (lowercase a-z 0-9 . _ -)")
    if host in DOCKER_HUB_ALIASES:
        host = DEFAULT_REGISTRY
    return f"{host}/{path}" if path else host


def compile_tag_regex(pattern: str, where: str) -> str:
    """Check a tag regular expression (Python ``re``; tools written in Go use RE2, which agrees on the
    usual ``^v1\\.2\\..*$`` forms but not on look-arounds or back-references)."""
    try:
        re.compile(pattern)
    except re.error as err:
        raise ConfigError(f"{where}: invalid regular expression {json.dumps(pattern)}: {err}") from None
    except (RecursionError, OverflowError):
        raise ConfigError(f"{where}: regular expression {json.dumps(pattern)} is too complex") from None
    return pattern
