"""Run a workload under each arm against an emulator and read what each arm was billed.

Arms run one after another, each with its own API key (the emulator caches and
bills per key). Emulator time follows the workload's script: before each group
of calls (a burst of documents, one conversation turn) the emulator clock is
moved forward to the group's time, so gaps of minutes cost no wall time.

The ``no-policy`` arm also records the trace of what was sent (from the
emulator's request log: the exact bodies, emulator times, output tokens), which
the planner replays and the lower bound is computed on.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from engine.bench.arms import (
    ARM_SETTINGS,
    ARMS,
    LITELLM_FALLBACK_NOTE,
    Caller,
    litellm_available,
    litellm_caller,
    litellm_rule_caller,
    middleware_caller,
    model_caller,
    sdk_batch_caller,
)
from engine.bench.factory import model_config, pipeshub_factory
from engine.bench.workloads import Workload, WorkloadCall
from engine.plan._trace import TraceRecord, record_from_payload

__all__ = ["ArmResult", "EmulatorControl", "Progress", "run_arms"]

Progress = Callable[[str, int], None]


@dataclass(slots=True)
class ArmResult:
    arm: str
    calls: int
    cost_usd: float
    input_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    output_tokens: int
    batch_share: float
    wall_s: float
    note: str = ""
    trace: list[TraceRecord] = field(default_factory=list, repr=False)
    #: The policy arm's decision log, read back (for plan and report against the bill).
    log: list[TraceRecord] = field(default_factory=list, repr=False)
    report_usd: float | None = None
    hit_rate: float | None = None
    #: Each call's answer as text, in workload order (None where the arm's caller gives none).
    answers: list[Any] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cost_usd": round(self.cost_usd, 6),
            "input_tokens": self.input_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "output_tokens": self.output_tokens,
            "batch_share": round(self.batch_share, 4),
            "wall_s": round(self.wall_s, 2),
            "requests": self.calls,
            "settings": ARM_SETTINGS.get(self.arm, ""),
            **({"note": self.note} if self.note else {}),
        }


class EmulatorControl:
    """The emulator's ``/_emulator`` endpoints."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=30.0)
        self._offset: float | None = None

    def now(self) -> float:
        now = float(self._http.get("/_emulator/clock").json()["now"])
        self._offset = now - time.time()
        return now

    def advance_to(self, target: float) -> None:
        step = target - self.now()
        if step > 0:
            self._http.post("/_emulator/clock", json={"advance_s": step}).raise_for_status()
            self._offset = (self._offset or 0.0) + step

    def clock(self) -> float:
        """Emulator time without a request: its offset from real time, kept as the clock moves.

        The engine under test reads this, so it sees the same gaps between calls that the
        emulator's cache sees (the workloads move the emulator's clock, not the wall's).
        """
        if self._offset is None:
            self.now()
        return time.time() + (self._offset or 0.0)

    def set_batch_hit_rate(self, rate: float | None) -> None:
        """The emulator's batch cache hit model: a fixed rate, or None (the documented per-batch draw)."""
        self._http.post("/_emulator/faults", json={"batch_cache_hit_rate": rate}).raise_for_status()

    def billing(self, api_key: str) -> dict[str, Any]:
        data: dict[str, Any] = self._http.get("/_emulator/billing").json()
        return dict(data.get("by_key", {}).get(api_key) or {})

    def requests(self, last: int, api_key: str) -> list[dict[str, Any]]:
        data = self._http.get("/_emulator/requests", params={"last": str(last)}).json()["data"]
        return [d for d in data if d.get("api_key") == api_key and d.get("status", 200) == 200]

    def close(self) -> None:
        self._http.close()


def _record(entry: dict[str, Any], call: WorkloadCall, tenant: str) -> TraceRecord:
    return record_from_payload(
        entry["body"],
        ts=float(entry["ts"]),
        call_site=call.call_site,
        output_tokens=int((entry.get("usage") or {}).get("output_tokens") or 0),
        latency=call.latency,
        call=call.shape,
        role=call.role,
        tenant=tenant,
    )


GroupCaller = Callable[[list[WorkloadCall]], Any]


async def _drive(
    caller: Caller | GroupCaller,
    workload: Workload,
    ctl: EmulatorControl,
    key: str,
    *,
    record: bool,
    progress: Progress | None,
    answers: list[Any],
    grouped: bool = False,
) -> list[TraceRecord]:
    start = ctl.now()
    trace: list[TraceRecord] = []
    for group in workload.groups():
        ctl.advance_to(start + group[0].at)
        if grouped:
            await caller(group)  # type: ignore[arg-type]
            answers.extend([None] * len(group))
        else:
            answers.extend(await asyncio.gather(*(caller(c) for c in group)))  # type: ignore[arg-type]
        if record:
            trace.extend(_record(e, group[0], "default") for e in ctl.requests(len(group), key))
        if progress is not None:
            progress("calls", len(group))
    return trace


async def _policy_caller(
    ctl: EmulatorControl, key: str, model: str, policy: Path, workdir: Path, telemetry: Any = None
) -> tuple[Caller, Any]:
    from engine.adapter import PolicyEngine, wrap_factory

    engine = PolicyEngine.from_file(
        policy,
        state=f"sqlite:///{workdir / 'state.db'}",
        decision_log=workdir / "decisions.jsonl",
        clock=ctl.clock,
    )
    if telemetry is not None:
        engine.attach_telemetry(telemetry)
    wrapped = wrap_factory(pipeshub_factory(ctl.base_url), engine)
    llm = wrapped("anthropic", model_config(key, model))
    return model_caller(llm, with_call_site=True), engine


