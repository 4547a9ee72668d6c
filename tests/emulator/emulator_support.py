"""Helpers shared by the emulator tests: SDK clients and prompts of exact token sizes."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import httpx

from engine.providers.anthropic.capabilities import capabilities
from engine.providers.anthropic.tokens import CHARS_PER_TOKEN

MODEL = "claude-sonnet-4-6"  # 1024-token cache minimum in the data file
#: Fixed input tokens of every request, counted after the last marker (ANTHROPIC.md, "Later facts").
OVERHEAD = int(capabilities().limits["request_overhead_tokens"])


def sync_client(emulator: Any, key: str = "key-a", **kw: Any) -> anthropic.Anthropic:
    kw.setdefault("max_retries", 0)
    return anthropic.Anthropic(base_url=emulator.base_url, api_key=key, **kw)


def async_client(emulator: Any, key: str = "key-a", **kw: Any) -> anthropic.AsyncAnthropic:
    kw.setdefault("max_retries", 0)
    return anthropic.AsyncAnthropic(base_url=emulator.base_url, api_key=key, **kw)


def text_of(tokens: int, tag: str = "t") -> str:
    """ASCII text that the documented formula counts as exactly ``tokens`` tokens."""
    unit = f"[{tag}]"
    body = (unit * (tokens * CHARS_PER_TOKEN // len(unit) + 1))[: tokens * CHARS_PER_TOKEN]
    return body


def block(tokens: int, tag: str, ttl: str | None = None, mark: bool = False) -> dict[str, Any]:
    """A text block of ``tokens`` tokens, with a cache marker if ``mark`` or ``ttl``."""
    out: dict[str, Any] = {"type": "text", "text": text_of(tokens, tag)}
    if mark or ttl:
        out["cache_control"] = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return out


def usage_of(message: Any) -> dict[str, Any]:
    """The SDK message's usage as a plain dict (the fields the API documents)."""
    u = message.usage
    return {
        "input": u.input_tokens,
        "write": u.cache_creation_input_tokens,
        "read": u.cache_read_input_tokens,
        "w5m": u.cache_creation.ephemeral_5m_input_tokens,
        "w1h": u.cache_creation.ephemeral_1h_input_tokens,
        "output": u.output_tokens,
        "tier": u.service_tier,
    }


def control(emulator: Any, method: str, path: str, **kw: Any) -> Any:
    """Call a ``/_emulator`` endpoint and return its JSON."""
    r = httpx.request(method, emulator.base_url + path, **kw)
    r.raise_for_status()
    return r.json()


class Api:
    """``messages.create`` / ``count_tokens`` through the official SDK, sync or async.

    The async mode opens a fresh ``AsyncAnthropic`` per call inside ``asyncio.run``,
    so the sync test bodies exercise both clients unchanged.
    """

    def __init__(self, emulator: Any, mode: str) -> None:
        self.emulator = emulator
        self.mode = mode

    def create(self, key: str = "key-a", **params: Any) -> Any:
        params.setdefault("model", MODEL)
        params.setdefault("max_tokens", 64)
        if self.mode == "sync":
            return sync_client(self.emulator, key).messages.create(**params)

        async def one() -> Any:
            async with async_client(self.emulator, key) as client:
                return await client.messages.create(**params)

        return asyncio.run(one())

    def count(self, key: str = "key-a", **params: Any) -> int:
        params.setdefault("model", MODEL)
        params.pop("max_tokens", None)
        if self.mode == "sync":
            return int(sync_client(self.emulator, key).messages.count_tokens(**params).input_tokens)

        async def one() -> int:
            async with async_client(self.emulator, key) as client:
                return int((await client.messages.count_tokens(**params)).input_tokens)

        return asyncio.run(one())

    def advance(self, seconds: float) -> None:
        control(self.emulator, "POST", "/_emulator/clock", json={"advance_s": seconds})
