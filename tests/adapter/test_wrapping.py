"""What wrap_factory returns: the very object when off, a same-class twin when on."""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.load import dumpd, dumps, load

from engine.adapter import PolicyEngine, wrap_factory
from engine.ledger import DecisionLog
from tests.adapter.pipeshub_factory import (
    PROVIDERS,
    ai_model_config,
    get_generator_model,
    get_generator_model_async,
)


class Spy:
    """A factory that hands out what the real one builds and remembers it."""

    def __init__(self, factory: Callable[..., Any]) -> None:
        self.factory, self.built = factory, []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        model = self.factory(*args, **kwargs)
        self.built.append(model)
        return model


def test_signature_and_docstring_are_the_factorys() -> None:
    engine = PolicyEngine.disabled()
    for factory in (get_generator_model, get_generator_model_async):
        wrapped = wrap_factory(factory, engine)
        assert inspect.signature(wrapped) == inspect.signature(factory)
        assert wrapped.__doc__ == factory.__doc__ and wrapped.__name__ == factory.__name__
        assert inspect.iscoroutinefunction(wrapped) == inspect.iscoroutinefunction(factory)


@pytest.mark.parametrize("enabled", [False, None], ids=["enabled-false", "no-policy"])
def test_off_returns_the_very_object(enabled: bool | None, make_engine: Callable[..., PolicyEngine]) -> None:
    engine = PolicyEngine.disabled() if enabled is None else make_engine(enabled=False)
    spy = Spy(get_generator_model)
    llm = wrap_factory(spy, engine)("anthropic", ai_model_config())
    assert llm is spy.built[0] and type(llm) is ChatAnthropic


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p not in ("anthropic", "azureAI")])
def test_providers_the_engine_does_not_handle_are_untouched(
    provider: str, make_engine: Callable[..., PolicyEngine]
) -> None:
    spy = Spy(get_generator_model)
    llm = wrap_factory(spy, make_engine())(provider, ai_model_config(provider))
    assert llm is spy.built[0]


def test_unknown_provider_raises_as_the_factory_does(make_engine: Callable[..., PolicyEngine]) -> None:
    with pytest.raises(ValueError, match="Unsupported provider type: nope"):
        wrap_factory(get_generator_model, make_engine())("nope", ai_model_config())


async def test_async_twin_wraps_alike(make_engine: Callable[..., PolicyEngine]) -> None:
    llm = await wrap_factory(get_generator_model_async, make_engine())("anthropic", ai_model_config())
    assert isinstance(llm, ChatAnthropic) and type(llm) is not ChatAnthropic


@pytest.mark.filterwarnings("ignore:The function `load` is in beta")
@pytest.mark.parametrize("provider", ["anthropic", "azureAI"])
def test_enabled_twin_has_the_same_class_fields_and_serialization(
    provider: str, make_engine: Callable[..., PolicyEngine]
) -> None:
    config = ai_model_config(provider, endpoint="https://claude.example.test")
    spy = Spy(get_generator_model)
    llm = wrap_factory(spy, make_engine())(provider, config)
    plain = spy.built[0]
    assert llm is not plain and isinstance(llm, ChatAnthropic)
    assert type(llm).__name__ == "ChatAnthropic" and type(llm).__module__ == ChatAnthropic.__module__
    assert llm.model_dump() == plain.model_dump() and repr(llm) == repr(plain)
    assert dumpd(llm) == dumpd(plain) and dumps(llm) == dumps(plain)
    assert llm.to_json() == plain.to_json()
    restored = load(
        dumpd(llm), secrets_map={"ANTHROPIC_API_KEY": "sk-ant-test"}, allowed_objects=[ChatAnthropic]
    )
    assert type(restored) is ChatAnthropic and restored.model == plain.model
    assert type(pickle.loads(pickle.dumps(llm))) is ChatAnthropic  # pickles as its parent class
    assert type(plain) is ChatAnthropic  # the factory's object is left as built


