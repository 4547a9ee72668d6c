"""Stand-in for ``CSVParser``'s LLM calls: header detection/generation (structured + reflection)
from a ChatPromptTemplate (system + user), and a table summary through a tenacity retry."""

from __future__ import annotations

from typing import Any

from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel
from tenacity import retry, stop_after_attempt, wait_fixed

from app.utils.streaming import invoke_with_structured_output_and_reflection

HEADER_PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "You decide whether the first rows of a CSV file are headers."),
        ("user", "First rows:\n{rows}\nAre the first rows headers? If so, which ones?"),
    ]
)
GENERATE_PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "You name the columns of a CSV file that has no header row."),
        ("user", "Rows:\n{rows}\nName each column."),
    ]
)


class HeaderDetection(BaseModel):
    has_headers: bool
    headers: list[str]


class GeneratedHeaders(BaseModel):
    headers: list[str]


class CSVParser:
    async def detect_headers_with_llm(self, llm: Any, rows: list[list[str]]) -> HeaderDetection | None:
        messages = HEADER_PROMPT.format_messages(rows="\n".join(",".join(r) for r in rows))
        parsed = await invoke_with_structured_output_and_reflection(llm, messages, HeaderDetection)
        return parsed  # type: ignore[return-value]

    async def generate_headers_with_llm(self, llm: Any, rows: list[list[str]]) -> GeneratedHeaders | None:
        messages = GENERATE_PROMPT.format_messages(rows="\n".join(",".join(r) for r in rows))
        parsed = await invoke_with_structured_output_and_reflection(llm, messages, GeneratedHeaders)
        return parsed  # type: ignore[return-value]

    @retry(stop=stop_after_attempt(3), wait=wait_fixed(0.01), reraise=True)
    async def _call_llm(self, llm: Any, messages: list[Any]) -> str:
        response = await llm.ainvoke(messages)
        return str(response.content)
