"""Stand-in for the LLM health checks: a tiny ``ainvoke``, and a sync ``invoke`` of an image
message inside ``asyncio.to_thread`` on a model the factory built in a thread too."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.messages import HumanMessage

from app.utils.aimodels import get_generator_model
from app.utils.llm import get_llm
from app.utils.prompt_text import image_url


async def llm_health_check(config_service: Any, llm_configs: list[dict[str, Any]]) -> str:
    llm, _ = await get_llm(config_service, llm_configs)
    response = await llm.ainvoke("Test message to verify LLM health.")
    return str(response.content)


async def perform_llm_health_check(config: dict[str, Any]) -> str:
    llm_model = await asyncio.to_thread(get_generator_model, config["provider"], config)
    test_message = HumanMessage(content=[{"type": "text", "text": "What is in this image?"}, image_url()])
    response = await asyncio.to_thread(llm_model.invoke, [test_message])
    return str(response.content)
