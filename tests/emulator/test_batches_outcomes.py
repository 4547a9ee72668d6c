"""Item outcomes, billing, caching and time inside batches (ANTHROPIC.md, Message Batches and pricing)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import anthropic
import httpx
import pytest
from test_batches_support import API_KEY, MODEL, Emu, counts, emu, item, items, results_by_id, wait_ended

__all__ = ["emu"]

DAY = 86_400.0


def _fates(emu: Emu, n: int) -> dict[str, str]:
    batch = emu.client.messages.batches.create(requests=items(n))  # type: ignore[arg-type]
    ended = wait_ended(emu.client, batch.id)
    fates = {cid: result.type for cid, result in results_by_id(emu.client, batch.id).items()}
    assert counts(ended) == {"processing": 0, **{k: list(fates.values()).count(k) for k in _KINDS}}
    return fates


_KINDS = ("succeeded", "errored", "canceled", "expired")


def test_error_and_expire_rates_are_seeded_and_never_billed(emu: Emu) -> None:
    emu.set_faults(seed=7, batch_error_rate=0.3, batch_expire_rate=0.2)
    emu.state.reset()
    first = _fates(emu, 200)
    kinds = set(first.values())
    assert kinds == {"succeeded", "errored", "expired"}
    assert emu.billing()["requests_batch"] == list(first.values()).count("succeeded")
    emu.state.reset()
    assert _fates(emu, 200) == first  # same seed, same batch id, same custom_ids: same fates


def test_an_injected_error_has_the_documented_errored_shape(emu: Emu) -> None:
    emu.set_faults(batch_error_rate=1.0)
    batch = emu.client.messages.batches.create(requests=items(2))  # type: ignore[arg-type]
    url = wait_ended(emu.client, batch.id).results_url
    assert url is not None
    lines = [json.loads(line) for line in httpx.get(url, headers={"x-api-key": API_KEY}).text.splitlines()]
    for line in lines:
        assert set(line) == {"custom_id", "result"}
        result = line["result"]
        assert result["type"] == "errored"
        assert result["error"]["type"] == "error"
        assert result["error"]["error"] == {"type": "api_error", "message": "Internal server error"}
        assert result["error"]["request_id"].startswith("req_")


def test_expired_items_are_bare(emu: Emu) -> None:
    emu.set_faults(batch_expire_rate=1.0)
    batch = emu.client.messages.batches.create(requests=items(2))  # type: ignore[arg-type]
    assert counts(wait_ended(emu.client, batch.id))["expired"] == 2
    raw = httpx.get(f"{emu.base_url}/v1/messages/batches/{batch.id}/results", headers={"x-api-key": API_KEY})
    assert {json.dumps(json.loads(line)["result"]) for line in raw.text.splitlines()} == {
        '{"type": "expired"}'
    }
    assert emu.billing()["requests_batch"] == 0


@pytest.mark.parametrize(
    ("params", "error_type", "needle"),
    [
        ({"max_tokens": None}, "invalid_request_error", "max_tokens"),
        ({"max_tokens": 0}, "invalid_request_error", "batch"),
        ({"model": "claude-nonexistent-9"}, "not_found_error", "claude-nonexistent-9"),
    ],
)
def test_invalid_params_end_errored_at_processing_and_are_not_billed(
    emu: Emu, params: dict[str, Any], error_type: str, needle: str
) -> None:
    bad = item("bad", **params)
    if params.get("max_tokens", 1) is None:
        del bad["params"]["max_tokens"]
    batch = emu.client.messages.batches.create(requests=[item("good"), bad])  # type: ignore[list-item]
    ended = wait_ended(emu.client, batch.id)
    assert (ended.request_counts.succeeded, ended.request_counts.errored) == (1, 1)
    result = results_by_id(emu.client, batch.id)["bad"]
    assert result.type == "errored"
    assert result.error.error.type == error_type
    assert needle in result.error.error.message
    assert emu.billing()["requests_batch"] == 1


def test_batch_items_cost_half_of_the_same_standard_request(emu: Emu) -> None:
    params = item("x", "price me please", max_tokens=64)["params"]
    emu.client.messages.create(**params)
    standard = emu.billing()["cost_usd"]
    batch = emu.client.messages.batches.create(requests=[{"custom_id": "x", "params": params}])
    message = results_by_id(emu.client, wait_ended(emu.client, batch.id).id)["x"].message
    assert message.usage.service_tier == "batch"
    bill = emu.billing()
    assert (bill["requests_standard"], bill["requests_batch"]) == (1, 1)
    assert bill["cost_usd"] - standard == pytest.approx(standard / 2)


def test_a_batch_unfinished_24h_after_creation_expires(emu: Emu) -> None:
    emu.set_faults(batch_latency_s=30)
    batch = emu.client.messages.batches.create(requests=items(4))  # type: ignore[arg-type]
    emu.advance(DAY - 60)
    assert emu.client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    emu.advance(60)
    ended = emu.client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended"
    assert counts(ended) == {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 4}
    assert ended.ended_at == ended.expires_at
    assert {r.type for r in results_by_id(emu.client, batch.id).values()} == {"expired"}
    assert emu.billing()["requests_batch"] == 0


def test_results_are_archived_29_days_after_creation(emu: Emu) -> None:
    batch = emu.client.messages.batches.create(requests=items(2))  # type: ignore[arg-type]
    wait_ended(emu.client, batch.id)
    emu.advance(29 * DAY - 60)
    assert len(results_by_id(emu.client, batch.id)) == 2
    emu.advance(60)
    archived = emu.client.messages.batches.retrieve(batch.id)
    assert archived.archived_at == archived.created_at + timedelta(days=29)
    assert archived.results_url is None, "archived results have no URL any more"
    with pytest.raises(anthropic.AnthropicError, match="No `results_url`"):
        list(emu.client.messages.batches.results(batch.id))
    with pytest.raises(anthropic.NotFoundError, match="archived"):  # the old URL, asked directly
        emu.client.get(f"/v1/messages/batches/{batch.id}/results", cast_to=object)


def test_times_are_in_emulator_time(emu: Emu) -> None:
    emu.advance(10 * DAY)
    before = emu.state.clock.now()
    batch = emu.client.messages.batches.create(requests=items(1))  # type: ignore[arg-type]
    after = emu.state.clock.now()
    assert before <= batch.created_at.timestamp() <= after
    ended = wait_ended(emu.client, batch.id)
    assert ended.ended_at is not None and before <= ended.ended_at.timestamp() <= emu.state.clock.now()


def test_model_of_the_reply_is_the_requested_model(emu: Emu) -> None:
    batch = emu.client.messages.batches.create(requests=items(1))  # type: ignore[arg-type]
    wait_ended(emu.client, batch.id)
    assert results_by_id(emu.client, batch.id)["req-0"].message.model == MODEL
