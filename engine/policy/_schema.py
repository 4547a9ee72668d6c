"""Check a document against ``schemas/policy.v1.json`` and say what is wrong in plain words.

The JSON Schema is the one description of the document's shape (editors use it too).
jsonschema finds the violations; this module turns each into an :class:`Issue` with a
stable code, the place it was written and a message naming the field, the bad value and a
hint. A ``oneOf`` failure is reported for the branch the author meant (a list gets the
list's errors, a string the glob's), never as a dump of every branch.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import jsonschema
import jsonschema_rs
from jsonschema.exceptions import ValidationError

from engine._resources import resource_path
from engine.policy._errors import IssueList
from engine.policy._load import SourceMap
from engine.policy._paths import child_path, dotted, join_path

__all__ = ["SCHEMA_PATH", "check_schema", "schema", "validator"]

SCHEMA_PATH = "schemas/policy.v1.json"

#: What a pattern means, in the words a message uses.
_PATTERN_WORDS = {
    "^[a-z0-9][a-z0-9-]{0,62}$": "lowercase letters, digits and '-', starting with a letter or digit, "
    "at most 63 characters (e.g. 'pipeshub-default')",
    "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$": "letters, digits, '.', '_' and '-', starting with a letter or "
    "digit, at most 63 characters",
    "^[1-9][0-9]*(s|m|h)$": "a duration: a whole number followed by s, m or h (e.g. '30s', '5m', '24h')",
}

_YES_NO = frozenset({"yes", "no", "on", "off", "y", "n"})

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@cache
def schema() -> dict[str, Any]:
    """The shipped JSON Schema, read once."""
    with resource_path(SCHEMA_PATH).open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
    return loaded


def _is_integer(_checker: object, instance: object) -> bool:
    """Integers are ints, never ``100.0``: the typed model is strict about it too."""
    return isinstance(instance, int) and not isinstance(instance, bool)


@cache
def _end_anchored(pattern: str) -> re.Pattern[str]:
    """``pattern`` with ``$`` read as JSON Schema (ECMA-262) reads it, the very end of the
    string; Python's ``$`` also matches before a final newline, which let ``"name\\n"`` pass."""
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


def _pattern(
    _validator: object, pattern: str, instance: object, _schema: object
) -> Iterator[ValidationError]:
    if isinstance(instance, str) and _end_anchored(pattern).search(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        jsonschema.Draft202012Validator,
        validators={"pattern": _pattern},
        type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
    )
    cls.check_schema(schema())
    checker: jsonschema.protocols.Validator = cls(schema())
    return checker


@cache
def _fast() -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(schema())


