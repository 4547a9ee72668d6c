"""Compile once, evaluate many: a :class:`Policy` becomes an immutable, indexed
:class:`CompiledPolicy` that :func:`engine.evaluate.evaluate` answers from on every call.

The stages run in order and are timed (``CompiledPolicy.stages``)::

    merge defaults     builtin <- spec.defaults, the base every rule merges over
    compile rules      per rule: one regex per match field, merged cache/batch plans
    index rules        per match field: literal globs and literal prefixes -> rule bits

The index is why a never-seen call does not cost one regex per rule: a rule is tried
only if, on every field, it has no glob there, or a glob that starts with a wildcard,
or a glob whose literal start the call's value begins with. Decisions are memoised per
:class:`CallContext` in a bounded LRU, so a repeated call costs one dictionary lookup.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from engine.decision import BatchPlan, CachePlan, CallContext, Decision, Strategy, TraceStep
from engine.policy import BUILTIN_DEFAULTS, BatchSettings, CacheSettings, Policy, Rule
from engine.policy._gc import paused_gc
from engine.policy._globs import GlobIndex, LazyRegex
from engine.policy._model import MATCH_FIELDS, OnUnsupported, PolicyMode

__all__ = [
    "MEMO_SIZE",
    "CompiledPolicy",
    "CompiledRule",
    "FieldMatcher",
    "RuleIndex",
    "compile_policy",
    "field_matcher",
]

#: Trace step names that are not rules.
POLICY_STEP = "(policy)"
DEFAULTS_STEP = "(defaults)"

#: Distinct call contexts remembered per compiled policy (call sites x roles x models).
MEMO_SIZE = 4096


@dataclass(frozen=True, slots=True)
class FieldMatcher:
    """One ``match`` field of a rule: its globs, one regex matching when any glob does, and
    the trace's words for a miss, written once here rather than on every call."""

    key: str
    attr: str
    globs: tuple[str, ...]
    regex: LazyRegex
    miss: str
    absent: str
    hit: str


def field_matcher(key: str, attr: str, globs: tuple[str, ...]) -> FieldMatcher:
    shown = f'"{globs[0]}"' if len(globs) == 1 else "any of " + ", ".join(f'"{g}"' for g in globs)
    return FieldMatcher(
        key,
        attr,
        globs,
        LazyRegex(globs),
        miss=f"{key} does not match {shown}",
        absent=f"the call has no {key}; the rule needs {key} {shown}",
        hit=f"{key} matches {shown}",
    )


@dataclass(frozen=True, slots=True)
class CompiledRule:
    index: int
    name: str
    matchers: tuple[FieldMatcher, ...]
    cache: CachePlan | None
    batch: BatchPlan | None
    strategy: Strategy

    @property
    def hit_why(self) -> str:
        """Why the rule matched, in the words of its globs (``explain`` adds the call's values)."""
        if not self.matchers:
            return "the rule has no match fields: it matches every call"
        return "; ".join(m.hit for m in self.matchers)

    def matches(self, ctx: CallContext) -> bool:
        """Every given field matches; a field the call lacks is matched as the empty string."""
        for m in self.matchers:  # noqa: SIM110 - a plain loop; all() over a generator is slower here
            if m.regex.match(getattr(ctx, m.attr) or "") is None:
                return False
        return True

    def why_not(self, ctx: CallContext) -> str:
        for m in self.matchers:
            value = getattr(ctx, m.attr)
            if m.regex.match(value or "") is None:
                return m.absent if value is None else m.miss
        return "matches"


@dataclass(frozen=True, slots=True)
class RuleIndex:
    """Which rules can match a call: per match field, a :class:`GlobIndex`; rules are bits."""

    fields: tuple[tuple[str, GlobIndex], ...]
    everything: int

    def candidates(self, ctx: CallContext) -> int:
        """A bit mask of the rules worth trying for ``ctx`` (a superset of those that match)."""
        mask = self.everything
        for attr, index in self.fields:
            mask &= index.lookup(getattr(ctx, attr) or "")
            if not mask:
                break
        return mask


@dataclass(frozen=True, eq=False)
class CompiledPolicy:
    """Everything ``evaluate`` needs, precomputed. Immutable; share it across threads."""

    name: str
    revision: str
    version: int | None
    enabled: bool
    mode: PolicyMode
    rollout: int
    on_unsupported: OnUnsupported
    rules: tuple[CompiledRule, ...]
    default_cache: CachePlan | None
    default_batch: BatchPlan | None
    index: RuleIndex
    stages: tuple[tuple[str, float], ...] = ()
    memo: Callable[[CallContext], Decision] = field(init=False, repr=False, compare=False)
    #: Per rule, the decision it gives when it is the first candidate tried (trace: one step).
    rule_decisions: tuple[Decision, ...] = field(init=False, repr=False, compare=False)
    #: The decision when no rule matches (trace: the defaults step), and when disabled.
    default_decision: Decision = field(init=False, repr=False, compare=False)
    disabled_decision: Decision = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from engine.evaluate import decide  # evaluate imports this module for its types

        def uncached(ctx: CallContext) -> Decision:
            return decide(self, ctx)

        object.__setattr__(self, "memo", lru_cache(maxsize=MEMO_SIZE)(uncached))
        object.__setattr__(self, "rule_decisions", tuple(self._decision(r) for r in self.rules))
        object.__setattr__(self, "default_decision", self._decision(None))
        why = f'policy "{self.name}" is disabled (spec.enabled: false): the call goes direct, untouched'
        disabled = replace(
            self._decision(None),
            strategy="direct",
            cache=None,
            batch=None,
            enabled=False,
            trace=(TraceStep(POLICY_STEP, False, why),),
        )
        object.__setattr__(self, "disabled_decision", disabled)

    def _decision(self, rule: CompiledRule | None) -> Decision:
        """Built once per rule here, so a decision on the hot path is a lookup, not a construction."""
        step = (
            TraceStep(rule.name, True, rule.hit_why)
            if rule is not None
            else TraceStep(DEFAULTS_STEP, True, "no rule matched: spec.defaults apply")
        )
        default = strategy_of(self.default_cache, self.default_batch)
        return Decision(
            strategy=rule.strategy if rule is not None else default,
            rule=rule.name if rule is not None else None,
            cache=rule.cache if rule is not None else self.default_cache,
            batch=rule.batch if rule is not None else self.default_batch,
            policy_name=self.name,
            revision=self.revision,
            version=self.version,
            enabled=True,
            mode=self.mode,
            rollout=self.rollout,
            on_unsupported=self.on_unsupported,
            trace=(step,),
        )


