"""The Redis pooling sections of docs/pipeshub.md and docs/strategies.md say what the code does."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from engine.adapter.engine import JOURNAL_ENV
from engine.pool.connect import parse_redis_url
from engine.providers.anthropic.capabilities import capabilities

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _section(doc: str, title: str) -> str:
    text = (DOCS / doc).read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 3)
    return text[start : end if end != -1 else len(text)]


def test_the_pipeshub_setting_names_the_engines_variable_and_a_url_it_takes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    section = _section("pipeshub.md", "Pooling across replicas on PipesHub's Redis")
    [block] = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    [line] = [ln for ln in block.splitlines() if not ln.startswith("#")]
    name, value = line.split("=", 1)
    assert name == JOURNAL_ENV
    for key, val in {"REDIS_PASSWORD": "secret", "REDIS_HOST": "redis", "REDIS_PORT": "6379"}.items():
        monkeypatch.setenv(key, val)
    target = parse_redis_url(os.path.expandvars(value))
    assert target.prefix == "{llm-policy}:" and not target.cluster
    for url in re.findall(r"`(rediss?://[^`]+)`", section):
        parse_redis_url(url.replace("host:port", "h:1"))


def test_the_strategies_section_quotes_the_queue_limit_of_the_data_file() -> None:
    section = _section("strategies.md", "Pooling across replicas on Redis")
    limit = int(capabilities().limits["batch_queue_max_requests"])
    assert f"{limit:,}" in section and "batch_queue_max_requests" in section