def test_with_helpers_keep_the_twin(make_engine: Callable[..., PolicyEngine]) -> None:
    llm = wrap_factory(get_generator_model, make_engine())("anthropic", ai_model_config())
    assert llm.bind_tools([]).bound is llm
    assert llm.with_config(metadata={"call_site": "x"}).bound is llm
    assert llm.with_retry().bound is llm
    assert type(llm.model_copy()) is type(llm)


def test_role_binds_per_wrapper(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "apiVersion: llm-policy/v1\nkind: OptimizationPolicy\nmetadata: {name: p}\nspec: {enabled: true}\n",
        encoding="utf-8",
    )
    engine = PolicyEngine.from_file(tmp_path / "p.yaml", decision_log=DecisionLog([]))
    a = wrap_factory(get_generator_model, engine, role="indexing")("anthropic", ai_model_config())
    b = wrap_factory(get_generator_model, engine, role="chat")("anthropic", ai_model_config())
    c = wrap_factory(get_generator_model, engine, role="indexing")("anthropic", ai_model_config())
    assert type(a) is not type(b) and type(a) is type(c)


def test_wrapping_twice_is_a_no_op(make_engine: Callable[..., PolicyEngine]) -> None:
    engine = make_engine()
    once = wrap_factory(get_generator_model, engine)
    assert wrap_factory(once, engine) is once
    assert wrap_factory(once, PolicyEngine.disabled()) is once


def test_a_model_already_wrapped_is_handed_back_as_is(make_engine: Callable[..., PolicyEngine]) -> None:
    """The async twin and the sync factory both wrapped: the model is wrapped once."""
    engine = make_engine()
    inner = wrap_factory(get_generator_model, engine)
    outer = wrap_factory(lambda provider, config: inner(provider, config), engine)
    spy = Spy(inner)
    llm = wrap_factory(spy, engine)("anthropic", ai_model_config())
    assert llm is spy.built[0] and type(llm) is not ChatAnthropic
    twice = outer("anthropic", ai_model_config())
    assert [c.__name__ for c in type(twice).__mro__].count("PolicyHooks") == 1


async def test_the_async_twin_goes_through_the_wrapped_module_global(
    make_engine: Callable[..., PolicyEngine],
) -> None:
    from tests.adapter.pipeshub_host import load_host

    host = load_host(make_engine())
    aimodels = host["app.utils.aimodels"]
    llm = await aimodels.get_generator_model_async("anthropic", ai_model_config())
    assert isinstance(llm, ChatAnthropic) and type(llm) is not ChatAnthropic


def test_direct_agent_transport_is_warned_and_logged_once(
    make_engine: Callable[..., PolicyEngine],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.adapter.conftest import decisions

    monkeypatch.setenv("PIPESHUB_AGENT_TRANSPORT", "direct")
    factory = wrap_factory(get_generator_model, make_engine())
    with caplog.at_level("WARNING", logger="engine.adapter"):
        models = [factory("anthropic", ai_model_config()) for _ in range(3)]
    assert all(type(m).__name__ == "ChatAnthropic" for m in models)  # what the direct transport takes
    warned = [r for r in caplog.records if "PIPESHUB_AGENT_TRANSPORT" in r.getMessage()]
    records = decisions(tmp_path)
    assert len(warned) == 1 and len(records) == 1
    assert records[0]["bypass"] == "direct-transport" and not records[0]["applied"]
    assert records[0]["call_site"].endswith("test_direct_agent_transport_is_warned_and_logged_once")


def test_langchain_agent_transport_is_not_a_bypass(
    make_engine: Callable[..., PolicyEngine], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.adapter.conftest import decisions

    monkeypatch.setenv("PIPESHUB_AGENT_TRANSPORT", "langchain")
    wrap_factory(get_generator_model, make_engine())("anthropic", ai_model_config())
    assert decisions(tmp_path) == []
