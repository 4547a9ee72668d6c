"""Workloads with PipesHub's real prompt shapes (PIPESHUB.md, "The real call sites").

- ``pipeshub-indexing``: what the indexing service sends per document, through the
  call sites' own code locations: metadata extraction and classification (ONE user
  message: ~720 / ~500 tokens of instructions, the document text, and for some
  documents image data URIs; no system message; structured output), table
  enrichment (~145-token system + rows), table summary (8-token system + table), page
  OCR (~700-token instructions + a page image) and image description (~340-token
  instructions + an image). A structured answer that fails to parse is retried up to
  twice with an AIMessage and a HumanMessage appended (reflection). Every call is an
  ``ainvoke`` that can wait. Most prompts are one-offs, many below the 1,024-token
  minimum.
- ``pipeshub-agent``: the agent loop (``LangChainTransport.complete`` / ``.stream``): a
  system string, tools, a growing history with tool results, pauses of seconds to
  minutes.
- ``retrieval-long``: one-off prompts above the cache minimum (a query with retrieved
  context), never repeated: caching them can only cost more.
"""

from __future__ import annotations

import base64
import random
import struct
import zlib
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from engine.bench.workloads import (
    EXTRACTION_SCHEMA,
    Workload,
    WorkloadCall,
    _around,
    _conversation,
    _text,
    _tools,
)

__all__ = ["pipeshub_agent", "pipeshub_indexing", "retrieval_long"]

EXTRACT = "app.modules.transformers.document_extraction.DocumentExtraction.extract_metadata"
CLASSIFY = "app.modules.transformers.document_extraction.DocumentExtraction.classify"
TABLES = "app.utils.table_enrichment.enrich_table"
SUMMARY = "app.utils.indexing_helpers.get_table_summary_n_headers"
OCR = "app.modules.parsers.pdf.vlm_ocr_strategy.VLMOCRStrategy._call_llm_for_markdown"
DESCRIBE = "app.modules.transformers.vectorstore.VectorStore.describe_image_async"
AGENT = (
    "app.agents.agent_loop.langchain_transport.LangChainTransport.complete",
    "app.agents.agent_loop.langchain_transport.LangChainTransport.stream",
)

CLASSIFY_SCHEMA: dict[str, Any] = {
    "title": "Classification",
    "type": "object",
    "properties": {"category": {"type": "string"}, "confidence": {"type": "number"}},
    "required": ["category", "confidence"],
    "additionalProperties": False,
}


