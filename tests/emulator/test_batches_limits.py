"""What a batch creation refuses, with the API's status codes and texts (ANTHROPIC.md, Message Batches)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from test_batches_support import API_KEY, Emu, counts, emu, item, items, results_by_id, wait_ended

from engine.providers.anthropic.capabilities import capabilities

__all__ = ["emu"]

PATTERN = "^[a-zA-Z0-9_-]{1,64}$"


def _refusal(emu: Emu, requests: Any) -> str:
    with pytest.raises(anthropic.BadRequestError) as caught:
        emu.client.messages.batches.create(requests=requests)
    body = caught.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "invalid_request_error"
    message: str = body["error"]["message"]
    return message


@pytest.mark.parametrize("custom_id", ["has space", "", "x" * 65, "ünïcode", "dot.ted"])
def test_custom_id_must_match_the_pattern_verbatim_400(emu: Emu, custom_id: str) -> None:
    message = _refusal(emu, [item("fine"), item(custom_id)])
    assert message == f"requests.1.custom_id: String should match pattern '{PATTERN}'"


def test_custom_id_of_64_allowed_characters_is_accepted(emu: Emu) -> None:
    custom_id = ("aZ09_-" * 11)[:64]
    batch = emu.client.messages.batches.create(requests=[item(custom_id)])  # type: ignore[list-item]
    wait_ended(emu.client, batch.id)
    assert list(results_by_id(emu.client, batch.id)) == [custom_id]


def test_custom_id_must_be_unique_within_the_batch(emu: Emu) -> None:
    message = _refusal(emu, [item("a"), item("b"), item("a")])
    assert message == (
        "requests.2.custom_id: Value 'a' is already used by requests.0; "
        "custom_id must be unique within a batch"
    )


def test_the_same_custom_id_in_two_batches_is_fine(emu: Emu) -> None:
    first = emu.client.messages.batches.create(requests=[item("same")])  # type: ignore[list-item]
    second = emu.client.messages.batches.create(requests=[item("same")])  # type: ignore[list-item]
    assert first.id != second.id


def test_stream_inside_a_batch_request_is_a_validation_error(emu: Emu) -> None:
    message = _refusal(emu, [item("a"), item("b", stream=True)])
    assert message == "requests.1.params.stream: Input should be False; a Message Batch request cannot stream"


def test_stream_false_inside_a_batch_request_is_accepted(emu: Emu) -> None:
    batch = emu.client.messages.batches.create(requests=[item("a", stream=False)])  # type: ignore[list-item]
    assert counts(wait_ended(emu.client, batch.id))["succeeded"] == 1


@pytest.mark.parametrize(
    ("requests", "message"),
    [
        ([], "requests: List should have at least 1 item after validation, not 0"),
        ([{"params": {}}], "requests.0.custom_id: Field required"),
        ([{"custom_id": 7, "params": {}}], "requests.0.custom_id: Input should be a valid string"),
        ([{"custom_id": "a"}], "requests.0.params: Field required"),
        ([{"custom_id": "a", "params": []}], "requests.0.params: Input should be a valid dictionary"),
        ([{"custom_id": "a", "params": {}, "extra": 1}], "requests.0.extra: Extra inputs are not permitted"),
        (["nope"], "requests.0: Input should be a valid dictionary"),
    ],
)
def test_malformed_requests_name_the_field(emu: Emu, requests: Any, message: str) -> None:
    assert _refusal(emu, requests) == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"requests": {"a": 1}}', "requests: Input should be a valid list"),
        (b'{"reqs": []}', "reqs: Extra inputs are not permitted"),
        (b"{}", "requests: Field required"),
        (b"[1]", "body: Input should be a valid dictionary"),
        (b'{"requests": [', "There was an error parsing the body as JSON"),
    ],
)
def test_malformed_bodies_are_400(emu: Emu, body: bytes, message: str) -> None:
    reply = httpx.post(
        f"{emu.base_url}/v1/messages/batches",
        content=body,
        headers={"x-api-key": API_KEY, "content-type": "application/json"},
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["message"].startswith(message)


def test_limits_come_from_the_data_file(emu: Emu) -> None:
    limits = capabilities().limits
    assert (emu.store.limits.max_requests, limits["batch_max_requests"]) == (100_000, 100_000)
    assert (emu.store.limits.max_bytes, limits["batch_max_bytes"]) == (256 * 1024 * 1024,) * 2
    assert emu.store.limits.custom_id_pattern == limits["custom_id_pattern"] == PATTERN


def test_more_than_100000_requests_is_refused(emu: Emu) -> None:
    one = json.dumps(item("x")["params"], separators=(",", ":"))
    body = '{"requests":[' + ",".join(f'{{"custom_id":"r{i}","params":{one}}}' for i in range(100_001)) + "]}"
    reply = httpx.post(
        f"{emu.base_url}/v1/messages/batches",
        content=body.encode(),
        headers={"x-api-key": API_KEY, "content-type": "application/json"},
        timeout=60,
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["message"] == (
        "requests: List should have at most 100000 items after validation, not 100001"
    )


@pytest.fixture
def small_limits(emu: Emu) -> Iterator[Emu]:
    """Lower the store's limits so that going past them does not take a 256 MB upload."""
    saved = (emu.store.limits.max_requests, emu.store.limits.max_bytes)
    emu.store.limits.max_requests, emu.store.limits.max_bytes = 5, 4000
    try:
        yield emu
    finally:
        emu.store.limits.max_requests, emu.store.limits.max_bytes = saved


def test_a_body_past_the_size_limit_is_413_request_too_large(small_limits: Emu) -> None:
    with pytest.raises(anthropic.RequestTooLargeError) as caught:
        small_limits.client.messages.batches.create(requests=[item("big", "x" * 5000)])  # type: ignore[list-item]
    assert caught.value.status_code == 413
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "request_too_large"
    assert "4000" in caught.value.body["error"]["message"]


def test_a_body_at_the_limits_is_accepted(small_limits: Emu) -> None:
    batch = small_limits.client.messages.batches.create(requests=items(5))  # type: ignore[arg-type]
    assert batch.request_counts.processing == 5
    message = _refusal(small_limits, items(6))
    assert message == "requests: List should have at most 5 items after validation, not 6"


def test_a_refused_batch_leaves_nothing_behind(emu: Emu) -> None:
    _refusal(emu, [item("a"), item("a")])
    assert emu.client.messages.batches.list().data == []
