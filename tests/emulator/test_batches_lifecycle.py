"""The batch lifecycle through the SDK: create, retrieve, results, cancel, delete (ANTHROPIC.md)."""

from __future__ import annotations

from datetime import timedelta

import anthropic
import httpx
import pytest
from test_batches_support import (
    API_KEY,
    Emu,
    await_ended,
    counts,
    emu,
    item,
    items,
    results_by_id,
    wait_ended,
)

from engine.emulator.batches_spool import CHUNK_BYTES
from engine.emulator.batches_worker import process_slice

__all__ = ["emu"]


def test_create_answers_an_in_progress_batch_with_every_documented_field(emu: Emu) -> None:
    batch = emu.client.messages.batches.create(requests=items(3))  # type: ignore[arg-type]
    raw = httpx.get(f"{emu.base_url}/v1/messages/batches/{batch.id}", headers={"x-api-key": API_KEY}).json()
    assert set(raw) == {
        "id", "type", "processing_status", "request_counts", "created_at", "expires_at",
        "ended_at", "cancel_initiated_at", "archived_at", "results_url",
    }  # fmt: skip
    assert batch.id.startswith("msgbatch_")
    assert batch.type == "message_batch"
    assert batch.processing_status == "in_progress"
    assert counts(batch) == {"processing": 3, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    assert batch.results_url is None and batch.ended_at is None and batch.cancel_initiated_at is None
    assert batch.archived_at is None
    assert batch.expires_at - batch.created_at == timedelta(hours=24)
    assert raw["created_at"].endswith("Z") and "T" in raw["created_at"]


def test_an_ended_batch_has_counts_summing_to_total_and_an_absolute_results_url(emu: Emu) -> None:
    batch = emu.client.messages.batches.create(requests=items(4))  # type: ignore[arg-type]
    ended = wait_ended(emu.client, batch.id)
    assert counts(ended) == {"processing": 0, "succeeded": 4, "errored": 0, "canceled": 0, "expired": 0}
    assert ended.ended_at is not None and ended.ended_at >= ended.created_at
    assert ended.results_url == f"{emu.base_url}/v1/messages/batches/{batch.id}/results"


def test_results_come_back_unordered_and_match_by_custom_id(emu: Emu) -> None:
    requests = [item(f"doc-{i}", f"summarize document {i}") for i in range(40)]
    batch = emu.client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    wait_ended(emu.client, batch.id)
    order = [line.custom_id for line in emu.client.messages.batches.results(batch.id)]
    assert sorted(order) == sorted(r["custom_id"] for r in requests)
    assert order != [r["custom_id"] for r in requests]
    results = results_by_id(emu.client, batch.id)
    for i in range(40):
        result = results[f"doc-{i}"]
        assert result.type == "succeeded"
        assert result.message.content[0].text.startswith(f"echo: summarize document {i}")
        assert result.message.usage.service_tier == "batch"


def test_results_are_jsonl_without_blank_lines(emu: Emu) -> None:
    batch = emu.client.messages.batches.create(requests=items(5))  # type: ignore[arg-type]
    url = wait_ended(emu.client, batch.id).results_url
    assert url is not None
    reply = httpx.get(url, headers={"x-api-key": API_KEY})
    assert reply.status_code == 200 and reply.headers["request-id"].startswith("req_")
    assert reply.content.endswith(b"\n")
    lines = reply.content.split(b"\n")[:-1]
    assert len(lines) == 5 and all(line.strip() for line in lines)


def test_cancel_before_processing_cancels_every_item_and_bills_nothing(emu: Emu) -> None:
    emu.set_faults(batch_latency_s=30)
    batch = emu.client.messages.batches.create(requests=items(6))  # type: ignore[arg-type]
    canceling = emu.client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None
    assert counts(canceling)["processing"] == 6
    ended = wait_ended(emu.client, batch.id)
    assert counts(ended) == {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 6, "expired": 0}
    assert {r.type for r in results_by_id(emu.client, batch.id).values()} == {"canceled"}
    assert emu.billing()["requests_batch"] == 0


def test_cancel_during_processing_keeps_partial_results_and_bills_only_them(emu: Emu) -> None:
    emu.set_faults(batch_latency_s=30)
    batch = emu.client.messages.batches.create(requests=items(10))  # type: ignore[arg-type]
    record = emu.store.get(API_KEY, batch.id)
    for _ in range(3):  # the worker is still waiting: answer three items as it would, one at a time
        process_slice(emu.store, record, budget_s=0)
    emu.client.messages.batches.cancel(batch.id)
    ended = wait_ended(emu.client, batch.id)
    assert counts(ended) == {"processing": 0, "succeeded": 3, "errored": 0, "canceled": 7, "expired": 0}
    results = results_by_id(emu.client, batch.id)
    assert sorted(r.type for r in results.values()) == ["canceled"] * 7 + ["succeeded"] * 3
    assert emu.billing()["requests_batch"] == 3


def test_cancel_of_an_ended_batch_is_refused(emu: Emu) -> None:
    batch = emu.client.messages.batches.create(requests=items(1))  # type: ignore[arg-type]
    wait_ended(emu.client, batch.id)
    with pytest.raises(anthropic.BadRequestError, match="has already ended"):
        emu.client.messages.batches.cancel(batch.id)


def test_delete_only_once_ended(emu: Emu) -> None:
    emu.set_faults(batch_latency_s=30)
    batch = emu.client.messages.batches.create(requests=items(2))  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError, match="cannot be deleted while it is in_progress"):
        emu.client.messages.batches.delete(batch.id)
    emu.client.messages.batches.cancel(batch.id)
    wait_ended(emu.client, batch.id)
    deleted = emu.client.messages.batches.delete(batch.id)
    assert (deleted.id, deleted.type) == (batch.id, "message_batch_deleted")
    with pytest.raises(anthropic.NotFoundError):
        emu.client.messages.batches.retrieve(batch.id)
    reply = httpx.get(
        f"{emu.base_url}/v1/messages/batches/{batch.id}/results", headers={"x-api-key": API_KEY}
    )
    assert reply.status_code == 404 and reply.json()["error"]["type"] == "not_found_error"


