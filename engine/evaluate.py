"""Evaluate: which rule answers a call, and what it decides. Pure: no I/O, no clock.

``evaluate`` answers from the compiled policy's memo (the same context always gets the
same, equal decision). ``decide`` does the work: it tries, in policy order, only the
rules the index names as candidates; the first that matches wins. ``explain`` walks
every rule up to the winner so a person sees why each earlier one did not match.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from engine.decision import CallContext, Decision, TraceStep

if TYPE_CHECKING:  # only types: ``import engine`` imports this module eagerly and must stay light
    from engine.compile import CompiledPolicy, CompiledRule

__all__ = ["DEFAULTS_STEP", "POLICY_STEP", "TRACE_LIMIT", "decide", "evaluate", "explain"]

POLICY_STEP = "(policy)"
DEFAULTS_STEP = "(defaults)"
#: Rules that did not match recorded in an evaluated decision's trace (``explain`` records all).
TRACE_LIMIT = 16


def evaluate(compiled: CompiledPolicy, ctx: CallContext) -> Decision:
    """The decision for ``ctx``. Runs on every LLM call; a repeated context is a memo lookup."""
    return compiled.memo(ctx)


def decide(compiled: CompiledPolicy, ctx: CallContext) -> Decision:
    """Uncached :func:`evaluate`; its trace lists the candidate rules it tried (up to a cap)."""
    if not compiled.enabled:
        return _disabled(compiled)
    rules = compiled.rules
    mask = compiled.index.candidates(ctx)
    trace: list[TraceStep] = []
    while mask:
        low = mask & -mask
        rule = rules[low.bit_length() - 1]
        if rule.matches(ctx):
            trace.append(TraceStep(rule.name, True, _why_matched(rule, ctx)))
            return _decision(compiled, rule, tuple(trace))
        if len(trace) < TRACE_LIMIT:
            trace.append(TraceStep(rule.name, False, rule.why_not(ctx)))
        mask ^= low
    trace.append(TraceStep(DEFAULTS_STEP, True, "no rule matched: spec.defaults apply"))
    return _decision(compiled, None, tuple(trace))


def explain(compiled: CompiledPolicy, ctx: CallContext) -> Decision:
    """Like :func:`evaluate`, with a trace of every rule up to the one that matched."""
    if not compiled.enabled:
        return _disabled(compiled)
    return _first_match(compiled, ctx, compiled.rules)


def _first_match(compiled: CompiledPolicy, ctx: CallContext, rules: Iterable[CompiledRule]) -> Decision:
    trace: list[TraceStep] = []
    for rule in rules:
        if rule.matches(ctx):
            trace.append(TraceStep(rule.name, True, _why_matched(rule, ctx)))
            return _decision(compiled, rule, tuple(trace))
        trace.append(TraceStep(rule.name, False, rule.why_not(ctx)))
    trace.append(TraceStep(DEFAULTS_STEP, True, "no rule matched: spec.defaults apply"))
    return _decision(compiled, None, tuple(trace))


def _decision(compiled: CompiledPolicy, rule: CompiledRule | None, trace: tuple[TraceStep, ...]) -> Decision:
    return Decision(
        strategy=rule.strategy if rule is not None else compiled.default_strategy,
        rule=rule.name if rule is not None else None,
        cache=rule.cache if rule is not None else compiled.default_cache,
        batch=rule.batch if rule is not None else compiled.default_batch,
        policy_name=compiled.name,
        revision=compiled.revision,
        version=compiled.version,
        enabled=True,
        mode=compiled.mode,
        rollout=compiled.rollout,
        on_unsupported=compiled.on_unsupported,
        trace=trace,
    )


def _disabled(compiled: CompiledPolicy) -> Decision:
    why = f'policy "{compiled.name}" is disabled (spec.enabled: false): the call goes direct, untouched'
    return Decision(
        strategy="direct",
        rule=None,
        cache=None,
        batch=None,
        policy_name=compiled.name,
        revision=compiled.revision,
        version=compiled.version,
        enabled=False,
        mode=compiled.mode,
        rollout=compiled.rollout,
        on_unsupported=compiled.on_unsupported,
        trace=(TraceStep(POLICY_STEP, False, why),),
    )


def _why_matched(rule: CompiledRule, ctx: CallContext) -> str:
    if not rule.matchers:
        return "the rule has no match fields: it matches every call"
    parts = []
    for m in rule.matchers:
        value = getattr(ctx, m.attr) or ""
        glob = m.globs[0] if len(m.globs) == 1 else _which(m.globs, value)
        parts.append(f'{m.key} "{value}" matches "{glob}"')
    return "; ".join(parts)


def _which(globs: tuple[str, ...], value: str) -> str:
    import fnmatch  # only for a rule that lists several globs, and only once per context

    return next((g for g in globs if fnmatch.fnmatchcase(value, g)), globs[0])
