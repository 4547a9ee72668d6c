"""What the adapter adds to a call no rule matches: wrapped vs unwrapped sequential ``invoke``.

Both models come from the same factory call (PipesHub's ``anthropic`` branch) and talk
to the emulator on loopback, so the round trip is as short as it gets and the adapter's
share is as large as it gets. The wrapped one runs the whole per-call path: call-site
resolution from the caller's code, policy evaluation, prefix hashing for the decision
log, one JSON line written per call. The two models take turns call by call, so drift
in the machine's load hits both alike. The figure is the ratio of median per-call
times (robust to the load spikes of a shared machine); the ratio of means is printed
too.

Run: ``python benchmarks/bench_adapter_overhead.py [--calls 200] [--rounds 5]``
(target: ratio <= 1.10).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.adapter import PolicyEngine, wrap_factory
from tests.adapter.pipeshub_factory import ai_model_config, get_generator_model

POLICY = """\
apiVersion: llm-policy/v1
kind: OptimizationPolicy
metadata: {name: bench}
spec:
  enabled: true
  rules:
    - name: indexing
      match: {callSite: "indexing.*"}
      cache: {mode: auto, ttl: 1h}
      batch: {mode: accumulate}
    - name: agent
      match: {callSite: "chat.agent.*"}
      cache: {mode: explicit, ttl: 5m, breakpoints: [tools, system, history]}
"""
MESSAGES = [
    ("system", "You answer questions about company policies. " * 40),
    ("user", "How many vacation days?"),
]


SERVE = (
    "import sys, time\n"
    "from engine.emulator.server import run_emulator\n"
    "with run_emulator() as emu:\n"
    "    print(emu.base_url, flush=True)\n"
    "    sys.stdin.read()\n"
)


@contextlib.contextmanager
def emulator_process() -> Iterator[str]:
    """The emulator in a process of its own, as the real API is: the client's process runs
    only the client (an in-process server would share its interpreter lock)."""
    root = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)


def one_call_ms(llm: Any) -> float:
    start = time.perf_counter()
    llm.invoke(MESSAGES)
    return (time.perf_counter() - start) * 1000


def interleaved(models: dict[str, Any], calls: int) -> dict[str, list[float]]:
    """Per-call times, the models taking turns call by call, so load drift hits both alike.

    The decision log writes on the caller's thread, so each wrapped call's time holds
    its own logging work.
    """
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(calls):
        for name, llm in models.items():
            times[name].append(one_call_ms(llm))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per round and model")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, emulator_process() as base_url:
        os.environ["ANTHROPIC_BASE_URL"] = base_url
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(POLICY, encoding="utf-8")
        engine = PolicyEngine.from_file(policy, decision_log=Path(tmp) / "decisions.jsonl")
        config = ai_model_config(models="claude-sonnet-4-6")
        plain = get_generator_model("anthropic", config)
        wrapped = wrap_factory(get_generator_model, engine)("anthropic", config)
        assert type(wrapped) is not type(plain)
        models = {"unwrapped": plain, "wrapped": wrapped}
        interleaved(models, 20)  # warm up connections and caches
        timings: dict[str, list[float]] = {name: [] for name in models}
        rounds: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(args.rounds):
            for name, times in interleaved(models, args.calls).items():
                timings[name].extend(times)
                rounds[name].append(statistics.median(times))
        engine.log.flush()
        logged = sum(1 for _ in (Path(tmp) / "decisions.jsonl").open(encoding="utf-8"))
        engine.log.close()
    base, ours = statistics.median(timings["unwrapped"]), statistics.median(timings["wrapped"])
    print(
        f"calls: {args.calls} x {args.rounds} rounds per model, no rule matches, emulator process on loopback"
    )
    for name, median in (("unwrapped", base), ("wrapped", ours)):
        per_round = ", ".join(f"{t:.3f}" for t in rounds[name])
        print(f"{name + ' invoke:':18} median {median:.3f} ms/call (round medians: {per_round})")
    print(f"decision records written: {logged}")
    mean_base, mean_ours = statistics.mean(timings["unwrapped"]), statistics.mean(timings["wrapped"])
    print(f"mean ms/call: unwrapped {mean_base:.3f}, wrapped {mean_ours:.3f}")
    ratios = f"median {ours / base:.3f}, mean {mean_ours / mean_base:.3f}"
    print(f"ratio wrapped/unwrapped: {ratios} (target <= 1.10)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
