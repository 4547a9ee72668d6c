"""The cache doctor names the right cause on a corpus of constructed misses, one per cause."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main
from engine.doctor import CAUSES, CacheDoctor, diagnose, doctor_report
from engine.providers.anthropic.capabilities import capabilities

MODEL = "claude-sonnet-4-6"
T0 = "2026-11-25T05:00:00.000Z"


def _blocks(seeds: list[tuple[str, int, str]]) -> list[dict[str, Any]]:
    out, running = [], ""
    for seed, tokens, section in seeds:
        running = hashlib.sha256((running + seed).encode()).hexdigest()
        out.append({"hash": running, "tokens": tokens, "section": section})
    return out


def _record(
    seeds: list[tuple[str, int, str]],
    marks: list[tuple[int, str]],
    *,
    usage: tuple[int, int, int, int],
    time: str = T0,
    site: str = "chat.agent",
    source: str = "engine",
    dropped: list[tuple[int, str]] = (),  # type: ignore[assignment]
    batch_id: str | None = None,
    cache_keys: dict[str, str] | None = None,
) -> dict[str, Any]:
    prefix = _blocks(seeds)
    cum = [sum(b["tokens"] for b in prefix[: i + 1]) for i in range(len(prefix))]
    markers = [
        {"path": f"messages.{i}", "ttl": ttl, "prefix_tokens": cum[i], "source": source, "action": "placed",
         "reason": "r", "prefix_hash": prefix[i]["hash"]}
        for i, ttl in marks
    ] + [
        {"path": f"messages.{i}", "ttl": "5m", "prefix_tokens": cum[i], "source": "engine",
         "action": "dropped", "reason": reason, "prefix_hash": prefix[i]["hash"]}
        for i, reason in dropped
    ]  # fmt: skip
    plain, w5, w1h, read = usage
    return {
        "id": f"dec_{len(seeds):032x}",
        "call_site": site,
        "model": MODEL,
        "time": time,
        "latency_ms": 1000.0,
        "prefix": prefix,
        "markers": markers,
        "batch_id": batch_id,
        "cache_keys": cache_keys or {"tool_choice": "a", "thinking": "a", "effort": "a"},
        "error": None,
        "usage": {
            "input_tokens": plain,
            "cache_creation_input_tokens": w5 + w1h,
            "cache_write_5m_tokens": w5,
            "cache_write_1h_tokens": w1h,
            "cache_read_input_tokens": read,
            "output_tokens": 10,
            "service_tier": "batch" if batch_id else "standard",
        },
    }


SYS = [("tools", 500, "tools"), ("system", 2000, "system")]
TURN1 = [*SYS, ("u1", 300, "messages")]
TURN2 = [*TURN1, ("a1", 200, "messages"), ("u2", 100, "messages")]


def _pair(**changes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A request that wrote 2500 tokens at the system block, then one that wrote them again."""
    first = _record(TURN1, [(1, "5m")], usage=(300, 2500, 0, 0))
    second = _record(changes.pop("seeds", TURN1), [(1, "5m")], usage=(300, 2500, 0, 0), **changes)
    return first, second


def _cause(previous: dict[str, Any] | None, record: dict[str, Any]) -> tuple[str, str]:
    miss = diagnose(record, previous)
    assert miss is not None
    return miss.cause, miss.detail


def test_cold_first_request() -> None:
    assert _cause(None, _pair()[0])[0] == "cold"


def test_system_changed_invalidates() -> None:
    first, second = _pair(
        seeds=[("tools", 500, "tools"), ("system v2", 2000, "system"), ("u1", 300, "messages")]
    )
    cause, detail = _cause(first, second)
    assert (cause, detail) == ("invalidated", "system changed (block 1)")


def test_tools_changed_invalidates() -> None:
    first, second = _pair(
        seeds=[("tools v2", 500, "tools"), ("system", 2000, "system"), ("u1", 300, "messages")]
    )
    assert _cause(first, second) == ("invalidated", "tools changed (block 0)")


