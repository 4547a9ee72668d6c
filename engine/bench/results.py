"""A benchmark run's result: the JSON document, its goals, a markdown table and a PNG chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.bench.harness import ArmResult
from engine.plan._bound import lower_bound
from engine.plan._plan import plan_policy
from engine.plan._trace import TraceRecord

__all__ = ["bench_document", "goals", "write_chart", "write_markdown"]

PEERS = ("langchain-middleware", "litellm-system")


def goals(workload: str, arms: dict[str, dict[str, Any]], floor: float) -> dict[str, dict[str, Any]]:
    """The goals the benchmark reports against, each with its figures and whether it holds."""
    cost = {name: float(a["cost_usd"]) for name, a in arms.items()}
    out: dict[str, dict[str, Any]] = {}
    policy = cost.get("policy")
    if policy is None:
        return out
    if workload == "indexing" and "no-policy" in cost:
        ratio = policy / cost["no-policy"] if cost["no-policy"] else 0.0
        out["policy_at_most_0.30_of_no_policy"] = {"ratio": round(ratio, 4), "holds": ratio <= 0.30}
    if workload == "agent":
        peers = [cost[p] for p in PEERS if p in cost]
        if peers:
            out["policy_at_most_best_peer"] = {
                "best_peer_usd": round(min(peers), 6),
                "holds": policy <= min(peers),
            }
    if workload == "retrieval" and "no-policy" in cost:
        out["policy_never_above_no_policy"] = {"holds": policy <= cost["no-policy"] + 1e-9}
    ratio = policy / floor if floor else 0.0
    out["policy_within_10pct_of_lower_bound"] = {"ratio": round(ratio, 4), "holds": ratio <= 1.10}
    return out


def bench_document(
    workload: str, results: dict[str, ArmResult], trace: list[TraceRecord], policy_path: str | None
) -> dict[str, Any]:
    """The JSON the ``bench`` command prints (the issue's shape, plus plan and goals)."""
    arms = {name: r.as_dict() for name, r in results.items()}
    floor = lower_bound(trace) if trace else 0.0
    doc: dict[str, Any] = {
        "workload": workload,
        "calls": len(trace) if trace else max((r.calls for r in results.values()), default=0),
        "arms": arms,
        "oracle_lower_bound_usd": round(floor, 6),
    }
    if trace and policy_path is not None:
        predicted = plan_policy(trace, policy_path).predicted.cost_usd
        doc["plan"] = {"policy_predicted_usd": round(predicted, 6)}
        if "policy" in results and results["policy"].cost_usd:
            billed = results["policy"].cost_usd
            doc["plan"]["error_pct"] = round(100.0 * (predicted - billed) / billed, 3)
    doc["goals"] = goals(workload, arms, floor)
    return doc


def _fmt_int(n: Any) -> str:
    return f"{int(n):,}"


def write_markdown(doc: dict[str, Any], path: Path) -> Path:
    """A table of the arms and the goals."""
    base = doc["arms"].get("no-policy", {}).get("cost_usd") or 0.0
    lines = [
        f"# Benchmark: {doc['workload']} ({doc['calls']} calls)",
        "",
        "| arm | cost USD | vs no-policy | input | cache write | cache read | output | batch share "
        "| wall s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, a in doc["arms"].items():
        rel = f"{a['cost_usd'] / base:.3f}x" if base else "-"
        lines.append(
            f"| {name} | {a['cost_usd']:.4f} | {rel} | {_fmt_int(a['input_tokens'])} | "
            f"{_fmt_int(a['cache_write_tokens'])} | {_fmt_int(a['cache_read_tokens'])} | "
            f"{_fmt_int(a['output_tokens'])} | {a['batch_share']:.0%} | {a['wall_s']:.1f} |"
        )
    lines += ["", f"Lower bound (provable floor): {doc['oracle_lower_bound_usd']:.4f} USD", ""]
    if "plan" in doc:
        lines.append(f"Planner prediction for `policy`: {doc['plan']}")
        lines.append("")
    for goal, figures in doc["goals"].items():
        mark = "holds" if figures["holds"] else "DOES NOT HOLD"
        extra = ", ".join(f"{k}={v}" for k, v in figures.items() if k != "holds")
        lines.append(f"- {goal}: {mark}" + (f" ({extra})" if extra else ""))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_chart(doc: dict[str, Any], path: Path) -> Path:
    """A bar chart of cost per arm, with the lower bound as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(doc["arms"])
    costs = [doc["arms"][n]["cost_usd"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 4))
    bars = ax.bar(names, costs, color=["#888888", "#4c72b0", "#55a868", "#c44e52"][: len(names)])
    ax.axhline(doc["oracle_lower_bound_usd"], color="black", linestyle="--", label="lower bound")
    ax.bar_label(bars, labels=[f"${c:.2f}" for c in costs])
    ax.set_ylabel("USD (emulator billing)")
    ax.set_title(f"{doc['workload']}: cost per arm ({doc['calls']} calls)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
