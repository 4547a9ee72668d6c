"""Checks the schema cannot express: unique rule names, settings that contradict each
other once a rule is merged over ``spec.defaults``, and rules that can never match.

The document may still hold schema errors when these run (all findings are collected in
one pass), so every check reads the data defensively and skips what is malformed: the
schema pass has already reported that.
"""

from __future__ import annotations

from typing import Any

from engine.decision import parse_duration
from engine.policy._errors import IssueList
from engine.policy._globs import CoverIndex, bits, covers_all, to_regex
from engine.policy._load import SourceMap
from engine.policy._model import BUILTIN_DEFAULTS, MATCH_FIELDS

__all__ = ["check_semantics"]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _rules(data: Any) -> list[tuple[int, dict[str, Any]]]:
    rules = _dict(_dict(data).get("spec")).get("rules")
    if not isinstance(rules, list):
        return []
    return [(i, rule) for i, rule in enumerate(rules) if isinstance(rule, dict)]


def check_semantics(data: Any, where: SourceMap, issues: IssueList) -> None:
    defaults = _dict(_dict(_dict(data).get("spec")).get("defaults"))
    _check_names(data, where, issues)
    _check_cache(_dict(defaults.get("cache")), {}, "$.spec.defaults.cache", where, issues)
    _check_batch(_dict(defaults.get("batch")), {}, "$.spec.defaults.batch", where, issues)
    for i, rule in _rules(data):
        base = f"$.spec.rules[{i}]"
        _check_cache(_dict(rule.get("cache")), _dict(defaults.get("cache")), f"{base}.cache", where, issues)
        _check_batch(_dict(rule.get("batch")), _dict(defaults.get("batch")), f"{base}.batch", where, issues)
    _check_reachable(data, where, issues)
    _check_acts(data, where, issues)


def _check_names(data: Any, where: SourceMap, issues: IssueList) -> None:
    first: dict[str, int] = {}
    for i, rule in _rules(data):
        name = rule.get("name")
        if not isinstance(name, str):
            continue
        if name in first:
            path = f"$.spec.rules[{i}].name"
            earlier = f"$.spec.rules[{first[name]}]"
            issues.add(
                "rule.duplicate-name",
                where.value(path),
                path,
                f'rule name "{name}" is already used by spec.rules[{first[name]}] '
                f"(line {where.value(earlier)[0]}); rule names must be unique",
            )
        else:
            first[name] = i


def _origin(key: str, own: dict[str, Any], inherited: dict[str, Any]) -> str:
    """Where a merged setting came from, for messages: written here, spec.defaults or built in."""
    if key in own:
        return ""
    return " (inherited from spec.defaults)" if key in inherited else " (default)"


def _check_cache(
    own: dict[str, Any], inherited: dict[str, Any], path: str, where: SourceMap, issues: IssueList
) -> None:
    """``breakpoints`` only with ``mode: explicit``, and ``explicit`` needs breakpoints."""
    mode = own.get("mode", inherited.get("mode", BUILTIN_DEFAULTS["cache"]["mode"]))
    source = _origin("mode", own, inherited)
    if mode not in ("off", "auto", "explicit"):
        return  # the schema pass reports it
    if "breakpoints" in own and mode != "explicit":
        issues.add(
            "cache.breakpoints-need-explicit",
            where.value(f"{path}.breakpoints"),
            f"{path}.breakpoints",
            f'breakpoints are only used with cache mode "explicit", but the mode here is "{mode}"{source}; '
            "set mode: explicit or remove breakpoints",
        )
    has_points = "breakpoints" in own or "breakpoints" in inherited
    if mode == "explicit" and "mode" in own and not has_points:
        issues.add(
            "cache.explicit-needs-breakpoints",
            where.value(f"{path}.mode"),
            f"{path}.mode",
            "cache mode explicit needs breakpoints (any of tools, system, history, last), "
            "e.g. breakpoints: [tools, system]",
        )


