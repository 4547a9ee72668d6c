"""Every row of PipesHub's call-site table, driven through the stand-in host (tests/pipeshub_standin).

The host passes no metadata: the call-site ids come from its code alone. For each row:
- off (disabled engine): the factory's very object, and the bytes the plain host sends;
- enabled but no rule, and shadow mode: the same bytes, the same answers, one record per
  call carrying the row's own resolved id (distinct per row, helper frames skipped);
- the shipped policy (policies/examples/pipeshub-callsites.yaml) matches every indexing
  and agent row, and enforced it answers as the plain host does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from engine._resources import resource_path
from engine.adapter import PolicyEngine, wrap_factory
from tests.adapter.conftest import decisions, received
from tests.adapter.pipeshub_host import load_host

Host = dict[str, ModuleType]
NO_MATCH = """\
- name: elsewhere
  match: {callSite: "nowhere.*"}
  cache: {mode: auto, ttl: 1h}
"""
SHIPPED = resource_path("policies/examples/pipeshub-callsites.yaml")
DX = "app.modules.transformers.document_extraction.DocumentExtraction"
CSV = "app.modules.parsers.csv.csv_parser.CSVParser"
LCT = "app.agents.agent_loop.langchain_transport.LangChainTransport"


@tool
def search_knowledge_base(query: str) -> str:
    """Search the organisation's knowledge base for passages matching the query."""
    return f"results for {query}"


class Answer(BaseModel):
    answer: str
    confidence: float


def _config_service(host: Host) -> Any:
    config = host["app.config.configuration_service"]
    entry = config.llm_entry()
    return config.ConfigurationService(config.ai_models(entry, roles={"indexing": entry["modelKey"]}))


async def _llm(host: Host) -> Any:
    llm, _ = await host["app.utils.llm"].get_llm(_config_service(host))
    return llm


AGENT_SYSTEM = "You are PipesHub's agent. Use the tools to answer from the organisation's knowledge. " * 60


def _history() -> list[Any]:
    return [HumanMessage("Find the travel policy and summarise it.")]


async def _metadata(host: Host) -> Any:
    return (
        await host[DX.rsplit(".", 1)[0]]
        .DocumentExtraction(_config_service(host))
        .extract_metadata("Q3 finance report: revenue up 12%.", images=3)
    )


async def _classify(host: Host) -> Any:
    return await host[DX.rsplit(".", 1)[0]].DocumentExtraction(_config_service(host)).classify("Onboarding.")


async def _fallback(host: Host) -> Any:
    extraction = host[DX.rsplit(".", 1)[0]].DocumentExtraction(_config_service(host))
    return await extraction._fallback_summary("The 2027 roadmap.")


async def _tables(host: Host) -> Any:
    grid = [["region", "sales"], ["north", "12"], ["south", "9"]]
    return await host["app.utils.table_enrichment"].enrich_tables(await _llm(host), [grid], "Sales by region")


async def _table_summary(host: Host) -> Any:
    helpers = host["app.utils.indexing_helpers"]
    return await helpers.get_table_summary_n_headers(
        _config_service(host), "| region | sales |\n| north | 12 |"
    )


async def _csv_detect(host: Host) -> Any:
    return (
        await host[CSV.rsplit(".", 1)[0]].CSVParser().detect_headers_with_llm(await _llm(host), [["a", "b"]])
    )


async def _csv_generate(host: Host) -> Any:
    parser = host[CSV.rsplit(".", 1)[0]].CSVParser()
    return await parser.generate_headers_with_llm(await _llm(host), [["1", "2"]])


async def _csv_summary(host: Host) -> Any:
    parser = host[CSV.rsplit(".", 1)[0]].CSVParser()
    return await parser._call_llm(await _llm(host), [HumanMessage("Summarise: a,b\n1,2")])


async def _excel(host: Host) -> Any:
    parser = host["app.modules.parsers.excel.excel_parser"].ExcelParser(await _llm(host))
    return await parser.detect_excel_headers_with_llm("Sheet1", [["", "Q1"], ["north", "3"]])


async def _ocr(host: Host) -> Any:
    config = host["app.config.configuration_service"].llm_entry()
    strategy = host["app.modules.parsers.pdf.vlm_ocr_strategy"].VLMOCRStrategy("anthropic", config)
    png = host["app.utils.prompt_text"].png_base64
    return await strategy.process_pages([png(shade=10), png(shade=20)])


async def _describe(host: Host) -> Any:
    store = host["app.modules.transformers.vectorstore"].VectorStore()
    return await store.describe_image_async(host["app.utils.prompt_text"].png_base64(), await _llm(host))


