"""Stand-in for the chat bridge's simple mode: system + user, streamed through the helpers."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from app.utils.prompt_text import instructions
from app.utils.streaming import handle_simple_mode

CHAT_SYSTEM = instructions("PipesHub's assistant answering from the organisation's knowledge", 1200)


async def _run_no_tools_degradation(llm: Any, question: str) -> str:
    messages = [SystemMessage(content=CHAT_SYSTEM), HumanMessage(content=question)]
    return "".join([token async for token in handle_simple_mode(llm, messages)])
