"""Stand-in for ``get_table_summary_n_headers``: OpenAI-style dict messages, an 8-token system prompt."""

from __future__ import annotations

from pydantic import BaseModel

from app.config.configuration_service import ConfigurationService
from app.utils.llm import get_llm
from app.utils.streaming import invoke_with_structured_output_and_reflection


class TableSummary(BaseModel):
    summary: str
    headers: list[str]


async def get_table_summary_n_headers(config: ConfigurationService, table_data: str) -> TableSummary | None:
    llm, _ = await get_llm(config)
    messages = [
        {"role": "system", "content": "You summarise tables and name their headers."},
        {"role": "user", "content": f"Summarise this table and list its headers:\n{table_data}"},
    ]
    parsed = await invoke_with_structured_output_and_reflection(llm, messages, TableSummary)
    return parsed  # type: ignore[return-value]
