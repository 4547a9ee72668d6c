"""Stand-in for ``VectorStore.describe_image_async``: ~340 tokens of instructions + the image,
a model from ``get_llm`` (not the indexing role), images under a semaphore of 10."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.messages import HumanMessage

from app.utils.prompt_text import instructions

DESCRIBE_PROMPT = instructions("an assistant describing an image for search indexing", 340)


class VectorStore:
    def __init__(self) -> None:
        self._semaphore = asyncio.Semaphore(10)

    async def describe_image_async(self, base64_string: str, vlm: Any) -> str:
        async with self._semaphore:
            message = HumanMessage(
                content=[
                    {"type": "text", "text": DESCRIBE_PROMPT},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{base64_string}"}},
                ]
            )
            response = await vlm.ainvoke([message])
            return str(response.content)
