"""LangChain's standard chat-model tests, run on the wrapped ChatAnthropic.

The unit suite checks the BaseChatModel contract offline; the integration suite
calls the emulator. The model class under test is the one ``wrap_factory`` returns
for PipesHub's ``anthropic`` provider with a policy that caches every call site.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.integration_tests import chat_models as standard_chat_models
from langchain_tests.unit_tests import ChatModelUnitTests

from engine.adapter import PolicyEngine, wrap_factory
from engine.ledger import DecisionLog
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model

MODEL = "claude-sonnet-4-6"


def _png(width: int, height: int) -> bytes:
    """A valid RGB PNG of one colour, built with zlib (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x20\x80\xc0" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _pdf(text: str) -> bytes:
    """A valid one-page PDF showing ``text`` (objects and cross-reference table by hand)."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def _local_download(url: str, **_: Any) -> httpx.Response:
    body = _pdf("Dummy PDF file") if url.endswith(".pdf") else _png(640, 480)
    return httpx.Response(200, content=body, request=httpx.Request("GET", url))


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

    @pytest.fixture(autouse=True)
    def _local_fixtures(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The image and PDF tests download their inputs; serve them from here instead
        (the tests reach only 127.0.0.1). Image URLs the model is given are passed to the
        emulator as URLs, as to the API, and never fetched."""
        monkeypatch.setattr(standard_chat_models.httpx, "get", _local_download)

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
        return "claude-opus-4-6"  # takes the same max_tokens default as the model under test

    # The emulator is not a language model, and the test environment reaches only 127.0.0.1.
    # These standard tests fail identically for the unwrapped ChatAnthropic on the emulator
    # (checked), so they say nothing about the adapter. They still run, as strict xfails.
    SEMANTIC = (
        "asserts what a real model answers (tool arguments, final answer); the emulator answers placeholders"
    )

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