def strategy_of(cache: CachePlan | None, batch: BatchPlan | None) -> Strategy:
    if cache is not None and batch is not None:
        return "batch+cache"
    if batch is not None:
        return "batch"
    return "cache" if cache is not None else "direct"


def _merged(section: str, *layers: CacheSettings | BatchSettings | None) -> dict[str, Any]:
    """Field-by-field merge: later layers win where they set a field."""
    out = dict(BUILTIN_DEFAULTS[section])
    for layer in layers:
        if layer is not None:
            out.update(layer.model_dump(by_alias=True, exclude_unset=True))
    return out


def cache_plan(*layers: CacheSettings | None) -> CachePlan | None:
    merged = _merged("cache", *layers)
    if merged["mode"] == "off":
        return None
    points = tuple(merged["breakpoints"]) if merged["mode"] == "explicit" else ()
    return CachePlan(mode=merged["mode"], ttl=merged["ttl"], breakpoints=points)


def batch_plan(*layers: BatchSettings | None) -> BatchPlan | None:
    merged = _merged("batch", *layers)
    if merged["mode"] == "off":
        return None
    return BatchPlan(
        mode=merged["mode"],
        max_requests=merged["maxRequests"],
        max_wait=merged["maxWait"],
        deadline=merged["deadline"],
        retries=merged["retries"],
        on_failure=merged["onFailure"],
    )


@dataclass(slots=True)
class _Build:
    policy: Policy
    default_cache: CachePlan | None = None
    default_batch: BatchPlan | None = None
    rules: list[CompiledRule] = field(default_factory=list)
    index: RuleIndex | None = None


def _merge_defaults(build: _Build) -> None:
    """The plans a call gets when no rule matches: builtin <- spec.defaults."""
    defaults = build.policy.spec.defaults
    build.default_cache = cache_plan(defaults.cache)
    build.default_batch = batch_plan(defaults.batch)


def _compile_rule(index: int, rule: Rule, policy: Policy) -> CompiledRule:
    matchers = []
    for key, attr in MATCH_FIELDS.items():
        globs = rule.match.globs(key)
        if globs is not None:
            matchers.append(field_matcher(key, attr, globs))
    defaults = policy.spec.defaults
    cache = cache_plan(defaults.cache, rule.cache)
    batch = batch_plan(defaults.batch, rule.batch)
    return CompiledRule(index, rule.name, tuple(matchers), cache, batch, strategy_of(cache, batch))


def _compile_rules(build: _Build) -> None:
    build.rules = [_compile_rule(i, rule, build.policy) for i, rule in enumerate(build.policy.spec.rules)]


def _index(build: _Build) -> None:
    """One GlobIndex per match field that some rule uses; a field no rule names is skipped."""
    fields = []
    for key, attr in MATCH_FIELDS.items():
        index = GlobIndex()
        for rule in build.rules:
            matcher = next((m for m in rule.matchers if m.key == key), None)
            index.add(1 << rule.index, matcher.globs if matcher is not None else None)
        if any(m.key == key for rule in build.rules for m in rule.matchers):
            fields.append((attr, index))
    build.index = RuleIndex(tuple(fields), (1 << len(build.rules)) - 1)


_STAGES: tuple[tuple[str, Callable[[_Build], None]], ...] = (
    ("merge defaults", _merge_defaults),
    ("compile rules", _compile_rules),
    ("index rules", _index),
)


def compile_policy(policy: Policy, *, version: int | None = None) -> CompiledPolicy:
    """Prepare ``policy`` for evaluation; ``version`` is the store's number, if it has one."""
    build = _Build(policy)
    timings = []
    with paused_gc():
        for name, stage in _STAGES:
            started = time.perf_counter()
            stage(build)
            timings.append((name, time.perf_counter() - started))
    assert build.index is not None
    spec = policy.spec
    return CompiledPolicy(
        name=policy.name,
        revision=policy.revision,
        version=version,
        enabled=spec.enabled,
        mode=spec.mode,
        rollout=spec.rollout,
        on_unsupported=spec.on_unsupported,
        rules=tuple(build.rules),
        default_cache=build.default_cache,
        default_batch=build.default_batch,
        index=build.index,
        stages=tuple(timings),
    )
