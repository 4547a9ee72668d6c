"""Batch routes on the emulator: accumulate pools single ainvoke calls; explicit sends batch/abatch.

The answers are the same messages a direct call returns; the batch tier shows in the
response metadata and in what the emulator billed; interactive shapes never wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.adapter import PolicyEngine, wrap_factory
from tests.adapter.conftest import decisions, received
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model

session_loop = pytest.mark.asyncio(loop_scope="session")

MODEL = "claude-sonnet-4-6"
RULES = """\
- name: indexing
  match: {callSite: "indexing.*"}
  batch: {mode: accumulate, maxRequests: 3, maxWait: 30s}
- name: bulk
  match: {callSite: "bulk.*"}
  batch: {mode: explicit}
"""


def _models(engine: PolicyEngine) -> tuple[Any, Any]:
    config = ai_model_config(models=MODEL)
    return get_generator_model("anthropic", config), wrap_factory(get_generator_model, engine)(
        "anthropic", config
    )


def _tiers(emulator: Any) -> list[str]:
    return [e["tier"] for e in received(emulator)]


@pytest.fixture
def engine(make_engine: Callable[..., PolicyEngine], anthropic_env: Any) -> PolicyEngine:
    return make_engine(rules=RULES)


@session_loop
async def test_accumulate_pools_single_ainvoke_calls(
    engine: PolicyEngine, anthropic_env: Any, tmp_path: Path
) -> None:
    plain, llm = _models(engine)
    prompts = [f"Summarise document {i}" for i in range(3)]
    direct = [m.content for m in await asyncio.gather(*(plain.ainvoke(p) for p in prompts))]
    config = {"metadata": {"call_site": "indexing.doc_extraction.fallback_summary"}}
    pooled = await asyncio.gather(*(llm.ainvoke(p, config=config) for p in prompts))
    await engine.aclose()
    assert [m.content for m in pooled] == direct
    assert all(m.response_metadata["usage"]["service_tier"] == "batch" for m in pooled)
    assert _tiers(anthropic_env) == ["standard"] * 3 + ["batch"] * 3
    records = decisions(tmp_path)
    assert {r["batch_id"] for r in records} != {None} and len({r["batch_id"] for r in records}) == 1
    assert all(r["applied"] and r["usage"]["service_tier"] == "batch" for r in records)
    assert all(r["cost"]["realized_usd"] < r["cost"]["counterfactual_usd"] for r in records)


@session_loop
async def test_streaming_and_sync_calls_never_wait_on_a_batch(
    engine: PolicyEngine, anthropic_env: Any, tmp_path: Path
) -> None:
    _, llm = _models(engine)
    config = {"metadata": {"call_site": "indexing.doc_extraction.fallback_summary"}}
    llm.invoke("one", config=config)
    [chunk async for chunk in llm.astream("two", config=config)]
    assert _tiers(anthropic_env) == ["standard", "standard"]
    reasons = [r["reasons"] for r in decisions(tmp_path)]
    assert all(any("never wait on a batch" in why for why in r) for r in reasons)
    await engine.aclose()


@session_loop
async def test_explicit_abatch_goes_through_one_batch_in_input_order(
    engine: PolicyEngine, anthropic_env: Any, tmp_path: Path
) -> None:
    plain, llm = _models(engine)
    prompts = [f"Enrich row {i}" for i in range(4)]
    direct = [m.content for m in await plain.abatch(prompts)]
    anthropic_env.state.reset()
    batched = await llm.abatch(prompts, config={"metadata": {"call_site": "bulk.rows"}})
    await engine.aclose()
    assert [m.content for m in batched] == direct
    assert _tiers(anthropic_env) == ["batch"] * 4
    assert all(m.response_metadata["usage"]["service_tier"] == "batch" for m in batched)
    assert len({r["batch_id"] for r in decisions(tmp_path)}) == 1


@session_loop
async def test_explicit_abatch_honours_return_exceptions(engine: PolicyEngine, anthropic_env: Any) -> None:
    plain, llm = _models(engine)
    rejected = {"tool_choice": {"type": "tool", "name": "no_such_tool"}}  # the API answers 400
    tools = [{"name": "lookup", "description": "Look up a row.", "input_schema": {"type": "object"}}]
    with pytest.raises(Exception) as unwrapped:
        await plain.bind(tools=tools, **rejected).ainvoke("Enrich row 1")
    config = {"metadata": {"call_site": "bulk.rows"}}
    bound = llm.bind(tools=tools, **rejected)
    out = await bound.abatch(["Enrich row 1", "Enrich row 2"], config=config, return_exceptions=True)
    assert [type(e) for e in out] == [type(unwrapped.value)] * 2
    with pytest.raises(type(unwrapped.value)):
        await bound.abatch(["Enrich row 1"], config=config)
    await engine.aclose()


def test_explicit_sync_batch(make_engine: Callable[..., PolicyEngine], anthropic_env: Any) -> None:
    engine = make_engine(rules=RULES)
    plain, llm = _models(engine)
    prompts = ["Enrich row a", "Enrich row b"]
    direct = [m.content for m in plain.batch(prompts)]
    anthropic_env.state.reset()
    batched = llm.batch(prompts, config={"metadata": {"call_site": "bulk.rows"}})
    assert [m.content for m in batched] == direct
    assert _tiers(anthropic_env) == ["batch", "batch"]


@session_loop
async def test_journaled_work_is_resumed_when_the_credential_is_next_used(
    engine: PolicyEngine, anthropic_env: Any
) -> None:
    """A process died with a request journaled but never sent: the next process to route a
    call with the same credential sends it, and its result lands in the journal."""
    from engine.providers.anthropic.batches import (
        JournalEntry,
        Lease,
        client_identity,
        custom_id_for,
        open_journal,
        request_hash,
    )

    _, llm = _models(engine)
    fingerprint, base_url = client_identity(llm._async_client)
    params = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "left behind"}]}
    digest = request_hash(params, fingerprint, base_url)
    journal = open_journal(engine.state)
    journal.claim(
        [JournalEntry(digest, custom_id_for(digest), fingerprint, base_url, "pending", params=params)],
        Lease("a process that died", ttl_s=-1),
    )
    journal.close()

    config = {"metadata": {"call_site": "bulk.rows"}}
    await llm.abatch(["a new request"], config=config)
    await engine.aclose()
    journal = open_journal(engine.state)
    try:
        assert journal.get_many([digest])[digest].state == "succeeded"
    finally:
        journal.close()
    assert sorted(_tiers(anthropic_env)) == ["batch", "batch"]


@session_loop
async def test_extraction_on_a_streaming_model_is_pooled(engine: PolicyEngine, anthropic_env: Any) -> None:
    """PipesHub's extraction: with_structured_output + ainvoke on a ChatAnthropic built to stream."""
    from tests.adapter.patterns import SYSTEM, DocumentMetadata

    def extraction(model: Any) -> Any:
        return model.model_copy(update={"streaming": True}).with_structured_output(
            DocumentMetadata, method="json_schema"
        )

    plain, llm = _models(engine)
    documents = [[("system", SYSTEM), ("user", f"Document {i}: quarterly report")] for i in range(3)]
    direct = [await extraction(plain).ainvoke(d) for d in documents]
    config = {"metadata": {"call_site": "indexing.doc_extraction.extract_metadata"}}
    pooled = await asyncio.gather(*(extraction(llm).ainvoke(d, config=config) for d in documents))
    await engine.aclose()
    assert pooled == direct
    assert [e["body"].get("stream") for e in received(anthropic_env)] == [True] * 3 + [None] * 3
    assert _tiers(anthropic_env) == ["standard"] * 3 + ["batch"] * 3


