"""A stand-in for PipesHub's model factory (``app/utils/aimodels.py``), written for these tests.

It has the factory's exact signature and reads the same config shape (one entry of
the AI-models config), so the adapter is exercised the way PipesHub calls it.
Claude comes back as ``ChatAnthropic`` (``anthropic``, and ``azureAI`` with a custom
endpoint); other providers return a LangChain fake chat model standing in for their
own classes, which the engine must leave alone.
"""

from __future__ import annotations

from typing import Any

from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel

PROVIDERS = (
    "anthropic",
    "bedrock",
    "azureAI",
    "azureOpenAI",
    "cohere",
    "fireworks",
    "gemini",
    "groq",
    "litellmProxy",
    "lmStudio",
    "minimax",
    "mistral",
    "ollama",
    "openAI",
    "openAICompatible",
    "openRouter",
    "together",
    "vertexAI",
    "xai",
)


def _max_tokens(model: str) -> int:
    if model.startswith("claude-3-haiku"):
        return 4096
    if model.startswith(("claude-opus-4-0", "claude-opus-4-1", "claude-3")):
        return 16384
    return 64000


def _default_model(configuration: dict[str, Any]) -> str:
    return str(configuration["model"]).split(",")[0].strip()


def get_generator_model(
    provider: str,
    config: dict[str, Any],
    model_name: str | None = None,
    reasoning_effort: str | None = None,
) -> BaseChatModel:
    """Build the chat model for one entry of the AI-models config (``provider`` names its branch)."""
    if provider not in PROVIDERS:
        raise ValueError(f"Unsupported provider type: {provider}")
    configuration = config["configuration"]
    model = model_name or _default_model(configuration)
    if provider in ("anthropic", "azureAI"):
        extra: dict[str, Any] = {}
        if provider == "azureAI":
            extra["base_url"] = configuration["endpoint"]
        if not config.get("isReasoning"):
            extra["temperature"] = 0.2
        if reasoning_effort is not None:
            extra["reasoning_effort"] = reasoning_effort
        return ChatAnthropic(
            model=model,
            timeout=360.0,
            max_retries=2,
            api_key=configuration["apiKey"],
            max_tokens=_max_tokens(model),
            **extra,
        )
    return FakeListChatModel(responses=[f"{provider}:{model}"])


async def get_generator_model_async(
    provider: str,
    config: dict[str, Any],
    model_name: str | None = None,
    reasoning_effort: str | None = None,
) -> BaseChatModel:
    """The async twin: same parameters, same models."""
    return get_generator_model(provider, config, model_name, reasoning_effort)


def ai_model_config(
    provider: str = "anthropic", models: str = "claude-sonnet-4-6", **configuration: Any
) -> dict[str, Any]:
    """One entry of the AI-models config, as PipesHub stores it."""
    return {
        "provider": provider,
        "configuration": {"apiKey": "sk-ant-test", "model": models, **configuration},
        "modelKey": "7b6f3c1e-2d4a-4f0e-9d8c-5a1b2c3d4e5f",
        "isDefault": True,
        "isMultimodal": True,
        "isReasoning": False,
        "contextLength": 200000,
        "modelFriendlyName": "Claude",
    }
