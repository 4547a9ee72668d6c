"""One source of truth: the committed JSON Schema and the typed model describe the same document.

The walk below pairs every object of the schema with its pydantic model and checks the
keys (camelCase aliases), the required keys, the enum values (``Literal`` types), the
numeric bounds and the built-in defaults.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from engine._resources import resource_path
from engine.policy import BUILTIN_DEFAULTS, Policy, schema
from engine.policy._model import BatchSettings, CacheSettings, Defaults, Match, Metadata, Rule, Spec

# (schema pointer of an object, the model that mirrors it)
PAIRS: list[tuple[str, type[BaseModel]]] = [
    ("", Policy),
    ("$defs/metadata", Metadata),
    ("$defs/spec", Spec),
    ("$defs/defaults", Defaults),
    ("$defs/rule", Rule),
    ("$defs/match", Match),
    ("$defs/cache", CacheSettings),
    ("$defs/batch", BatchSettings),
]


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    root = schema()
    while "$ref" in node:
        extra = {k: v for k, v in node.items() if k != "$ref"}
        for part in node["$ref"].lstrip("#/").split("/"):
            root = root[part]
        node = {**root, **extra}
        root = schema()
    return node


def _at(pointer: str) -> dict[str, Any]:
    node = schema()
    for part in filter(None, pointer.split("/")):
        node = node[part]
    return node


def _alias(name: str, info: FieldInfo) -> str:
    return info.alias or name


def _literals(annotation: Any) -> set[Any]:
    """Every Literal value reachable in a (possibly Optional / Annotated / tuple) annotation."""
    found: set[Any] = set()
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return set(typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType, tuple, typing.Annotated):
        for arg in typing.get_args(annotation):
            found |= _literals(arg)
    return found


def _bounds(info: FieldInfo) -> dict[str, Any]:
    found: dict[str, Any] = {}
    stack: list[Any] = [*info.metadata, info.annotation]
    while stack:
        item = stack.pop()
        for attr, key in (("ge", "minimum"), ("le", "maximum")):
            if getattr(item, attr, None) is not None:
                found[key] = getattr(item, attr)
        stack.extend(typing.get_args(item))
        stack.extend(getattr(item, "__metadata__", ()))
        if isinstance(item, FieldInfo):
            stack.extend(item.metadata)
    return found


def test_committed_schema_is_the_one_the_validator_uses() -> None:
    on_disk = json.loads(resource_path("schemas/policy.v1.json").read_text(encoding="utf-8"))
    assert on_disk == schema()


def test_every_schema_object_has_a_model_with_the_same_keys() -> None:
    for pointer, model in PAIRS:
        node = _resolve(_at(pointer))
        fields = {_alias(n, f): f for n, f in model.model_fields.items()}
        assert set(fields) == set(node["properties"]), pointer
        required = {k for k, f in fields.items() if f.is_required()}
        assert required == set(node.get("required", [])), pointer
        assert node["additionalProperties"] is False
        assert model.model_config.get("extra") == "forbid"


def test_enums_bounds_and_defaults_agree() -> None:
    for pointer, model in PAIRS:
        node = _resolve(_at(pointer))
        for name, info in model.model_fields.items():
            prop = _resolve(node["properties"][_alias(name, info)])
            enum = prop.get("enum") or prop.get("items", {}).get("enum")
            if "const" in prop:
                enum = [prop["const"]]
            if enum is not None:
                assert _literals(info.annotation) == set(enum), (pointer, name)
            bounds = {k: prop[k] for k in ("minimum", "maximum") if k in prop}
            assert _bounds(info) == bounds, (pointer, name)


def test_builtin_defaults_are_the_schema_defaults() -> None:
    for section in ("cache", "batch"):
        props = _resolve(_at(f"$defs/{section}"))["properties"]
        assert {k: _resolve(v)["default"] for k, v in props.items()} == BUILTIN_DEFAULTS[section]
    spec_props = _resolve(_at("$defs/spec"))["properties"]
    for name, info in Spec.model_fields.items():
        default = spec_props[_alias(name, info)].get("default")
        if name in ("defaults",):
            continue
        model_default = info.get_default(call_default_factory=True)
        assert (list(model_default) if isinstance(model_default, tuple) else model_default) == default, name