async def _search(host: Host) -> Any:
    return await host["app.api.routes.search"].search(_config_service(host), "vacation policy")


def _transport(llm: Any, host: Host) -> Any:
    return host[LCT.rsplit(".", 1)[0]].LangChainTransport(llm)


async def _agent_complete(host: Host) -> Any:
    message = await _transport(await _llm(host), host).complete(
        AGENT_SYSTEM, _history(), [search_knowledge_base]
    )
    return message.content, message.tool_calls


async def _agent_stream(host: Host) -> Any:
    message = await _transport(await _llm(host), host).stream(
        AGENT_SYSTEM, _history(), [search_knowledge_base]
    )
    return message.content, message.tool_calls


async def _agent_structured(host: Host) -> Any:
    return (
        await _transport(await _llm(host), host)._invoke_structured(AGENT_SYSTEM, _history(), Answer)
    ).model_dump()


async def _chat(host: Host) -> Any:
    return await host["app.agents.chat_modes.bridge"]._run_no_tools_degradation(
        await _llm(host), "Hello there"
    )


async def _health(host: Host) -> Any:
    config = host["app.config.configuration_service"].llm_entry()
    return await host["app.api.routes.health"].llm_health_check(None, [config])


async def _health_sync(host: Host) -> Any:
    config = host["app.config.configuration_service"].llm_entry()
    return await host["app.api.routes.health"].perform_llm_health_check(config)


@dataclass(frozen=True)
class Row:
    name: str
    kind: str  # indexing, agent, retrieval, chat, health
    ids: tuple[str, ...]
    drive: Callable[[Host], Awaitable[Any]]

    def __str__(self) -> str:
        return self.name


ROWS = [
    Row("metadata", "indexing", (f"{DX}.extract_metadata",), _metadata),
    Row("classification", "indexing", (f"{DX}.classify",), _classify),
    Row("fallback-summary", "indexing", (f"{DX}._fallback_summary",), _fallback),
    Row(
        "table-enrichment",
        "indexing",
        ("app.utils.table_enrichment.enrich_table_grid", "app.utils.table_enrichment.get_rows_text"),
        _tables,
    ),
    Row(
        "table-summary",
        "indexing",
        ("app.utils.indexing_helpers.get_table_summary_n_headers",),
        _table_summary,
    ),
    Row("csv-headers-detect", "indexing", (f"{CSV}.detect_headers_with_llm",), _csv_detect),
    Row("csv-headers-generate", "indexing", (f"{CSV}.generate_headers_with_llm",), _csv_generate),
    Row(
        "excel-headers",
        "indexing",
        ("app.modules.parsers.excel.excel_parser.ExcelParser.detect_excel_headers_with_llm",),
        _excel,
    ),
    Row("csv-summary", "indexing", (f"{CSV}._call_llm",), _csv_summary),
    Row(
        "page-ocr",
        "indexing",
        ("app.modules.parsers.pdf.vlm_ocr_strategy.VLMOCRStrategy._call_llm_for_markdown",),
        _ocr,
    ),
    Row(
        "image-description",
        "indexing",
        ("app.modules.transformers.vectorstore.VectorStore.describe_image_async",),
        _describe,
    ),
    Row("query-rewrite", "retrieval", ("app.api.routes.search.search",), _search),
    Row("agent-complete", "agent", (f"{LCT}.complete",), _agent_complete),
    Row("agent-stream", "agent", (f"{LCT}.stream",), _agent_stream),
    Row("agent-structured", "agent", (f"{LCT}._invoke_structured",), _agent_structured),
    Row("chat-streaming", "chat", ("app.agents.chat_modes.bridge._run_no_tools_degradation",), _chat),
    Row("health", "health", ("app.api.routes.health.llm_health_check",), _health),
    Row("health-sync-thread", "health", ("app.api.routes.health.perform_llm_health_check",), _health_sync),
]


def test_resolved_ids_are_distinct_per_row() -> None:
    ids = [i for row in ROWS for i in row.ids]
    assert len(ids) == len(set(ids))
    assert not any(
        i.startswith(("app.utils.streaming", "app.utils.llm", "app.utils.concurrency")) for i in ids
    )


def _bodies(emulator: Any) -> list[str]:
    """Distinct request bodies (key order kept), sorted: concurrent calls arrive in any order."""
    return sorted({json.dumps(entry["body"]) for entry in received(emulator)})


