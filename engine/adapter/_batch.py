"""Calls that go through the Message Batches API instead of ``messages.create``.

Two routes, both ending in the parent's own output formatting so the caller gets the
same ``AIMessage`` (``usage_metadata`` included) it would get from a direct call:

- ``accumulate``: a single ``ainvoke`` is handed to the engine's pool and its ``await``
  resolves with its own result once the pooled batch ends.
- ``explicit``: ``batch``/``abatch`` first build every item's payload and submit the
  routed ones as one batch, then let LangChain's own ``batch``/``abatch`` run as usual
  (callbacks, ``return_exceptions``, input order); each item's ``_generate`` /
  ``_agenerate`` picks its answer up from the results by the hash of its payload.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
from collections import defaultdict, deque
from collections.abc import Iterator, Mapping
from typing import Any

import anthropic
from langchain_core.outputs import ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import get_config_list

from engine.adapter._call import Binding, CallRun, request_key
from engine.adapter._route import direct_pays
from engine.adapter.callsite import code_location
from engine.adapter.errors import raise_as_langchain
from engine.decision import BatchPlan
from engine.ledger import CallShape
from engine.providers.anthropic.batches import Answer, NotBatchable, NotHandedOver, as_sent

__all__ = [
    "IDEMPOTENCY_KEY",
    "answer_prepared",
    "caller",
    "pooled",
    "prepared",
    "run_abatch",
    "run_batch",
    "shape_for",
]

#: Call metadata naming a redelivered request: the same key gets the journal's answer, not a new one.
IDEMPOTENCY_KEY = "llm_policy_idempotency_key"

Prepared = dict[str, deque[tuple[Answer | BaseException, CallRun]]]
#: Items an ``explicit`` rule sends to the Batches API, by plan: (request key, payload, run).
Groups = dict[BatchPlan, list[tuple[str, dict[str, Any], CallRun]]]

_IN_BATCH: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "llm_policy_batch_caller", default=None
)
_PREPARED: contextvars.ContextVar[Prepared | None] = contextvars.ContextVar(
    "llm_policy_prepared", default=None
)
_TRACING_KWARGS = ("ls_structured_output_format", "structured_output_format")


def shape_for(shape: CallShape) -> CallShape:
    """``invoke``/``ainvoke`` inside ``batch``/``abatch`` are items of that batch."""
    if _IN_BATCH.get() is None:
        return shape
    return "abatch" if shape == "ainvoke" else "batch" if shape == "invoke" else shape


def caller() -> str | None:
    """The code location captured where ``batch``/``abatch`` was called (items run in tasks)."""
    return _IN_BATCH.get()


def prepared() -> Prepared | None:
    return _PREPARED.get()


def _result(model: Any, answer: Answer, run: CallRun) -> ChatResult:
    """The parent's own output for ``answer``; logged at cost 0 when this call did not pay for it."""
    result: ChatResult = model._format_output(answer.message)
    run.record.applied = True
    run.record.pool_fill, run.record.pool_wait_ms = answer.pool_fill, answer.pool_wait_ms
    usage = getattr(answer.message, "usage", None)
    if not answer.paid_here:
        run.note("batch: the same request was answered once already, not paid again")
        usage = None
        # a cost and no usage: answered without a request (report and plan bill it 0)
        run.record.cost = {"realized_usd": 0.0, "counterfactual_usd": 0.0, "saved_usd": 0.0}
    run.finish(usage.model_dump() if usage is not None else None, batch_id=answer.batch_id)
    return result


def answer_prepared(
    model: Any, parent: type[Any], table: Prepared, messages: Any, stop: Any, kwargs: dict[str, Any]
) -> ChatResult | None:
    """This item's answer from the pre-submitted batch, or None if it was not routed there."""
    key = request_key(parent._get_request_payload(model, messages, stop=stop, **kwargs))
    queue = table.get(key)
    if not queue:
        return None
    outcome, run = queue.popleft()
    if isinstance(outcome, BaseException):
        run.record.applied = True
        run.finish(None, error=outcome)
        raise_as_langchain(outcome)
    return _result(model, outcome, run)


async def pooled(
    model: Any,
    run: CallRun,
    plan: BatchPlan,
    messages: Any,
    stop: Any,
    kwargs: dict[str, Any],
    metadata: Mapping[str, Any] | None = None,
) -> ChatResult | None:
    """Send one call through the engine's pool; None when it must go direct after all.

    Anything the engine cannot do before the request is handed over (payload, journal,
    a request the Batches API cannot carry) sends it direct, unchanged; once handed
    over, the caller gets its answer or the exception a direct call would raise.

    The payload is built once, without markers; only a call the pool takes gets the
    batch placement. One it declines keeps that payload (``run.prebuilt``) for the
    direct path, which places its markers once, as for any direct call.
    """
    try:
        raw: dict[str, Any] = type(model).__llm_policy_parent__._get_request_payload(
            model, messages, stop=stop, **kwargs
        )
        client = model._async_client
    except Exception:
        return None  # the direct path builds it again and raises as the unwrapped model would
    run.prebuilt = raw
    if "betas" in raw:
        run.note("batch: beta features are sent direct")
        return None
    cheaper = direct_pays(run, raw)
    if cheaper is not None:
        run.note(cheaper)
        return None
    service = await _service(run.binding, client)
    if service is None:
        run.note("engine error: the batch service is unusable, sent direct")
        return None
    run.prebuilt = None
    payload = run.apply(raw, batch=True)
    key = (metadata or {}).get(IDEMPOTENCY_KEY)
    try:
        answer = await service.answer_one(
            payload, plan, client, call_site=run.record.call_site, idempotency_key=str(key) if key else None
        )
    except NotBatchable as exc:
        run.note(f"batch: {exc}")
        run.prebuilt = raw
        return None
    except NotHandedOver as exc:
        _unusable(run.binding, exc)
        run.note(f"batch: {exc}; sent direct")
        run.prebuilt = raw
        return None
    except Exception as exc:
        run.finish(None, error=exc)
        raise_as_langchain(exc)
    return _result(model, answer, run)


