"""Stand-in for PipesHub's model factory: ``get_generator_model`` and its async twin.

The rules are PipesHub's (validation, max_tokens table, temperature, reasoning, azureAI);
providers other than Claude come back as small stand-in chat models of the right class
name, which the engine must leave alone. The module ends with the integration's one line.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel


class ChatOpenAI(FakeListChatModel):
    """Stands in for langchain-openai's model (azureAI without "claude", openAI, ...)."""


class ChatBedrock(FakeListChatModel):
    """Stands in for langchain-aws's model (built with ``beta_use_converse_api=True``)."""


OTHER_PROVIDERS = frozenset(
    {
        "azureOpenAI", "cohere", "fireworks", "gemini", "groq", "minimax", "mistral", "ollama",
        "openAI", "xai", "together", "openAICompatible", "lmStudio", "litellmProxy", "openRouter",
    }
)  # fmt: skip
_VERSION = re.compile(r"claude-(?:(?:opus|sonnet|haiku)-)?(\d+)(?:-(\d{1,2}))?(?:-|$)")


def claude_version(model: str) -> tuple[int, int]:
    """(major, minor) of a Claude id: ``claude-sonnet-4-5-20250929`` -> (4, 5); a date is no minor."""
    found = _VERSION.search(model)
    if found is None:
        return (0, 0)
    return int(found.group(1)), int(found.group(2) or 0)


def max_tokens_for(model: str) -> int:
    version = claude_version(model)
    if version == (4, 5):
        return 64000
    if version >= (4, 6):
        return 16384
    return 4096


def refuses_sampling(model: str) -> bool:
    """Opus >= 4.7 and every major >= 5 reject temperature/top_p."""
    version = claude_version(model)
    return version[0] >= 5 or ("opus" in model and version >= (4, 7))


def _model_names(configuration: dict[str, Any]) -> list[str]:
    raw = configuration.get("model")
    names = [n.strip() for n in str(raw or "").split(",") if n.strip()]
    if not names:
        raise ValueError("LLM configuration has no model")
    return names


def _pick_model(config: dict[str, Any], model_name: str | None) -> str:
    names = _model_names(config.get("configuration") or {})
    if model_name is None:
        return names[0]
    if model_name not in names and not config.get("isDefault"):
        raise ValueError(f"Model {model_name} is not configured")
    return model_name


def _anthropic(
    model: str, config: dict[str, Any], reasoning_effort: str | None, **extra: Any
) -> ChatAnthropic:
    configuration = config["configuration"]
    kwargs: dict[str, Any] = dict(extra)
    if not refuses_sampling(model):
        kwargs["temperature"] = 0.2
    if config.get("isReasoning"):
        effort = reasoning_effort or "high"
        kwargs["output_config"] = {"effort": "low" if effort == "none" else effort}
        kwargs["thinking"] = {"type": "adaptive"}
    return ChatAnthropic(  # type: ignore[call-arg]
        model=model,
        timeout=360.0,
        max_retries=2,
        api_key=configuration["apiKey"],
        max_tokens=max_tokens_for(model),
        **kwargs,
    )


def get_generator_model(
    provider: str, config: dict[str, Any], model_name: str | None = None, reasoning_effort: str | None = None
) -> BaseChatModel:
    model = _pick_model(config, model_name)
    if provider == "anthropic":
        return _anthropic(model, config, reasoning_effort)
    if provider == "azureAI":
        if "claude" in model:
            return _anthropic(model, config, reasoning_effort, base_url=config["configuration"]["endpoint"])
        return ChatOpenAI(responses=[f"azureAI:{model}"])
    if provider == "bedrock":
        return ChatBedrock(responses=[f"bedrock:{model}"])
    if provider == "vertexAI":
        if not model.startswith("gemini"):
            raise ValueError("vertexAI serves Gemini models only")
        return FakeListChatModel(responses=[f"vertexAI:{model}"])
    if provider in OTHER_PROVIDERS:
        return FakeListChatModel(responses=[f"{provider}:{model}"])
    raise ValueError(f"Unsupported provider type: {provider}")


async def get_generator_model_async(
    provider: str, config: dict[str, Any], model_name: str | None = None, reasoning_effort: str | None = None
) -> BaseChatModel:
    """Calls the module global, so wrapping ``get_generator_model`` wraps this too."""
    if provider == "bedrock":
        return await asyncio.to_thread(get_generator_model, provider, config, model_name, reasoning_effort)
    return get_generator_model(provider, config, model_name, reasoning_effort)


# -- the integration: the one line at the end of this module (docs/pipeshub.md) --------------
from app.config.llm_policy import POLICY_ENGINE  # noqa: E402
from engine import wrap_factory  # noqa: E402

get_generator_model = wrap_factory(get_generator_model, POLICY_ENGINE)  # type: ignore[assignment]