@session_loop
async def test_shadow_mode_keeps_a_streaming_call_streaming(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any
) -> None:
    from tests.adapter.patterns import extract_metadata

    plain, llm = _models(make_engine(rules=RULES, mode="shadow"))
    config = {"metadata": {"call_site": "indexing.doc_extraction.extract_metadata"}}
    assert await extract_metadata(llm, config) == await extract_metadata(plain, {})
    bodies = [e["body"] for e in received(anthropic_env)]
    assert len(bodies) == 2 and bodies[0] == bodies[1] and bodies[0]["stream"] is True


@session_loop
async def test_an_unusable_journal_sends_calls_direct(
    anthropic_env: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.adapter.conftest import policy_text

    (tmp_path / "blocked").write_text("a file where the journal's folder should be", encoding="utf-8")
    (tmp_path / "policy.yaml").write_text(policy_text(rules=RULES), encoding="utf-8")
    engine = PolicyEngine.from_file(
        tmp_path / "policy.yaml", state=f"sqlite:///{tmp_path}/blocked/state.db", decision_log=None
    )
    plain, llm = _models(engine)
    prompts = ["row x", "row y"]
    direct = [m.content for m in await plain.abatch(prompts)]
    config = {"metadata": {"call_site": "bulk.rows"}}
    assert [m.content for m in await llm.abatch(prompts, config=config)] == direct
    pooled = {"metadata": {"call_site": "indexing.doc_extraction.fallback_summary"}}
    assert (await llm.ainvoke("row x", config=pooled)).content == direct[0]
    assert set(_tiers(anthropic_env)) == {"standard"}
    assert sum("batch service unusable" in r.getMessage() for r in caplog.records) == 1


@session_loop
async def test_a_call_the_pool_declines_builds_its_payload_once_and_writes_nothing_unread(
    anthropic_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Routed to a pool that cannot take it (no batch service): sent direct, built once, no write."""
    from langchain_anthropic import ChatAnthropic

    from tests.adapter.conftest import policy_text

    rules = """\
- name: indexing
  match: {callSite: "indexing.*"}
  cache: {mode: auto, ttl: 5m}
  batch: {mode: accumulate, maxRequests: 3, maxWait: 30s}
"""
    (tmp_path / "blocked").write_text("a file where the journal's folder should be", encoding="utf-8")
    (tmp_path / "policy.yaml").write_text(policy_text(rules=rules), encoding="utf-8")
    engine = PolicyEngine.from_file(
        tmp_path / "policy.yaml", state=f"sqlite:///{tmp_path}/blocked/state.db", decision_log=None
    )
    built: list[int] = []
    original = ChatAnthropic._get_request_payload

    def counting(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        built.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ChatAnthropic, "_get_request_payload", counting)
    _, llm = _models(engine)
    document = "a one-off document to summarise, long enough to cache " * 120  # ~1,700 tokens
    config = {"metadata": {"call_site": "indexing.doc_extraction.fallback_summary"}}
    await llm.ainvoke(document, config=config)
    assert len(built) == 1, "the payload is built once, not once for the pool and again for the direct call"
    [sent] = received(anthropic_env, last=1)
    assert sent["tier"] == "standard"
    assert "cache_control" not in str(sent["body"]), "a one-off prompt written whole costs 1.25x"
    assert sent["usage"]["cache_creation_input_tokens"] == 0


# -- the batch path's promises, as PipesHub calls it -------------------------------------------

POOLED = {"metadata": {"call_site": "indexing.doc_extraction.fallback_summary"}}


@session_loop
async def test_ainvoke_with_stream_true_on_a_pooled_site_goes_direct(
    engine: PolicyEngine, anthropic_env: Any
) -> None:
    plain, llm = _models(engine)
    expected = await plain.ainvoke("stream me", stream=True)
    got = await llm.ainvoke("stream me", config=POOLED, stream=True)
    await engine.aclose()
    assert got.content == expected.content
    assert [e["body"].get("stream") for e in received(anthropic_env)] == [True, True]
    assert _tiers(anthropic_env) == ["standard", "standard"]


@session_loop
async def test_abatch_of_identical_prompts_pays_and_answers_each(
    engine: PolicyEngine, anthropic_env: Any
) -> None:
    """abatch([q] * 3) at the default temperature asks for three samples: three items, three answers."""
    _, llm = _models(engine)
    out = await llm.abatch(["tell me a story"] * 3, config={"metadata": {"call_site": "bulk.rows"}})
    await engine.aclose()
    assert len(out) == 3
    assert _tiers(anthropic_env) == ["batch"] * 3, "never collapsed into one paid request"


@session_loop
async def test_a_redelivered_request_is_answered_once_and_logged_at_no_cost(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any, tmp_path: Path
) -> None:
    engine = make_engine(rules=RULES.replace("maxWait: 30s", "maxWait: 1s"))  # one item: flushed on wait
    _, llm = _models(engine)
    config = {"metadata": {**POOLED["metadata"], "llm_policy_idempotency_key": "kafka-offset-42"}}
    first = await asyncio.gather(*(llm.ainvoke("index doc 42", config=config) for _ in range(3)))
    again = await llm.ainvoke("index doc 42", config=config)
    await engine.aclose()
    assert _tiers(anthropic_env) == ["batch"], "the same request, delivered again, is paid once"
    assert {m.content for m in [*first, again]} == {first[0].content}
    records = decisions(tmp_path)
    paid = [r for r in records if r["cost"]["realized_usd"] > 0]
    assert len(records) == 4 and len(paid) == 1, "a replayed answer costs 0 in the decision log"
    again = [r for r in records if r not in paid]
    assert all(any("not paid again" in why for why in r["reasons"]) and r["usage"] is None for r in again)


@session_loop
async def test_exceptions_in_call_site_resolution_send_calls_direct_logged_once(
    engine: PolicyEngine,
    anthropic_env: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import engine.adapter._call as call_module

    plain, llm = _models(engine)
    expected = (await plain.ainvoke("resolve me")).content

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("call-site resolution bug")

    monkeypatch.setattr(call_module, "resolve_call_site", broken)
    answers = [await llm.ainvoke("resolve me", config=POOLED) for _ in range(3)]
    await llm.abatch(["resolve me"], config={"metadata": {"call_site": "bulk.rows"}})
    await engine.aclose()
    assert [m.content for m in answers] == [expected] * 3
    assert set(_tiers(anthropic_env)) == {"standard"}
    assert sum("call-site resolution bug" in r.getMessage() for r in caplog.records) == 1


@session_loop
async def test_a_malformed_models_override_sends_calls_direct_logged_once(
    engine: PolicyEngine,
    anthropic_env: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``LLM_POLICY_MODELS`` names a file that does not parse: the engine's capability checks
    fail, the calls go out unchanged. (The emulator in this process keeps its own data.)"""
    import engine.providers.anthropic.batches.service as service_module
    import engine.providers.anthropic.transport as transport_module
    from engine.providers.anthropic.capabilities import load_capabilities

    plain, llm = _models(engine)
    expected = (await plain.ainvoke("override")).content
    bad = tmp_path / "models.yaml"
    bad.write_text("models: [this is: not: valid", encoding="utf-8")

    def overridden() -> Any:
        return load_capabilities(override=bad)

    for module in (transport_module, service_module):
        monkeypatch.setattr(module, "capabilities", overridden)
    answers = [await llm.ainvoke("override", config=POOLED) for _ in range(3)]
    await engine.aclose()
    assert [m.content for m in answers] == [expected] * 3
    assert set(_tiers(anthropic_env)) == {"standard"}
    warned = [r for r in caplog.records if r.levelname == "WARNING" and "unchanged" in r.getMessage()]
    assert len(warned) == 1, [r.getMessage() for r in warned]


def _fill(db: Any) -> None:
    """Rows until SQLite answers "database or disk is full"."""
    import sqlite3

    with pytest.raises(sqlite3.OperationalError, match="full"):
        for n in range(100_000):
            db.execute(
                "INSERT INTO batch_items (request_hash, custom_id, credential, base_url, state, "
                "created_at, updated_at) VALUES (?, 'c', 'f', 'u', 'direct', 0, 0)",
                (f"filler-{n}",),
            )


@pytest.mark.parametrize("damage", ["corrupt", "locked", "full"])
@session_loop
async def test_a_damaged_journal_sends_calls_direct_unchanged(
    anthropic_env: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    import sqlite3

    from tests.adapter.conftest import policy_text

    (tmp_path / "policy.yaml").write_text(policy_text(rules=RULES), encoding="utf-8")
    db = tmp_path / "state.db"
    holder: sqlite3.Connection | None = None
    if damage == "corrupt":
        db.write_bytes(b"not a database at all " * 200)
    engine = PolicyEngine.from_file(tmp_path / "policy.yaml", state=f"sqlite:///{db}", decision_log=None)
    plain, llm = _models(engine)
    expected = (await plain.ainvoke("row z")).content
    if damage != "corrupt":
        service = engine.batches()
        service.journal._db.execute("PRAGMA busy_timeout=50")
        if damage == "full":  # SQLite answers "database or disk is full", as on a full disk
            pages = service.journal._db.execute("PRAGMA page_count").fetchone()[0]
            service.journal._db.execute(f"PRAGMA max_page_count={pages}")
            _fill(service.journal._db)
        else:
            holder = sqlite3.connect(db, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
    try:
        answers = [await llm.ainvoke("row z", config=POOLED) for _ in range(2)]
        batched = await llm.abatch(["row z"], config={"metadata": {"call_site": "bulk.rows"}})
    finally:
        if holder is not None:
            holder.execute("ROLLBACK")
            holder.close()
    await engine.aclose()
    assert [m.content for m in [*answers, *batched]] == [expected] * 3
    assert set(_tiers(anthropic_env)) == {"standard"}
    assert sum("batch service unusable" in r.getMessage() for r in caplog.records) == 1


@session_loop
async def test_engine_aclose_is_bounded_and_answers_every_caller(
    engine: PolicyEngine, anthropic_env: Any
) -> None:
    """A batch that will not end before shutdown: aclose returns, the caller gets a clear error."""
    import inspect

    from engine.providers.anthropic.batches import BatchItemError

    assert inspect.signature(PolicyEngine.aclose).parameters["timeout"].default is not None
    anthropic_env.state.config.update({"batch_latency_s": 3600.0})
    _, llm = _models(engine)
    calls = [asyncio.ensure_future(llm.ainvoke(f"slow {i}", config=POOLED)) for i in range(3)]
    while engine.batches().batches_created == 0:  # the pool of 3 is full: its batch is out
        await asyncio.sleep(0.02)
    await engine.aclose(timeout=0.2)
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(o, BatchItemError) and o.failure == "closed" for o in outcomes), outcomes


@session_loop
async def test_journal_waits_never_block_the_event_loop(anthropic_env: Any, tmp_path: Path) -> None:
    """Another process holds the journal locked: while the engine waits for it, the loop keeps running."""
    import sqlite3
    import time

    from tests.adapter.conftest import policy_text

    (tmp_path / "policy.yaml").write_text(policy_text(rules=RULES), encoding="utf-8")
    engine = PolicyEngine.from_file(
        tmp_path / "policy.yaml", state=f"sqlite:///{tmp_path}/s.db", decision_log=None
    )
    _, llm = _models(engine)
    engine.batches().journal._db.execute("PRAGMA busy_timeout=1000")
    holder = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    beat = asyncio.ensure_future(ticker())
    try:
        started = time.monotonic()
        answer = await llm.ainvoke("while locked", config=POOLED)
        waited = time.monotonic() - started
    finally:
        beat.cancel()
        holder.execute("ROLLBACK")
        holder.close()
    await engine.aclose()
    assert answer.content
    assert waited >= 0.9, "the journal was waited for"
    during = [t for t in ticks if started <= t <= started + waited]
    assert len(during) >= 20, f"the event loop ran {len(during)} times in {waited:.1f} s of journal waiting"