async def _service(binding: Binding, client: Any) -> Any:
    """The engine's batch service, or None (logged once) when it cannot open: calls go direct."""
    try:
        return await binding.engine.batch_service(client)
    except Exception as exc:
        _unusable(binding, exc)
        return None


def _unusable(binding: Binding, exc: Exception) -> None:
    """Logged once per cause (the underlying exception's type), however many calls it sends direct."""
    cause = exc.__cause__ or exc
    binding.engine.once.warn(
        f"batches:{type(cause).__name__}", "batch service unusable, calls go direct: %r", exc
    )


def _item_payload(model: Any, parent: type[Any], item: Any, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    try:
        payload: dict[str, Any] = parent._get_request_payload(model, item, **kwargs)
        as_sent(payload)
    except Exception:
        return None  # LangChain's own batch raises it again for this item, as unwrapped
    return None if "betas" in payload else payload


def _plan_items(
    model: Any,
    parent: type[Any],
    binding: Binding,
    inputs: list[Any],
    configs: list[RunnableConfig],
    kwargs: dict[str, Any],
    where: str,
    shape: CallShape,
) -> Groups:
    """The items an ``explicit`` rule routes to the Batches API, grouped by plan."""
    clean = {k: v for k, v in kwargs.items() if k not in _TRACING_KWARGS}
    groups: Groups = defaultdict(list)
    for item, config in zip(inputs, configs, strict=True):
        metadata: Mapping[str, Any] | None = config.get("metadata")
        run = binding.start(str(model.model), shape, metadata, caller=where)
        if run is None or run.decision.batch is None or run.decision.batch.mode != "explicit":
            continue
        base = _item_payload(model, parent, item, clean)
        if base is None:
            continue
        final = run.apply(base, batch=True)
        plan = run.pool_plan()
        if plan is not None:
            groups[plan].append((request_key(base), final, run))
    return groups


async def _submit(groups: Groups, client: Any, service: Any) -> Prepared:
    table: Prepared = defaultdict(deque)
    for plan, items in groups.items():
        outcomes = await service.answer_many(
            [p for _, p, _ in items], plan, client, call_site=items[0][2].record.call_site
        )
        for (key, _, run), outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, NotHandedOver):  # never handed over: this item goes direct
                run.note(f"batch: {outcome}; sent direct")
                continue
            table[key].append((outcome, run))
    return table


@contextlib.contextmanager
def _batch_scope(
    model: Any,
    parent: type[Any],
    binding: Binding,
    inputs: list[Any],
    config: RunnableConfig | list[RunnableConfig] | None,
    kwargs: dict[str, Any],
    shape: CallShape,
) -> Iterator[Groups]:
    """Mark the calls below as one ``batch``/``abatch`` (from the caller's code location)
    and give the items to submit, grouped; empty when there are none."""
    where = code_location()
    token = _IN_BATCH.set(where)
    try:
        configs = get_config_list(config, len(inputs))
        yield _plan_items(model, parent, binding, inputs, configs, kwargs, where, shape) if inputs else {}
    finally:
        _IN_BATCH.reset(token)


@contextlib.contextmanager
def _answers(table: Prepared | None) -> Iterator[None]:
    """The submitted results, for the parent's ``batch``/``abatch`` to pick up item by item."""
    token = _PREPARED.set(table)
    try:
        yield
    finally:
        _PREPARED.reset(token)


async def run_abatch(
    model: Any,
    parent: type[Any],
    binding: Binding,
    inputs: list[Any],
    config: RunnableConfig | list[RunnableConfig] | None,
    return_exceptions: bool,
    kwargs: dict[str, Any],
) -> list[Any]:
    with _batch_scope(model, parent, binding, inputs, config, kwargs, "abatch") as groups:
        table = None
        if groups:
            client = model._async_client
            service = await _service(binding, client)
            try:
                table = await _submit(groups, client, service) if service is not None else None
            except NotHandedOver as exc:  # nothing was handed over: all direct
                _unusable(binding, exc)
        with _answers(table):
            out: list[Any] = await parent.abatch(
                model, inputs, config, return_exceptions=return_exceptions, **kwargs
            )
        return out


async def _submit_isolated(groups: Groups, model: Any, binding: Binding) -> Prepared:
    """Sync ``batch``: a client and batch service of its own, on a loop of its own."""
    from engine.providers.anthropic.batches import BatchService, open_journal

    client = anthropic.AsyncAnthropic(**model._client_params)
    service = BatchService(
        open_journal(binding.engine.state), poll_interval=binding.engine.batch_poll_interval
    )
    try:
        return await _submit(groups, client, service)
    finally:
        await service.aclose()
        await client.close()


def run_batch(
    model: Any,
    parent: type[Any],
    binding: Binding,
    inputs: list[Any],
    config: RunnableConfig | list[RunnableConfig] | None,
    return_exceptions: bool,
    kwargs: dict[str, Any],
) -> list[Any]:
    with _batch_scope(model, parent, binding, inputs, config, kwargs, "batch") as groups:
        table = None
        if groups:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                try:
                    table = pool.submit(asyncio.run, _submit_isolated(groups, model, binding)).result()
                except Exception as exc:  # the journal or the client would not open: direct
                    _unusable(binding, exc)
        with _answers(table):
            out: list[Any] = parent.batch(
                model, inputs, config, return_exceptions=return_exceptions, **kwargs
            )
        return out
