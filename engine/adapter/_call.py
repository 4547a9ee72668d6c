"""One model call under the engine: decide, apply to the wire payload, log.

A :class:`CallRun` lives for one call. It is created once the call's metadata is
known, turns the payload LangChain built into the payload to send (cache markers,
or nothing), and writes one decision-log record when the answer (or the error) is
in. Anything that raises inside the engine leaves the payload as it was: the call
goes out exactly as the unwrapped model would send it.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from engine.adapter.callsite import CallSiteSource, resolve_call_site
from engine.decision import BatchPlan, CachePlan, CallContext, Decision, in_rollout
from engine.doctor import cache_keys
from engine.ledger import (
    CallShape,
    DecisionRecord,
    LatencyTolerance,
    MarkerRecord,
    PolicyRef,
    PrefixBlock,
    account,
    prefix_blocks,
    split_writes,
    utc_now,
)
from engine.providers.anthropic.blocks import Block, iter_blocks, prefix_hashes
from engine.providers.anthropic.capabilities import Transport
from engine.providers.anthropic.tokens import canonical_json
from engine.providers.anthropic.transport import SupportResult, UnsupportedError, check_support

if TYPE_CHECKING:
    from engine.adapter.engine import PolicyEngine

__all__ = ["Binding", "CallRun", "latency_of"]

_LATENCY: dict[CallShape, LatencyTolerance] = {
    "invoke": "interactive",
    "stream": "interactive",
    "astream": "interactive",
    "ainvoke": "awaitable",
    "batch": "batch",
    "abatch": "batch",
}


def latency_of(shape: CallShape) -> LatencyTolerance:
    return _LATENCY[shape]


@dataclass(frozen=True, slots=True)
class Binding:
    """What a wrapped model knows about where it came from."""

    engine: PolicyEngine
    provider: str
    transport: Transport
    role: str | None
    #: The role the host built the model for, read from its frames (``get_llm_for_role``);
    #: it labels calls, the call site stays the calling code.
    built_role: str | None = None
    #: ``(call-site glob, role)`` pairs: the role of calls whose site matches (first wins).
    roles: tuple[tuple[str, str], ...] = ()

    def context(
        self, model: str, metadata: Mapping[str, Any] | None, caller: str | None = None
    ) -> tuple[CallContext, CallSiteSource]:
        """The call's identity; ``caller`` is a code location captured before LangChain's tasks."""
        site, source, role = resolve_call_site(metadata, self.role, caller=caller)
        if role is None:
            role = self.built_role or next((r for g, r in self.roles if fnmatch.fnmatchcase(site, g)), None)
        return CallContext(call_site=site, role=role, provider=self.provider, model=model), source

    def pools(self, model: str, metadata: Mapping[str, Any] | None) -> bool:
        """Whether an ``ainvoke`` with this metadata goes to the ``accumulate`` pool (enforced, supported).

        Asked before the payload exists, so a partial ``rollout`` cannot be applied here:
        such a call is sent unstreamed even when its hash falls outside the rollout.
        """
        try:
            decision = self.engine.decide(self.context(model, metadata)[0])
        except Exception as exc:
            self._failed("pools", exc)
            return False
        if decision is None or decision.mode != "enforce":
            return False
        try:
            batch = _support(decision, self.transport, model).batch
        except Exception:  # onUnsupported: error is raised where the call starts
            return False
        return batch is not None and batch.mode == "accumulate"

    def _failed(self, where: str, exc: Exception) -> None:
        """An engine failure before the call: logged once per cause (its type and place)."""
        self.engine.once.warn(
            f"{where}:{type(exc).__name__}", "engine failed (%s), calls go out unchanged: %r", where, exc
        )

    def start(
        self, model: str, shape: CallShape, metadata: Mapping[str, Any] | None, *, caller: str | None = None
    ) -> CallRun | None:
        """A run for this call, or None when the engine is off for it (nothing to do, nothing logged).

        Fail open: an exception in call-site resolution, evaluation, capability checks
        or the record makes the call go out unchanged (``onUnsupported: error`` still raises).
        """
        try:
            return self._start(model, shape, metadata, caller)
        except UnsupportedError:
            raise
        except Exception as exc:
            self._failed("start", exc)
            return None

    def _start(
        self, model: str, shape: CallShape, metadata: Mapping[str, Any] | None, caller: str | None
    ) -> CallRun | None:
        started = time.perf_counter()
        ctx, source = self.context(model, metadata, caller)
        decision = self.engine.decide(ctx)
        if decision is None:
            return None
        support = _support(decision, self.transport, model)
        record = DecisionRecord(
            time=utc_now(self.engine.clock()),
            call_site=ctx.call_site,
            call_site_source=source,
            call=shape,
            latency_tolerance=latency_of(shape),
            model=model,
            provider=self.provider,
            transport=self.transport,
            role=ctx.role,
            policy=PolicyRef(
                decision.policy_name, decision.version, decision.revision, decision.mode, decision.rollout
            ),
            rule=decision.rule,
            strategy=decision.strategy,
            cache=_plan_dict(decision.cache),
            batch=_plan_dict(decision.batch),
            reasons=list(support.messages),
        )
        return CallRun(self, decision, support, record, started)


_supports: dict[tuple[int, str, str], tuple[Decision, SupportResult]] = {}


def _support(decision: Decision, transport: Transport, model: str) -> SupportResult:
    """``check_support``, remembered per decision (decisions are memoised, so few and reused)."""
    key = (id(decision), transport, model)
    hit = _supports.get(key)
    if hit is not None and hit[0] is decision:
        return hit[1]
    result = check_support(decision, transport=transport, model=model)
    if len(_supports) >= 4096:
        _supports.clear()
    _supports[key] = (decision, result)
    return result


@functools.lru_cache(maxsize=256)
def _plan_dict(plan: CachePlan | BatchPlan | None) -> dict[str, Any] | None:
    """A plan as the log writes it (plans are few and immutable: built once each)."""
    return None if plan is None else asdict(plan)


def request_key(payload: Mapping[str, Any]) -> str:
    """A stable hash of the request: the rollout bucket and the batch journal key derive from it."""
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


class CallRun:
    """Decision, payload edits and the record of one call."""

    __slots__ = (
        "_applied_at",
        "_payload",
        "_started",
        "_usage",
        "at",
        "batch_plan",
        "binding",
        "cache_plan",
        "decision",
        "in_rollout",
        "prebuilt",
        "record",
        "shadow_batch",
    )

    def __init__(
        self,
        binding: Binding,
        decision: Decision,
        support: SupportResult,
        record: DecisionRecord,
        started: float,
    ) -> None:
        self.binding, self.decision, self.record = binding, decision, record
        self.cache_plan, self.batch_plan = support.cache, support.batch
        self._started = started
        self._payload: dict[str, Any] | None = None
        self._usage: dict[str, Any] | None = None
        self._applied_at: float | None = None  # when the allocator recorded this request
        self.in_rollout = True
        #: The payload LangChain built before the call was routed (a pool that declined
        #: it): the direct path sends it instead of building it again.
        self.prebuilt: dict[str, Any] | None = None
        #: Shadow mode: whether the policy would have sent this call through a batch.
        self.shadow_batch = False
        self.at = binding.engine.clock()
        record.evaluation_ms = (time.perf_counter() - started) * 1000.0

    @property
    def engine(self) -> PolicyEngine:
        return self.binding.engine

    def note(self, reason: str) -> None:
        self.record.reasons.append(reason)

    def pool_plan(self) -> BatchPlan | None:
        """The batch plan if this call goes through the Message Batches API, else None (and why)."""
        plan = self.batch_plan
        if plan is None:
            return None
        shape = self.record.call
        if plan.mode == "accumulate" and self.record.latency_tolerance == "interactive":
            self.note(f"batch: {shape} calls never wait on a batch, sent direct")
            return None
        if plan.mode == "explicit" and shape not in ("batch", "abatch"):
            return None
        if self.decision.mode == "shadow":
            self.note(f"shadow: would go through the Message Batches API ({plan.mode}), sent direct")
            self.shadow_batch = self.in_rollout
            return None
        return plan if self.in_rollout else None

    def apply(
        self,
        payload: dict[str, Any],
        *,
        batch: bool = False,
        counter: Callable[[dict[str, Any]], int] | None = None,
    ) -> dict[str, Any]:
        """The payload to send: ``payload`` itself, or a copy with cache markers (fail open).

        ``counter`` counts a prefix exactly (``count_tokens`` on the model's own client)
        where the token estimate is too close to the model's cache minimum to trust.
        """
        started = time.perf_counter()
        try:
            out = self._apply(payload, batch=batch, counter=counter)
        except Exception as exc:
            self.engine.once.warn(
                f"apply:{type(exc).__name__}",
                "placing cache markers failed, calls go out unchanged: %r",
                exc,
            )
            self.note(f"engine error ({type(exc).__name__}): sent unchanged")
            out = payload
        self.record.evaluation_ms += (time.perf_counter() - started) * 1000.0
        return out

    def _take_back(self) -> None:
        """Forget this request's assumed cache writes (fail open: a failure here is logged once)."""
        if self._applied_at is None or self._payload is None:
            return
        try:
            self.engine.allocator(self.binding.transport).failed(self._payload, now=self._applied_at)
        except Exception as exc:
            self.engine.once.warn(
                f"forget:{type(exc).__name__}", "forgetting a failed request's cache writes failed: %r", exc
            )

    def _apply(
        self, payload: dict[str, Any], *, batch: bool, counter: Callable[[dict[str, Any]], int] | None
    ) -> dict[str, Any]:
        record = self.record
        self._payload = payload
        max_tokens = payload.get("max_tokens")
        record.max_tokens = max_tokens if isinstance(max_tokens, int) else None
        record.model = str(payload.get("model") or record.model)
        if self.decision.rollout < 100 and not in_rollout(self.decision.rollout, request_key(payload)):
            self.in_rollout = False
            self.note(f"outside the {self.decision.rollout}% rollout: sent unchanged")
            return payload
        plan = self.cache_plan
        if plan is None:
            return payload
        self._applied_at = now = self.engine.clock()
        result = self.engine.allocator(self.binding.transport).apply(
            payload,
            plan,
            call_site=record.call_site,
            now=now,
            batch=batch,
            counter=counter,
            sent=self.decision.mode != "shadow",
            hit_rate=self.engine.batch_hit_rate(record.call_site) if batch else 1.0,
        )
        record.markers = [
            MarkerRecord(p.path, p.ttl, p.prefix_tokens, p.source, p.action, p.reason, p.prefix_hash)
            for p in result.placements
        ]
        record.reasons.extend(result.notes)
        if self.decision.mode == "shadow":
            self.note("shadow: markers computed, request sent unchanged")
            return payload
        out: dict[str, Any] = result.payload
        record.applied = out != payload
        self._payload = out
        return out

    def finish(
        self,
        usage: Mapping[str, Any] | None,
        *,
        error: BaseException | None = None,
        batch_id: str | None = None,
        answered: bool = False,
    ) -> None:
        """Complete the record with what came back and emit it.

        ``answered``: part of the answer came back before ``error`` (a stream cut
        mid-way), so the request was processed and wrote what it wrote. An error with
        no answer at all takes back what the allocator assumed the request wrote.
        """
        record = self.record
        record.latency_ms = (time.perf_counter() - self._started) * 1000.0
        record.batch_id = batch_id
        if error is not None:
            record.error = type(error).__name__
            if not usage and not answered:
                self._take_back()
        self._usage = dict(usage) if usage else None
        if usage and usage.get("output_tokens") is not None:
            self.engine.batch_hits().observe_output(record.call_site, int(usage["output_tokens"]))
        if batch_id is not None and usage and any(m.action != "dropped" for m in record.markers):
            # what the batch's cache actually did: the hit rate later batches decide with
            hit = int(usage.get("cache_read_input_tokens") or 0) > 0
            self.engine.batch_hits().observe(record.call_site, hit)
        self.engine.log.emit(record, self._complete)

    def _complete(self) -> None:
        """The costly part of the record, run by the log's writer thread, off the call's path:
        prefix hashes of the request sent, caller markers, usage and costs."""
        record, payload, usage = self.record, self._payload, self._usage
        if payload is not None:
            blocks = iter_blocks(payload)
            hashes = prefix_hashes(payload, blocks)
            record.prefix = prefix_blocks(blocks, hashes)
            record.input_tokens_estimate = sum(b.tokens for b in blocks)
            if not record.markers:
                record.markers = _caller_markers(record.prefix, blocks)
            record.cache_keys = cache_keys(payload)
        if usage:
            if payload is not None and usage.get("cache_creation") is None:
                usage = {**usage, "cache_creation": split_writes(iter_blocks(payload), usage)}
            record.usage, record.cost = account(record.model, usage)
            record.output_tokens = record.usage["output_tokens"]
            if payload is not None and self.decision.mode == "shadow":
                record.cost["policy_usd"] = round(self._shadow_cost(payload, record.output_tokens), 8)
            reason = usage.get("cache_miss_reason")
            record.cache_miss = self.engine.cache_doctor().observe_decision(record, reason)

    def _shadow_cost(self, payload: dict[str, Any], output_tokens: int) -> float:
        """What this call would have cost enforced: the markers it would carry, its batch tier."""
        blocks = iter_blocks(payload)
        hashes = prefix_hashes(payload, blocks)
        ttls = {m.prefix_hash: m.ttl for m in self.record.markers if m.action != "dropped"}
        markers: list[Any] = [ttls.get(h.hex()) for h in hashes]
        return float(
            self.engine.shadow_billing().bill(
                self.record.model,
                hashes,
                [b.tokens for b in blocks],
                markers,
                now=self.at,
                output_tokens=output_tokens,
                batch=self.shadow_batch,
            )
        )


def _caller_markers(prefix: list[PrefixBlock], blocks: list[Block]) -> list[MarkerRecord]:
    """Markers the caller set on a request the engine did not place any in."""
    out: list[MarkerRecord] = []
    tokens = 0
    for entry, block in zip(prefix, blocks, strict=True):
        tokens += block.tokens
        if block.cache_control is not None:
            ttl = str(block.cache_control.get("ttl", "5m"))
            out.append(
                MarkerRecord(block.dotted, ttl, tokens, "caller", "kept", "set by the caller", entry.hash)
            )
    return out