def _has_float(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return isinstance(value, float)


def _surely_valid(data: Any) -> bool:
    """A compiled validator's yes, which takes milliseconds where :func:`validator` takes
    seconds on a policy at the size cap. It reads ``100.0`` as an integer (as JSON Schema
    does; the policy language does not) and the schema has no number-typed field, so a
    document holding any float is never waved through here. A no goes to the full pass,
    whose findings say what is wrong in plain words."""
    return not _has_float(data) and _fast().is_valid(data)


def check_schema(data: Any, where: SourceMap, issues: IssueList) -> bool:
    """Report every schema violation of ``data``; True when there were none."""
    if _surely_valid(data):
        return True
    before = len(issues.items)
    for error in validator().iter_errors(data):
        for code, place, path, message in _explain(error, where):
            issues.add(code, place, path, message)
    return len(issues.items) == before


def describe(value: Any) -> str:
    """A short, typed rendering of a value for messages: ``the string "50%"``, ``the number 7``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null (an empty value)"
    if isinstance(value, str):
        return f"the string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def _quote_all(values: list[Any]) -> str:
    shown = [json.dumps(v, ensure_ascii=False) for v in values]
    return ", ".join(shown[:-1]) + f" or {shown[-1]}" if len(shown) > 1 else shown[0]


def _hint(value: Any, choices: list[str]) -> str:
    if not isinstance(value, str):
        return ""
    lowered = {c.lower(): c for c in choices}
    if value.lower() in lowered:
        return f'; did you mean "{lowered[value.lower()]}"?'
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


Explained = tuple[str, tuple[int, int], str, str]


def _explain(error: ValidationError, where: SourceMap) -> Iterator[Explained]:
    """One jsonschema error as findings: structural ones here, value ones by :func:`_about_value`."""
    path = join_path(error.absolute_path)
    value: Any = error.instance
    if error.validator == "additionalProperties":
        sub = error.schema if isinstance(error.schema, dict) else {}
        yield from _unknown_keys(value, sub, path, where)
    elif error.validator == "required":
        expected: Any = error.validator_value
        for key in [k for k in expected if isinstance(value, dict) and k not in value]:
            message = f'{dotted(path)} is missing the required key "{key}"'
            yield ("schema.missing-key", where.value(path), path, message)
    elif error.validator == "oneOf":
        yield from _one_of(error, where)
    else:
        code, message = _about_value(error, dotted(path), value)
        yield (code, where.value(path), path, message)


def _about_value(error: ValidationError, name: str, value: Any) -> tuple[str, str]:
    """(code, message) for a value the schema refused: wrong type, set, form, range or size."""
    kind: Any = error.validator
    expected: Any = error.validator_value
    if kind == "type":
        hint = ""
        if expected == "boolean" and str(value).lower() in _YES_NO:
            hint = "; yes/no/on/off are read as text in a policy, write true or false"
        wanted = _TYPE_WORDS.get(str(expected), expected)
        return "schema.type", f"{name} must be {wanted}, not {describe(value)}{hint}"
    if kind in ("enum", "const"):
        choices = list(expected) if kind == "enum" else [expected]
        hint = _hint(value, [c for c in choices if isinstance(c, str)])
        return "schema.value", f"{name} must be {_quote_all(choices)}, not {describe(value)}{hint}"
    if kind == "pattern":
        words = _PATTERN_WORDS.get(str(expected), f"match {expected}")
        return "schema.pattern", f"{name} must be {words}; got {describe(value)}"
    if kind in ("minimum", "maximum"):
        sub = error.schema if isinstance(error.schema, dict) else {}
        low, high = sub.get("minimum"), sub.get("maximum")
        span = f"between {low} and {high}" if high is not None else f"at least {low}"
        return "schema.range", f"{name} must be {span}, not {value}"
    if kind in ("minItems", "minLength"):
        return "schema.empty", f"{name} must not be empty"
    if kind == "maxItems" and name.endswith(".breakpoints"):
        message = f"{name} lists {len(value)} breakpoints; the API allows at most 4 per request"
        return "cache.too-many-breakpoints", message
    if kind == "uniqueItems":
        return "schema.duplicate-item", f"{name} lists {_first_repeat(value)} more than once"
    return "schema.invalid", f"{name} is not valid here ({kind})"


def _unknown_keys(value: Any, sub: dict[str, Any], path: str, where: SourceMap) -> Iterator[Explained]:
    known = sorted(sub.get("properties", {}))
    for key in value if isinstance(value, dict) else ():
        if key in known:
            continue
        key_path = child_path(path, key)
        hint = _hint(key, known) or f"; allowed: {', '.join(known)}"
        yield (
            "schema.unknown-key",
            where.key(key_path),
            key_path,
            f'unknown key "{key}" in {dotted(path)}{hint}',
        )


def _first_repeat(items: list[Any]) -> str:
    seen: list[Any] = []
    for item in items:
        if item in seen:
            return json.dumps(item, ensure_ascii=False)
        seen.append(item)
    return "an item"


def _one_of(error: ValidationError, where: SourceMap) -> Iterator[Explained]:
    """Report the branch the author meant: the one whose type fits the value."""
    subs = list(error.context or ())
    wrong_type = {s.schema_path[0] for s in subs if s.validator == "type" and not s.relative_path}
    meant = [s for s in subs if s.schema_path and s.schema_path[0] not in wrong_type]
    if meant:
        for sub in meant:
            yield from _explain(sub, where)
        return
    path = join_path(error.absolute_path)
    yield (
        "schema.type",
        where.value(path),
        path,
        f"{dotted(path)} must be a glob or a list of globs, not {describe(error.instance)}",
    )
