"""Works on PipesHub's pins and on the newest releases: no private LangChain name, the same errors.

CI runs the suite on both dependency sets (ci/lowest.txt and the newest releases), so every
test here checks the behaviour of whichever langchain-anthropic is installed.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import anthropic
import pytest
from langchain_anthropic import ChatAnthropic

from engine.adapter.errors import raise_as_langchain

ROOT = Path(__file__).resolve().parents[2]


def _private_langchain_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("langchain"):
            names = [a.name for a in node.names if a.name.startswith("_")]
            if names or any(part.startswith("_") for part in node.module.split(".")):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} from {node.module} import {names}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0].startswith("langchain") and any(p.startswith("_") for p in parts):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} import {alias.name}")
    return found


def test_no_private_langchain_name_is_imported_anywhere() -> None:
    """A private name moves between releases: PipesHub's pinned 1.5.3 lacks some of today's."""
    files = [p for d in ("engine", "tests", "benchmarks") for p in (ROOT / d).rglob("*.py")]
    assert files
    offending = [hit for f in files for hit in _private_langchain_imports(f)]
    assert offending == []


def _direct_error(llm: Any, messages: Any, **kwargs: Any) -> BaseException:
    with pytest.raises(Exception) as caught:
        llm.invoke(messages, **kwargs)
    return caught.value


def _sdk_error(raised: BaseException) -> BaseException:
    """The SDK error behind what ChatAnthropic raised (newer releases wrap it, 1.5 does not)."""
    cause = raised.__cause__
    return cause if isinstance(cause, anthropic.APIError) else raised


def _assert_translated_alike(raised: BaseException) -> None:
    sdk = _sdk_error(raised)
    assert isinstance(sdk, anthropic.APIError)
    with pytest.raises(BaseException) as again:
        raise_as_langchain(sdk)
    assert type(again.value) is type(raised)
    assert getattr(again.value, "status_code", None) == getattr(raised, "status_code", None)


def test_bad_request_raises_what_chatanthropic_raises(anthropic_env: Any) -> None:
    llm = ChatAnthropic(model="claude-sonnet-4-6", api_key="sk-ant-test", max_retries=0)  # type: ignore[call-arg]
    raised = _direct_error(llm.bind(tool_choice={"type": "any"}), "hello")
    assert isinstance(raised, anthropic.BadRequestError)
    _assert_translated_alike(raised)


def test_server_faults_raise_what_chatanthropic_raises(anthropic_env: Any) -> None:
    """429, 529, 500 and a dropped connection, each as the installed release classifies it."""
    anthropic_env.state.config.update({"fault_rate": 1.0, "retry_after_s": 0})
    llm = ChatAnthropic(model="claude-sonnet-4-6", api_key="sk-ant-test", max_retries=0)  # type: ignore[call-arg]
    seen: set[type[BaseException]] = set()
    for _ in range(40):
        raised = _direct_error(llm, "hello")
        seen.add(type(_sdk_error(raised)))
        if isinstance(_sdk_error(raised), anthropic.APIStatusError):
            _assert_translated_alike(raised)
        else:
            with pytest.raises(BaseException) as again:
                raise_as_langchain(_sdk_error(raised))
            assert type(again.value) is type(raised)
    assert {anthropic.RateLimitError, anthropic.InternalServerError} <= seen


OPTIONAL_MISSING = """
import logging, sys
for name in ("etcd3gw", "redis"):
    sys.modules[name] = None  # the optional store clients are not installed
warnings = []
class Keep(logging.Handler):
    def emit(self, record):
        warnings.append(record.getMessage())
logging.getLogger().addHandler(Keep(level=logging.WARNING))
from engine import PolicyEngine, wrap_factory
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model
engine = PolicyEngine.from_store(sys.argv[1], name="pipeshub-default", poll_interval=0)
model = wrap_factory(get_generator_model, engine)("anthropic", ai_model_config())
print(engine.enabled, type(model).__mro__[1].__name__, len(warnings))
"""


@pytest.mark.parametrize("url", ["etcd://127.0.0.1:9/", "redis://127.0.0.1:9/0"])
def test_a_missing_optional_client_leaves_the_engine_off_with_one_warning(url: str) -> None:
    """The host imports and builds its models; the engine is off and says why once."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", OPTIONAL_MISSING, url], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    enabled, parent, warned = done.stdout.split()
    assert (enabled, parent, warned) == ("False", "BaseChatModel", "1")  # the factory's own ChatAnthropic
