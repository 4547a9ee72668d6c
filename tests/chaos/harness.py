"""What every chaos scenario checks, on the emulator's billing.

The invariant: every call is answered within its deadline, with a value or with the
exception a direct call gives (an Anthropic SDK error), and every request is billed at
most once. A call the engine declines before handing it over (``NotHandedOver``) is sent
direct here, as the adapter does.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anthropic

from engine.decision import BatchPlan
from engine.providers.anthropic.batches import BatchService, NotHandedOver

MODEL = "claude-sonnet-4-6"


@dataclass
class Figures:
    calls: int
    answered: int
    billed_twice: int
    hung: int


#: scenario -> figures of each try (printed by the suite's conftest)
FIGURES: dict[str, list[Figures]] = {}


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": text}], **extra}


def prompt_of(params: dict[str, Any]) -> str:
    """The request's prompt (a request without messages names itself in ``metadata.user_id``)."""
    if not params.get("messages"):
        return str(params["metadata"]["user_id"])
    content = params["messages"][0]["content"]
    return content if isinstance(content, str) else str(content[0]["text"])


async def pooled_call(
    service: BatchService, client: anthropic.AsyncAnthropic, params: dict[str, Any], plan: BatchPlan
) -> Any:
    try:
        return await service.submit_one(params, plan, client)
    except NotHandedOver:
        return await client.messages.create(**params)


async def explicit_call(
    service: BatchService, client: anthropic.AsyncAnthropic, params: list[dict[str, Any]], plan: BatchPlan
) -> list[Any]:
    try:
        return await service.submit_many(params, plan, client, return_exceptions=True)
    except NotHandedOver:
        return await asyncio.gather(*(client.messages.create(**p) for p in params), return_exceptions=True)


async def bounded(coro: Any, deadline_s: float) -> Any:
    """The call's outcome, or ``TimeoutError`` (hung) past ``deadline_s``."""
    try:
        return await asyncio.wait_for(coro, deadline_s)
    except TimeoutError as exc:
        return exc
    except Exception as exc:
        return exc


def paid(emulator: Any) -> Counter[str]:
    """How many times each prompt was billed (any tier), from the emulator's request log."""
    counts: Counter[str] = Counter()
    for entry in emulator.state.recent_requests(10**9):
        if entry["status"] == 200 and entry["usage"] is not None:
            counts[prompt_of(entry["body"])] += 1
    return counts


def check(
    scenario: str,
    emulator: Any,
    asked: Sequence[dict[str, Any]],
    outcomes: Sequence[Any],
    *,
    expected_errors: dict[str, type[BaseException]] | None = None,
) -> Figures:
    """Assert the invariant for one try; record its figures."""
    assert len(asked) == len(outcomes)
    expected_errors = expected_errors or {}
    bills = paid(emulator)
    hung = [prompt_of(p) for p, o in zip(asked, outcomes, strict=True) if isinstance(o, TimeoutError)]
    twice = sorted(p for p, n in bills.items() if n > 1)
    answered = 0
    wrong: list[str] = []
    for params, outcome in zip(asked, outcomes, strict=True):
        prompt = prompt_of(params)
        if isinstance(outcome, anthropic.types.Message):
            block = outcome.content[0]
            if block.type == "text" and block.text.startswith(f"echo: {prompt} "):
                answered += 1
            else:
                wrong.append(f"{prompt}: someone else's answer {block!r}")
        elif prompt in expected_errors and isinstance(outcome, expected_errors[prompt]):
            answered += 1
        elif isinstance(outcome, anthropic.APIError) and prompt not in expected_errors:
            answered += 1  # what a direct call raises under the same storm
        elif not isinstance(outcome, TimeoutError):
            wrong.append(f"{prompt}: {outcome!r}")
    figures = Figures(len(asked), answered, len(twice), len(hung))
    FIGURES.setdefault(scenario, []).append(figures)
    assert not hung, f"{len(hung)} call(s) hung: {hung[:5]}"
    assert not twice, f"billed twice: {twice[:5]}"
    assert not wrong, wrong[:5]
    assert answered == len(asked)
    return figures
