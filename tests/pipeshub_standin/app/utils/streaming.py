"""Stand-in for PipesHub's generic LLM helpers in ``app/utils/streaming.py``.

Every structured indexing call goes through ``invoke_with_structured_output_and_reflection``
(or its count-validating sibling) and ``_ainvoke_throttled``, which holds one of the
process-wide indexing slots for the whole ``ainvoke`` and retries a 429 three times.
Chat streams through ``aiter_llm_stream``. The engine skips these frames by default.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import anthropic
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import BaseModel, ValidationError

from app.utils.concurrency import MAX_CONCURRENT_INDEXING_LLM_CALLS

#: Process-wide, shared by every event loop of the process (worker loops in threads).
INDEXING_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_INDEXING_LLM_CALLS)
RATE_LIMIT_RETRIES = 3


async def _acquire_slot() -> None:
    while not INDEXING_SLOTS.acquire(blocking=False):
        await asyncio.sleep(0.005)


async def _ainvoke_throttled(llm: Any, messages: list[Any]) -> Any:
    await _acquire_slot()
    try:
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            try:
                return await llm.ainvoke(messages)
            except anthropic.RateLimitError:
                if attempt == RATE_LIMIT_RETRIES:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
    finally:
        INDEXING_SLOTS.release()


def _apply_structured_output(llm: Any, schema: type[BaseModel]) -> Any:
    """Structured output only on ChatAnthropic itself; anything else answers free text."""
    if isinstance(llm, ChatAnthropic):
        return llm.with_structured_output(schema, method="json_schema", stream=True)
    return llm


def _parse(response: Any, schema: type[BaseModel]) -> BaseModel:
    if isinstance(response, schema):
        return response
    if isinstance(response, dict):
        return schema.model_validate(response)
    text = response.content if isinstance(response, AIMessage) else str(response)
    return schema.model_validate(json.loads(text))


def _reflection(response: Any, error: Exception) -> list[Any]:
    said = response.content if isinstance(response, AIMessage) else str(response)
    retry = f"The answer did not parse ({error}). Answer again, valid JSON only."
    return [AIMessage(content=str(said)), HumanMessage(content=retry)]


async def invoke_with_structured_output_and_reflection(
    llm: Any, messages: list[Any], schema: type[BaseModel], max_retries: int = 2
) -> BaseModel | None:
    structured = _apply_structured_output(llm, schema)
    conversation = list(messages)
    for _ in range(max_retries + 1):
        response = await _ainvoke_throttled(structured, conversation)
        try:
            return _parse(response, schema)
        except (ValidationError, ValueError, TypeError) as exc:
            conversation = conversation + _reflection(response, exc)
    return None


async def invoke_with_count_validation_and_reflection(
    llm: Any, messages: list[Any], schema: type[BaseModel], field: str, expected: int, max_retries: int = 2
) -> BaseModel | None:
    """As above, and the answer's ``field`` list must hold ``expected`` items (else reflect)."""
    conversation = list(messages)
    parsed: BaseModel | None = None
    for _ in range(max_retries + 1):
        parsed = await invoke_with_structured_output_and_reflection(llm, conversation, schema, max_retries=0)
        if parsed is not None and len(getattr(parsed, field)) == expected:
            return parsed
        note = f"Return exactly {expected} items in '{field}'."
        said = AIMessage(content=parsed.model_dump_json() if parsed else "")
        conversation = [*conversation, said, HumanMessage(content=note)]
    return parsed


async def aiter_llm_stream(
    llm: Any, messages: list[Any], parts: list[Any] | None = None
) -> AsyncIterator[str]:
    async for chunk in llm.astream(messages, config={"metadata": {}}):
        if chunk.content:
            yield chunk.content if isinstance(chunk.content, str) else json.dumps(chunk.content)


async def handle_simple_mode(llm: Any, messages: list[Any]) -> AsyncIterator[str]:
    async for token in aiter_llm_stream(llm, messages):
        yield token