async def _run_arm(
    arm: str,
    workload: Workload,
    ctl: EmulatorControl,
    policy: Path,
    progress: Progress | None,
    hit_rate: float | None = None,
    log_dir: Path | None = None,
    telemetry: Any = None,
) -> ArmResult:
    suffix = "" if hit_rate is None else f"-q{round(hit_rate * 100)}"
    key = f"sk-bench-{arm}{suffix}"
    factory = pipeshub_factory(ctl.base_url)
    engine: Any = None
    note = ""
    grouped = False
    caller: Any
    answers: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="llm-policy-bench-") as tmp:
        workdir = log_dir or Path(tmp)
        if arm == "policy":
            caller, engine = await _policy_caller(ctl, key, workload.model, policy, workdir, telemetry)
        elif arm.startswith("langchain-middleware"):
            ttl = arm.rsplit("-", 1)[-1]
            caller = middleware_caller(factory("anthropic", model_config(key, workload.model)), ttl)
            note = f"LangChain's own AnthropicPromptCachingMiddleware(ttl={ttl!r}).awrap_model_call"
        elif arm == "litellm-auto" and litellm_available():
            caller = litellm_caller(ctl.base_url, key, workload.model)
            note = "LiteLLM's own acompletion with cache_control_injection_points (system + latest message)"
        elif arm == "litellm-auto":
            caller = litellm_rule_caller(factory("anthropic", model_config(key, workload.model)))
            note = LITELLM_FALLBACK_NOTE
        elif arm == "sdk-batch":
            llm = factory("anthropic", model_config(key, workload.model))
            caller, grouped = sdk_batch_caller(llm, ctl.base_url, key), True
        else:
            caller = model_caller(
                factory("anthropic", model_config(key, workload.model)), with_call_site=False
            )
        began = time.perf_counter()
        try:
            trace = await _drive(
                caller,
                workload,
                ctl,
                key,
                record=arm == "no-policy",
                progress=progress,
                answers=answers,
                grouped=grouped,
            )
        finally:
            if engine is not None:
                await engine.aclose()
        wall = time.perf_counter() - began
        log, report = _read_log(workdir / "decisions.jsonl") if engine is not None else ([], None)
    result = _result(arm, ctl.billing(key), wall, trace)
    result.note, result.log, result.report_usd, result.hit_rate = note, log, report, hit_rate
    result.answers = answers
    return result


def _read_log(path: Path) -> tuple[list[TraceRecord], float | None]:
    """The decision log as a trace, and what ``report`` sums from it."""
    from engine.plan import read_trace, savings_report

    if not path.exists():
        return [], None
    return read_trace(path), float(savings_report(path)["total"]["realized_usd"])


def _result(arm: str, bill: dict[str, Any], wall: float, trace: list[TraceRecord]) -> ArmResult:
    standard, batch = int(bill.get("requests_standard", 0)), int(bill.get("requests_batch", 0))
    calls = standard + batch
    return ArmResult(
        arm=arm,
        calls=calls,
        cost_usd=float(bill.get("cost_usd", 0.0)),
        input_tokens=int(bill.get("input_tokens", 0)),
        cache_write_tokens=int(bill.get("cache_write_tokens", 0)),
        cache_read_tokens=int(bill.get("cache_read_tokens", 0)),
        output_tokens=int(bill.get("output_tokens", 0)),
        batch_share=batch / calls if calls else 0.0,
        wall_s=wall,
        trace=trace,
    )


def run_arms(
    workload: Workload,
    base_url: str,
    policy: Path,
    *,
    arms: tuple[str, ...] = ARMS,
    progress: Progress | None = None,
    hit_rates: tuple[float, ...] = (),
    log_dir: Path | None = None,
    telemetry: Any = None,
) -> dict[str, ArmResult]:
    """Every arm of ``arms`` on ``workload`` against the emulator at ``base_url``.

    Arms that send batches (``BATCH_ARMS``) run once per batch cache hit rate in
    ``hit_rates`` when the workload has calls that can wait (keys ``ARM@q30`` etc.);
    the others do not depend on it and run once. The policy arm's decision log and
    journal go to ``log_dir`` when given (kept), else a temp dir, and its calls to
    ``telemetry`` (an :class:`engine.telemetry.Telemetry`) when given.
    """
    from engine.bench.arms import BATCH_ARMS

    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"unknown arm(s) {', '.join(unknown)}; choose among {', '.join(ARMS)}")
    ctl = EmulatorControl(base_url)
    batches = any(c.latency != "interactive" for c in workload.calls)

    async def every_arm() -> dict[str, ArmResult]:
        # One event loop for all arms: langchain-anthropic shares its HTTP clients
        # between models, and a client bound to a closed loop would fail and retry
        # (and the retried request would be billed twice).
        out: dict[str, ArmResult] = {}
        for arm in arms:
            rates: tuple[float | None, ...] = (
                hit_rates if (arm in BATCH_ARMS and batches and hit_rates) else (None,)
            )
            for rate in rates:
                ctl.set_batch_hit_rate(rate)
                name = arm if rate is None else f"{arm}@q{round(rate * 100)}"
                where = log_dir / name if log_dir is not None and len(rates) > 1 else log_dir
                if where is not None:
                    where.mkdir(parents=True, exist_ok=True)
                out[name] = await _run_arm(arm, workload, ctl, policy, progress, rate, where, telemetry)
        ctl.set_batch_hit_rate(None)
        return out

    try:
        return asyncio.run(every_arm())
    finally:
        ctl.close()
