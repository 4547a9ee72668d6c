"""Stand-in for the search route: query rewrite and expansion under ``asyncio.gather``."""

from __future__ import annotations

import asyncio
from typing import Any

from app.config.configuration_service import ConfigurationService
from app.utils.llm import get_llm
from app.utils.query_transform import setup_query_transformation


async def search(config_service: ConfigurationService, query: str) -> dict[str, Any]:
    llm, _ = await get_llm(config_service)
    rewrite_chain, expansion_chain = setup_query_transformation(llm)
    rewritten, expanded = await asyncio.gather(rewrite_chain.ainvoke(query), expansion_chain.ainvoke(query))
    return {"rewritten": rewritten, "expanded": expanded}
