"""Listing, and what the SDK needs from an emulator (ANTHROPIC.md: Message Batches, The official SDK)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import anthropic
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from test_batches_support import API_KEY, Emu, emu, items, wait_ended

from engine.emulator.app import build_app
from engine.emulator.config import EmulatorConfig
from engine.emulator.server import bind
from engine.emulator.state import EmulatorState
from tests.compat import sdk_httpx

__all__ = ["emu"]


def _five_batches(emu: Emu) -> list[str]:
    """Ids of five new batches, oldest first."""
    return [emu.client.messages.batches.create(requests=items(1)).id for _ in range(5)]  # type: ignore[arg-type]


def test_list_is_newest_first_with_paging_fields(emu: Emu) -> None:
    ids = _five_batches(emu)
    newest_first = ids[::-1]
    page = emu.client.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == newest_first[:2]
    assert (page.has_more, page.first_id, page.last_id) == (True, newest_first[0], newest_first[1])
    assert [b.id for b in emu.client.messages.batches.list(limit=2)] == newest_first  # SDK auto-paging
    assert [b.id for b in emu.client.messages.batches.list()] == newest_first  # default limit 20


def test_after_id_pages_towards_older_batches(emu: Emu) -> None:
    ids = _five_batches(emu)[::-1]
    page = emu.client.messages.batches.list(after_id=ids[1], limit=2)
    assert [b.id for b in page.data] == ids[2:4] and page.has_more
    last = emu.client.messages.batches.list(after_id=ids[3], limit=2)
    assert [b.id for b in last.data] == ids[4:] and not last.has_more


def test_before_id_pages_towards_newer_batches(emu: Emu) -> None:
    ids = _five_batches(emu)[::-1]
    page = emu.client.messages.batches.list(before_id=ids[4], limit=2)
    assert [b.id for b in page.data] == ids[2:4]
    assert (page.has_more, page.first_id, page.last_id) == (True, ids[2], ids[3])
    assert [b.id for b in emu.client.messages.batches.list(before_id=ids[4], limit=2)] == ids[2:4] + ids[:2]


def test_an_empty_list_page(emu: Emu) -> None:
    page = emu.client.messages.batches.list()
    assert (page.data, page.has_more, page.first_id, page.last_id) == ([], False, None, None)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
        ({"limit": 1001}, "limit: Input should be less than or equal to 1000"),
        (
            {"after_id": "a", "before_id": "b"},
            "after_id, before_id: give at most one of after_id and before_id",
        ),
        (
            {"after_id": "msgbatch_missing"},
            "after_id: no Message Batch with id 'msgbatch_missing' in this list",
        ),
    ],
)
def test_bad_list_parameters_are_400(emu: Emu, query: dict[str, object], message: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        emu.client.messages.batches.list(**query)  # type: ignore[arg-type]
    assert isinstance(caught.value.body, dict) and caught.value.body["error"]["message"] == message


def test_a_limit_of_1000_is_accepted(emu: Emu) -> None:
    ids = _five_batches(emu)
    assert len(emu.client.messages.batches.list(limit=1000).data) == len(ids)


async def test_async_list_pages_through_everything(emu: Emu) -> None:
    ids = _five_batches(emu)
    assert [b.id async for b in emu.aclient.messages.batches.list(limit=2)] == ids[::-1]
    await emu.aclient.close()


def test_results_raise_client_side_while_results_url_is_null(emu: Emu) -> None:
    emu.set_faults(batch_latency_s=30)
    batch = emu.client.messages.batches.create(requests=items(1))  # type: ignore[arg-type]
    with pytest.raises(anthropic.AnthropicError, match="No `results_url`") as caught:
        emu.client.messages.batches.results(batch.id)
    assert not isinstance(caught.value, anthropic.APIStatusError)
    reply = httpx.get(
        f"{emu.base_url}/v1/messages/batches/{batch.id}/results", headers={"x-api-key": API_KEY}
    )
    assert reply.status_code == 400 and "still in_progress" in reply.json()["error"]["message"]


@pytest.fixture(scope="module")
def mounted() -> Iterator[str]:
    """An emulator served under ``/gateway/anthropic`` of a bigger app: the URL of that prefix."""
    state = EmulatorState(EmulatorConfig(batch_latency_s=0.05))
    outer = Starlette(routes=[Mount("/gateway/anthropic", app=build_app(state))])
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(outer, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "mounted emulator did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/gateway/anthropic"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_results_url_is_absolute_and_follows_the_base_url_path(mounted: str) -> None:
    client = anthropic.Anthropic(base_url=mounted, api_key=API_KEY, max_retries=0)
    batch = client.messages.batches.create(requests=items(3))  # type: ignore[arg-type]
    ended = wait_ended(client, batch.id)
    assert ended.results_url == f"{mounted}/v1/messages/batches/{batch.id}/results"
    assert httpx.URL(ended.results_url).is_absolute_url
    assert sorted(line.custom_id for line in client.messages.batches.results(batch.id)) == [
        "req-0",
        "req-1",
        "req-2",
    ]
    # The SDK GETs results_url verbatim: an absolute URL is not joined onto base_url.
    elsewhere = anthropic.Anthropic(base_url="http://127.0.0.1:9/unreachable", api_key=API_KEY, max_retries=0)
    raw = elsewhere.get(ended.results_url, cast_to=sdk_httpx.Response)
    assert raw.status_code == 200 and len(raw.content.splitlines()) == 3
