"""The schema and the pydantic models describe the same language, both ways.

Walks the schema from the root alongside `Mapping`: at every object, the schema's properties and the
model's fields must be the same names, and each nested object must have a model behind it.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel

from stokline.config.models import Mapping
from stokline.config.schema import load_schema

SCHEMA = load_schema()


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):  # Optional, unions, tuple[...], dict[...]
        found += [m for m in _models_in(arg) if m not in found]
    return found


def _walk(schema: dict[str, Any], model: type[BaseModel], where: str, seen: list[str]) -> None:
    schema = _resolve(schema)
    props = schema.get("properties", {})
    fields = model.model_fields
    assert set(props) == set(fields), (
        f"{where}: schema only {sorted(set(props) - set(fields))}, model only {sorted(set(fields) - set(props))}"
    )
    seen.append(where)
    for name, prop in props.items():
        prop = _resolve(prop)
        if prop.get("type") == "array":
            prop = _resolve(prop["items"])
        nested = _models_in(fields[name].annotation)
        if prop.get("type") == "object" and "properties" in prop:
            assert len(nested) == 1, (
                f"{where}/{name}: an object in the schema needs one model, found {nested}"
            )
            _walk(prop, nested[0], f"{where}/{name}", seen)
        else:
            assert not nested, f"{where}/{name}: a model field where the schema has no object"


def test_schema_and_models_agree():
    seen: list[str] = []
    _walk(SCHEMA, Mapping, "", seen)
    assert len(seen) > 30  # the walk really went everywhere


def _objects(node: Any, where: str = ""):
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield where, node
        for key, value in node.items():
            yield from _objects(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _objects(value, f"{where}/{i}")


def test_every_object_is_closed_and_every_property_described():
    objects = list(_objects(SCHEMA))
    assert len(objects) > 30
    for where, obj in objects:
        assert "additionalProperties" in obj, f"{where} must say additionalProperties"
        if "properties" in obj:
            assert obj["additionalProperties"] is False, where
        for name, prop in obj.get("properties", {}).items():
            assert prop.get("description"), f"{where}/properties/{name} has no description"


def test_the_schema_is_a_valid_draft_2020_12_schema():
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"].endswith("2020-12/schema")
