"""Stand-in for the direct agent transport (``PIPESHUB_AGENT_TRANSPORT=direct``).

It takes any model whose class name is ``ChatAnthropic``, reads its settings and talks
through its own ``anthropic.AsyncAnthropic`` client, placing ``cache_control`` itself
(system block 0 and the last tool). Nothing here passes through LangChain.
"""

from __future__ import annotations

from typing import Any

import anthropic


class DirectTransport:
    def __init__(self, chat_model: Any) -> None:
        if type(chat_model).__name__ != "ChatAnthropic":
            raise TypeError("the direct transport needs a ChatAnthropic")
        self.model = chat_model.model
        self.max_tokens = chat_model.max_tokens
        self.client = anthropic.AsyncAnthropic(
            api_key=chat_model.anthropic_api_key.get_secret_value(),
            base_url=chat_model.anthropic_api_url,
            max_retries=chat_model.max_retries,
        )

    async def complete(self, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
        marked_tools = [*tools[:-1], {**tools[-1], "cache_control": {"type": "ephemeral"}}] if tools else []
        return await self.client.messages.create(
            model=self.model,
            max_tokens=self.max_tokens,
            system=[{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
            messages=messages,
            tools=marked_tools,
        )
