"""Where a call's identity comes from: metadata > role > the calling code's location."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from engine.adapter import PolicyEngine, code_location, resolve_call_site, wrap_factory
from tests.adapter.conftest import decisions
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model

HERE = __name__


class Summary(BaseModel):
    summary: str


def test_metadata_wins_then_role_then_code() -> None:
    assert resolve_call_site({"call_site": "a.b", "role": "r"}, "indexing") == ("a.b", "metadata", "r")
    assert resolve_call_site({}, "indexing") == ("indexing", "role", "indexing")
    assert resolve_call_site({"role": "chat"}, "indexing") == ("chat", "role", "chat")
    site, source, role = resolve_call_site(None, None)
    assert (site, source, role) == (f"{HERE}.test_metadata_wins_then_role_then_code", "code", None)


def helper_in_the_host() -> str:
    return code_location()


class Extraction:
    def run(self) -> str:
        return helper_in_the_host()


def test_code_location_names_module_and_qualified_function() -> None:
    assert helper_in_the_host() == f"{HERE}.helper_in_the_host"
    assert Extraction().run() == f"{HERE}.helper_in_the_host"


@pytest.fixture
def llm(make_engine: Callable[..., PolicyEngine], anthropic_env: Any) -> Any:
    return wrap_factory(get_generator_model, make_engine())(
        "anthropic", ai_model_config(models="claude-sonnet-4-6")
    )


def _sites(tmp_path: Path) -> list[tuple[str, str]]:
    return [(r["call_site"], r["call_site_source"]) for r in decisions(tmp_path)]


def test_metadata_on_the_call_and_through_with_config(llm: Any, tmp_path: Path) -> None:
    llm.invoke("hi", config={"metadata": {"call_site": "chat.simple_mode"}})
    llm.with_config(metadata={"call_site": "health.llm_check"}).invoke("hi")
    list(llm.with_config(metadata={"call_site": "chat.agent.stream"}).stream("hi"))
    assert _sites(tmp_path) == [
        ("chat.simple_mode", "metadata"),
        ("health.llm_check", "metadata"),
        ("chat.agent.stream", "metadata"),
    ]


def test_role_of_the_wrapper_and_of_the_caller(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any, tmp_path: Path
) -> None:
    factory = wrap_factory(get_generator_model, make_engine(), role="indexing")
    llm = factory("anthropic", ai_model_config(models="claude-sonnet-4-6"))
    llm.invoke("hi")
    llm.invoke("hi", config={"metadata": {"role": "retrieval"}})
    assert _sites(tmp_path) == [("indexing", "role"), ("retrieval", "role")]


async def extract_metadata(llm: Any) -> Any:
    return await llm.with_structured_output(Summary, method="json_schema").ainvoke("Summarise this.")


async def rewrite_and_expand(llm: Any) -> Any:
    return await asyncio.gather(llm.ainvoke("rewrite"), llm.ainvoke("expand"))


async def enrich_rows(llm: Any) -> Any:
    return await llm.abatch(["row 1", "row 2"])


async def test_code_location_across_langchain_tasks(llm: Any, tmp_path: Path) -> None:
    """Chains run steps in their own tasks and abatch runs items in tasks: the caller is still found."""
    await extract_metadata(llm)
    await rewrite_and_expand(llm)
    await enrich_rows(llm)
    assert _sites(tmp_path) == [
        (f"{HERE}.extract_metadata", "code"),
        (f"{HERE}.rewrite_and_expand", "code"),
        (f"{HERE}.rewrite_and_expand", "code"),
        (f"{HERE}.enrich_rows", "code"),
        (f"{HERE}.enrich_rows", "code"),
    ]


def test_sync_stream_reports_its_caller(llm: Any, tmp_path: Path) -> None:
    list(llm.stream("hi"))
    assert _sites(tmp_path) == [(f"{HERE}.test_sync_stream_reports_its_caller", "code")]


async def test_sync_call_in_to_thread_resolves_to_its_caller(llm: Any, tmp_path: Path) -> None:
    """``asyncio.to_thread`` runs the call without the caller's frames: the awaiting task has them."""
    for _ in range(5):  # the worker may start before the loop has suspended the caller
        await asyncio.to_thread(llm.invoke, "hi")
    await asyncio.gather(*(asyncio.to_thread(llm.invoke, f"hi {i}") for i in range(3)))
    assert set(_sites(tmp_path)) == {(f"{HERE}.test_sync_call_in_to_thread_resolves_to_its_caller", "code")}


def test_a_plain_thread_pool_stays_unknown_without_waiting(llm: Any, tmp_path: Path) -> None:
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(llm.invoke, "hi").result()
    assert _sites(tmp_path) == [("unknown", "code")]


async def helper_like_streaming(llm: Any) -> Any:
    return await llm.ainvoke("through a generic helper")


async def business_caller(llm: Any) -> Any:
    return await helper_like_streaming(llm)


async def test_helper_module_frames_are_skipped(llm: Any, tmp_path: Path) -> None:
    from engine.adapter.callsite import helper_modules, set_helper_modules

    saved = helper_modules()
    await business_caller(llm)
    set_helper_modules([*saved, HERE])  # this module acts as a helper now: its callers name the call
    try:
        await business_caller(llm)
    finally:
        set_helper_modules(saved)
    first, second = _sites(tmp_path)
    assert first == (f"{HERE}.helper_like_streaming", "code")
    assert second[0] != first[0] and not second[0].startswith(HERE)


def test_comprehension_frames_belong_to_their_function(llm: Any, tmp_path: Path) -> None:
    [llm.invoke("hi") for _ in range(1)]
    list(llm.invoke("hi") for _ in range(1))
    me = f"{HERE}.test_comprehension_frames_belong_to_their_function"
    assert _sites(tmp_path) == [(me, "code"), (me, "code")]


def test_roles_map_call_sites_without_naming_them(
    make_engine: Callable[..., PolicyEngine], anthropic_env: Any, tmp_path: Path
) -> None:
    """``roles=`` labels calls by their code location; the call site stays the code."""
    factory = wrap_factory(get_generator_model, make_engine(), roles={f"{HERE}.*": "indexing", "*": "other"})
    factory("anthropic", ai_model_config(models="claude-sonnet-4-6")).invoke("hi")
    (record,) = decisions(tmp_path)
    me = f"{HERE}.test_roles_map_call_sites_without_naming_them"
    assert (record["call_site"], record["call_site_source"], record["role"]) == (me, "code", "indexing")
