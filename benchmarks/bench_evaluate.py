"""How much a policy decision costs next to building the request it decides about.

The engine evaluates a policy on every LLM call, so its cost is measured against what
``ChatAnthropic._get_request_payload`` spends turning a typical conversation (system
prompt, bound tools, a few turns) into the API payload. The policy has 1,000 rules and
the call matches only the last one. Two ratios are printed:

* repeated: the same call context again (answered from the compiled policy's memo);
* never seen: a call site the policy has not answered before (the rule index, then the
  candidate rules' regexes).

Two more lines show how the rule index copes: 1,000 rules sharing the call site's prefix
and differing only by role (the role index narrows them), and the worst case, 1,000 rules
whose globs start and end with a wildcard (``*.feature7.*``), so the index cannot narrow
them: every rule is a candidate and runs its regex.

Run: ``python benchmarks/bench_evaluate.py`` (no network: the payload is a dict).
"""

from __future__ import annotations

import itertools
import timeit
from collections.abc import Callable

from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool

from engine.compile import compile_policy
from engine.decision import CallContext
from engine.evaluate import evaluate
from engine.policy import load_policy_text

RULES = 1000
TARGET = "indexing.doc_extraction.extract_metadata"


@tool
def search_documents(query: str, limit: int = 10) -> str:
    """Search the knowledge base and return matching passages."""
    return query[:limit]


def _policy_text(rule_lines: Callable[[int], str]) -> str:
    head = (
        "apiVersion: llm-policy/v1\nkind: OptimizationPolicy\nmetadata: {name: bench}\n"
        "spec:\n  enabled: true\n  rules:\n"
    )
    return head + "".join(rule_lines(i) for i in range(RULES))


def _distinct_sites(i: int) -> str:
    site = "indexing.doc_extraction.*" if i == RULES - 1 else f"service{i}.feature.*"
    return f"    - {{name: r{i}, match: {{callSite: '{site}', role: indexing}}, cache: {{mode: auto}}}}\n"


def _shared_prefix(i: int) -> str:
    role = "indexing" if i == RULES - 1 else f"role{i}"
    return f"    - {{name: r{i}, match: {{callSite: 'indexing.*', role: {role}}}, cache: {{mode: auto}}}}\n"


def _leading_wildcard(i: int) -> str:
    site = "indexing.doc_extraction.*" if i == RULES - 1 else f"*.feature{i}.*"
    return f"    - {{name: r{i}, match: {{callSite: '{site}'}}, cache: {{mode: auto}}}}\n"


def _payload_builder() -> Callable[[], object]:
    model = ChatAnthropic(model="claude-sonnet-4-6", api_key="sk-ant-dummy", max_tokens=4096)  # type: ignore[call-arg]
    bound = model.bind_tools([search_documents])
    messages: list[BaseMessage] = [
        SystemMessage("You are PipesHub's assistant. Answer from the company's documents. " * 20),
        HumanMessage("What does the travel policy say about train tickets?"),
        AIMessage("The policy allows second-class tickets for trips under four hours."),
        HumanMessage("And for longer trips?"),
    ]
    kwargs = bound.kwargs  # type: ignore[attr-defined]
    return lambda: model._get_request_payload(messages, **kwargs)


def _best(fn: Callable[[], object], number: int) -> float:
    """Seconds per call: the best of five runs, so noise from a shared machine counts least."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number


def _never_seen(text: str) -> float:
    compiled = compile_policy(load_policy_text(text))
    counter = itertools.count()

    def fresh() -> object:
        return evaluate(compiled, CallContext(f"{TARGET}.v{next(counter)}", role="indexing"))

    assert fresh().rule == f"r{RULES - 1}"
    return _best(fresh, 2000)


def _line(label: str, seconds: float, payload: float, goal: str = "") -> str:
    return f"{label:<36}{seconds * 1e6:9.2f} us  ratio {seconds / payload:7.3f}{goal}"


def main() -> None:
    payload = _best(_payload_builder(), 500)
    text = _policy_text(_distinct_sites)
    compiled = compile_policy(load_policy_text(text))
    ctx = CallContext(TARGET, role="indexing", provider="anthropic", model="claude-sonnet-4-6")
    assert evaluate(compiled, ctx).rule == f"r{RULES - 1}"
    repeated = _best(lambda: evaluate(compiled, ctx), 20000)
    unseen = _never_seen(text)
    print(f"{'ChatAnthropic._get_request_payload':<36}{payload * 1e6:9.2f} us per request")
    print(_line("evaluate, repeated context", repeated, payload, "  (goal <= 0.1)"))
    print(_line("evaluate, never-seen call site", unseen, payload, "  (goal <= 0.5)"))
    print(_line("  same prefix, rules differ by role", _never_seen(_policy_text(_shared_prefix)), payload))
    print(_line("  worst case: 1,000 candidates", _never_seen(_policy_text(_leading_wildcard)), payload))
    stages = ", ".join(f"{name} {seconds * 1e3:.1f} ms" for name, seconds in compiled.stages)
    print(f"compile of {RULES} rules: {stages}")


if __name__ == "__main__":
    main()
