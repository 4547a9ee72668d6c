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
from engine.adapter.callsite import code_location
from engine.adapter.errors import raise_as_langchain
from engine.decision import BatchPlan
from engine.ledger import CallShape
from engine.providers.anthropic.batches import BatchItemError, client_identity, request_hash

__all__ = ["answer_prepared", "caller", "pooled", "prepared", "run_abatch", "run_batch", "shape_for"]

Prepared = dict[str, deque[tuple[Any, CallRun, str | None]]]
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


def _batch_id(service: Any, params: dict[str, Any], client: Any) -> str | None:
    """The Message Batch that carried ``params``, from the service's journal (None if unknown)."""
    try:
        digest = request_hash(params, *client_identity(client))
        entry = service.journal.get_many([digest]).get(digest)
    except Exception:  # the log loses the id, the call loses nothing
        return None
    return entry.batch_id if entry is not None else None


def _rejected_direct(outcome: Any) -> bool:
    """A batch item whose direct fallback failed too: the API rejects the request itself.

    The caller must see the very error the unwrapped model raises, so the call is made
    again the direct way (a rejected request is not billed) and fails there as it would.
    """
    return isinstance(outcome, BatchItemError) and outcome.failure == "direct"


def _result(model: Any, message: Any, run: CallRun, batch_id: str | None) -> ChatResult:
    result: ChatResult = model._format_output(message)
    run.record.applied = True
    usage = getattr(message, "usage", None)
    run.finish(usage.model_dump() if usage is not None else None, batch_id=batch_id)
    return result


def answer_prepared(
    model: Any, parent: type[Any], table: Prepared, messages: Any, stop: Any, kwargs: dict[str, Any]
) -> ChatResult | None:
    """This item's answer from the pre-submitted batch, or None if it was not routed there."""
    key = request_key(parent._get_request_payload(model, messages, stop=stop, **kwargs))
    queue = table.get(key)
    if not queue:
        return None
    outcome, run, batch_id = queue.popleft()
    if _rejected_direct(outcome):
        return None
    if isinstance(outcome, BaseException):
        run.record.applied = True
        run.finish(None, error=outcome, batch_id=batch_id)
        raise_as_langchain(outcome)
    return _result(model, outcome, run, batch_id)


async def pooled(
    model: Any, run: CallRun, plan: BatchPlan, messages: Any, stop: Any, kwargs: dict[str, Any]
) -> ChatResult | None:
    """Send one call through the engine's pool; None when it must go direct after all.

    The payload is built once, without markers; only a call the pool takes gets the
    batch placement. One it declines keeps that payload (``run.prebuilt``) for the
    direct path, which places its markers once, as for any direct call.
    """
    try:
        raw: dict[str, Any] = type(model).__llm_policy_parent__._get_request_payload(
            model, messages, stop=stop, **kwargs
        )
    except Exception:
        return None  # the direct path builds it again and raises as the unwrapped model would
    run.prebuilt = raw
    if "betas" in raw:
        run.note("batch: beta features are sent direct")
        return None
    client = model._async_client
    service = await _service(run.binding, client)
    if service is None:
        run.note("engine error: the batch service is unusable, sent direct")
        return None
    run.prebuilt = None
    payload = run.apply(raw, batch=True)
    try:
        message = await service.submit_one(payload, plan, client, call_site=run.record.call_site)
    except Exception as exc:
        if _rejected_direct(exc):
            run.prebuilt = raw
            return None
        run.finish(None, error=exc)
        raise_as_langchain(exc)
    return _result(model, message, run, _batch_id(service, payload, client))


async def _service(binding: Binding, client: Any) -> Any:
    """The engine's batch service, or None (logged once) when it cannot open: calls go direct."""
    try:
        return await binding.engine.batch_service(client)
    except Exception as exc:
        _unusable(binding, exc)
        return None


def _unusable(binding: Binding, exc: Exception) -> None:
    binding.engine.once.warn(
        f"batches:{type(exc).__name__}", "batch service unusable, calls go direct: %r", exc
    )


def _item_payload(model: Any, parent: type[Any], item: Any, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    try:
        payload: dict[str, Any] = parent._get_request_payload(model, item, **kwargs)
    except Exception:
        return None  # LangChain's own batch raises it again for this item, as unwrapped
    return None if "betas" in payload or payload.get("stream") else payload


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
        outcomes = await service.submit_many(
            [p for _, p, _ in items],
            plan,
            client,
            return_exceptions=True,
            call_site=items[0][2].record.call_site,
        )
        for (key, params, run), outcome in zip(items, outcomes, strict=True):
            table[key].append((outcome, run, _batch_id(service, params, client)))
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
            table = await _submit(groups, client, service) if service is not None else None
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
