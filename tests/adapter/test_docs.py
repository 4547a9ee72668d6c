"""docs/pipeshub.md, run line by line against the stand-in host and the emulator.

The Python blocks are executed in order in one namespace (PipesHub's module), the YAML
block is the operator's policy, and each ``$ llm-policy ...`` console line is run
through the CLI, so the guide's steps are exactly what this test does.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from engine.adapter import wrap_factory
from engine.cli import main as cli
from tests.adapter.patterns import SYSTEM, search_knowledge_base
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model, get_generator_model_async
from tests.adapter.pipeshub_host import load_host

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "pipeshub.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)


def blocks(lang: str) -> list[str]:
    return [code for kind, code in BLOCK.findall(GUIDE.read_text(encoding="utf-8")) if kind == lang]


async def run_python(code: str, namespace: dict[str, Any]) -> None:
    result = eval(compile(code, str(GUIDE), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT), namespace)
    if inspect.iscoroutine(result):
        await result


def run_console(line: str) -> None:
    argv = shlex.split(os.path.expandvars(line.removeprefix("$ ")))
    assert argv[0] == "llm-policy"
    assert cli(argv[1:]) == 0, line


def console_lines(command: str) -> list[str]:
    return [ln for block in blocks("console") for ln in block.splitlines() if ln.startswith(f"$ {command}")]


def records(path: Path) -> list[dict[str, Any]]:
    return (
        [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    )


async def test_the_guide_turns_one_call_site_on_and_off(
    anthropic_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guide's lines in the stand-in host: off, one call site on by its resolved id, off again."""
    log = tmp_path / "decisions.jsonl"
    monkeypatch.setenv("LLM_POLICY_STORE", f"sqlite:///{tmp_path}/policies.db")
    monkeypatch.setenv("LLM_POLICY_DECISION_LOG", str(log))
    monkeypatch.chdir(tmp_path)
    (migrate,) = console_lines("llm-policy migrate")
    run_console(migrate)  # creates the store, seeds pipeshub-default (disabled)

    built: list[Any] = []

    def factory(
        provider: str,
        config: dict[str, Any],
        model_name: str | None = None,
        reasoning_effort: str | None = None,
    ) -> Any:
        built.append(get_generator_model(provider, config, model_name, reasoning_effort))
        return built[-1]

    factory.__doc__ = get_generator_model.__doc__
    aimodels: dict[str, Any] = {
        "get_generator_model": factory,
        "get_generator_model_async": get_generator_model_async,
    }
    setup, handler, shutdown = blocks("python")
    await run_python(setup, aimodels)
    config = ai_model_config(models="claude-sonnet-4-6")
    assert aimodels["get_generator_model"]("anthropic", config) is built[-1]  # seeded: off
    assert (
        wrap_factory(aimodels["get_generator_model"], aimodels["POLICY_ENGINE"])
        is aimodels["get_generator_model"]
    )

    (policy,) = blocks("yaml")
    (tmp_path / "agent.yaml").write_text(policy, encoding="utf-8")
    (publish,) = console_lines("llm-policy publish")
    run_console(publish)
    await run_python(handler, aimodels)
    await aimodels["on_llm_configured"]({"event": "llmConfigured"})

    llm = aimodels["get_generator_model"]("anthropic", config)
    assert llm is not built[-1] and isinstance(llm, type(built[-1]))
    host = load_host(aimodels["POLICY_ENGINE"])
    transport = host["app.agents.agent_loop.langchain_transport"].LangChainTransport(llm)
    history = [HumanMessage("Find the travel policy.")]
    for _ in range(2):
        await transport.complete(SYSTEM, history, [search_knowledge_base])
    aimodels["POLICY_ENGINE"].log.flush()
    written = records(log)
    site = "app.agents.agent_loop.langchain_transport.LangChainTransport.complete"
    assert [(r["call_site"], r["rule"]) for r in written] == [(site, "agent")] * 2
    assert written[1]["usage"]["cache_read_input_tokens"] > 0
    (watch,) = console_lines("tail")
    for field in [
        *re.findall(r"\.(\w+(?:\.\w+)*)", watch.split("jq", 1)[1]),
        "call_site",
        "rule",
        "strategy",
    ]:
        value: Any = written[1]
        for part in field.split("."):
            value = value[part]
        assert value is not None

    (disable,) = console_lines("llm-policy disable")
    run_console(disable)
    await aimodels["on_llm_configured"]({"event": "llmConfigured"})
    assert aimodels["get_generator_model"]("anthropic", config) is built[-1]  # off again
    await run_python(shutdown, aimodels)
    await aimodels["on_shutdown"]()