def _png(rng: random.Random, width: int, height: int) -> str:
    """A real PNG of ``width`` x ``height`` (one random row makes each image unique), as a data URI."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes([0]) + bytes(rng.randrange(256) for _ in range(width))
    raw = row + (bytes(width + 1) * (height - 1))
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _image(rng: random.Random, width: int, height: int) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": _png(rng, width, height)}}


def _reflections(rng: random.Random, first: list[BaseMessage]) -> list[tuple[BaseMessage, ...]]:
    """The retries a parse failure causes: ~12% of answers fail once, a third of those twice."""
    out: list[tuple[BaseMessage, ...]] = []
    history = list(first)
    for attempt in range(2):
        if rng.random() >= (0.12 if attempt == 0 else 0.33):
            break
        history += [
            AIMessage('{"departments": ["finance", '),
            HumanMessage("The previous answer is not valid JSON for the schema. Answer again, JSON only."),
        ]
        out.append(tuple(history))
    return out


def _call(
    at: float, site: str, messages: tuple[BaseMessage, ...], group: int, schema: dict[str, Any] | None
) -> WorkloadCall:
    return WorkloadCall(at, site, messages, "awaitable", schema=schema, group=group, role="indexing")


def _document_calls(
    rng: random.Random, at: float, group: int, n: int, prompts: dict[str, str]
) -> list[WorkloadCall]:
    text = _text(rng, _around(rng, 500, 0.8), f"document {n}:")
    images = [_image(rng, 640, 480) for _ in range(rng.choice([0, 0, 0, 1, 2, 4]))]
    calls: list[WorkloadCall] = []
    for site, schema in ((EXTRACT, EXTRACTION_SCHEMA), (CLASSIFY, CLASSIFY_SCHEMA)):
        content: list[Any] = [
            {"type": "text", "text": prompts[site]},
            {"type": "text", "text": text},
            *images,
        ]
        first: list[BaseMessage] = [HumanMessage(content)]
        calls.append(_call(at, site, tuple(first), group, schema))
        for k, retry in enumerate(_reflections(rng, first), start=1):
            calls.append(_call(at + 30.0 * k, site, retry, group * 10 + k + 100_000, schema))
    for _ in range(rng.choice([0, 1, 1, 2])):
        rows = HumanMessage(_text(rng, _around(rng, 600, 0.5), "rows:"))
        calls.append(_call(at, TABLES, (SystemMessage(prompts[TABLES]), rows), group, EXTRACTION_SCHEMA))
        table = HumanMessage(_text(rng, _around(rng, 400, 0.5), "table:"))
        calls.append(_call(at, SUMMARY, (SystemMessage(prompts[SUMMARY]), table), group, EXTRACTION_SCHEMA))
    if rng.random() < 0.3:  # a scanned PDF: every page through the VLM
        for _page in range(rng.randint(1, 4)):
            page: list[str | dict[Any, Any]] = [
                {"type": "text", "text": prompts[OCR]},
                _image(rng, 1000, 1300),
            ]
            calls.append(_call(at, OCR, (HumanMessage(page),), group, None))
    for image in images[:2]:
        calls.append(
            _call(
                at,
                DESCRIBE,
                (HumanMessage([{"type": "text", "text": prompts[DESCRIBE]}, image]),),
                group,
                None,
            )
        )
    return calls


def pipeshub_indexing(seed: int = 17, documents: int = 300) -> Workload:
    """PipesHub's indexing calls per document, in Kafka-like bursts."""
    rng = random.Random(seed)
    prompts = {
        EXTRACT: _text(rng, 720, "Extract the metadata of the document below as JSON."),
        CLASSIFY: _text(rng, 500, "Classify the document below into one category."),
        TABLES: _text(rng, 145, "Describe each row of the table."),
        SUMMARY: "Summarize the table and name its headers.",
        OCR: _text(rng, 700, "Transcribe the page image to markdown."),
        DESCRIBE: _text(rng, 340, "Describe the image for search."),
    }
    work = Workload("pipeshub-indexing")
    at, burst, n = 0.0, 0, 0
    while n < documents:
        for _ in range(min(documents - n, rng.randint(5, 25))):
            work.calls.extend(_document_calls(rng, at, burst, n, prompts))
            n += 1
        at += rng.uniform(30, 240)
        burst += 1
    return work


def pipeshub_agent(seed: int = 19, conversations: int = 40, turns: int = 12) -> Workload:
    """The agent loop's calls: system string, tools, growing history with tool results."""
    rng = random.Random(seed)
    tools = _tools(rng, 2500, count=10)
    system = SystemMessage(_text(rng, 1500, "You are PipesHub's enterprise search assistant."))
    work = Workload("pipeshub-agent")
    for conv in range(conversations):
        start = rng.uniform(0, 1800)
        turns_here = _around(rng, turns, 0.4)
        work.calls.extend(
            _conversation(rng, conv, start, turns_here, system, tools, sites=AGENT, result_tokens=1200)
        )
    return work


def retrieval_long(seed: int = 23, prompts: int = 600) -> Workload:
    """One-off prompts above the minimum: a question with its retrieved context, never sent twice."""
    rng = random.Random(seed)
    system = SystemMessage("Answer from the context only. Cite the passages you use.")
    work = Workload("retrieval-long")
    at = 0.0
    for i in range(prompts):
        context = _text(rng, _around(rng, 2200, 0.4), f"question {i} with context:")
        work.calls.append(
            WorkloadCall(
                at=at,
                call_site="retrieval.answer.with_context",
                messages=(system, HumanMessage(context)),
                group=i,
            )
        )
        at += rng.uniform(0.5, 20)
    return work
