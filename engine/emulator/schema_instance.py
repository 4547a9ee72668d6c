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


def instance(schema: dict[str, Any], seed: str = "x", budget: int = 1 << 20) -> Any:
    """Return a value valid against ``schema`` (a JSON-schema dict).

    ``budget`` bounds the size (about one unit per character of JSON): a schema asking
    for a huge string or array gets a value cut at the budget, as a model's output is
    cut at ``max_tokens``, so a tiny request cannot make the emulator build gigabytes.
    """
    return _Gen(schema, seed, budget).value(schema, "root", 0)


def fits(schema: dict[str, Any], seed: str, budget: int) -> tuple[Any, bool]:
    """``(instance, complete)``: whether the whole instance fit ``budget``."""
    gen = _Gen(schema, seed, budget)
    value = gen.value(schema, "root", 0)
    return value, gen.left > 0


class _Gen:
    def __init__(self, root: dict[str, Any], seed: str, budget: int = 1 << 20) -> None:
        self.root = root
        self.seed = "".join(c for c in seed if c.isalnum() or c == " ")[:24].strip() or "x"
        self.left = budget

    def spend(self, value: Any) -> Any:
        self.left -= len(str(value)) + 1
        return value

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in schema and seen < _MAX_DEPTH:
            ref = str(schema["$ref"])
            node: Any = self.root
            for part in ref.lstrip("#").strip("/").split("/"):
                if part:
                    key = part.replace("~1", "/").replace("~0", "~")
                    node = node.get(key) if isinstance(node, dict) else None
            if not isinstance(node, dict):  # a reference that leads nowhere: any value will do
                node = {}
            schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
            seen += 1
        return schema

    def value(self, schema: Any, name: str, depth: int) -> Any:
        if self.left <= 0:
            return None
        if not isinstance(schema, dict) or depth > _MAX_DEPTH:
            return self.spend(None if depth > _MAX_DEPTH else name)
        schema = self.resolve(schema)
        if "const" in schema:
            return self.spend(schema["const"])
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self.spend(schema["enum"][0])
        if "default" in schema:
            return self.spend(schema["default"])
        for key in ("anyOf", "oneOf"):
            choices = [o for o in schema.get(key) or [] if isinstance(o, dict)]
            if choices:
                options = [o for o in choices if self.resolve(o).get("type") != "null"] or choices
                return self.value(options[0], name, depth + 1)
        parts = [p for p in schema.get("allOf") or [] if isinstance(p, dict)]
        if parts:
            merged: dict[str, Any] = {}
            for part in parts:
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
            props = schema.get("properties")
            out: dict[str, Any] = {}
            for k, v in (props if isinstance(props, dict) else {}).items():
                if self.left <= 0:
                    break
                out[k] = self.value(v, str(k), depth + 1)
            required = schema.get("required")
            for extra in required if isinstance(required, list) else []:
                if self.left <= 0:
                    break
                if isinstance(extra, str) and extra not in out:
                    out[extra] = self.value({}, extra, depth + 1)
            return out
        if kind == "array":
            count = max(1, _int(schema.get("minItems"), 1))
            if "maxItems" in schema:
                count = min(count, _int(schema["maxItems"], count))
            items = schema.get("items")
            if isinstance(items, list):  # tuple form
                return [self.value(s, name, depth + 1) for s in items[: max(0, self.left)]]
            out_items: list[Any] = []
            for n in range(count):
                if self.left <= 0:
                    break
                out_items.append(self.value(items or {}, f"{name}{n}", depth + 1))
            return out_items
        if kind in ("integer", "number"):
            return self.spend(_number(schema, kind))
        if kind == "boolean":
            return self.spend(True)
        if kind == "null":
            return self.spend(None)
        return self.spend(_string(schema, f"{name} {self.seed}", max(0, self.left)))


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


def _int(value: Any, default: int) -> int:
    return (
        int(value)
        if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 2**62
        else default
    )


def _bound(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e300
    return float(value) if ok else None


def _number(schema: dict[str, Any], kind: str) -> int | float:
    low = _bound(schema.get("minimum", schema.get("exclusiveMinimum")))
    high = _bound(schema.get("maximum", schema.get("exclusiveMaximum")))
    value: float = (
        1 if low is None else low + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
    )
    if high is not None and value > high:
        value = high
    if kind == "integer":
        return int(value)
    return float(value)


def _string(schema: dict[str, Any], text: str, room: int) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS:
        return _FORMATS[fmt]
    low = min(_int(schema.get("minLength"), 0), room)
    high = schema.get("maxLength")
    if len(text) < low:
        text = text + "x" * (low - len(text))
    if high is not None:
        text = text[: max(0, _int(high, len(text)))]
    return text[: max(room, 1)]
