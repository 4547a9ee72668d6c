"""Stand-in for ``VLMOCRStrategy``: the factory called directly and synchronously, one page
image per call (~700 tokens of instructions + the image), pages gathered under a semaphore of 10."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.messages import HumanMessage

from app.utils.aimodels import get_generator_model
from app.utils.prompt_text import instructions

OCR_PROMPT = instructions("an OCR engine converting a scanned page to markdown", 700)
PAGE_CONCURRENCY = 10


class VLMOCRStrategy:
    def __init__(self, provider: str, config: dict[str, Any]) -> None:
        self.llm = get_generator_model(provider, config)
        self._semaphore = asyncio.Semaphore(PAGE_CONCURRENCY)

    async def _call_llm_for_markdown(self, image_base64: str, page_number: int) -> str:
        message = HumanMessage(
            content=[
                {"type": "text", "text": f"{OCR_PROMPT}\nPage {page_number}:"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image_base64}"}},
            ]
        )
        response = await self.llm.ainvoke([message])
        return str(response.content)

    async def process_pages(self, pages: list[str]) -> list[str]:
        async def one(number: int, image: str) -> str:
            async with self._semaphore:
                return await self._call_llm_for_markdown(image, number)

        return list(await asyncio.gather(*(one(n, p) for n, p in enumerate(pages, 1))))
