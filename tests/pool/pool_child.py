"""A producer process for the cross-process pool tests and benchmark.

Run as ``python pool_child.py '<json settings>'``. It starts ``loops`` event loops (threads,
as PipesHub's indexing consumers do), each running ``concurrency`` callers that make
``rounds`` pooled calls one after another through one shared :class:`BatchService` on
the Redis journal. Each answer is printed as a JSON line ``{"id", "ok", "wait_s",
"batch"}``; ``{"done": true, "batches_created": N}`` ends a clean run.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from typing import Any

import anthropic

from engine.decision import BatchPlan
from engine.journal import open_journal
from engine.providers.anthropic.batches import BatchService
from engine.providers.anthropic.batches.errors import NotHandedOver

_print_lock = threading.Lock()


def emit(line: dict[str, Any]) -> None:
    with _print_lock:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


def prompt(call_id: str) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 32,
        "messages": [{"role": "user", "content": f"call {call_id}"}],
    }


async def caller(service: BatchService, s: dict[str, Any], plan: BatchPlan, loop_no: int, n: int) -> None:
    client = anthropic.AsyncAnthropic(api_key=s.get("api_key", "sk-pool-test"), base_url=s["base_url"])
    for r in range(s["rounds"]):
        call_id = s.get("ids", {}).get(f"{loop_no}-{n}-{r}") or f"p{s['proc']}-l{loop_no}-c{n}-r{r}"
        started = time.monotonic()
        try:
            answer = await service.answer_one(prompt(call_id), plan, client, call_site="test.pool")
            message, batch = answer.message, answer.batch_id
        except NotHandedOver:  # what the adapter does: nothing was sent, the call goes direct
            message, batch = await client.messages.create(**prompt(call_id)), "direct"  # type: ignore[call-overload]
        except Exception as exc:
            emit({"id": call_id, "ok": False, "error": repr(exc)})
            continue
        text = message.content[0].text  # type: ignore[union-attr]
        ok = text.startswith(f"echo: call {call_id}")
        emit({"id": call_id, "ok": ok, "wait_s": time.monotonic() - started, "batch": batch})
    await client.close()


def run_loop(service: BatchService, s: dict[str, Any], plan: BatchPlan, loop_no: int) -> None:
    async def main() -> None:
        await asyncio.gather(*(caller(service, s, plan, loop_no, n) for n in range(s["concurrency"])))
        await service.aclose(timeout=s.get("close_timeout", 60))

    asyncio.run(main())


def main(settings: dict[str, Any]) -> None:
    if settings.get("start_at"):  # producers of a benchmark start together
        time.sleep(max(0.0, float(settings["start_at"]) - time.time()))
    service = BatchService(
        open_journal(settings["journal"]), poll_interval=settings.get("poll_interval", 0.1),
        max_poll_interval=1.0, lease_s=settings.get("lease_s", 3.0),
    )  # fmt: skip
    plan = BatchPlan(
        "accumulate", max_requests=settings.get("max_requests", 1000), max_wait=settings.get("max_wait", "1s")
    )
    threads = [
        threading.Thread(target=run_loop, args=(service, settings, plan, n), name=f"loop-{n}")
        for n in range(settings.get("loops", 1))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    emit({"done": True, "batches_created": service.batches_created})


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
