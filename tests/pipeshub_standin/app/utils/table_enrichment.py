"""Stand-in for ``app/utils/table_enrichment.py``: a short system prompt + the rows as user text.

Tables run under ``gather_with_concurrency(15)``; a count-validated call per table, then its
rows in batches of 50 under ``gather_with_concurrency(8)`` through ``get_rows_text``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel

from app.utils.concurrency import gather_with_concurrency
from app.utils.prompt_text import instructions
from app.utils.streaming import (
    invoke_with_count_validation_and_reflection,
    invoke_with_structured_output_and_reflection,
)

ROW_SYSTEM = instructions("a table analyst describing each row in one sentence", 145)
ROW_BATCH = 50


class ColumnDescriptions(BaseModel):
    descriptions: list[str]


class RowsText(BaseModel):
    rows: list[str]


def _messages(rows: Sequence[Sequence[str]], headers: Sequence[str], summary: str) -> list[Any]:
    table = "\n".join(" | ".join(row) for row in rows)
    user = f"Table summary: {summary}\nHeaders: {', '.join(headers)}\nRows:\n{table}"
    return [SystemMessage(content=ROW_SYSTEM), HumanMessage(content=user)]


async def get_rows_text(
    llm: Any, rows: Sequence[Sequence[str]], summary: str, headers: Sequence[str]
) -> list[str]:
    parsed = await invoke_with_structured_output_and_reflection(
        llm, _messages(rows, headers, summary), RowsText
    )
    return list(parsed.rows) if isinstance(parsed, RowsText) else []


async def _describe_batch(
    rows: Sequence[Sequence[str]], headers: Sequence[str], summary: str, llm: Any
) -> list[str]:
    return await get_rows_text(llm, rows, summary, headers)


async def enrich_table_grid(llm: Any, grid: Sequence[Sequence[str]], summary: str) -> list[str]:
    """One description per column (count-validated), then the rows in batches of 50."""
    headers, rows = grid[0], grid[1:]
    columns = await invoke_with_count_validation_and_reflection(
        llm, _messages(rows[:5], headers, summary), ColumnDescriptions, "descriptions", len(headers)
    )
    batches = [rows[i : i + ROW_BATCH] for i in range(0, len(rows), ROW_BATCH)]
    results = await gather_with_concurrency(8, *(_describe_batch(b, headers, summary, llm) for b in batches))
    described = list(columns.descriptions) if isinstance(columns, ColumnDescriptions) else []
    return described + [line for batch in results for line in batch]


async def enrich_tables(llm: Any, grids: Sequence[Sequence[Sequence[str]]], summary: str) -> list[list[str]]:
    return await gather_with_concurrency(15, *(enrich_table_grid(llm, g, summary) for g in grids))