@pytest.mark.parametrize("setting", ["tool_choice", "thinking", "effort"])
def test_settings_that_invalidate(setting: str) -> None:
    keys = {"tool_choice": "a", "thinking": "a", "effort": "a", setting: "b"}
    first, second = _pair(cache_keys=keys)
    assert _cause(first, second) == ("invalidated", f"{setting} changed since the previous request")


def test_message_block_changed() -> None:
    first = _record(TURN2, [(4, "5m")], usage=(0, 3100, 0, 0))
    edited = [*TURN1, ("a1 edited", 200, "messages"), ("u2", 100, "messages")]
    second = _record(edited, [(4, "5m")], usage=(0, 3100, 0, 0), time="2026-11-25T05:00:30.000Z")
    cause, detail = _cause(first, second)
    assert cause == "prefix-changed" and "block 3" in detail


def test_ttl_expired_by_how_much() -> None:
    first, second = _pair(time="2026-11-25T05:06:41.000Z")  # 401 s after, 1 s of it the first call
    assert _cause(first, second) == (
        "ttl-expired",
        "the 5m entry expired 100 s before this request (gap 400 s)",
    )


def test_below_minimum() -> None:
    minimum = capabilities().model(MODEL).min_cache_tokens
    short = [("system", minimum // 2, "system"), ("u1", 10, "messages")]
    record = _record(short, [(0, "5m")], usage=(minimum // 2 + 10, 0, 0, 0), source="caller")
    cause, detail = _cause(None, record)
    assert cause == "below-minimum" and f"below the {minimum}-token minimum" in detail


def test_past_the_lookback() -> None:
    long = [*SYS, *((f"m{i}", 50, "messages") for i in range(25))]
    first = _record(long[:3], [(1, "5m")], usage=(50, 2500, 0, 0))
    second = _record(long, [(26, "5m")], usage=(0, 2500 + 25 * 50, 0, 0), time="2026-11-25T05:00:30.000Z")
    cause, detail = _cause(first, second)
    assert cause == "lookback" and "25 blocks before the marker" in detail


def test_marker_budget_exhausted_by_the_caller() -> None:
    reason = "history; not placed: the 4-marker limit is reached (4 caller, 0 engine)"
    record = _record(TURN2, [(0, "5m")], usage=(2600, 0, 0, 500), source="caller", dropped=[(4, reason)])
    record["usage"]["cache_read_input_tokens"] = 0
    cause, _ = _cause(None, record)
    assert cause == "marker-budget"


def test_batch_best_effort() -> None:
    first, second = _pair(batch_id="msgbatch_01", time="2026-11-25T05:01:00.000Z")
    cause, detail = _cause(first, second)
    assert cause == "batch-best-effort" and "msgbatch_01" in detail


def test_api_reason_wins() -> None:
    first, second = _pair(batch_id="msgbatch_01")
    second["usage"]["cache_miss_reason"] = {"type": "system_changed"}
    assert _cause(first, second) == ("api", "the API says: type=system_changed")


def test_a_read_is_not_a_miss() -> None:
    first = _record(TURN1, [(1, "5m")], usage=(300, 2500, 0, 0))
    second = _record(TURN2, [(4, "5m")], usage=(0, 600, 0, 2500), time="2026-11-25T05:00:30.000Z")
    assert diagnose(second, first) is None


def test_every_cause_is_covered_here() -> None:
    names = {name for name in globals() if name.startswith("test_")}
    words = {"api": "api", "marker-budget": "marker_budget", "below-minimum": "below_minimum", "cold": "cold",
             "invalidated": "invalidate", "prefix-changed": "block_changed", "ttl-expired": "ttl_expired",
             "lookback": "lookback", "batch-best-effort": "batch_best_effort"}  # fmt: skip
    assert set(words) == set(CAUSES)
    for cause, word in words.items():
        assert any(word in n for n in names), cause


def test_miss_costs_the_write_over_a_read() -> None:
    first, second = _pair(time="2026-11-25T05:10:00.000Z")
    miss = diagnose(second, first)
    prices = capabilities().model(MODEL).prices
    assert miss is not None and miss.cost_usd == pytest.approx(
        2500 * (prices.cache_write_5m - prices.cache_read) / 1e6
    )


def test_doctor_command_per_call_site(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = _pair(time="2026-11-25T05:10:00.000Z")
    other = _record(TURN1, [(1, "5m")], usage=(300, 2500, 0, 0), site="indexing.x")
    log = tmp_path / "decisions.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in (first, other, second)), encoding="utf-8")
    report = doctor_report(log)
    assert [m["cause"] for m in report["misses"]] == ["cold", "cold", "ttl-expired"]
    assert set(report["call_sites"]["chat.agent"]) == {"cold", "ttl-expired"}
    assert main(["doctor", "--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "ttl-expired" in out and "chat.agent" in out and "expired 299 s" in out
    assert main(["doctor", "--log", str(log), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["calls"] == 3


def test_running_doctor_remembers_each_call_site() -> None:
    doctor = CacheDoctor()
    first, second = _pair(time="2026-11-25T05:10:00.000Z")
    miss = doctor.observe(first)
    assert miss is not None and miss.cause == "cold"
    miss = doctor.observe(second)
    assert miss is not None and miss.cause == "ttl-expired"


def test_a_marker_the_engine_left_out_below_the_minimum_is_named() -> None:
    minimum = capabilities().model(MODEL).min_cache_tokens
    short = [("system", minimum - 20, "system"), ("u1", 10, "messages")]
    reason = f"anchor 'system'; but the prefix is {minimum - 20} tokens, below the {minimum}-token minimum"
    record = _record(short, [], usage=(minimum - 10, 0, 0, 0), dropped=[(0, reason)])
    assert _cause(None, record)[0] == "below-minimum"


def test_a_marker_the_engine_left_out_by_choice_is_not_a_miss() -> None:
    reason = "auto: stable prefix; not placed: a batch at this hit rate pays more for the write"
    record = _record(TURN1, [], usage=(2800, 0, 0, 0), dropped=[(1, reason)])
    assert diagnose(record, None) is None


def test_a_cold_write_costs_its_premium_over_plain_input() -> None:
    miss = diagnose(_pair()[0], None)
    prices = capabilities().model(MODEL).prices
    assert miss is not None and miss.cost_usd == pytest.approx(
        2500 * (prices.cache_write_5m - prices.input) / 1e6
    )


def test_interleaved_conversations_are_told_apart() -> None:
    """Two conversations on one call site: each turn is compared with its own conversation."""
    doctor = CacheDoctor()
    a1 = _record([*SYS, ("a: u1", 300, "messages")], [(1, "5m"), (2, "5m")], usage=(0, 2800, 0, 0))
    b1 = _record([*SYS, ("b: u1", 300, "messages")], [(1, "5m"), (2, "5m")], usage=(0, 300, 0, 2500))
    a2 = _record(
        [*SYS, ("a: u1", 300, "messages"), ("a: a1", 200, "messages"), ("a: u2", 100, "messages")],
        [(1, "5m"), (4, "5m")],
        usage=(0, 300, 0, 2800),
    )
    causes = [doctor.observe(r) for r in (a1, b1, a2)]
    assert [c.cause if c else None for c in causes] == ["cold", None, None]
    edited = _record(
        [*SYS, ("a: u1 edited", 300, "messages"), ("a: a1", 200, "messages"), ("a: u2", 100, "messages")],
        [(1, "5m"), (4, "5m")],
        usage=(0, 600, 0, 0),
    )
    miss = doctor.observe(edited)
    assert miss is not None and miss.cause == "prefix-changed"


def test_record_times_read_back_to_the_millisecond() -> None:
    from engine.ledger._record import epoch_ns, utc_now

    assert epoch_ns(utc_now(1796151079.25)) == 1796151079250000000
    assert epoch_ns("2026-11-25T05:00:00Z") == epoch_ns("2026-11-25T05:00:00.000Z")
