"""Memory per request of the emulator: the peak a single ``messages.create`` allocates.

Measured with ``tracemalloc`` around ``EmulatorState.run_message`` (the whole path:
validation, cache, reply, billing, log) for a typical request, for the 280-byte
request whose tool schema asks for a huge string or array, and for the worst a
client can ask within the documented limits (``max_tokens`` at the model's 128,000
ceiling and such a schema). Prints one line per case; docs/emulator.md quotes them.

    python benchmarks/bench_emulator_memory.py
"""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

from engine.emulator.state import EmulatorState

MODEL = "claude-sonnet-4-6"


def _hostile(prop: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "go"}],
        "tools": [{"name": "t", "input_schema": {"type": "object", "properties": {"p": prop}}}],
        "tool_choice": {"type": "tool", "name": "t"},
    }


CASES: dict[str, dict[str, Any]] = {
    "typical (4k-token system prompt, cached)": {
        "model": MODEL,
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "rules " * 2700, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Summarise the document."}],
    },
    "280-byte request, minLength 10^12, max_tokens 1024": _hostile(
        {"type": "string", "minLength": 10**12}, 1024
    ),
    "280-byte request, minItems 10^12, max_tokens 1024": _hostile(
        {"type": "array", "minItems": 10**12, "items": {}}, 1024
    ),
    "minItems 10^12 at max_tokens 128000 (the ceiling)": _hostile(
        {"type": "array", "minItems": 10**12, "items": {"type": "string"}}, 128_000
    ),
}


def peak(state: EmulatorState, params: dict[str, Any]) -> int:
    state.run_message("warm", params)  # imports and caches warmed outside the measurement
    tracemalloc.start()
    tracemalloc.reset_peak()
    state.run_message("measured", params)
    _, high = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return high


def main() -> None:
    state = EmulatorState()
    for name, params in CASES.items():
        size = len(json.dumps(params))
        print(f"{peak(state, params) / 2**20:8.2f} MiB peak  ({size:6} B request)  {name}")


if __name__ == "__main__":
    main()
