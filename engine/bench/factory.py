"""A stand-in for PipesHub's model factory, pointed at the emulator (or the real API).

Same signature and config shape as PipesHub's ``app/utils/aimodels.get_generator_model``
(PIPESHUB.md); only the base URL is ours to choose. The demo and the benchmark
wrap it with :func:`engine.adapter.wrap_factory` exactly as PipesHub would.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel

__all__ = ["Factory", "model_config", "pipeshub_factory"]

Factory = Callable[..., BaseChatModel]


def model_config(api_key: str, model: str) -> dict[str, Any]:
    """One entry of PipesHub's AI-models config for an Anthropic model."""
    return {
        "provider": "anthropic",
        "configuration": {"apiKey": api_key, "model": model},
        "modelKey": str(uuid.uuid5(uuid.NAMESPACE_URL, f"llm-policy/{model}")),
        "isDefault": True,
        "isMultimodal": True,
        "isReasoning": False,
    }


def _max_tokens(model: str) -> int:
    if "opus-4-0" in model or model.startswith("claude-opus-4-1"):
        return 4096
    return 16384 if "haiku" in model else 64000


def pipeshub_factory(base_url: str | None) -> Factory:
    """``get_generator_model`` with PipesHub's anthropic branch; ``base_url`` None = the real API."""

    def get_generator_model(
        provider: str,
        config: dict[str, Any],
        model_name: str | None = None,
        reasoning_effort: str | None = None,
    ) -> BaseChatModel:
        """Build the chat model for one configured provider (only ``anthropic`` here)."""
        if provider != "anthropic":
            raise ValueError(f"Unsupported provider type: {provider}")
        configuration = config["configuration"]
        model = model_name or str(configuration["model"]).split(",")[0].strip()
        extra: dict[str, Any] = {"base_url": base_url} if base_url else {}
        return ChatAnthropic(  # type: ignore[call-arg]
            model=model,
            timeout=360.0,
            max_retries=2,
            api_key=configuration["apiKey"],
            max_tokens=_max_tokens(model),
            temperature=0.2,
            **extra,
        )

    return get_generator_model
