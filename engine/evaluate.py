"""Evaluate: which rule answers a call, and what it decides. Pure: no I/O, no clock.

``evaluate`` answers from the compiled policy's memo (the same context always gets the
same, equal decision). ``decide`` does the work: it tries, in policy order, only the
rules the index names as candidates; the first that matches wins, and its decision was
built at compile time. ``explain`` walks every rule up to the winner, so a person sees
why each earlier one did not match, with the call's own values.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from engine.decision import CallContext, Decision, TraceStep

if TYPE_CHECKING:  # only types: ``import engine`` imports this module eagerly and must stay light
    from engine.compile import CompiledPolicy, CompiledRule

__all__ = ["TRACE_LIMIT", "decide", "evaluate", "explain"]

#: Rules that did not match recorded in an evaluated decision's trace (``explain`` records all).
TRACE_LIMIT = 16


def evaluate(compiled: CompiledPolicy, ctx: CallContext) -> Decision:
    """The decision for ``ctx``. Runs on every LLM call; a repeated context is a memo lookup."""
    return compiled.memo(ctx)


def decide(compiled: CompiledPolicy, ctx: CallContext) -> Decision:
    """Uncached :func:`evaluate`; its trace lists the candidate rules it tried (up to a cap)."""
    if not compiled.enabled:
        return compiled.disabled_decision
    rules = compiled.rules
    mask = compiled.index.candidates(ctx)
    misses: list[TraceStep] = []
    while mask:
        low = mask & -mask
        index = low.bit_length() - 1
        rule = rules[index]
        if rule.matches(ctx):
            return _with_misses(compiled.rule_decisions[index], misses)
        if len(misses) < TRACE_LIMIT:
            misses.append(TraceStep(rule.name, False, rule.why_not(ctx)))
        mask ^= low
    return _with_misses(compiled.default_decision, misses)


def explain(compiled: CompiledPolicy, ctx: CallContext) -> Decision:
    """Like :func:`evaluate`, with a trace of every rule up to the one that matched."""
    if not compiled.enabled:
        return compiled.disabled_decision
    misses: list[TraceStep] = []
    for rule in compiled.rules:
        if rule.matches(ctx):
            hit = TraceStep(rule.name, True, _why_matched(rule, ctx))
            return replace(compiled.rule_decisions[rule.index], trace=(*misses, hit))
        misses.append(TraceStep(rule.name, False, rule.why_not(ctx)))
    return _with_misses(compiled.default_decision, misses)


def _with_misses(decision: Decision, misses: list[TraceStep]) -> Decision:
    if not misses:
        return decision
    return replace(decision, trace=(*misses, *decision.trace))


def _why_matched(rule: CompiledRule, ctx: CallContext) -> str:
    if not rule.matchers:
        return rule.hit_why
    parts = []
    for m in rule.matchers:
        value = getattr(ctx, m.attr) or ""
        glob = m.globs[0] if len(m.globs) == 1 else _which(m.globs, value)
        parts.append(f'{m.key} "{value}" matches "{glob}"')
    return "; ".join(parts)


def _which(globs: tuple[str, ...], value: str) -> str:
    import fnmatch  # only for a rule that lists several globs, and only when explaining

    return next((g for g in globs if fnmatch.fnmatchcase(value, g)), globs[0])
