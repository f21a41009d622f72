"""YAML read as Go's decoders read it into typed fields: plain scalars kept as text (:class:`YStr`,
with their line), duplicate keys refused (:mod:`ferry.plan.files` describes the rules). Its own module
so that reading a JSON file never imports PyYAML."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from ferry.errors import ConfigError
from ferry.plan.ystr import YStr


class _StructureError(yaml.constructor.ConstructorError):
    """A well-formed document whose mapping breaks a rule of ours (duplicate or unhashable key)."""


class _TextLoader(yaml.SafeLoader):
    """SafeLoader whose plain scalars resolve to strings (or None), never to numbers/dates/bools."""


_TextLoader.yaml_implicit_resolvers = {}
_TextLoader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_TextLoader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])


def _construct_text(loader: yaml.SafeLoader, node: yaml.Node) -> YStr:
    value = YStr(loader.construct_scalar(node))  # type: ignore[arg-type]
    value.line = node.start_mark.line + 1
    value.plain = node.style is None
    return value


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise _StructureError(
                None, None, "a mapping key must be a plain value, not a list or mapping", key_node.start_mark
            ) from None
        if key in result:
            raise _StructureError(
                None, None, f"key {json.dumps(str(key), ensure_ascii=False)} appears twice", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_TextLoader.add_constructor("tag:yaml.org,2002:str", _construct_text)
_TextLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def parse(name: str, text: str) -> Any:
    """The one YAML document in ``text`` (None when empty), its scalars as :class:`YStr`; errors as one
    :class:`ConfigError` line naming ``name`` and the line."""
    try:
        documents = list(yaml.load_all(text, Loader=_TextLoader))  # a SafeLoader subclass
    except _StructureError as err:
        line = err.problem_mark.line + 1 if err.problem_mark else None
        raise ConfigError(f"{name}:{line}: {err.problem}" if line else f"{name}: {err.problem}") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        if mark is None:
            raise ConfigError(f"{name}: invalid YAML: {err.problem or err}") from None
        line_text = text.splitlines()[mark.line] if mark.line < len(text.splitlines()) else ""
        indent = line_text[: len(line_text) - len(line_text.lstrip(" \t"))]
        if "\t" in indent or "tab" in (err.problem or ""):
            raise ConfigError(
                f"{name}:{mark.line + 1}: a tab character indents this line; YAML indents with spaces only"
            ) from None
        problem = err.problem or "syntax error"
        raise ConfigError(f"{name}:{mark.line + 1}:{mark.column + 1}: invalid YAML: {problem}") from None
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        char = err.character if isinstance(err.character, int) else ord(err.character)
        raise ConfigError(f"{name}:{line}: invalid YAML: the character U+{char:04X} is not allowed") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{name}: invalid YAML: {' '.join(str(err).split())}") from None
    except RecursionError:
        raise ConfigError(f"{name}: invalid YAML: nested too deeply") from None
    if len(documents) > 1:
        raise ConfigError(f"{name}: holds {len(documents)} YAML documents (separated by ---); expected one")
    return documents[0] if documents else None
