"""A replay decides batch markers with the hit rate the engine would have learned by then."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.compile import compile_policy
from engine.plan import policy_placer, record_from_payload, replay
from engine.plan._trace import TraceRecord
from engine.policy import load_policy

SITE = "indexing.doc_extraction.extract_metadata"
SYSTEM = "Extract departments, categories, sentiment and a summary of the document. " * 70
POLICY = """\
apiVersion: llm-policy/v1
kind: OptimizationPolicy
metadata: {name: learning}
spec:
  enabled: true
  rules:
    - name: indexing
      match: {callSite: "indexing.*"}
      cache: {mode: explicit, ttl: 5m, breakpoints: [system]}
      batch: {mode: accumulate, maxRequests: 8, maxWait: 30s}
"""


def _batches(count: int) -> list[TraceRecord]:
    """``count`` batches of eight documents sharing a system prompt, 100 s apart."""
    return [
        record_from_payload(
            {
                "model": "claude-sonnet-4-6",
                "system": SYSTEM,
                "messages": [{"role": "user", "content": f"doc {k}"}],
            },
            ts=100.0 * b + 0.01 * k,
            call_site=SITE,
            output_tokens=40,
            latency="awaitable",
        )
        for b in range(count)
        for k in range(8)
    ]


def _marked(tmp_path: Path, rate: float) -> list[tuple[int, int]]:
    """Per batch, how many of its items wrote and how many read, replayed at batch hit rate ``rate``."""
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(POLICY), encoding="utf-8")
    calls = replay(_batches(3), policy_placer(compile_policy(load_policy(str(path)))), batch_hit_rate=rate)
    batches = [calls[8 * b : 8 * b + 8] for b in range(3)]
    return [
        (sum(c.usage.cache_write_tokens > 0 for c in b), sum(c.usage.cache_read_tokens > 0 for c in b))
        for b in batches
    ]


@pytest.mark.parametrize(
    ("rate", "marked"),
    [
        # the first batch has nothing to read and writes; the second reads nothing of it and
        # writes again, so the site's rate falls from the engine's even prior to 1 in 10:
        # the third goes without markers
        (0.0, [(8, 0), (8, 0), (0, 0)]),
        # the second batch reads: the rate rises and the third is marked and reads too
        (1.0, [(8, 0), (0, 8), (0, 8)]),
    ],
)
def test_markers_follow_the_rate_learned_from_earlier_batches(
    tmp_path: Path, rate: float, marked: list[tuple[int, int]]
) -> None:
    assert _marked(tmp_path, rate) == marked