def _data(value: Any) -> Any:
    """An answer as plain data (each host load has its own schema classes)."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, list | tuple):
        return [_data(v) for v in value]
    if isinstance(value, dict):
        return {k: _data(v) for k, v in value.items()}
    return value


async def _answer(row: Row, host: Host) -> Any:
    return _data(await row.drive(host))


async def _plain(row: Row, emulator: Any) -> tuple[Any, list[str]]:
    """The row run by the host with the engine off: its answer and the bytes it sent."""
    host = load_host(PolicyEngine.disabled())
    answer = await _answer(row, host)
    bodies = _bodies(emulator)
    emulator.state.reset()
    return answer, bodies


def _sites(tmp_path: Path) -> set[str]:
    return {r["call_site"] for r in decisions(tmp_path)}


async def test_off_hands_out_the_factorys_very_object(anthropic_env: Any) -> None:
    host = load_host(PolicyEngine.disabled())
    built: list[Any] = []
    original = host["app.utils.aimodels"].get_generator_model.__wrapped__

    def spy(*args: Any, **kwargs: Any) -> Any:
        built.append(original(*args, **kwargs))
        return built[-1]

    llm = wrap_factory(spy, PolicyEngine.disabled())(
        "anthropic", host["app.config.configuration_service"].llm_entry()
    )
    assert llm is built[0] and type(llm) is ChatAnthropic
    assert type(await _llm(host)) is ChatAnthropic


@pytest.mark.parametrize("row", ROWS, ids=str)
async def test_no_rule_sends_the_plain_bytes_under_the_rows_own_id(
    row: Row, anthropic_env: Any, make_engine: Callable[..., PolicyEngine], tmp_path: Path
) -> None:
    answer, bodies = await _plain(row, anthropic_env)
    host = load_host(make_engine(rules=NO_MATCH))
    assert await _answer(row, host) == answer
    assert _bodies(anthropic_env) == bodies
    records = decisions(tmp_path)
    assert records and all(r["rule"] is None and not r["applied"] for r in records)
    assert _sites(tmp_path) == set(row.ids)
    assert all(r["call_site_source"] == "code" for r in records)


@pytest.mark.parametrize("row", ROWS, ids=str)
async def test_shipped_policy_in_shadow_matches_indexing_and_agent_rows(
    row: Row, anthropic_env: Any, make_engine: Callable[..., PolicyEngine], tmp_path: Path
) -> None:
    answer, bodies = await _plain(row, anthropic_env)
    text = SHIPPED.read_text(encoding="utf-8").replace("mode: enforce", "mode: shadow")
    host = load_host(make_engine(text=text))
    assert await _answer(row, host) == answer
    assert _bodies(anthropic_env) == bodies
    records = decisions(tmp_path)
    assert _sites(tmp_path) == set(row.ids)
    if row.kind in ("indexing", "agent"):
        assert records and all(r["rule"] is not None for r in records)
    if row.kind == "indexing" and row.name.startswith(("metadata", "classification", "fallback")):
        assert all(r["role"] == "indexing" for r in records)  # read from get_llm_for_role's frame


ENFORCED = [r for r in ROWS if r.name in ("metadata", "page-ocr", "agent-complete", "health-sync-thread")]


@pytest.mark.parametrize("row", ENFORCED, ids=str)
async def test_shipped_policy_enforced_answers_as_the_plain_host(
    row: Row, anthropic_env: Any, make_engine: Callable[..., PolicyEngine], tmp_path: Path
) -> None:
    answer, _ = await _plain(row, anthropic_env)
    text = SHIPPED.read_text(encoding="utf-8").replace("maxWait: 30s", "maxWait: 1s")
    host = load_host(make_engine(text=text))
    assert await _answer(row, host) == answer
    records = decisions(tmp_path)
    assert records and _sites(tmp_path) == set(row.ids)
    assert all(r["error"] is None for r in records)
    if row.kind == "indexing":
        assert all(r["batch_id"] is not None for r in records)  # pooled into Message Batches


async def test_a_pool_never_holds_more_than_the_hosts_24_slots(
    anthropic_env: Any, make_engine: Callable[..., PolicyEngine], tmp_path: Path
) -> None:
    """Each pooled call keeps its indexing slot while it waits: 30 documents, 24 slots, so a
    batch of 24 leaves on count and the other 6 on time; the log says fill and wait per call."""
    text = SHIPPED.read_text(encoding="utf-8").replace("maxWait: 30s", "maxWait: 1s")
    host = load_host(make_engine(text=text))
    assert host["app.utils.concurrency"].MAX_CONCURRENT_INDEXING_LLM_CALLS == 24
    extraction = host[DX.rsplit(".", 1)[0]].DocumentExtraction(_config_service(host))
    answers = await asyncio.gather(*(extraction.extract_metadata(f"Document {i}.") for i in range(30)))
    assert all(a is not None for a in answers)  # every caller answered
    records = [r for r in decisions(tmp_path) if r["batch_id"] is not None]
    assert len(records) == 30
    assert sorted({r["pool_fill"] for r in records}) == [6, 24]
    assert all(r["pool_wait_ms"] is not None and r["pool_wait_ms"] >= 0 for r in records)
    slow = [r["pool_wait_ms"] for r in records if r["pool_fill"] == 6]
    assert min(slow) >= 900  # the stragglers waited out maxWait, holding their slots
    from engine.plan import savings_report

    row = savings_report(tmp_path / "decisions.jsonl")["call_sites"][f"{DX}.extract_metadata"]
    assert (row["pooled_calls"], row["pool_fill_avg"]) == (30, round((24 * 24 + 6 * 6) / 30, 2))
    assert row["pool_wait_ms_max"] >= min(slow)


async def test_callsites_lists_what_a_shadow_log_has_seen(
    anthropic_env: Any,
    make_engine: Callable[..., PolicyEngine],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from engine.cli import main

    text = SHIPPED.read_text(encoding="utf-8").replace("mode: enforce", "mode: shadow")
    host = load_host(make_engine(text=text))
    seen = {row.name: row for row in ROWS}
    for name in ("metadata", "metadata", "agent-complete", "agent-complete", "health-sync-thread"):
        await seen[name].drive(host)
    log = str(tmp_path / "decisions.jsonl")
    assert main(["callsites", "--log", log, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    sites = doc["call_sites"]
    metadata, agent = sites[seen["metadata"].ids[0]], sites[seen["agent-complete"].ids[0]]
    health = sites[seen["health-sync-thread"].ids[0]]
    assert set(sites) == {
        metadata_id
        for r in ("metadata", "agent-complete", "health-sync-thread")
        for metadata_id in seen[r].ids
    }
    assert (metadata["calls"], agent["calls"], health["calls"]) == (2, 2, 1)
    assert metadata["models"] == {"claude-sonnet-4-6": 2} and metadata["rules"] == {"indexing-structured": 2}
    assert metadata["roles"] == {"indexing": 2} and agent["rules"] == {"agent": 2}
    assert metadata["prompt_tokens_median"] < metadata["cache_min_tokens"]  # PipesHub's indexing fact
    assert agent["reuse_pct"] == 50.0 and agent["reused_tokens_median"] >= agent["cache_min_tokens"]
    assert health["latency_tolerance"] == {"interactive": 1} and "never batch" in health["hint"]
    assert "pooling" in metadata["hint"]
    assert main(["callsites", "--log", log]) == 0
    out = capsys.readouterr().out
    assert all(site in out for site in sites) and "cache minimum" in out


@pytest.mark.parametrize(
    "name", ["pipeshub-callsites.yaml", "pipeshub-savings.yaml", "indexing.yaml", "agent-chat.yaml"]
)
def test_shipped_examples_name_the_resolved_ids(name: str) -> None:
    """The examples (and the demo's policy) match PipesHub's calls as the engine names them."""
    from engine import CallContext, compile_policy, evaluate, load_policy

    compiled = compile_policy(load_policy(resource_path(f"policies/examples/{name}")))
    kinds = {"indexing.yaml": ("indexing",), "agent-chat.yaml": ("agent",)}.get(name, ("indexing", "agent"))
    for row in ROWS:
        if row.kind not in kinds or (
            name == "indexing.yaml" and row.name in ("fallback-summary", "csv-summary")
        ):
            continue
        for site in row.ids:
            ctx = CallContext(
                call_site=site, role="indexing", provider="anthropic", model="claude-sonnet-4-6"
            )
            assert evaluate(compiled, ctx).rule is not None, (name, site)


async def test_direct_agent_transport_takes_the_wrapped_model_and_bypasses_the_policy(
    anthropic_env: Any,
    make_engine: Callable[..., PolicyEngine],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIPESHUB_AGENT_TRANSPORT", "direct")
    host = load_host(make_engine(text=SHIPPED.read_text(encoding="utf-8")))
    llm = await _llm(host)
    assert type(llm) is not ChatAnthropic  # wrapped, and still taken by the direct transport
    transport = host["app.agents.agent_loop.direct_transport"].DirectTransport(llm)
    tools = [{"name": "search", "description": "Search.", "input_schema": {"type": "object"}}]
    for _ in range(2):
        await transport.complete(
            AGENT_SYSTEM, [{"role": "user", "content": "Find the travel policy."}], tools
        )
    sent = [entry["body"] for entry in received(anthropic_env)]
    assert len(sent) == 2 and all(body["system"][0]["cache_control"] for body in sent)  # its own markers
    records = decisions(tmp_path)
    assert [r["bypass"] for r in records] == ["direct-transport"]  # the calls never reached the engine


def test_the_agent_loop_checkpoints_where_a_pause_can_follow_on_two_loops_under_faults(
    anthropic_env: Any, tmp_path: Path
) -> None:
    """PipesHub's agent loop, no metadata, one engine shared by two event loops (one thread
    each), two requests in five answered with a fault (429/529/500/drop; the SDK retries, and
    the driver resends what still fails, as a user would). The engine's clock is the
    emulator's, moved 40 s or 15 min between turns. Once it has seen the follow-ups, the tool
    call's request writes nothing at 1h (its follow-up comes seconds later) and the streamed
    answer's request writes only the short tool_use block at 1h: the bill says so."""
    import importlib
    import importlib.util
    import threading

    import anthropic
    from langchain_core.messages import AIMessage, ToolMessage

    from engine.ledger import DecisionLog, JsonLinesSink

    # a stream's connection dropped mid-body surfaces as the HTTP client's own error (httpx, or
    # httpx2 under newer SDKs), as without the engine
    dropped = tuple(
        importlib.import_module(name).TransportError
        for name in ("httpx", "httpx2")
        if importlib.util.find_spec(name) is not None
    )
    emulator = anthropic_env
    emulator.state.config.update({"fault_rate": 0.4, "retry_after_s": 0.0})
    clock = emulator.state.clock
    path = tmp_path / "policy.yaml"
    path.write_text(SHIPPED.read_text(encoding="utf-8"), encoding="utf-8")
    engine = PolicyEngine.from_file(
        path,
        state=f"sqlite:///{tmp_path}/state.db",
        decision_log=DecisionLog([JsonLinesSink(tmp_path / "decisions.jsonl", flush_interval=0)]),
        clock=clock.now,
    )
    host = load_host(engine)
    gaps = iter([40.0, 900.0] * 4)
    turn_done = threading.Barrier(2, action=lambda: clock.advance(next(gaps)), timeout=120)
    errors: list[BaseException] = []
    resent: list[str] = []

    async def resend(call: Callable[..., Awaitable[AIMessage]], history: list[Any]) -> AIMessage:
        for _ in range(8):
            try:
                return await call(AGENT_SYSTEM, list(history), [search_knowledge_base])
            except (anthropic.APIStatusError, anthropic.APIConnectionError, *dropped) as exc:
                resent.append(type(exc).__name__)  # after the SDK's own retries
        raise AssertionError("eight sends in a row failed")

    async def conversation(who: int) -> None:
        transport = _transport(await _llm(host), host)
        history: list[Any] = []
        for turn in range(8):
            history.append(HumanMessage(f"Conversation {who}, question {turn}: " + "the travel policy " * 30))
            await resend(transport.complete, history)
            call = {
                "name": "search_knowledge_base",
                "args": {"query": f"q{turn}"},
                "id": f"toolu_{who}_{turn}",
            }
            history += [
                AIMessage("", tool_calls=[call]),
                ToolMessage("result " * 300, tool_call_id=call["id"]),
            ]
            await resend(transport.stream, history)
            history.append(AIMessage(f"Answer {turn}: " + "the policy says " * 40))
            await asyncio.to_thread(turn_done.wait)

    def run(who: int) -> None:
        try:
            asyncio.run(conversation(who))
        except BaseException as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)
            turn_done.abort()

    threads = [threading.Thread(target=run, args=(who,)) for who in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a loop hung"
    assert not errors, errors
    engine.close_polling()
    engine.log.close()
    answered = [r for r in decisions(tmp_path) if r["error"] is None]
    assert len(answered) == 2 * 8 * 2  # every call answered in the end
    failed = [r for r in decisions(tmp_path) if r["error"] is not None]
    assert len(failed) == len(resent)  # each failed send reached its caller, and the log says so

    def last_turns(site: str) -> list[int]:  # the last three turns of both conversations, as billed
        sent = [e for e in received(emulator, last=500) if e["body"].get("tools") and e["usage"]]
        ours = [e for e in sent if bool(e["body"].get("stream")) == site.endswith(".stream")]
        return [e["usage"]["cache_creation"]["ephemeral_1h_input_tokens"] for e in ours][-6:]

    complete, stream = last_turns(f"{LCT}.complete"), last_turns(f"{LCT}.stream")
    assert complete and stream
    assert set(complete) == {0}, complete
    # the tool_use block, not the answer (0 where a resend read what a dropped stream had written)
    assert all(tokens < 40 for tokens in stream) and max(stream) > 0, stream
