"""Stand-in for the agent loop's ``LangChainTransport``: tools bound without ``tool_choice``,
``ainvoke`` with callbacks in the config, ``astream``, and structured output with a raw
answer then a Pydantic fallback; a provider conflict retries on a ``model_copy``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anthropic
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.tools import BaseTool
from pydantic import BaseModel


class LangChainTransport:
    def __init__(self, chat_model: Any, callbacks: Sequence[Any] = ()) -> None:
        self.chat_model = chat_model
        self.callbacks = list(callbacks)

    def _langchain_config(self) -> dict[str, Any]:
        return {"callbacks": self.callbacks}

    def _messages(self, system: str, history: Sequence[BaseMessage]) -> list[BaseMessage]:
        return [SystemMessage(content=system), *history]

    def _conflict_fallback(self) -> Any:
        return self.chat_model.model_copy(update={"temperature": None})

    async def complete(
        self, system: str, history: Sequence[BaseMessage], tools: Sequence[BaseTool]
    ) -> AIMessage:
        messages = self._messages(system, history)
        try:
            bound = self.chat_model.bind_tools(list(tools))
            result: AIMessage = await bound.ainvoke(messages, config=self._langchain_config())
        except anthropic.BadRequestError:
            bound = self._conflict_fallback().bind_tools(list(tools))
            result = await bound.ainvoke(messages, config=self._langchain_config())
        return result

    async def stream(
        self, system: str, history: Sequence[BaseMessage], tools: Sequence[BaseTool]
    ) -> AIMessage:
        bound = self.chat_model.bind_tools(list(tools))
        merged: Any = None
        async for chunk in bound.astream(self._messages(system, history), config=self._langchain_config()):
            merged = chunk if merged is None else merged + chunk
        return (
            AIMessage(content=merged.content, tool_calls=merged.tool_calls)
            if merged is not None
            else AIMessage("")
        )

    async def _invoke_structured(
        self, system: str, history: Sequence[BaseMessage], schema: type[BaseModel]
    ) -> BaseModel:
        messages = self._messages(system, history)
        raw_schema = {"title": schema.__name__, **schema.model_json_schema()}
        out = await self.chat_model.with_structured_output(raw_schema, include_raw=True).ainvoke(
            messages, config=self._langchain_config()
        )
        if out.get("parsed") is not None and out.get("parsing_error") is None:
            return schema.model_validate(out["parsed"])
        parsed: BaseModel = await self.chat_model.with_structured_output(schema).ainvoke(
            messages, config=self._langchain_config()
        )
        return parsed
