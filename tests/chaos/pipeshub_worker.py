"""A PipesHub worker process: the engine around the model factory, pooled ``ainvoke`` calls.

``python -m tests.chaos.pipeshub_worker POLICY PROMPTS_JSON``, started in the folder both
workers share: the engine's journal is its default, ``./.llm-policy/state.db`` there.
Reads ``ANTHROPIC_BASE_URL`` like ChatAnthropic does. Prints one JSON line:
``{prompt: answer text | "error: ..."}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from engine.adapter import PolicyEngine, wrap_factory
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model

CALL_SITE = {"metadata": {"call_site": "indexing.doc_extraction.fallback_summary"}}


def text_of(message: Any) -> str:
    content = message.content
    return content if isinstance(content, str) else str(content[0]["text"])


async def ask_all(engine: PolicyEngine, prompts: list[str], base_url: str | None = None) -> dict[str, str]:
    llm = wrap_factory(get_generator_model, engine)("anthropic", ai_model_config())
    if base_url is not None:  # a client of this loop's own (LangChain shares one per URL and process)
        llm = llm.model_copy(update={"anthropic_api_url": base_url})
    outcomes = await asyncio.gather(
        *(llm.ainvoke(p, config=CALL_SITE) for p in prompts), return_exceptions=True
    )
    return {
        p: f"error: {o!r}" if isinstance(o, BaseException) else text_of(o)
        for p, o in zip(prompts, outcomes, strict=True)
    }


async def main(policy: str, prompts: list[str]) -> None:
    engine = PolicyEngine.from_file(policy, batch_poll_interval=0.05)
    answers = await ask_all(engine, prompts)
    await engine.aclose()
    print(json.dumps(answers), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))))
