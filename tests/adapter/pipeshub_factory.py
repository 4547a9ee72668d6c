"""PipesHub's model factory for the tests: the stand-in's own (``app.utils.aimodels``), unwrapped.

The stand-in (tests/pipeshub_standin) follows the facts of PipesHub's factory: validation,
the max_tokens table, temperature and reasoning rules, the azureAI rule, the async twin
that calls the module global. Tests wrap ``get_generator_model`` themselves.
"""

from __future__ import annotations

from typing import Any

from tests.adapter.pipeshub_host import standin_on_path

standin_on_path()

from app.utils import aimodels  # noqa: E402

#: The factory as PipesHub defines it, before the integration line wraps it.
get_generator_model = aimodels.get_generator_model.__wrapped__
get_generator_model_async = aimodels.get_generator_model_async
PROVIDERS = ("anthropic", "azureAI", "bedrock", "vertexAI", *sorted(aimodels.OTHER_PROVIDERS))


def ai_model_config(
    provider: str = "anthropic", models: str | None = None, **configuration: Any
) -> dict[str, Any]:
    """One entry of the AI-models config, as PipesHub stores it."""
    if models is None:
        models = "gemini-2.5-pro" if provider == "vertexAI" else "claude-sonnet-4-6"
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
