"""LangChain's standard chat-model tests, run on the wrapped ChatAnthropic.

The unit suite checks the BaseChatModel contract offline; the integration suite
calls the emulator. The model class under test is the one ``wrap_factory`` returns
for PipesHub's ``anthropic`` provider with a policy that caches every call site.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from engine.adapter import PolicyEngine, wrap_factory
from engine.ledger import DecisionLog
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model

MODEL = "claude-sonnet-4-6"
ENGINE = PolicyEngine.from_file(
    Path(__file__).parent / "policies" / "everything-cached.yaml", decision_log=DecisionLog([])
)
WRAPPED = type(wrap_factory(get_generator_model, ENGINE)("anthropic", ai_model_config(models=MODEL)))


def test_the_class_under_test_is_the_wrapped_one() -> None:
    assert WRAPPED is not ChatAnthropic and issubclass(WRAPPED, ChatAnthropic)
    assert WRAPPED.__name__ == "ChatAnthropic" and WRAPPED.lc_id() == ChatAnthropic.lc_id()


class TestWrappedChatAnthropicUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatAnthropic]:
        return WRAPPED

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": MODEL, "api_key": "sk-ant-test"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {"ANTHROPIC_API_KEY": "sk-ant-env", "ANTHROPIC_API_URL": "https://api.example.test"},
            {"model": MODEL},
            {"anthropic_api_url": "https://api.example.test"},
        )

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_pdf_inputs(self) -> bool:
        return True


class TestWrappedChatAnthropicIntegration(ChatModelIntegrationTests):
    base_url = ""

    @pytest.fixture(autouse=True)
    def _on_emulator(self, emulator: Any) -> None:
        type(self).base_url = emulator.base_url

    @property
    def chat_model_class(self) -> type[ChatAnthropic]:
        return WRAPPED

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": MODEL, "api_key": "sk-ant-test", "base_url": self.base_url}

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_pdf_inputs(self) -> bool:
        return True

    @property
    def supports_image_tool_message(self) -> bool:
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return False

    @property
    def model_override_value(self) -> str:
        return "claude-haiku-4-5"

    # The emulator is not a language model, and the test environment reaches only 127.0.0.1.
    # These standard tests fail identically for the unwrapped ChatAnthropic on the emulator
    # (checked), so they say nothing about the adapter. They still run, as strict xfails.
    SEMANTIC = (
        "asserts what a real model answers (tool arguments, final answer); the emulator answers placeholders"
    )
    INTERNET = "downloads its image/PDF fixture from the internet; tests reach only 127.0.0.1"

    @pytest.mark.xfail(reason=SEMANTIC, strict=True)
    def test_tool_calling(self, model: Any) -> None:
        super().test_tool_calling(model)

    @pytest.mark.xfail(reason=SEMANTIC, strict=True)
    async def test_tool_calling_async(self, model: Any) -> None:
        await super().test_tool_calling_async(model)

    @pytest.mark.xfail(reason=SEMANTIC, strict=True)
    def test_agent_loop(self, model: Any) -> None:
        super().test_agent_loop(model)

    @pytest.mark.xfail(reason=SEMANTIC, strict=True)
    def test_unicode_tool_call_integration(self, model: Any) -> None:
        super().test_unicode_tool_call_integration(model)

    @pytest.mark.xfail(reason=INTERNET, strict=True)
    def test_image_inputs(self, model: Any) -> None:
        super().test_image_inputs(model)

    @pytest.mark.xfail(reason=INTERNET, strict=True)
    def test_pdf_inputs(self, model: Any) -> None:
        super().test_pdf_inputs(model)

    @pytest.mark.xfail(reason=INTERNET, strict=True)
    def test_image_tool_message(self, model: Any) -> None:
        super().test_image_tool_message(model)

    @pytest.mark.xfail(reason=INTERNET, strict=True)
    def test_anthropic_inputs(self, model: Any) -> None:
        super().test_anthropic_inputs(model)