def test_a_batch_is_private_to_its_api_key(emu: Emu) -> None:
    batch = emu.client.messages.batches.create(requests=items(1))  # type: ignore[arg-type]
    other = anthropic.Anthropic(base_url=emu.base_url, api_key="someone-else", max_retries=0)
    with pytest.raises(anthropic.NotFoundError):
        other.messages.batches.retrieve(batch.id)
    assert other.messages.batches.list().data == []


def test_reset_forgets_batches(emu: Emu) -> None:
    batch = emu.client.messages.batches.create(requests=items(1))  # type: ignore[arg-type]
    emu.state.reset()
    with pytest.raises(anthropic.NotFoundError):
        emu.client.messages.batches.retrieve(batch.id)


def test_unknown_batch_is_404_and_missing_key_is_401(emu: Emu) -> None:
    with pytest.raises(anthropic.NotFoundError, match="msgbatch_nope"):
        emu.client.messages.batches.retrieve("msgbatch_nope")
    reply = httpx.post(f"{emu.base_url}/v1/messages/batches", json={"requests": items(1)})
    assert reply.status_code == 401 and reply.json()["error"]["type"] == "authentication_error"


async def test_the_whole_lifecycle_on_the_async_client(emu: Emu) -> None:
    client = emu.aclient
    batch = await client.messages.batches.create(requests=items(3, "a"))  # type: ignore[arg-type]
    assert (await client.messages.batches.retrieve(batch.id)).id == batch.id
    listed = [b.id async for b in client.messages.batches.list()]
    assert listed == [batch.id]
    ended = await await_ended(client, batch.id)
    assert counts(ended)["succeeded"] == 3
    seen = {
        line.custom_id: line.result.type async for line in await client.messages.batches.results(batch.id)
    }
    assert seen == {"a-0": "succeeded", "a-1": "succeeded", "a-2": "succeeded"}
    deleted = await client.messages.batches.delete(batch.id)
    assert deleted.type == "message_batch_deleted"
    await client.close()


async def test_cancel_on_the_async_client(emu: Emu) -> None:
    emu.set_faults(batch_latency_s=30)
    client = emu.aclient
    batch = await client.messages.batches.create(requests=items(2, "c"))  # type: ignore[arg-type]
    canceling = await client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    ended = await await_ended(client, batch.id)
    assert counts(ended)["canceled"] == 2
    assert ended.cancel_initiated_at == canceling.cancel_initiated_at
    await client.close()


def test_results_larger_than_one_streamed_chunk_parse_line_by_line(emu: Emu) -> None:
    batch = emu.client.messages.batches.create(requests=items(1500, "big"))  # type: ignore[arg-type]
    url = wait_ended(emu.client, batch.id).results_url
    assert url is not None
    with httpx.stream("GET", url, headers={"x-api-key": API_KEY}) as reply:
        chunks = list(reply.iter_raw())
    assert len(chunks) > 1 and sum(map(len, chunks)) > CHUNK_BYTES
    results = results_by_id(emu.client, batch.id)
    assert sorted(results) == sorted(f"big-{i}" for i in range(1500))
    assert {r.type for r in results.values()} == {"succeeded"}
