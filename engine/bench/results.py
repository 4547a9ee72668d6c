"""A benchmark run's result: the JSON document, its goals, a markdown table and a PNG chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.bench.harness import ArmResult
from engine.plan._floor import lower_bound
from engine.plan._online import online_lower_bound
from engine.plan._plan import plan_policy
from engine.plan._trace import TraceRecord

__all__ = ["bench_document", "goals", "write_chart", "write_markdown"]

PEERS = ("langchain-middleware-5m", "langchain-middleware-1h", "litellm-auto", "sdk-batch")
TOLERANCE = 1e-9


def _base(name: str) -> tuple[str, int | None]:
    """``policy@q60`` -> ``("policy", 60)``; ``no-policy`` -> ``("no-policy", None)``."""
    arm, _, rate = name.partition("@q")
    return arm, int(rate) if rate else None


def _policy_runs(cost: dict[str, float]) -> dict[int | None, float]:
    return {q: c for name, c in cost.items() for arm, q in [_base(name)] if arm == "policy"}


def _peer_cost(cost: dict[str, float], peer: str, q: int | None) -> float | None:
    if q is not None and f"{peer}@q{q}" in cost:
        return cost[f"{peer}@q{q}"]
    return cost.get(peer)


def floors(
    trace: list[TraceRecord], rates: list[int | None], *, online: bool = False
) -> dict[int | None, float]:
    """The floor each policy run is held to: at its batch cache hit rate (``q30`` -> 0.3).

    A run under the emulator's per-batch draw (no fixed rate) is held to the floor
    that grants every batch read, the lowest one. ``online``: the floor for
    placements that cannot see the next pause (:func:`online_lower_bound`) instead
    of the clairvoyant one.
    """
    bound = online_lower_bound if online else lower_bound
    return {q: bound(trace, batch_hit_rate=1.0 if q is None else q / 100) for q in rates}


def goals(
    workload: str,
    arms: dict[str, dict[str, Any]],
    floor: float | dict[int | None, float],
    online: float | dict[int | None, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """The goals the benchmark reports against, each with its figures and whether it holds.

    Ratios are policy / other (one run). Where the workload sends batches, every
    figure is given per batch cache hit rate (``q30`` = 30%), and the policy is held
    to the floor at that hit rate (:func:`floors`); a single ``floor`` holds for all.
    ``online`` (the same shape): the floor for placements that cannot see the next
    pause, reported as a goal of its own beside the clairvoyant one.
    """
    cost = {name: float(a["cost_usd"]) for name, a in arms.items()}
    runs = _policy_runs(cost)
    if not runs:
        return {}
    bound = floor if isinstance(floor, dict) else dict.fromkeys(runs, floor)
    label = {q: ("all" if q is None else f"q{q}") for q in runs}
    vs_peers: dict[str, dict[str, float]] = {}
    no_better: list[str] = []
    for q, policy in runs.items():
        row: dict[str, float] = {}
        for peer in PEERS:
            other = _peer_cost(cost, peer, q)
            if other:
                row[peer] = round(policy / other, 4)
                if policy >= other * 0.999:
                    no_better.append(f"{peer} ({label[q]}: {policy / other:.3f})")
        vs_peers[label[q]] = row
    plain = cost.get("no-policy", 0.0)
    out: dict[str, dict[str, Any]] = {
        "policy_at_or_below_every_peer": {
            "ratios": vs_peers,
            "holds": all(r <= 1.0 + TOLERANCE for row in vs_peers.values() for r in row.values()),
        },
        "policy_never_above_no_policy": {
            "ratios": {label[q]: round(c / plain, 4) if plain else 0.0 for q, c in runs.items()},
            "holds": all(c <= plain + TOLERANCE for c in runs.values()),
        },
        "policy_within_5pct_of_lower_bound": {
            "ratios": {label[q]: round(c / bound[q], 4) if bound.get(q) else 0.0 for q, c in runs.items()},
            "holds": all(bound.get(q) and c / bound[q] <= 1.05 for q, c in runs.items()),
        },
    }
    if online is not None:
        near = online if isinstance(online, dict) else dict.fromkeys(runs, online)
        out["policy_within_5pct_of_online_lower_bound"] = {
            "ratios": {label[q]: round(c / near[q], 4) if near.get(q) else 0.0 for q, c in runs.items()},
            "holds": all(near.get(q) and c / near[q] <= 1.05 for q, c in runs.items()),
        }
    out["policy_no_better_than"] = {"peers": no_better, "holds": True}
    del workload
    return out


def _plan_figures(
    results: dict[str, ArmResult], trace: list[TraceRecord], policy_path: str
) -> dict[str, dict[str, Any]]:
    """Per policy run: the planner on the no-policy trace and on the run's own decision log, and
    ``report`` on that log, each against what the emulator billed."""
    out: dict[str, dict[str, Any]] = {}
    for name, result in results.items():
        if _base(name)[0] != "policy" or not result.cost_usd:
            continue
        billed = result.cost_usd
        rate = result.hit_rate
        figures: dict[str, Any] = {"billed_usd": round(billed, 6)}
        if trace:
            predicted = plan_policy(trace, policy_path, batch_hit_rate=rate).predicted.cost_usd
            figures["trace_predicted_usd"] = round(predicted, 6)
            figures["trace_error_pct"] = round(100.0 * (predicted - billed) / billed, 3)
        if result.log:
            predicted = plan_policy(result.log, policy_path).predicted.cost_usd
            figures["log_predicted_usd"] = round(predicted, 6)
            figures["log_error_pct"] = round(100.0 * (predicted - billed) / billed, 3)
        if result.report_usd is not None:
            figures["report_usd"] = round(result.report_usd, 6)
            figures["report_error_pct"] = round(100.0 * (result.report_usd - billed) / billed, 3)
        out[name] = figures
    return out


def bench_document(
    workload: str, results: dict[str, ArmResult], trace: list[TraceRecord], policy_path: str | None
) -> dict[str, Any]:
    """The JSON the ``bench`` command prints: arms, floor, planner/report errors, goals."""
    arms = {name: r.as_dict() for name, r in results.items()}
    rates = list(_policy_runs({n: 0.0 for n in results}))
    by_rate = floors(trace, rates) if trace else {}
    online_by_rate = floors(trace, rates, online=True) if trace else {}
    floor = by_rate[None] if None in by_rate else lower_bound(trace) if trace else 0.0
    online = online_by_rate[None] if None in online_by_rate else online_lower_bound(trace) if trace else 0.0
    doc: dict[str, Any] = {
        "workload": workload,
        "calls": len(trace) if trace else max((r.calls for r in results.values()), default=0),
        "arms": arms,
        "oracle_lower_bound_usd": round(floor, 6),
        "lower_bound_by_hit_rate": {f"q{q}": round(f, 6) for q, f in by_rate.items() if q is not None},
        "online_lower_bound_usd": round(online, 6),
        "online_lower_bound_by_hit_rate": {
            f"q{q}": round(f, 6) for q, f in online_by_rate.items() if q is not None
        },
    }
    if trace and policy_path is not None:
        doc["plan"] = _plan_figures(results, trace, policy_path)
        errors = [f.get("log_error_pct", f.get("trace_error_pct", 0.0)) for f in doc["plan"].values()]
        doc["plan_error_pct"] = max(errors, key=abs) if errors else 0.0
    doc["goals"] = goals(workload, arms, by_rate or floor, online_by_rate or online)
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
    lines += ["", f"Lower bound (provable floor): {doc['oracle_lower_bound_usd']:.4f} USD"]
    for label, value in (doc.get("lower_bound_by_hit_rate") or {}).items():
        lines.append(f"Lower bound when batch items read {label[1:]}% of the time: {value:.4f} USD")
    if doc.get("online_lower_bound_usd"):
        lines.append(
            f"Lower bound for placements that cannot see the next pause (expected cost): "
            f"{doc['online_lower_bound_usd']:.4f} USD"
        )
    lines.append("")
    for name, figures in (doc.get("plan") or {}).items():
        lines.append(f"Planner and report for `{name}`: {figures}")
    lines.append("")
    for goal, figures in doc["goals"].items():
        mark = "holds" if figures["holds"] else "DOES NOT HOLD"
        extra = ", ".join(f"{k}={v}" for k, v in figures.items() if k != "holds")
        lines.append(f"- {goal}: {mark}" + (f" ({extra})" if extra else ""))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_chart(doc: dict[str, Any], path: Path) -> Path:
    """A bar chart of cost per arm, with the lower bound as a line (dotted over each arm run at a
    batch hit rate: the floor at that rate)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(doc["arms"])
    costs = [doc["arms"][n]["cost_usd"] for n in names]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    palette = ["#888888", "#4c72b0", "#6f8fc7", "#55a868", "#8172b2", "#c44e52"]
    bars = ax.bar(names, costs, color=[palette[i % len(palette)] for i in range(len(names))])
    ax.axhline(doc["oracle_lower_bound_usd"], color="black", linestyle="--", label="lower bound")
    by_rate = doc.get("lower_bound_by_hit_rate") or {}
    label = "lower bound at the arm's batch hit rate"
    for i, name in enumerate(names):
        floor = by_rate.get(name.partition("@")[2])
        if floor is not None:
            ax.hlines(floor, i - 0.45, i + 0.45, colors="black", linestyles="dotted", label=label)
            label = "_"
    ax.bar_label(bars, labels=[f"${c:.2f}" for c in costs])
    ax.set_ylabel("USD (emulator billing)")
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    ax.set_title(f"{doc['workload']}: cost per arm ({doc['calls']} calls)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
