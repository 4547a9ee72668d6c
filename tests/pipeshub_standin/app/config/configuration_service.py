"""Stand-in for PipesHub's configuration service: the AI-models blob, already decrypted."""

from __future__ import annotations

import copy
from typing import Any

AI_MODELS = "/services/aiModels"


class ConfigurationService:
    def __init__(self, ai_models: dict[str, Any]) -> None:
        self._ai_models = ai_models

    async def get_config(self, key: str, use_cache: bool = True) -> Any:
        if key != AI_MODELS:
            raise KeyError(key)
        return copy.deepcopy(self._ai_models)


def llm_entry(model: str = "claude-sonnet-4-6", provider: str = "anthropic", **flags: Any) -> dict[str, Any]:
    """One ``llm`` entry of the blob."""
    entry: dict[str, Any] = {
        "provider": provider,
        "configuration": {"model": model, "apiKey": "sk-ant-test"},
        "modelKey": f"key-{model}",
        "isDefault": True,
        "isMultimodal": True,
        "isReasoning": False,
        "contextLength": 200000,
    }
    entry.update(flags)
    return entry


def ai_models(*entries: dict[str, Any], roles: dict[str, str] | None = None) -> dict[str, Any]:
    """The blob: ``llm`` entries and ``modelRoles`` (role -> modelKey of an llm entry)."""
    llm = list(entries) or [llm_entry()]
    assigned = {role: {"modelType": "llm", "modelKey": key} for role, key in (roles or {}).items()}
    return {
        "llm": llm,
        "embedding": [],
        "ocr": [],
        "slm": [],
        "reasoning": [],
        "multiModal": [],
        "modelRoles": assigned,
    }
