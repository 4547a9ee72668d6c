"""Stand-in for ``setup_query_transformation``: two short single-user-message chains."""

from __future__ import annotations

from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

REWRITE = ChatPromptTemplate.from_messages([("user", "Rewrite this search query to be precise: {query}")])
EXPAND = ChatPromptTemplate.from_messages([("user", "Give three alternative phrasings of: {query}")])


def setup_query_transformation(llm: Any) -> tuple[Any, Any]:
    return REWRITE | llm | StrOutputParser(), EXPAND | llm | StrOutputParser()
