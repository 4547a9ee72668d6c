"""Durable batches end to end on the emulator, through the official SDK."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import pytest

from engine.decision import BatchPlan
from engine.providers.anthropic.batches import BatchItemError, BatchService, open_journal

from .conftest import billing, paid_prompts, received_bodies

MODEL = "claude-sonnet-4-6"
POOLED = BatchPlan("accumulate", max_requests=100, max_wait="1s", retries=2)


def ask(text: str) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": text}]}


def answer_of(message: anthropic.types.Message) -> str:
    block = message.content[0]
    assert block.type == "text"
    return block.text


async def test_1000_pooled_calls_become_at_most_10_batches(
    fast_batches: Any, client: anthropic.AsyncAnthropic, service: BatchService
) -> None:
    prompts = [f"question {i}" for i in range(1000)]
    answers = await asyncio.gather(*(service.submit_one(ask(p), POOLED, client) for p in prompts))
    assert service.batches_created <= 10
    for prompt, message in zip(prompts, answers, strict=True):
        assert answer_of(message).startswith(f"echo: {prompt} "), "each caller gets its own answer"
        assert message.usage.service_tier == "batch"
    bill = billing(fast_batches)
    assert (bill["requests_batch"], bill["requests_standard"]) == (1000, 0)


async def test_identical_requests_join_and_are_answered_from_the_journal(
    fast_batches: Any, client: anthropic.AsyncAnthropic, service: BatchService
) -> None:
    first, second = await asyncio.gather(
        service.submit_one(ask("same"), POOLED, client), service.submit_one(ask("same"), POOLED, client)
    )
    assert first == second
    again = await service.submit_one(ask("same"), POOLED, client)
    assert again == first
    assert billing(fast_batches)["requests_batch"] == 1


async def test_a_caller_that_gives_up_does_not_cancel_its_request(
    fast_batches: Any, client: anthropic.AsyncAnthropic, tmp_path: Any
) -> None:
    url = f"sqlite:///{tmp_path}/gave-up.db"
    service = BatchService(open_journal(url), poll_interval=0.05)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(service.submit_one(ask("impatient"), POOLED, client), timeout=0.05)
    await service.aclose()
    later = BatchService(open_journal(url), poll_interval=0.05)
    message = await later.submit_one(ask("impatient"), POOLED, client)
    assert answer_of(message).startswith("echo: impatient ")
    assert billing(fast_batches)["requests_batch"] == 1, "answered from the journal, not paid again"
    await later.aclose()


async def test_other_tenants_are_never_answered_from_the_journal(
    fast_batches: Any, client: anthropic.AsyncAnthropic, service: BatchService
) -> None:
    await service.submit_one(ask("shared"), POOLED, client)
    async with anthropic.AsyncAnthropic(api_key="sk-test-tenant-b", base_url=fast_batches.base_url) as other:
        await service.submit_one(ask("shared"), POOLED, other)
    by_key = billing(fast_batches)["by_key"]
    assert by_key["sk-test-tenant-a"]["requests_batch"] == 1
    assert by_key["sk-test-tenant-b"]["requests_batch"] == 1


async def test_submit_many_keeps_input_order(
    fast_batches: Any, client: anthropic.AsyncAnthropic, service: BatchService
) -> None:
    prompts = ["c", "a", "b", "a"]
    out = await service.submit_many([ask(p) for p in prompts], BatchPlan("explicit"), client)
    assert [answer_of(m).split()[1] for m in out] == prompts  # type: ignore[union-attr]
    assert billing(fast_batches)["requests_batch"] == 4, "identical prompts in one batch are distinct items"


async def test_failed_items_are_retried_then_sent_direct(
    fast_batches: Any, client: anthropic.AsyncAnthropic, service: BatchService
) -> None:
    fast_batches.state.config.update({"batch_error_rate": 1.0})
    plan = BatchPlan("explicit", retries=1, on_failure="direct")
    out = await service.submit_many([ask("x"), ask("y")], plan, client)
    assert [answer_of(m).split()[1] for m in out] == ["x", "y"]  # type: ignore[union-attr]
    assert all(m.usage.service_tier == "standard" for m in out)  # type: ignore[union-attr]
    assert service.batches_created == 2, "the first batch and one retry"
    bill = billing(fast_batches)
    assert (bill["requests_batch"], bill["requests_standard"]) == (0, 2), "errored items are not billed"


async def test_items_sent_direct_keep_every_parameter_the_sdk_method_does_not_name(
    fast_batches: Any, client: anthropic.AsyncAnthropic, service: BatchService
) -> None:
    """Newer SDKs drop sampling parameters from ``messages.create``'s signature; the body still
    takes them. A failed item with ``temperature`` goes direct with it, and its caller is answered."""
    fast_batches.state.config.update({"batch_error_rate": 1.0})
    plan = BatchPlan("explicit", retries=0, on_failure="direct")
    params = {**ask("warm"), "temperature": 0.2, "top_k": 5}
    [message] = await service.submit_many([params], plan, client)
    assert answer_of(message).split()[1] == "warm"  # type: ignore[arg-type]
    assert message.usage.service_tier == "standard"  # type: ignore[union-attr]
    body = received_bodies(fast_batches)[-1]
    assert (body["temperature"], body["top_k"]) == (0.2, 5)


async def test_failed_items_raise_a_clear_error_with_on_failure_error(
    fast_batches: Any, client: anthropic.AsyncAnthropic, service: BatchService
) -> None:
    fast_batches.state.config.update({"batch_expire_rate": 1.0})
    plan = BatchPlan("accumulate", max_wait="1s", retries=2, on_failure="error")
    with pytest.raises(BatchItemError) as caught:
        await service.submit_one(ask("doomed"), plan, client, call_site="indexing.table_rows")
    err = caught.value
    assert (err.failure, err.attempts, err.call_site) == ("expired", 3, "indexing.table_rows")
    expected = f"batch request {err.custom_id} at call site 'indexing.table_rows' expired after 3 attempt(s)"
    assert str(err) == expected
    assert billing(fast_batches)["requests_batch"] == 0


async def test_a_refused_submission_falls_back_per_item(fast_batches: Any, service: BatchService) -> None:
    async with anthropic.AsyncAnthropic(api_key="k", base_url=f"{fast_batches.base_url}/nowhere") as wrong:
        out = await service.submit_many(
            [ask("a"), ask("b")], BatchPlan("explicit", on_failure="error"), wrong, return_exceptions=True
        )
        direct = await service.submit_many(
            [ask("c")], BatchPlan("explicit", on_failure="direct"), wrong, return_exceptions=True
        )
    assert all(isinstance(e, BatchItemError) for e in out)
    first = out[0]
    assert isinstance(first, BatchItemError)
    assert (first.failure, first.attempts) == ("submission", 1), "a 4xx is not retried: it would fail again"
    assert "batch refused with 404" in str(first)
    [fallback] = direct
    assert isinstance(fallback, anthropic.NotFoundError), "the direct call's own exception"


@pytest.mark.parametrize(("on_failure", "retries"), [("direct", 3), ("error", 1)])
async def test_faults_lose_nothing_and_pay_nothing_twice(
    fast_batches: Any, client: anthropic.AsyncAnthropic, tmp_path: Any, on_failure: str, retries: int
) -> None:
    fast_batches.state.config.update({"fault_rate": 0.2, "batch_error_rate": 0.1, "batch_expire_rate": 0.05})
    service = BatchService(
        open_journal(f"sqlite:///{tmp_path}/f.db"), poll_interval=0.05, max_poll_interval=0.2
    )
    prompts = [f"f{i}" for i in range(200)]
    plan = BatchPlan("accumulate", max_requests=50, max_wait="1s", retries=retries, on_failure=on_failure)  # type: ignore[arg-type]
    out = await asyncio.gather(
        *(service.submit_one(ask(p), plan, client) for p in prompts), return_exceptions=True
    )
    await service.aclose()
    paid = paid_prompts(fast_batches)
    for prompt, result in zip(prompts, out, strict=True):
        batch, direct = paid.get((prompt, "batch"), 0), paid.get((prompt, "standard"), 0)
        assert batch <= 1, f"{prompt} paid twice at batch tier"
        assert batch == 0 or direct == 0, f"{prompt} paid in a batch and again direct"
        if isinstance(result, BatchItemError):
            assert on_failure == "error", f"{prompt}: {result}"
            assert result.failure in ("errored", "expired") and result.attempts == retries + 1
            assert (batch, direct) == (0, 0), "a failed item was not billed"
            continue
        assert isinstance(result, anthropic.types.Message), f"{prompt}: {result!r}"
        assert answer_of(result).startswith(f"echo: {prompt} ")
        assert batch + direct >= 1


async def test_a_batch_past_its_deadline_is_canceled_and_its_items_fall_back(
    fast_batches: Any, client: anthropic.AsyncAnthropic, service: BatchService
) -> None:
    fast_batches.state.config.update({"batch_latency_s": 30.0})
    plan = BatchPlan("explicit", deadline="1s", retries=0, on_failure="direct")
    [message] = await service.submit_many([ask("slow")], plan, client)
    assert isinstance(message, anthropic.types.Message)
    assert message.usage.service_tier == "standard", "canceled in the batch, answered direct"
    assert billing(fast_batches)["requests_batch"] == 0


def test_a_service_outlives_its_event_loop(fast_batches: Any, tmp_path: Any) -> None:
    """A request left in a pool when its loop ended is sent, and answered, from the next loop."""
    service = BatchService(open_journal(f"sqlite:///{tmp_path}/loops.db"), poll_interval=0.05)
    plan = BatchPlan("accumulate", max_wait="60s")

    async def give_up() -> None:
        async with anthropic.AsyncAnthropic(api_key="sk-loop", base_url=fast_batches.base_url) as sdk:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(service.submit_one(ask("stranded"), plan, sdk), timeout=0.05)

    async def ask_again() -> anthropic.types.Message:
        async with anthropic.AsyncAnthropic(api_key="sk-loop", base_url=fast_batches.base_url) as sdk:
            message = await service.submit_one(ask("stranded"), plan, sdk)
            await service.aclose()
            return message

    asyncio.run(give_up())
    assert answer_of(asyncio.run(ask_again())).startswith("echo: stranded ")
    assert billing(fast_batches)["requests_batch"] == 1


async def test_a_batch_that_cannot_be_read_is_never_sent_again(
    fast_batches: Any, client: anthropic.AsyncAnthropic, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.providers.anthropic.batches import BatchClient
    from tests.compat import sdk_httpx

    async def refused(self: BatchClient, batch_id: str, *, deadline_s: float | None = None) -> Any:
        request = sdk_httpx.Request("GET", f"{fast_batches.base_url}/v1/messages/batches/{batch_id}")
        raise anthropic.PermissionDeniedError(
            "key revoked", response=sdk_httpx.Response(403, request=request), body=None
        )

    url = f"sqlite:///{tmp_path}/unread.db"
    first = BatchService(open_journal(url), poll_interval=0.05)
    with monkeypatch.context() as patch:
        patch.setattr(BatchClient, "wait", refused)
        [error] = await first.submit_many(
            [ask("kept")], BatchPlan("explicit"), client, return_exceptions=True
        )
        await first.aclose()
    assert isinstance(error, BatchItemError) and error.failure == "uncollected"
    assert "the journal keeps it for resume" in str(error)
    later = BatchService(open_journal(url), poll_interval=0.05)
    [message] = await later.submit_many([ask("kept")], BatchPlan("explicit"), client)
    await later.aclose()
    assert answer_of(message).startswith("echo: kept ")  # type: ignore[arg-type]
    assert billing(fast_batches)["requests_batch"] == 1, "collected from the first batch, not sent again"


async def test_a_batch_that_disappeared_is_sent_again(
    fast_batches: Any, client: anthropic.AsyncAnthropic, service: BatchService
) -> None:
    fast_batches.state.config.update({"batch_latency_s": 0.5})
    pending = asyncio.ensure_future(service.submit_many([ask("lost")], BatchPlan("explicit"), client))
    while service.batches_created == 0:
        await asyncio.sleep(0.01)
    fast_batches.state.reset()  # the emulator forgets every batch: the next poll answers 404
    fast_batches.state.config.update({"batch_latency_s": 0.1})
    [message] = await pending
    assert answer_of(message).startswith("echo: lost ")  # type: ignore[arg-type]
    assert service.batches_created == 2
