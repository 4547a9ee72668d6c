"""Render docs/dashboard.png: the panels of docs/dashboard.json, drawn from a demo run.

What the picture is: the PipesHub-like ``mixed`` workload runs through the shipped
policy on the emulator with :class:`engine.telemetry.Telemetry` attached; a thread
reads the Prometheus registry every 0.25 s (as a scrape would) and matplotlib draws
each panel of the Grafana dashboard at its grid position, from those samples. It is
not a Grafana screenshot: counters are drawn as cumulative values over the run's wall
time (the emulator compresses the workload's pauses), and the latency panels show the
quantiles of the whole run, computed from the histogram buckets as
``histogram_quantile`` does.

Run: ``python benchmarks/render_dashboard.py [--scale 1] [--out docs/dashboard.png]``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from engine._resources import resource_path
from engine.bench.harness import run_arms
from engine.bench.workloads import build_workload
from engine.emulator import run_emulator
from engine.telemetry import Telemetry

ROOT = Path(__file__).resolve().parents[1]
Sample = tuple[float, dict[tuple[str, tuple[tuple[str, str], ...]], float]]


def _read(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for m in registry.collect() for s in m.samples}


def record_run(scale: float) -> list[Sample]:
    """Samples of the registry over a policy run of the mixed workload."""
    registry = CollectorRegistry()
    telemetry = Telemetry(registry=registry)
    samples: list[Sample] = []
    done = threading.Event()
    start = time.perf_counter()

    def scrape() -> None:
        while not done.wait(0.25):
            samples.append((time.perf_counter() - start, _read(registry)))

    thread = threading.Thread(target=scrape, daemon=True)
    policy = resource_path("policies/examples/pipeshub-savings.yaml")
    with run_emulator(port=0) as emu:
        thread.start()
        run_arms(
            build_workload("mixed", scale=scale), emu.base_url, policy, arms=("policy",), telemetry=telemetry
        )
    done.set()
    thread.join()
    samples.append((time.perf_counter() - start, _read(registry)))
    return samples


def _series(samples: list[Sample], name: str, by: str) -> dict[str, tuple[list[float], list[float]]]:
    out: dict[str, tuple[list[float], list[float]]] = {}
    for at, values in samples:
        totals: dict[str, float] = defaultdict(float)
        for (metric, labels), value in values.items():
            if metric == name:
                totals[dict(labels).get(by, name)] += value
        for key, value in totals.items():
            xs, ys = out.setdefault(key, ([], []))
            xs.append(at)
            ys.append(value)
    return out


def quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """``histogram_quantile`` over cumulative (upper bound, count) buckets."""
    total = buckets[-1][1]
    if total == 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = upper, count
    return lower


def _quantiles(samples: list[Sample], name: str, by: str | None) -> dict[str, dict[str, float]]:
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for (metric, labels), value in samples[-1][1].items():
        if metric == f"{name}_bucket":
            label = dict(labels)
            groups[label.get(by, "all") if by else "all"].append((float(label["le"]), value))
    return {
        key: {"p50": quantile(0.5, sorted(b)), "p95": quantile(0.95, sorted(b))} for key, b in groups.items()
    }


def _lines(ax: Any, series: dict[str, tuple[list[float], list[float]]], stack: bool) -> None:
    if stack and series:
        keys = sorted(series)
        xs = sorted({x for k in keys for x in series[k][0]})
        ax.stackplot(xs, *[_on(series[k], xs) for k in keys], labels=keys, alpha=0.7)
    else:
        for key, (xs, ys) in sorted(series.items()):
            ax.plot(xs, ys, label=key)
    if series:
        ax.legend(fontsize=7, loc="upper left")
    ax.set_xlabel("seconds into the run", fontsize=7)


def _on(series: tuple[list[float], list[float]], xs: list[float]) -> list[float]:
    known = dict(zip(*series, strict=True))
    out, last = [], 0.0
    for x in xs:
        last = known.get(x, last)
        out.append(last)
    return out


def _bars(ax: Any, quantiles: dict[str, dict[str, float]]) -> None:
    names = sorted(quantiles)
    for i, q in enumerate(("p50", "p95")):
        ax.bar([n + i * 0.4 for n in range(len(names))], [quantiles[k][q] for k in names], 0.4, label=q)
    ax.set_xticks([n + 0.2 for n in range(len(names))], names, fontsize=7)
    ax.set_ylabel("seconds", fontsize=7)
    ax.legend(fontsize=7)


PANELS: dict[int, Any] = {
    1: lambda ax, s: _lines(ax, _series(s, "llm_policy_cost_usd_total", "kind"), False),
    3: lambda ax, s: _lines(ax, _series(s, "llm_policy_tokens_total", "kind"), True),
    4: lambda ax, s: _lines(ax, _series(s, "llm_policy_decisions_total", "strategy"), True),
    5: lambda ax, s: _lines(ax, _series(s, "llm_policy_cache_misses_total", "reason"), True),
    6: lambda ax, s: _lines(ax, _series(s, "llm_policy_cache_miss_cost_usd_total", "reason"), True),
    7: lambda ax, s: _bars(ax, _quantiles(s, "llm_policy_call_duration_seconds", "strategy")),
    8: lambda ax, s: _bars(ax, _quantiles(s, "llm_policy_batch_wait_seconds", None)),
    9: lambda ax, s: _lines(
        ax,
        {
            label: _series(s, name, "-")[name]
            for label, name in (
                ("requests pooled", "llm_policy_pool_depth"),
                ("oldest pooled (s)", "llm_policy_pool_oldest_age_seconds"),
                ("requests in batches", "llm_policy_batch_requests_in_flight"),
                ("oldest in a batch (s)", "llm_policy_batch_oldest_age_seconds"),
            )
        },
        False,
    ),
}


def _saving(ax: Any, samples: list[Sample]) -> None:
    cost = _series(samples, "llm_policy_cost_usd_total", "kind")
    realized, without = cost["realized"][1][-1], cost["counterfactual"][1][-1]
    ax.axis("off")
    ax.text(0.5, 0.55, f"{1 - realized / without:.0%}", ha="center", va="center", fontsize=28, color="green")
    ax.text(0.5, 0.2, f"${realized:.2f} paid\n${without:.2f} without", ha="center", fontsize=8)


def render(samples: list[Sample], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.gridspec import GridSpec

    dashboard = json.loads((ROOT / "docs" / "dashboard.json").read_text(encoding="utf-8"))
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dashboard["panels"])
    fig = plt.figure(figsize=(16, rows * 0.36))
    grid = GridSpec(rows, 24, figure=fig, hspace=1.6, wspace=1.2)
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        ax = fig.add_subplot(grid[g["y"] : g["y"] + g["h"] - 1, g["x"] : g["x"] + g["w"]])
        ax.set_title(panel["title"], fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        if panel["id"] == 2:
            _saving(ax, samples)
        else:
            PANELS[panel["id"]](ax, samples)
    fig.suptitle(
        f"{dashboard['title']} (rendered from a demo run's Prometheus samples, not Grafana)", fontsize=11
    )
    fig.savefig(out, dpi=80, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    args = parser.parse_args()
    render(record_run(args.scale), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
