"""The batch path's promises, each attacked where it was once broken: never pay twice,
answer every caller, raise what a direct call raises, send what the SDK would send."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from engine.decision import BatchPlan
from engine.providers.anthropic.batches import (
    BatchItemError,
    BatchService,
    JournalEntry,
    Lease,
    NotBatchable,
    NotHandedOver,
    client_identity,
    custom_id_for,
    open_journal,
    request_hash,
)

from .conftest import billing, paid_prompts

MODEL = "claude-sonnet-4-6"
EXPLICIT = BatchPlan("explicit", retries=2)
POOLED = BatchPlan("accumulate", max_requests=100, max_wait="1s", retries=2)


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": text}], **extra}


def text_of(message: Any) -> str:
    assert isinstance(message, anthropic.types.Message), repr(message)
    block = message.content[0]
    assert block.type == "text"
    return block.text


def make_service(url: str, **options: Any) -> BatchService:
    return BatchService(open_journal(url), poll_interval=0.05, max_poll_interval=0.2, **options)


def assert_paid_once(emulator: Any, prompts: list[str]) -> None:
    paid = paid_prompts(emulator)
    for prompt in prompts:
        total = paid.get((prompt, "batch"), 0) + paid.get((prompt, "standard"), 0)
        assert total == 1, f"{prompt!r} paid {total} times"


async def test_two_workers_on_one_journal_join_each_others_items(fast_batches: Any, tmp_path: Path) -> None:
    """Two processes' services share a journal file: a live owner's pending item is joined, not resent."""
    url = f"sqlite:///{tmp_path}/shared.db"
    first, second = make_service(url), make_service(url)
    prompts = [f"shared {i}" for i in range(20)]
    async with anthropic.AsyncAnthropic(api_key="sk-shared", base_url=fast_batches.base_url) as client:
        answers = await asyncio.gather(
            *(first.submit_one(ask(p), POOLED, client) for p in prompts),
            *(second.submit_one(ask(p), POOLED, client) for p in prompts),
        )
        await first.aclose()
        await second.aclose()
    assert [text_of(a).split()[1:3] for a in answers] == [p.split() for p in prompts] * 2
    assert_paid_once(fast_batches, prompts)


def test_one_service_called_from_two_event_loops_answers_both(fast_batches: Any, tmp_path: Path) -> None:
    """Worker threads with loops of their own share one service: no loop's callers are stranded."""
    service = make_service(f"sqlite:///{tmp_path}/loops.db")
    prompts = [f"loop {i}" for i in range(10)]
    out: dict[str, list[Any]] = {}

    async def worker(name: str) -> None:
        async with anthropic.AsyncAnthropic(api_key="sk-loops", base_url=fast_batches.base_url) as client:
            out[name] = await asyncio.gather(
                *(service.submit_one(ask(p), POOLED, client) for p in prompts), return_exceptions=True
            )

    threads = [threading.Thread(target=asyncio.run, args=(worker(n),)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    asyncio.run(service.aclose(timeout=10))
    assert sorted(out) == ["a", "b"], "both loops' callers answered"
    for answers in out.values():
        assert [text_of(a).split()[1:3] for a in answers] == [p.split() for p in prompts]
    assert_paid_once(fast_batches, prompts)


@pytest.mark.parametrize("pooled", [True, False], ids=["accumulate", "explicit"])
async def test_a_create_that_succeeded_but_failed_on_the_wire_is_not_sent_again(
    fast_batches: Any, client: anthropic.AsyncAnthropic, tmp_path: Path, pooled: bool
) -> None:
    """The server made the batch, then answered 500 or dropped the connection: found, adopted, paid once."""
    fast_batches.state.config.update({"batch_create_lost_rate": 1.0})
    service = make_service(f"sqlite:///{tmp_path}/lost.db")
    prompts = [f"lost create {i}" for i in range(20)]
    if pooled:
        answers = await asyncio.gather(*(service.submit_one(ask(p), POOLED, client) for p in prompts))
    else:
        answers = await service.submit_many([ask(p) for p in prompts], EXPLICIT, client)
    await service.aclose()
    assert [text_of(a).split()[1:4] for a in answers] == [p.split() for p in prompts]
    assert billing(fast_batches)["requests_batch"] == 20
    assert_paid_once(fast_batches, prompts)


async def test_a_results_stream_cut_mid_way_loses_no_result_and_no_caller(
    fast_batches: Any, client: anthropic.AsyncAnthropic, tmp_path: Path
) -> None:
    """The first download stops after 3 lines: those are journaled, the rest read again, all answered."""
    fast_batches.state.config.update({"results_cut_rate": 1.0, "results_cut_line": 3})
    url = f"sqlite:///{tmp_path}/cut.db"
    service = make_service(url)
    prompts = [f"cut {i}" for i in range(30)]
    task = asyncio.ensure_future(service.submit_many([ask(p) for p in prompts], EXPLICIT, client))
    journal = open_journal(url)
    while not journal.counts().get("succeeded"):  # type: ignore[attr-defined]
        await asyncio.sleep(0.02)
    read = journal.counts()["succeeded"]  # type: ignore[attr-defined]
    assert 1 <= read <= 3, "the lines read before the cut are journaled, before anything else"
    fast_batches.state.config.update({"results_cut_rate": 0.0})
    answers = await asyncio.wait_for(task, 30)
    await service.aclose()
    journal.close()
    assert [text_of(a).split()[1:3] for a in answers] == [p.split() for p in prompts]
    assert billing(fast_batches)["requests_batch"] == 30


@pytest.mark.parametrize(
    ("bad", "kind", "status"),
    [
        ({"messages": []}, anthropic.BadRequestError, 400),
        ({"model": "claude-nope"}, anthropic.NotFoundError, 404),
    ],
    ids=["invalid_request_error", "not_found_error"],
)
async def test_a_permanently_rejected_item_raises_the_direct_calls_exception_at_once(
    fast_batches: Any,
    client: anthropic.AsyncAnthropic,
    service: BatchService,
    bad: dict[str, Any],
    kind: type[Exception],
    status: int,
) -> None:
    params = {**ask("bad"), **bad}
    with pytest.raises(anthropic.APIStatusError) as direct:
        await client.messages.create(**params)
    with pytest.raises(anthropic.APIStatusError) as batched:
        await service.submit_one(params, POOLED, client)
    assert type(batched.value) is type(direct.value) is kind
    assert batched.value.status_code == direct.value.status_code == status
    assert batched.value.body["error"]["type"] == direct.value.body["error"]["type"]  # type: ignore[index]
    assert service.batches_created == 1, "a permanent error is not re-batched"


async def test_client_options_are_applied_never_sent_as_params(
    fast_batches: Any, client: anthropic.AsyncAnthropic, service: BatchService
) -> None:
    options = {
        "extra_headers": {"anthropic-beta": "some-beta-2025-01-01"},
        "extra_body": {"metadata": {"user_id": "u-1"}},
        "timeout": 30,
    }
    message = await service.submit_one(ask("options", **options), POOLED, client)
    assert text_of(message).startswith("echo: options ")
    [entry] = httpx.get(f"{fast_batches.base_url}/_emulator/requests", params={"last": 1}).json()["data"]
    assert entry["tier"] == "batch"
    assert not {"extra_headers", "extra_body", "extra_query", "timeout"} & set(entry["body"])
    assert entry["body"]["metadata"] == {"user_id": "u-1"}, (
        "extra_body goes into the body, as the SDK sends it"
    )
    with pytest.raises(NotBatchable):
        await service.submit_one(ask("query", extra_query={"beta": "true"}), POOLED, client)


async def test_pools_never_mix_requests_with_different_headers(fast_batches: Any, tmp_path: Path) -> None:
    service = make_service(f"sqlite:///{tmp_path}/headers.db")
    base = fast_batches.base_url
    async with (
        anthropic.AsyncAnthropic(api_key="sk-h", base_url=base, default_headers={"anthropic-beta": "a"}) as a,
        anthropic.AsyncAnthropic(api_key="sk-h", base_url=base, default_headers={"anthropic-beta": "b"}) as b,
    ):
        answers = await asyncio.gather(
            service.submit_one(ask("same"), POOLED, a), service.submit_one(ask("same"), POOLED, b)
        )
        await service.aclose()
    assert all(text_of(m).startswith("echo: same ") for m in answers)
    assert service.batches_created == 2, "one batch per header set: each sent under its own headers"


async def test_unserialisable_params_are_never_handed_over(
    fast_batches: Any, client: anthropic.AsyncAnthropic, service: BatchService
) -> None:
    """The caller is told to send it direct (where the SDK raises its own error)."""
    with pytest.raises(NotHandedOver):
        await service.submit_one(ask("unserialisable", metadata={"user_id": object()}), POOLED, client)


async def test_a_direct_fallback_that_raises_anything_answers_its_caller(
    fast_batches: Any, service: BatchService
) -> None:
    """The batch is refused, the direct fallback raises a non-API error: the caller gets that error."""
    async with anthropic.AsyncAnthropic(api_key="k", base_url=f"{fast_batches.base_url}/nowhere") as wrong:

        async def broken(**_params: Any) -> Any:
            raise RuntimeError("the transport broke")

        wrong.messages.create = broken  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="the transport broke"):
            await asyncio.wait_for(service.submit_one(ask("fallback"), POOLED, wrong), 10)


async def test_an_archived_batch_answers_its_callers(
    fast_batches: Any, client: anthropic.AsyncAnthropic, tmp_path: Path
) -> None:
    """A worker died with a batch submitted; 29 days on its results are archived (results_url null)."""
    url = f"sqlite:///{tmp_path}/archived.db"
    params = [ask(f"archived {i}") for i in range(3)]
    fp, base = client_identity(client)
    hashes = [request_hash(p, fp, base) for p in params]
    requests = [{"custom_id": custom_id_for(h), "params": p} for h, p in zip(hashes, params, strict=True)]
    batch = await client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    journal = open_journal(url)
    dead = Lease("died", ttl_s=-1)
    entries = [
        JournalEntry(h, custom_id_for(h), fp, base, "pending", params=p)
        for h, p in zip(hashes, params, strict=True)
    ]
    journal.claim(entries, dead)
    journal.mark_submitted(hashes, batch.id, dead)
    journal.close()
    while (await client.messages.batches.retrieve(batch.id)).processing_status != "ended":
        await asyncio.sleep(0.05)
    httpx.post(f"{fast_batches.base_url}/_emulator/clock", json={"advance_s": 30 * 86400}).raise_for_status()
    service = make_service(url)
    out = await asyncio.wait_for(service.submit_many(params, EXPLICIT, client, return_exceptions=True), 10)
    await service.aclose()
    assert all(isinstance(e, BatchItemError) and e.failure == "archived" for e in out), out
    assert billing(fast_batches)["requests_batch"] == 3, "never sent again"


async def test_aclose_with_a_timeout_fails_what_it_cannot_finish_and_hands_it_on(
    fast_batches: Any, client: anthropic.AsyncAnthropic, tmp_path: Path
) -> None:
    fast_batches.state.config.update({"batch_latency_s": 3.0})
    url = f"sqlite:///{tmp_path}/closing.db"
    service = make_service(url)
    waiting = asyncio.ensure_future(service.submit_many([ask("slow one")], EXPLICIT, client))
    while service.batches_created == 0:
        await asyncio.sleep(0.02)
    await service.aclose(timeout=0.1)
    with pytest.raises(BatchItemError) as caught:
        await asyncio.wait_for(waiting, 5)
    assert caught.value.failure == "closed"
    later = make_service(url)  # released at close: taken over at once, collected, not sent again
    [message] = await later.submit_many([ask("slow one")], EXPLICIT, client)
    await later.aclose()
    assert text_of(message).startswith("echo: slow one ")
    assert billing(fast_batches)["requests_batch"] == 1


async def test_redelivery_only_within_the_window_or_with_a_key(
    fast_batches: Any, client: anthropic.AsyncAnthropic, tmp_path: Path
) -> None:
    no_window = make_service(f"sqlite:///{tmp_path}/window.db", dedupe_window_s=0)
    await no_window.submit_one(ask("regenerate"), POOLED, client)
    await no_window.submit_one(ask("regenerate"), POOLED, client)  # a new request: asked again
    await no_window.submit_one(ask("keyed"), POOLED, client, idempotency_key="msg-1")
    replay = await no_window.answer_one(ask("keyed"), POOLED, client, idempotency_key="msg-1")
    await no_window.aclose()
    assert not replay.paid_here
    paid = paid_prompts(fast_batches)
    assert (paid[("regenerate", "batch")], paid[("keyed", "batch")]) == (2, 1)


async def test_a_deadline_counts_from_the_first_submission(
    fast_batches: Any, client: anthropic.AsyncAnthropic, service: BatchService
) -> None:
    """Every batch expires: retries stop once the deadline since the first submission has passed."""
    fast_batches.state.config.update({"batch_expire_rate": 1.0, "batch_latency_s": 0.3})
    plan = BatchPlan("explicit", deadline="1s", retries=50, on_failure="error")
    [error] = await asyncio.wait_for(
        service.submit_many([ask("late")], plan, client, return_exceptions=True), 20
    )
    assert isinstance(error, BatchItemError) and error.failure == "deadline"
    assert error.attempts < 10


async def test_a_create_the_client_gave_up_on_is_found_when_it_lands_late(
    fast_batches: Any, tmp_path: Path
) -> None:
    """The client times out while the server is still taking the batch in: the service keeps
    looking for it through a grace period before it sends anything again."""
    service = make_service(f"sqlite:///{tmp_path}/late.db")
    prompts = [f"late create {i} " + "words " * 200 for i in range(400)]
    async with anthropic.AsyncAnthropic(
        api_key="sk-late", base_url=fast_batches.base_url, timeout=0.05
    ) as hasty:
        answers = await service.submit_many(
            [ask(p) for p in prompts], EXPLICIT, hasty, return_exceptions=True
        )
        await service.aclose()
    billed = paid_prompts(fast_batches)
    assert all(billed.get((p, "batch"), 0) + billed.get((p, "standard"), 0) <= 1 for p in prompts)
    assert all(isinstance(a, anthropic.types.Message | anthropic.APIError) for a in answers)
