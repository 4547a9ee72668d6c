"""A deterministic instance of a JSON schema: what a forced tool call or a
structured-output reply contains.

It covers the subset the SDKs and pydantic emit (objects, arrays, scalars, enums,
consts, ``$ref`` to ``$defs``/``definitions``, ``anyOf``/``oneOf``/``allOf``,
numeric and length bounds, common string formats); the tests validate every
instance with ``jsonschema``. ``seed`` (a text) varies the strings so two
requests are told apart.
"""

from __future__ import annotations

from typing import Any

__all__ = ["instance"]

_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "hostname": "example.com",
}
_MAX_DEPTH = 12


def instance(schema: dict[str, Any], seed: str = "x") -> Any:
    """Return a value valid against ``schema`` (a JSON-schema dict)."""
    return _Gen(schema, seed).value(schema, "root", 0)


class _Gen:
    def __init__(self, root: dict[str, Any], seed: str) -> None:
        self.root = root
        self.seed = "".join(c for c in seed if c.isalnum() or c == " ")[:24].strip() or "x"

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in schema and seen < _MAX_DEPTH:
            ref = str(schema["$ref"])
            node: Any = self.root
            for part in ref.lstrip("#").strip("/").split("/"):
                if part:
                    node = node[part.replace("~1", "/").replace("~0", "~")]
            schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
            seen += 1
        return schema

    def value(self, schema: Any, name: str, depth: int) -> Any:
        if not isinstance(schema, dict) or depth > _MAX_DEPTH:
            return None if depth > _MAX_DEPTH else name
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        if "default" in schema:
            return schema["default"]
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                options = [o for o in schema[key] if self.resolve(o).get("type") != "null"] or schema[key]
                return self.value(options[0], name, depth + 1)
        if schema.get("allOf"):
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                part = self.resolve(part)
                merged = {
                    **merged,
                    **part,
                    "properties": {**merged.get("properties", {}), **part.get("properties", {})},
                }
            return self.value(merged, name, depth + 1)
        return self.typed(schema, _pick_type(schema), name, depth)

    def typed(self, schema: dict[str, Any], kind: str, name: str, depth: int) -> Any:
        if kind == "object":
            props = schema.get("properties") or {}
            out = {k: self.value(v, k, depth + 1) for k, v in props.items()}
            for extra in schema.get("required") or []:
                if extra not in out:
                    out[extra] = self.value({}, extra, depth + 1)
            return out
        if kind == "array":
            count = max(1, int(schema.get("minItems", 1)))
            if "maxItems" in schema:
                count = min(count, int(schema["maxItems"]))
            items = schema.get("items")
            if isinstance(items, list):  # tuple form
                return [self.value(s, name, depth + 1) for s in items]
            return [self.value(items or {}, f"{name}{n}", depth + 1) for n in range(count)]
        if kind in ("integer", "number"):
            return _number(schema, kind)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return _string(schema, f"{name} {self.seed}")


def _pick_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _number(schema: dict[str, Any], kind: str) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    value: float = (
        1 if low is None else low + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
    )
    if high is not None and value > high:
        value = high
    if kind == "integer":
        return int(value)
    return float(value)


def _string(schema: dict[str, Any], text: str) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        return _FORMATS[fmt]
    low = int(schema.get("minLength", 0))
    high = schema.get("maxLength")
    if len(text) < low:
        text = text + "x" * (low - len(text))
    if high is not None:
        text = text[: int(high)]
    return text
