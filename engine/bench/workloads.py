"""Seeded reference workloads: PipesHub-like traffic as scripted LangChain calls.

Each generator returns a :class:`Workload`: calls with the time they happen (in
seconds from the start, emulator time), their call site, their messages, what
they bind (tools, a structured-output schema) and how long their caller can
wait. Conversations are scripted (the assistant turns and tool results come from
the script, not from the model), so every arm of a benchmark sends exactly the
same content and only the caching and batching differ.

Sizes follow the benchmark's brief: ``indexing`` ~1,000 documents (a ~4,500-token
system prompt, ~2,000-token document, structured output, Kafka-like bursts);
``agent`` ~50 conversations of ~15 turns (~3,000 tokens of tools, ~2,000-token
system prompt, tool calls, gaps of seconds to ~10 minutes); ``retrieval`` ~2,000
short one-off prompts. ``scale`` shrinks them for tests and the demo.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

__all__ = ["SIZES", "WORKLOADS", "Shape", "Workload", "WorkloadCall", "build_workload", "mixed"]

Shape = Literal["ainvoke", "astream"]
Latency = Literal["interactive", "awaitable", "batch"]
MODEL = "claude-sonnet-4-6"

_WORDS = [
    "account",
    "invoice",
    "policy",
    "record",
    "schema",
    "vendor",
    "region",
    "quarter",
    "revenue",
    "contract",
    "clause",
    "summary",
    "table",
    "column",
    "metric",
    "customer",
    "ticket",
    "incident",
    "service",
    "release",
    "storage",
    "index",
    "query",
    "result",
    "department",
    "category",
    "sentiment",
    "owner",
    "status",
    "budget",
    "forecast",
    "audit",
    "supplier",
    "shipment",
    "payment",
    "renewal",
    "compliance",
    "security",
    "access",
    "network",
    "latency",
    "error",
]


@dataclass(frozen=True, slots=True)
class WorkloadCall:
    """One scripted LLM call."""

    at: float
    call_site: str
    messages: tuple[BaseMessage, ...]
    latency: Latency = "interactive"
    shape: Shape = "ainvoke"
    tools: tuple[dict[str, Any], ...] = ()
    schema: dict[str, Any] | None = None
    group: int = 0
    role: str | None = None


@dataclass(slots=True)
class Workload:
    name: str
    calls: list[WorkloadCall] = field(default_factory=list)
    model: str = MODEL

    def groups(self) -> list[list[WorkloadCall]]:
        """Calls in time order, cut where the next call is a different burst or turn."""
        out: list[list[WorkloadCall]] = []
        for call in sorted(self.calls, key=lambda c: (c.at, c.group)):
            if out and out[-1][-1].group == call.group and out[-1][-1].at == call.at:
                out[-1].append(call)
            else:
                out.append([call])
        return out


def _text(rng: random.Random, tokens: int, head: str = "") -> str:
    """About ``tokens`` tokens of text (4 bytes a token), starting with ``head``."""
    words = [head] if head else []
    size = len(head)
    while size < tokens * 4:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[: tokens * 4]


def _around(rng: random.Random, mean: int, spread: float = 0.25) -> int:
    return max(1, int(mean * rng.uniform(1 - spread, 1 + spread)))


EXTRACTION_SCHEMA: dict[str, Any] = {
    "title": "DocumentMetadata",
    "type": "object",
    "properties": {
        "departments": {"type": "array", "items": {"type": "string"}},
        "categories": {"type": "array", "items": {"type": "string"}},
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "summary": {"type": "string"},
    },
    "required": ["departments", "categories", "sentiment", "summary"],
    "additionalProperties": False,
}


def indexing(seed: int = 7, documents: int = 1000) -> Workload:
    """Documents through ``indexing.doc_extraction.extract_metadata`` in bursts."""
    rng = random.Random(seed)
    system = SystemMessage(_text(rng, 4500, "Extract departments, categories, sentiment and a summary."))
    work = Workload("indexing")
    at, burst, left = 0.0, 0, documents
    while left > 0:
        size = min(left, rng.randint(max(1, documents // 10), max(2, documents // 4)))
        for _ in range(size):
            doc = HumanMessage(_text(rng, _around(rng, 2000), f"document {documents - left}:"))
            work.calls.append(
                WorkloadCall(
                    at=at,
                    call_site="indexing.doc_extraction.extract_metadata",
                    messages=(system, doc),
                    latency="awaitable",
                    schema=EXTRACTION_SCHEMA,
                    group=burst,
                    role="indexing",
                )
            )
            left -= 1
        at += rng.uniform(30, 240)
        burst += 1
    return work


def _tools(rng: random.Random, total_tokens: int, count: int = 12) -> tuple[dict[str, Any], ...]:
    names = [f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)}_{i}" for i in range(count)]
    return tuple(
        {
            "name": name,
            "description": _text(rng, total_tokens // count - 40, f"{name}:"),
            "input_schema": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["query"],
            },
        }
        for name in names
    )


def _gap(rng: random.Random, low: float = 5.0, high: float = 600.0, tail: float = 0.0) -> float:
    """Log-uniform: most gaps are short, some run past a 5-minute TTL.

    ``tail`` (seconds): one pause in five instead lasts from 5 minutes to ``tail``
    (a user who comes back after a meeting or the next morning).
    """
    if tail and rng.random() < 0.2:
        return rng.uniform(300.0, tail)
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _conversation(
    rng: random.Random,
    conv: int,
    start: float,
    turns: int,
    system: SystemMessage,
    tools: tuple[dict[str, Any], ...],
    *,
    tail: float = 0.0,
    sites: tuple[str, str] = ("chat.agent.complete", "chat.agent.stream"),
    result_tokens: int = 700,
) -> list[WorkloadCall]:
    history: list[BaseMessage] = [system]
    calls: list[WorkloadCall] = []
    at = start
    for turn in range(turns):
        history.append(HumanMessage(_text(rng, _around(rng, 120, 0.6), f"c{conv} t{turn}:")))
        step = {"at": at, "tools": tools, "group": conv, "role": "chat"}
        if rng.random() < 0.5:
            calls.append(WorkloadCall(call_site=sites[0], messages=tuple(history), **step))  # type: ignore[arg-type]
            call_id = f"toolu_c{conv}t{turn}"
            tool = rng.choice(tools)
            history.append(
                AIMessage(
                    content="",
                    tool_calls=[{"name": tool["name"], "args": {"query": f"q{turn}"}, "id": call_id}],
                )
            )
            result = _text(rng, _around(rng, result_tokens, 0.6), "result:")
            history.append(ToolMessage(result, tool_call_id=call_id))
            step["at"] = at = at + rng.uniform(1, 4)
        calls.append(
            WorkloadCall(call_site=sites[1], shape="astream", messages=tuple(history), **step)  # type: ignore[arg-type]
        )
        history.append(AIMessage(_text(rng, _around(rng, 200, 0.5), "answer:")))
        at += _gap(rng, tail=tail)
    return calls


def agent(seed: int = 11, conversations: int = 50, turns: int = 15, tail: float = 0.0) -> Workload:
    """Agent conversations through ``chat.agent.*``, interleaved in time.

    ``tail``: one pause in five lasts from 5 minutes to ``tail`` seconds (30 min, 2 h).
    """
    rng = random.Random(seed)
    tools = _tools(rng, 3000)
    system = SystemMessage(_text(rng, 2000, "You are the workplace assistant."))
    name = (
        "agent" if not tail else f"agent-pauses-{int(tail // 3600)}h" if tail >= 3600 else "agent-pauses-30m"
    )
    work = Workload(name)
    for conv in range(conversations):
        start = rng.uniform(0, 1800)
        calls = _conversation(rng, conv, start, _around(rng, turns, 0.3), system, tools, tail=tail)
        work.calls.extend(calls)
    return work


def retrieval(seed: int = 13, prompts: int = 2000) -> Workload:
    """Short one-off prompts through ``retrieval.search.rewrite_expand`` (two chains per query)."""
    rng = random.Random(seed)
    rewrite = SystemMessage("Rewrite the search query for a keyword index. Answer with the query only.")
    expand = SystemMessage("Expand the search query with synonyms. Answer with a comma-separated list.")
    work = Workload("retrieval")
    at = 0.0
    for i in range(prompts // 2):
        query = HumanMessage(_text(rng, _around(rng, 280), f"query {i}:"))
        for system in (rewrite, expand):
            work.calls.append(
                WorkloadCall(
                    at=at, call_site="retrieval.search.rewrite_expand", messages=(system, query), group=i
                )
            )
        at += rng.uniform(0.5, 20)
    return work


def _other_sites(seed: int, count: int) -> Workload:
    """Classification, table summaries, simple chat and health probes: the rest of PIPESHUB.md's sites."""
    rng = random.Random(seed)
    classify = SystemMessage(_text(rng, 1800, "Classify the document into one of the categories."))
    tables = SystemMessage(_text(rng, 1400, "Summarize the table and name its headers."))
    simple = SystemMessage("You answer workplace questions briefly.")
    work = Workload("other")
    for i in range(count):
        at, burst = (i // 10) * 90.0, i // 10  # indexing arrives in bursts of ten
        doc = HumanMessage(_text(rng, _around(rng, 900), f"doc {i}:"))
        table = HumanMessage(_text(rng, _around(rng, 600), f"table {i}:"))
        work.calls += [
            WorkloadCall(
                at,
                "indexing.doc_extraction.classify",
                (classify, doc),
                "awaitable",
                group=burst,
                role="indexing",
            ),
            WorkloadCall(
                at,
                "indexing.table_summary",
                (tables, table),
                "awaitable",
                schema=EXTRACTION_SCHEMA,
                group=burst,
                role="indexing",
            ),
        ]
        if i % 3 == 0:
            question = HumanMessage(_text(rng, _around(rng, 60), f"question {i}:"))
            work.calls.append(
                WorkloadCall(at + 1, "chat.simple_mode", (simple, question), shape="astream", group=i)
            )
        if i % 10 == 0:
            work.calls.append(WorkloadCall(at + 2, "health.llm_check", (HumanMessage("ping"),), group=i))
    return work


def mixed(seed: int = 5, scale: float = 1.0) -> Workload:
    """The demo's traffic: a little of every kind (a few hundred calls at scale 1)."""
    parts = [
        indexing(seed, documents=max(2, int(100 * scale))),
        agent(seed + 1, conversations=max(1, int(6 * scale)), turns=8),
        retrieval(seed + 2, prompts=max(2, int(80 * scale))),
        _other_sites(seed + 3, count=max(1, int(30 * scale))),
    ]
    work = Workload("mixed")
    offset = 0
    for part in parts:
        work.calls.extend(
            WorkloadCall(
                at=c.at,
                call_site=c.call_site,
                messages=c.messages,
                latency=c.latency,
                shape=c.shape,
                tools=c.tools,
                schema=c.schema,
                group=c.group + offset,
                role=c.role,
            )
            for c in part.calls
        )
        offset += 1 + max((c.group for c in part.calls), default=0)
    return work


def _agent_30m(seed: int = 11, conversations: int = 50) -> Workload:
    return agent(seed, conversations, tail=1800.0)


def _agent_2h(seed: int = 11, conversations: int = 50) -> Workload:
    return agent(seed, conversations, tail=7200.0)


def _pipeshub(name: str) -> Callable[..., Workload]:
    def build(**kwargs: Any) -> Workload:
        from engine.bench import pipeshub_workloads as p

        generator: Callable[..., Workload] = getattr(p, name)
        return generator(**kwargs)

    return build


WORKLOADS: dict[str, Callable[..., Workload]] = {
    "pipeshub-indexing": _pipeshub("pipeshub_indexing"),
    "pipeshub-agent": _pipeshub("pipeshub_agent"),
    "indexing": indexing,
    "agent": agent,
    "agent-pauses-30m": _agent_30m,
    "agent-pauses-2h": _agent_2h,
    "retrieval": retrieval,
    "retrieval-long": _pipeshub("retrieval_long"),
}
#: Each workload's size parameter and its full size.
SIZES: dict[str, tuple[str, int]] = {
    "pipeshub-indexing": ("documents", 300),
    "pipeshub-agent": ("conversations", 40),
    "indexing": ("documents", 1000),
    "agent": ("conversations", 50),
    "agent-pauses-30m": ("conversations", 50),
    "agent-pauses-2h": ("conversations", 50),
    "retrieval": ("prompts", 2000),
    "retrieval-long": ("prompts", 600),
}


def build_workload(name: str, *, seed: int | None = None, scale: float = 1.0) -> Workload:
    """A reference workload by name, ``scale`` times its full size."""
    if name == "mixed":
        return mixed(scale=scale) if seed is None else mixed(seed, scale)
    if name not in WORKLOADS:
        raise ValueError(f"unknown workload {name!r}; choose one of: {', '.join([*WORKLOADS, 'mixed'])}")
    key, full = SIZES[name]
    kwargs: dict[str, Any] = {key: max(2, int(full * scale))}
    if seed is not None:
        kwargs["seed"] = seed
    return WORKLOADS[name](**kwargs)
