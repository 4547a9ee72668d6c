"""The yardstick side: billing, the request log, reset, the clock, faults, the CLI."""

from __future__ import annotations

import random
import subprocess
import sys
from typing import Any

import anthropic
import httpx
import pytest
from emulator_support import MODEL, block, control, sync_client, usage_of

from engine.emulator.config import EmulatorConfig
from engine.emulator.state import EmulatorState
from engine.providers.anthropic.capabilities import Usage, capabilities

HEADERS = {"x-api-key": "raw", "anthropic-version": "2023-06-01"}
BODY = {"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": "ping"}]}


def test_billing_totals_and_per_key_records(emulator: Any) -> None:
    cached = {**BODY, "system": [block(1100, "bill", mark=True)]}
    usages = [usage_of(sync_client(emulator, key).messages.create(**cached)) for key in ("a", "a", "b")]
    bill = control(emulator, "GET", "/_emulator/billing")
    for field in (
        "requests_standard",
        "requests_batch",
        "input_tokens",
        "cache_write_tokens",
        "cache_read_tokens",
        "output_tokens",
        "cost_usd",
    ):
        assert bill[field] == pytest.approx(sum(r[field] for r in bill["by_key"].values())), field
    assert bill["requests_standard"] == 3 and bill["requests_batch"] == 0
    assert bill["cache_write_tokens"] == 2200 and bill["cache_read_tokens"] == 1100
    info = capabilities().model(MODEL)
    expected = sum(info.cost(Usage(u["input"], u["w5m"], u["w1h"], u["read"], u["output"])) for u in usages)
    assert bill["cost_usd"] == pytest.approx(expected)
    only_b = control(emulator, "GET", "/_emulator/billing", params={"api_key": "b"})
    assert only_b.pop("batch_cache")["batches"] == {}
    assert only_b == bill["by_key"]["b"] and only_b["cache_write_tokens"] == 1100


def test_request_log_returns_the_last_n_in_emulator_time(emulator: Any) -> None:
    control(emulator, "POST", "/_emulator/clock", json={"advance_s": 1000})
    client = sync_client(emulator)
    for text in ("one", "two", "three"):
        client.messages.create(**{**BODY, "messages": [{"role": "user", "content": text}]})
    now = control(emulator, "GET", "/_emulator/clock")["now"]
    last = control(emulator, "GET", "/_emulator/requests", params={"last": 2})["data"]
    assert [e["body"]["messages"][0]["content"] for e in last] == ["two", "three"]
    assert all(e["tier"] == "standard" and e["usage"]["output_tokens"] > 0 for e in last)
    assert all(now - 60 < e["ts"] <= now for e in last)
    r = httpx.get(emulator.base_url + "/_emulator/requests", params={"last": "many"})
    assert r.status_code == 400


def test_request_log_is_a_bounded_ring_buffer() -> None:
    state = EmulatorState(EmulatorConfig(requests_log_size=3))
    for i in range(5):
        state.run_message("k", {**BODY, "messages": [{"role": "user", "content": f"m{i}"}]})
    assert [e["body"]["messages"][0]["content"] for e in state.recent_requests(10)] == ["m2", "m3", "m4"]


def test_reset_clears_caches_billing_log_and_clock(emulator: Any) -> None:
    cached = {**BODY, "system": [block(1100, "reset", mark=True)]}
    client = sync_client(emulator)
    client.messages.create(**cached)
    control(emulator, "POST", "/_emulator/clock", json={"advance_s": 50})
    control(emulator, "POST", "/_emulator/reset")
    assert control(emulator, "GET", "/_emulator/billing")["requests_standard"] == 0
    assert control(emulator, "GET", "/_emulator/requests")["data"] == []
    assert control(emulator, "GET", "/_emulator/clock")["offset_s"] == 0
    assert usage_of(client.messages.create(**cached))["write"] == 1100


def test_clock_moves_forward_only(emulator: Any) -> None:
    before = control(emulator, "GET", "/_emulator/clock")
    after = control(emulator, "POST", "/_emulator/clock", json={"advance_s": 400})
    assert after["offset_s"] == before["offset_s"] + 400 and after["now"] >= before["now"] + 400
    r = httpx.post(emulator.base_url + "/_emulator/clock", json={"advance_s": -1})
    assert r.status_code == 400 and "advance_s" in r.json()["error"]["message"]


def _outcomes(emulator: Any, n: int) -> list[str]:
    out = []
    with httpx.Client(base_url=emulator.base_url, headers=HEADERS) as client:
        for _ in range(n):
            try:
                r = client.post("/v1/messages", json=BODY)
            except httpx.RemoteProtocolError:
                out.append("drop")
                continue
            if r.status_code == 429:
                assert r.headers["retry-after"] == "1" and r.json()["error"]["type"] == "rate_limit_error"
            out.append(str(r.status_code))
    return out


def test_faults_are_deterministic_by_seed(emulator: Any) -> None:
    control(emulator, "POST", "/_emulator/faults", json={"fault_rate": 0.5, "seed": 7})
    first = _outcomes(emulator, 40)
    control(emulator, "POST", "/_emulator/faults", json={"seed": 7})
    assert _outcomes(emulator, 40) == first
    assert set(first) == {"200", "429", "529", "500", "drop"}
    types = {
        r["status"] for r in control(emulator, "GET", "/_emulator/requests", params={"last": 40})["data"]
    }
    assert {429, 529, 500} <= types


def test_fault_settings_are_validated(emulator: Any) -> None:
    for bad in ({"fault_rate": 2}, {"nonsense": 1}, {"latency_s": "slow"}):
        r = httpx.post(emulator.base_url + "/_emulator/faults", json=bad)
        assert r.status_code == 400, bad
    assert control(emulator, "GET", "/_emulator/faults")["fault_rate"] == 0.0


def _seed_faulting_once(rate: float) -> int:
    """A seed whose first draw is a 429 and whose second draw is no fault."""
    for seed in range(1000):
        rng = random.Random(seed)
        if rng.random() < rate and rng.randrange(4) == 0 and rng.random() >= rate:
            return seed
    raise AssertionError("no seed found")


def test_sdk_retries_an_injected_429(emulator: Any) -> None:
    seed = _seed_faulting_once(0.5)
    control(emulator, "POST", "/_emulator/faults", json={"fault_rate": 0.5, "seed": seed})
    with pytest.raises(anthropic.RateLimitError):
        sync_client(emulator, max_retries=0).messages.create(**BODY)
    control(emulator, "POST", "/_emulator/faults", json={"seed": seed})
    message = sync_client(emulator, max_retries=2).messages.create(**BODY)
    assert message.content[0].text.startswith("echo: ping")
    statuses = [r["status"] for r in control(emulator, "GET", "/_emulator/requests")["data"]]
    assert statuses[-2:] == [429, 200]


def test_cli_prints_the_listening_line_first() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "emulator", "--port", "0", "--seed", "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        base = line.removeprefix("listening on ")
        assert int(base.rsplit(":", 1)[1]) > 0
        r = httpx.post(base + "/v1/messages", json=BODY, headers=HEADERS, timeout=10)
        assert r.status_code == 200 and r.json()["content"][0]["text"].startswith("echo: ping")
        assert httpx.get(base + "/_emulator/faults").json()["seed"] == 3
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_refuses_bad_settings() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "engine", "emulator", "--fault-rate", "1.5"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "fault-rate" in done.stderr
