"""PipesHub's call patterns (PIPESHUB.md's table), each as one async function.

Each pattern takes a model and a RunnableConfig and calls it the way PipesHub's
call site does, returning a comparable answer. The call site id rides in
``config["metadata"]["call_site"]``, as the integration guide tells PipesHub to set it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import LLMResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from pydantic import BaseModel

from tests.adapter.pipeshub_host import standin_on_path

standin_on_path()

from app.utils.prompt_text import png_base64 as png  # noqa: E402

#: A stable system prompt long enough to cache on every model family (>= 4096 tokens).
SYSTEM = "You read enterprise documents and answer in the requested format. Be precise and brief. " * 200


class DocumentMetadata(BaseModel):
    departments: list[str]
    categories: list[str]
    sentiment: str
    summary: str


class TableSummary(BaseModel):
    summary: str
    headers: list[str]


class Answer(BaseModel):
    answer: str
    confidence: float


@tool
def search_knowledge_base(query: str) -> str:
    """Search the organisation's knowledge base for passages matching the query."""
    return f"results for {query}"


class UsageCollector(BaseCallbackHandler):
    """Collects ``usage_metadata`` of every model response through LangChain callbacks."""

    def __init__(self) -> None:
        self.usages: list[dict[str, Any]] = []

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                if isinstance(message, AIMessage) and message.usage_metadata:
                    self.usages.append(dict(message.usage_metadata))


def _doc(text: str) -> list[BaseMessage]:
    return [SystemMessage(SYSTEM), HumanMessage(text)]


async def extract_metadata(llm: Any, config: Any) -> Any:
    streaming = llm.model_copy(update={"streaming": True})
    chain = streaming.with_structured_output(DocumentMetadata, method="json_schema")
    return (await chain.ainvoke(_doc("Document: Q3 finance report, revenue up."), config=config)).model_dump()


async def classify(llm: Any, config: Any) -> Any:
    streaming = llm.model_copy(update={"streaming": True})
    chain = streaming.with_structured_output(DocumentMetadata, method="json_schema")
    return (await chain.ainvoke(_doc("Classify: onboarding handbook."), config=config)).model_dump()


async def fallback_summary(llm: Any, config: Any) -> Any:
    return (await llm.ainvoke(_doc("Summarise: the roadmap for 2027."), config=config)).content


async def table_summary(llm: Any, config: Any) -> Any:
    chain = llm.with_structured_output(TableSummary, method="json_schema")
    return (await chain.ainvoke(_doc("Table: | region | sales |"), config=config)).model_dump()


async def table_rows(llm: Any, config: Any) -> Any:
    chain = llm.with_structured_output(TableSummary, method="function_calling")
    return (await chain.ainvoke(_doc("Rows: | north | 12 |"), config=config)).model_dump()


async def csv_headers(llm: Any, config: Any) -> Any:
    chain = llm.with_structured_output(TableSummary, method="json_schema")
    return (await chain.ainvoke(_doc("CSV: a,b,c"), config=config)).model_dump()


async def excel_headers(llm: Any, config: Any) -> Any:
    return (await llm.ainvoke(_doc("Sheet: first rows without headers"), config=config)).content


def _image_message(text: str) -> list[BaseMessage]:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png()}}
    return [SystemMessage(SYSTEM), HumanMessage(content=[image, {"type": "text", "text": text}])]


async def vlm_ocr_page(llm: Any, config: Any) -> Any:
    return (await llm.ainvoke(_image_message("Convert this page to markdown."), config=config)).content


async def image_description(llm: Any, config: Any) -> Any:
    return (await llm.ainvoke(_image_message("Describe this image."), config=config)).content


async def rewrite_expand(llm: Any, config: Any) -> Any:
    rewrite = ChatPromptTemplate.from_messages([("system", SYSTEM), ("human", "Rewrite: {q}")])
    expand = ChatPromptTemplate.from_messages([("system", SYSTEM), ("human", "Expand: {q}")])
    chains = [prompt | llm | StrOutputParser() for prompt in (rewrite, expand)]
    return list(await asyncio.gather(*(c.ainvoke({"q": "vacation policy"}, config=config) for c in chains)))


async def agent_complete(llm: Any, config: Any) -> Any:
    bound = llm.bind_tools([search_knowledge_base], tool_choice="auto")
    message = await bound.ainvoke(_doc("Find the travel policy."), config=config)
    return message.content, [(c["name"], c["args"]) for c in message.tool_calls]


async def agent_stream(llm: Any, config: Any) -> Any:
    bound = llm.bind_tools([search_knowledge_base])
    merged = None
    async for chunk in bound.astream(_doc("Find the expense policy."), config=config):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    return merged.content, [(c["name"], c["args"]) for c in merged.tool_calls]


async def agent_structured(llm: Any, config: Any) -> Any:
    chain = llm.with_structured_output(Answer, include_raw=True)
    out = await chain.ainvoke(_doc("How many vacation days?"), config=config)
    return out["parsed"].model_dump(), out["parsing_error"]


async def simple_mode(llm: Any, config: Any) -> Any:
    return "".join([str(c.content) async for c in llm.astream(_doc("Hello there"), config=config)])


async def health_check(llm: Any, config: Any) -> Any:
    return (await llm.ainvoke("ping", config=config)).content


@dataclass(frozen=True)
class Pattern:
    call_site: str
    run: Callable[[Any, Any], Awaitable[Any]]
    cacheable: bool = True

    def __str__(self) -> str:
        return self.call_site


PATTERNS = [
    Pattern("indexing.doc_extraction.extract_metadata", extract_metadata),
    Pattern("indexing.doc_extraction.classify", classify),
    Pattern("indexing.doc_extraction.fallback_summary", fallback_summary),
    Pattern("indexing.table_summary", table_summary),
    Pattern("indexing.table_rows", table_rows),
    Pattern("indexing.csv.headers", csv_headers),
    Pattern("indexing.excel.headers", excel_headers),
    Pattern("indexing.vlm_ocr.page", vlm_ocr_page),
    Pattern("indexing.image_description", image_description),
    Pattern("retrieval.search.rewrite_expand", rewrite_expand),
    Pattern("chat.agent.complete", agent_complete),
    Pattern("chat.agent.stream", agent_stream),
    Pattern("chat.agent.structured", agent_structured),
    Pattern("chat.simple_mode", simple_mode),
    Pattern("health.llm_check", health_check, cacheable=False),
]
