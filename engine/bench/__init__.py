"""The savings benchmark and demo: reference workloads, PipesHub's factory stand-in, the arms.

``llm-policy bench`` and ``llm-policy demo`` run from an installed package, so the
code lives here; ``benchmarks/`` holds the scripts that run it at full size and
the results they write. See docs/savings.md.
"""
