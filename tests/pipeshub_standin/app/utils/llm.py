"""Stand-in for ``app/utils/llm.py``: models built in a worker thread; the role is never passed on."""

from __future__ import annotations

import asyncio
from typing import Any

from app.config.configuration_service import AI_MODELS, ConfigurationService
from app.utils.aimodels import get_generator_model


async def get_llm(
    config_service: ConfigurationService, llm_configs: list[dict[str, Any]] | None = None, *,
    reasoning_effort: str | None = None,
) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    if not llm_configs:
        llm_configs = (await config_service.get_config(AI_MODELS, use_cache=False))["llm"]
    if not llm_configs:
        raise ValueError("No LLM configurations found")
    ordered = [c for c in llm_configs if c.get("isDefault")] + [
        c for c in llm_configs if not c.get("isDefault")
    ]
    for config in ordered:
        llm = await asyncio.to_thread(get_generator_model, config["provider"], config, None, reasoning_effort)
        if llm:
            return llm, config
    raise ValueError("No LLM found")


async def get_llm_for_role(
    config_service: ConfigurationService, role: str, *, reasoning_effort: str | None = None
) -> tuple[Any, dict[str, Any]]:
    ai_models = await config_service.get_config(AI_MODELS, use_cache=False)
    assignment = (ai_models.get("modelRoles") or {}).get(role)
    if assignment:
        bucket = ai_models.get(assignment.get("modelType", ""), []) or []
        config = next((c for c in bucket if c.get("modelKey") == assignment.get("modelKey")), None)
        if config is not None:
            llm = await asyncio.to_thread(
                get_generator_model, config["provider"], config, None, reasoning_effort
            )
            return llm, config
    return await get_llm(config_service, reasoning_effort=reasoning_effort)
