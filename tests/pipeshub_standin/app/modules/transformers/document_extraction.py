"""Stand-in for ``DocumentExtraction``: metadata, classification and a fallback summary.

One user message: ~720 tokens of instructions, the document text, up to 50 images as
``image_url`` data URIs; no system message. Models come from ``get_llm_for_role``
(role "indexing", effort "low").
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage
from pydantic import BaseModel

from app.config.configuration_service import ConfigurationService
from app.utils.llm import get_llm_for_role
from app.utils.prompt_text import image_url, instructions
from app.utils.streaming import invoke_with_structured_output_and_reflection

EXTRACTION_PROMPT = instructions("a document analyst extracting departments, categories and a summary", 720)
CLASSIFY_PROMPT = instructions("a document classifier choosing the record's category", 600)
SUMMARY_PROMPT = instructions("a summariser writing two sentences about a document", 340)
MAX_IMAGES = 50


class DocumentMetadata(BaseModel):
    departments: list[str]
    categories: list[str]
    sentiment: str
    summary: str


class DocumentClass(BaseModel):
    category: str
    confidence: float


class DocumentExtraction:
    def __init__(self, config_service: ConfigurationService) -> None:
        self.config_service = config_service

    async def _llm(self) -> Any:
        llm, _ = await get_llm_for_role(self.config_service, "indexing", reasoning_effort="low")
        return llm

    @staticmethod
    def _message(prompt: str, text: str, images: int) -> list[Any]:
        content: list[Any] = [{"type": "text", "text": f"{prompt}\n\nDocument:\n{text}"}]
        content += [image_url(shade=i % 256) for i in range(min(images, MAX_IMAGES))]
        return [HumanMessage(content=content)]

    async def extract_metadata(self, text: str, images: int = 0) -> DocumentMetadata | None:
        llm = await self._llm()
        parsed = await invoke_with_structured_output_and_reflection(
            llm, self._message(EXTRACTION_PROMPT, text, images), DocumentMetadata
        )
        return parsed  # type: ignore[return-value]

    async def classify(self, text: str) -> DocumentClass | None:
        llm = await self._llm()
        parsed = await invoke_with_structured_output_and_reflection(
            llm, self._message(CLASSIFY_PROMPT, text, 0), DocumentClass
        )
        return parsed  # type: ignore[return-value]

    async def _fallback_summary(self, text: str) -> str:
        llm = await self._llm()
        response = await llm.ainvoke(self._message(SUMMARY_PROMPT, text, 0))
        return str(response.content)