def _seconds(value: Any) -> int | None:
    try:
        return parse_duration(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _check_batch(
    own: dict[str, Any], inherited: dict[str, Any], path: str, where: SourceMap, issues: IssueList
) -> None:
    """``maxWait`` may not exceed ``deadline`` once merged; reported where this object writes one."""
    if "maxWait" not in own and "deadline" not in own:
        return
    builtin = BUILTIN_DEFAULTS["batch"]
    wait = own.get("maxWait", inherited.get("maxWait", builtin["maxWait"]))
    deadline = own.get("deadline", inherited.get("deadline", builtin["deadline"]))
    wait_s, deadline_s = _seconds(wait), _seconds(deadline)
    if wait_s is None or deadline_s is None or wait_s <= deadline_s:
        return
    key = "maxWait" if "maxWait" in own else "deadline"
    note = {"maxWait": "deadline", "deadline": "maxWait"}[key]
    origin = _origin(note, own, inherited)
    issues.add(
        "batch.max-wait-exceeds-deadline",
        where.value(f"{path}.{key}"),
        f"{path}.{key}",
        f"maxWait {wait} is longer than deadline {deadline}{origin}; "
        "a pooled request would miss its deadline before its batch is sent",
    )


def _globs(match: dict[str, Any], field: str) -> tuple[str, ...] | None:
    value = match.get(field)
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ValueError(field)


def _matchers(rule: dict[str, Any]) -> dict[str, tuple[str, ...] | None] | None:
    match = rule.get("match", {})
    if not isinstance(match, dict):
        return None
    try:
        return {field: _globs(match, field) for field in MATCH_FIELDS}
    except ValueError:
        return None


def _check_reachable(data: Any, where: SourceMap, issues: IssueList) -> None:
    """Warn when an earlier rule matches every call a later one would (first match wins).

    Only earlier rules that could cover the later one on every field (see
    :class:`CoverIndex`) are compared in full, so a policy at the size cap (ten thousand
    rules) is checked in a fraction of a second.
    """
    indexes = {f: CoverIndex() for f in MATCH_FIELDS}
    seen: dict[int, tuple[int, str, dict[str, tuple[str, ...] | None]]] = {}
    for i, rule in _rules(data):
        fields = _matchers(rule)
        if fields is None or not isinstance(rule.get("name"), str):
            continue
        for k in bits(_could_cover(indexes, fields)):
            j, name, earlier = seen[k]
            if all(covers_all(earlier[f], fields[f]) for f in MATCH_FIELDS):
                path = f"$.spec.rules[{i}]"
                issues.add(
                    "rule.unreachable",
                    where.value(path),
                    path,
                    f'rule "{rule["name"]}" can never match: rule "{name}" (spec.rules[{j}], line '
                    f"{where.value(f'$.spec.rules[{j}]')[0]}) comes first and matches every call it would",
                    severity="warning",
                )
                break
        bit = len(seen)
        seen[bit] = (i, rule["name"], fields)
        for f, index in indexes.items():
            index.add(1 << bit, fields[f])


def _could_cover(indexes: dict[str, CoverIndex], fields: dict[str, tuple[str, ...] | None]) -> int:
    """Earlier rules that might cover ``fields``: a superset, checked exactly by the caller."""
    mask = -1
    for f, index in indexes.items():
        mask &= index.candidates(fields[f])
        if not mask:
            return 0
    return mask if mask > 0 else 0


def _check_acts(data: Any, where: SourceMap, issues: IssueList) -> None:
    """Warn when a rule's ``match.provider`` admits no provider that reaches Claude: the
    engine returns every other provider's model untouched, so such a rule never acts."""
    from engine.providers.anthropic.transport import CLAUDE_PROVIDERS

    for i, rule in _rules(data):
        fields = _matchers(rule)
        providers = fields.get("provider") if fields else None
        if providers is None or not isinstance(rule.get("name"), str):
            continue
        pattern = to_regex(providers)
        if any(pattern.match(p) for p in CLAUDE_PROVIDERS):
            continue
        path = f"$.spec.rules[{i}].match.provider"
        issues.add(
            "rule.never-acts",
            where.value(path),
            path,
            f'rule "{rule["name"]}" can never act: it matches only providers the engine leaves '
            f"untouched ({', '.join(providers)}); Claude is reached through "
            f"{', '.join(sorted(CLAUDE_PROVIDERS))}",
            severity="warning",
        )
