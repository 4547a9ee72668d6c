"""``llm-policy emulator``: serve the local Anthropic-compatible API.

The first line on stdout is ``listening on http://HOST:PORT`` (the real port when
``--port 0``), flushed at once so a script can wait for it and read the port.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register"]


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text}")
    return value


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "emulator",
        help="serve a local Anthropic-compatible API (caching, batches, billing, faults)",
        description="Serve a local Anthropic-compatible API for tests, demos and cost figures.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port to bind; 0 picks a free one (default 8765)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (faults, batch outcomes)")
    p.add_argument("--fault-rate", type=_rate, default=0.0, help="share of message requests that fail")
    p.add_argument(
        "--batch-error-rate", type=_rate, default=0.0, help="share of batch items that end errored"
    )
    p.add_argument(
        "--batch-expire-rate", type=_rate, default=0.0, help="share of batch items that end expired"
    )
    p.add_argument(
        "--batch-cache-hit-rate",
        type=_rate,
        default=None,
        help="probability that a batch item reads an entry available to it "
        "(default: a per-batch rate drawn from the documented 30%%..98%%)",
    )
    p.add_argument(
        "--batch-wave-size", type=int, default=100, help="batch items that run concurrently, per wave"
    )
    p.add_argument("--latency", type=_seconds, default=0.0, help="seconds added before each response starts")
    p.add_argument("--batch-latency", type=_seconds, default=1.0, help="seconds a batch stays in_progress")
    p.add_argument(
        "--requests-log-size", type=int, default=1000, help="requests kept for GET /_emulator/requests"
    )
    p.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )
    p.add_argument(
        "--format", choices=("text", "json"), default="text", help='json: the start line is {"base_url": ...}'
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine.emulator.config import EmulatorConfig
    from engine.emulator.server import bind, make_server
    from engine.emulator.state import EmulatorState

    try:
        config = EmulatorConfig(
            seed=args.seed,
            fault_rate=args.fault_rate,
            batch_error_rate=args.batch_error_rate,
            batch_expire_rate=args.batch_expire_rate,
            latency_s=args.latency,
            batch_latency_s=args.batch_latency,
            requests_log_size=args.requests_log_size,
            batch_cache_hit_rate=args.batch_cache_hit_rate,
            batch_wave_size=args.batch_wave_size,
        )
    except ValueError as exc:
        print(f"llm-policy emulator: {exc}", file=sys.stderr)
        return 2
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        print(f"llm-policy emulator: cannot bind {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    host = f"[{args.host}]" if ":" in args.host else args.host
    base_url = f"http://{host}:{sock.getsockname()[1]}"
    if args.format == "json":
        import json

        print(json.dumps({"base_url": base_url}), flush=True)
    else:
        print(f"listening on {base_url}", flush=True)
    server = make_server(EmulatorState(config), log_level=args.log_level)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
