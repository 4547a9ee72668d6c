"""Stand-in for ``ExcelParser``: header detection/generation alike CSVParser's, and ``_call_llm``."""

from __future__ import annotations

from typing import Any

from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel

from app.utils.streaming import invoke_with_structured_output_and_reflection

SHEET_PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "You find the header row of a spreadsheet table."),
        ("user", "Sheet {sheet}, first rows:\n{rows}"),
    ]
)


class SheetHeaders(BaseModel):
    header_row: int
    headers: list[str]


class ExcelParser:
    def __init__(self, llm: Any) -> None:
        self.llm = llm

    async def detect_excel_headers_with_llm(self, sheet: str, rows: list[list[str]]) -> SheetHeaders | None:
        messages = SHEET_PROMPT.format_messages(sheet=sheet, rows="\n".join(" | ".join(r) for r in rows))
        parsed = await invoke_with_structured_output_and_reflection(self.llm, messages, SheetHeaders)
        return parsed  # type: ignore[return-value]

    async def _call_llm(self, messages: list[Any]) -> Any:
        return await self.llm.ainvoke(messages)
