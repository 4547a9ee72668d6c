"""``llm-policy bench`` end to end on small seeded workloads (the full sizes are benchmark runs).

Every arm runs through real code against an in-process emulator; the figures come
from its billing. The planner, replaying the trace recorded by the no-policy arm,
must predict the policy arm's bill within 2%, and no arm may pay less than the
lower bound.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main

POLICY = Path(__file__).resolve().parents[2] / "policies" / "examples" / "pipeshub-savings.yaml"
ARMS = {
    "no-policy",
    "langchain-middleware-5m",
    "langchain-middleware-1h",
    "litellm-auto",
    "sdk-batch",
    "policy",
}
FIELDS = {
    "cost_usd",
    "input_tokens",
    "cache_write_tokens",
    "cache_read_tokens",
    "output_tokens",
    "batch_share",
    "wall_s",
}


def _fast_policy(tmp_path: Path) -> Path:
    """The shipped policy with a 1 s pool wait, so a small test does not idle."""
    path = tmp_path / "policy.yaml"
    path.write_text(
        POLICY.read_text(encoding="utf-8").replace("maxWait: 2s", "maxWait: 1s"), encoding="utf-8"
    )
    return path


def _bench(
    tmp_path: Path, capsys: Any, workload: str, scale: float, rates: str = "0.98"
) -> tuple[int, dict[str, Any]]:
    code = main(
        [
            "bench",
            "--hit-rates",
            rates,
            "--workload",
            workload,
            "--scale",
            str(scale),
            "--format",
            "json",
            "--policy",
            str(_fast_policy(tmp_path)),
            "--results",
            str(tmp_path / "results"),
        ]
    )
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("workload", "scale"),
    [("indexing", 0.012), ("agent", 0.04), ("retrieval", 0.01), ("pipeshub-indexing", 0.03)],
)
def test_bench_arms_plan_and_floor(tmp_path: Path, capsys: Any, workload: str, scale: float) -> None:
    code, doc = _bench(tmp_path, capsys, workload, scale)
    assert doc["workload"] == workload and doc["calls"] > 0
    batches = workload.endswith("indexing")
    expected = {f"{a}@q98" if batches and a in ("sdk-batch", "policy") else a for a in ARMS}
    assert set(doc["arms"]) == expected and all(set(a) >= FIELDS for a in doc["arms"].values())
    assert all(a["settings"] for a in doc["arms"].values()), "every arm is named with its settings"
    costs = {name: a["cost_usd"] for name, a in doc["arms"].items()}
    policy = costs["policy@q98" if batches else "policy"]
    assert all(c >= doc["oracle_lower_bound_usd"] - 1e-9 for c in costs.values())
    assert doc["online_lower_bound_usd"] > 0 and "policy_within_5pct_of_online_lower_bound" in doc["goals"]
    assert policy <= costs["no-policy"]
    for figures in doc["plan"].values():
        assert abs(figures["log_error_pct"]) <= 2.0, "plan on the policy's own decision log"
        assert abs(figures["report_error_pct"]) <= 1.0, "report on the log against the bill"
    assert code == (0 if all(g["holds"] for g in doc["goals"].values()) else 1)
    assert sorted(Path(f).suffix for f in doc["files"]) == [".md", ".png"]
    assert all(Path(f).stat().st_size > 0 for f in doc["files"])
    if workload == "indexing":  # pooled into batches, the shared prompt read from the cache
        arm, plain = doc["arms"]["policy@q98"], doc["arms"]["no-policy"]
        assert arm["batch_share"] > 0.9 and plain["batch_share"] == 0.0
        assert arm["cache_read_tokens"] > 0
