"""Harbor's swagger as validators, and the HTTP helpers the Harbor test server's tests share.

Every JSON response kind the fixture produces is validated against the Swagger 2.0 definitions in
``shared/harbor/swagger.yaml`` (``$ref``s resolved), with go-swagger's serialisation rules applied
as Harbor's Go server applies them (see :func:`_convert`). Use the ``spec`` fixture with
``pytest_plugins = ["tests.support.harbor_spec"]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

Creds = tuple[str, str] | None


# --------------------------------------------------------------------------------------------
# the spec
# --------------------------------------------------------------------------------------------


def _spec_path() -> Path | None:
    candidates = [
        os.environ.get("FERRY_HARBOR_SWAGGER", ""),
        str(Path(__file__).resolve().parents[3] / "shared" / "harbor" / "swagger.yaml"),
        "/work/shared/harbor/swagger.yaml",
    ]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def _go_any(schema: Any) -> Any:
    if isinstance(schema, dict) and schema.get("type") == "object" and "properties" not in schema:
        return {}  # go-swagger: map[string]interface{}
    return _convert(schema)


def _convert(node: Any) -> Any:
    """Swagger 2.0 schema → JSON Schema (draft 4) with go-swagger's serialisation rules."""
    if isinstance(node, list):
        return [_convert(x) for x in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {"$ref": node["$ref"]}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-") or key in ("example", "description", "title", "discriminator"):
            continue
        if key == "properties":
            out[key] = {name: _property(prop) for name, prop in value.items()}
        elif key == "additionalProperties":
            out[key] = _go_any(value) if isinstance(value, dict) else value
        elif key in ("items", "allOf"):
            out[key] = _convert(value)
        else:
            out[key] = value
    if "properties" in node and "additionalProperties" not in node:
        out["additionalProperties"] = False  # stricter than the spec: no invented fields
    return out


def _property(prop: dict[str, Any]) -> Any:
    converted = _convert(prop)
    nullable = prop.get("x-nullable") is True or (prop.get("type") == "array" and prop.get("x-omitempty") is not True)
    return {"anyOf": [converted, {"type": "null"}]} if nullable else converted


class Spec:
    """Validators for Harbor's swagger definitions."""

    def __init__(self, path: Path) -> None:
        self.raw = yaml.safe_load(path.read_text())
        self.definitions = self.raw["definitions"]
        self.converted = {name: _convert(d) for name, d in self.definitions.items()}
        assert "date-time" in jsonschema.Draft4Validator.FORMAT_CHECKER.checkers, "install rfc3339-validator"

    def _validator(self, schema: dict[str, Any]) -> jsonschema.Draft4Validator:
        doc = {"definitions": self.converted, **schema}
        return jsonschema.Draft4Validator(doc, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)

    def check(self, definition: str, instance: Any) -> None:
        """``instance`` is one ``definition`` object."""
        self._validator({"allOf": [{"$ref": f"#/definitions/{definition}"}]}).validate(instance)
        self._check_present(definition, instance)

    def check_list(self, definition: str, instance: Any) -> None:
        """``instance`` is a JSON array of ``definition`` objects."""
        self._validator({"type": "array", "items": {"$ref": f"#/definitions/{definition}"}}).validate(instance)
        for item in instance:
            self._check_present(definition, item)

    def _check_present(self, definition: str, obj: Any) -> None:
        """Properties marked ``x-omitempty: false`` are always serialised by go-swagger."""
        if not isinstance(obj, dict):
            return
        for name, prop in self.definitions[definition].get("properties", {}).items():
            if prop.get("x-omitempty") is False:
                assert name in obj, f"{definition}.{name} (x-omitempty: false) missing in {obj}"
            value = obj.get(name)
            ref = prop.get("$ref") or (prop.get("items") or {}).get("$ref")
            if not ref or value is None:
                continue
            target = ref.rsplit("/", 1)[1]
            for item in value if isinstance(value, list) else [value]:
                self._check_present(target, item)


@pytest.fixture(scope="session")
def spec() -> Spec:
    path = _spec_path()
    if path is None:
        pytest.skip("Harbor's swagger.yaml not found (set FERRY_HARBOR_SWAGGER)")
    return Spec(path)
