"""How long validating and compiling a policy at the size cap takes (1 MiB of YAML).

An engine validates and compiles the policy it loads at start and at every reload, and
the CLI does it on ``validate``; a policy written to the cap must not block either for
long. Four shapes fill the cap, each a worst case for one part of the pipeline:

* distinct: one rule per service, literal-prefix globs (the rule index at its best);
* shared: every rule under the same prefix, told apart by role (many candidates);
* open: globs that start and end with a wildcard (the index cannot narrow them);
* lists: rules with long lists of call-site globs.

Each is validated (``check_text``) and compiled (``compile_policy``); CPU seconds are
printed per stage. Run: ``python benchmarks/bench_policy_size.py [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable
from functools import partial

from engine.compile import compile_policy
from engine.policy import check_text
from engine.policy._load import MAX_BYTES

HEAD = (
    "apiVersion: llm-policy/v1\nkind: OptimizationPolicy\nmetadata: {name: bench}\n"
    "spec:\n  enabled: true\n  rules:\n"
)


def _distinct(i: int) -> str:
    match = f"{{callSite: 'service{i}.feature.*', role: indexing}}"
    return f"    - {{name: r{i}, match: {match}, cache: {{mode: auto}}}}\n"


def _shared(i: int) -> str:
    return f"    - {{name: r{i}, match: {{callSite: 'indexing.*', role: role{i}}}, cache: {{mode: auto}}}}\n"


def _open(i: int) -> str:
    return f"    - {{name: r{i}, match: {{callSite: '*.feature{i}.*'}}, batch: {{mode: accumulate}}}}\n"


def _lists(i: int) -> str:
    sites = ", ".join(f"'svc{i}.part{k}.*'" for k in range(12))
    match = f"{{callSite: [{sites}], model: 'claude-*'}}"
    return f"    - name: r{i}\n      match: {match}\n      cache: {{mode: auto, ttl: 1h}}\n"


SHAPES: dict[str, Callable[[int], str]] = {
    "distinct": _distinct,
    "shared": _shared,
    "open": _open,
    "lists": _lists,
}


def policy_at_cap(rule: Callable[[int], str]) -> str:
    """As many rules as fit under :data:`MAX_BYTES`."""
    parts, size, i = [HEAD], len(HEAD), 0
    while True:
        line = rule(i)
        if size + len(line) > MAX_BYTES:
            return "".join(parts)
        parts.append(line)
        size += len(line)
        i += 1


def _cpu(step: Callable[[], object]) -> tuple[float, object]:
    start = time.process_time()
    out = step()
    return time.process_time() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="print the top functions by cumulative time")
    parser.add_argument("--shape", choices=sorted(SHAPES), action="append")
    args = parser.parse_args()
    for name in args.shape or SHAPES:
        text = policy_at_cap(SHAPES[name])
        rules = text.count("- name:") + text.count("- {name:")
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        check_s, report = _cpu(partial(check_text, text, source=f"{name}.yaml"))
        policy = getattr(report, "policy", None)
        if policy is None:
            raise SystemExit(f"{name}: the generated policy is invalid: {report}")
        compile_s, _ = _cpu(partial(compile_policy, policy))
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        print(
            f"{name:9s} {len(text):8d} bytes {rules:6d} rules  "
            f"validate {check_s:7.3f} s  compile {compile_s:7.3f} s (CPU)"
        )


if __name__ == "__main__":
    main()
