"""Evaluate: which rule answers a call, and what it decides. Pure: no I/O, no clock.

``evaluate`` answers from the compiled policy's memo (the same context always gets the
same, equal decision). ``decide`` does the work: it tries only the rules the index names
as candidates, in policy order, and the first that matches wins. ``explain`` walks every
rule up to the winner so a person sees why each earlier one did not match.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from engine.decision import CallContext, Decision, TraceStep

if TYPE_CHECKING:  # only types: ``import engine`` imports this module eagerly and must stay light
    from engine.compile import CompiledPolicy, CompiledRule, FieldMatcher

__all__ = ["decide", "evaluate", "explain"]

POLICY_STEP = "(policy)"
DEFAULTS_STEP = "(defaults)"


def evaluate(compiled: CompiledPolicy, ctx: CallContext) -> Decision:
    """The decision for ``ctx``. Runs on every LLM call; a repeated context is a memo lookup."""
    return compiled.memo(ctx)


def decide(compiled: CompiledPolicy, ctx: CallContext) -> Decision:
    """Uncached :func:`evaluate`; its trace lists only the candidate rules it tried."""
    if not compiled.enabled:
        return _disabled(compiled)
    rules = compiled.rules
    return _first_match(compiled, ctx, (rules[i] for i in compiled.index.candidates(ctx.call_site)))


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
        trace.append(TraceStep(rule.name, False, _why_not(rule, ctx)))
    trace.append(TraceStep(DEFAULTS_STEP, True, "no rule matched: spec.defaults apply"))
    return _decision(compiled, None, tuple(trace))


def _decision(compiled: CompiledPolicy, rule: CompiledRule | None, trace: tuple[TraceStep, ...]) -> Decision:
    cache = rule.cache if rule is not None else compiled.default_cache
    batch = rule.batch if rule is not None else compiled.default_batch
    return Decision(
        strategy=rule.strategy if rule is not None else compiled.default_strategy,
        rule=rule.name if rule is not None else None,
        cache=cache,
        batch=batch,
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


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _globs_text(m: FieldMatcher) -> str:
    if len(m.globs) == 1:
        return _q(m.globs[0])
    return "any of " + ", ".join(_q(g) for g in m.globs)


def _why_not(rule: CompiledRule, ctx: CallContext) -> str:
    for m in rule.matchers:
        value = getattr(ctx, m.attr)
        if m.regex.match(value or "") is None:
            if value is None:
                return f"the call has no {m.key}; the rule needs {m.key} {_globs_text(m)}"
            return f"{m.key} {_q(value)} does not match {_globs_text(m)}"
    return "matched"  # unreachable for a rule that did not match


def _why_matched(rule: CompiledRule, ctx: CallContext) -> str:
    if not rule.matchers:
        return "the rule has no match fields: it matches every call"
    parts = []
    for m in rule.matchers:
        value = getattr(ctx, m.attr) or ""
        glob = next((g for g in m.globs if fnmatch.fnmatchcase(value, g)), m.globs[0])
        parts.append(f"{m.key} {_q(value)} matches {_q(glob)}")
    return "; ".join(parts)
