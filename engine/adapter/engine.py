"""PolicyEngine: the policy in force, kept fresh, and what it decides per call.

The engine holds one compiled policy at a time and swaps it whole when a newer one
compiles, so a call always sees one consistent version. Every failure on the way
(store unreachable, a policy that does not compile, an evaluation that raises) leaves
the last good policy in force, or none, which means "off": calls go out as if the
engine were not there. Each distinct cause is logged once, not once per call.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from engine.decision import CallContext, Decision
from engine.ledger import DecisionLog
from engine.providers.anthropic.capabilities import Transport

if TYPE_CHECKING:
    from engine.compile import CompiledPolicy
    from engine.policy import Policy

__all__ = ["DECISION_LOG_ENV", "DEFAULT_STATE", "JOURNAL_ENV", "PolicyEngine"]

logger = logging.getLogger("llm_policy.engine")

DEFAULT_STATE = "sqlite:///./.llm-policy/state.db"
#: The batch journal's URL when ``state`` is not given (``redis://...`` also pools across replicas).
JOURNAL_ENV = "LLM_POLICY_STATE"
#: A JSON-lines file the decision log is appended to, when ``decision_log`` is not given.
DECISION_LOG_ENV = "LLM_POLICY_DECISION_LOG"
#: A port: every engine of the process reports metrics and traces, served at ``:PORT/metrics``.
METRICS_PORT_ENV = "LLM_POLICY_METRICS_PORT"


class _Source(Protocol):
    """Where policy versions come from: a fingerprint to poll, and a loader."""

    def fingerprint(self) -> str: ...

    def load(self) -> tuple[Policy, int | None]: ...

    def describe(self) -> str: ...


class _FileSource:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def fingerprint(self) -> str:
        stat = self.path.stat()
        return f"{stat.st_mtime_ns}:{stat.st_size}"

    def load(self) -> tuple[Policy, int | None]:
        from engine.policy import load_policy

        return load_policy(self.path), None

    def describe(self) -> str:
        return str(self.path)


class _StoreSource:
    def __init__(self, url: str, name: str) -> None:
        from engine.store import open_store

        self.url, self.name = url, name
        # Never create a store: a missing one (wrong directory, deleted file) stays "off
        # and logged" until the real one appears, instead of becoming an empty new store.
        self._open: Callable[[str], Any] = functools.partial(open_store, create=False)
        self._store: Any = None

    def _connected(self) -> Any:
        if self._store is None:
            self._store = self._open(self.url)
        return self._store

    def fingerprint(self) -> str:
        active = self._connected().active_revision(self.name)
        return "none" if active is None else f"{active[0]}:{active[1]}"

    def load(self) -> tuple[Policy, int | None]:
        from engine.policy import load_policy_text
        from engine.store import mask_url

        stored = self._connected().get(self.name)
        document = stored.document
        text = document if isinstance(document, str) else json.dumps(document)
        where = f"{mask_url(self.url)}#{self.name}@{stored.version}"  # names it in errors and logs
        return load_policy_text(text, source=where), stored.version

    def describe(self) -> str:
        return f"store {self.name!r}"


class _Once:
    """Logs each distinct failure cause once per engine."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def first(self, key: str) -> bool:
        """True the first time ``key`` is seen by this engine."""
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
        return True

    def warn(self, key: str, message: str, *args: Any) -> None:
        if self.first(key):
            logger.warning(message, *args)


class PolicyEngine:
    """The policy in force for a process. Build one with a ``from_*`` constructor."""

    def __init__(
        self,
        source: _Source | None,
        *,
        state: str | None = None,
        decision_log: DecisionLog | str | Path | None = None,
        poll_interval: float | None = None,
        batch_poll_interval: float = 1.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._source = source
        self.batch_poll_interval = batch_poll_interval
        #: Epoch seconds as the engine sees them: when prefixes were seen (reuse, ``ttl: auto``)
        #: and the decision log's times. A test or benchmark that moves an emulator's clock
        #: passes that clock, so the engine sees the same gaps the cache does.
        self.clock: Callable[[], float] = clock or time.time
        self.state = state or os.environ.get(JOURNAL_ENV) or DEFAULT_STATE
        if not isinstance(decision_log, DecisionLog):
            decision_log = DecisionLog.to(decision_log or os.environ.get(DECISION_LOG_ENV) or None)
        self.log = decision_log
        self.once = _Once()
        self._compiled: CompiledPolicy | None = None
        self._policy: Policy | None = None
        self._version: int | None = None
        self._fingerprint: str | None = None
        self._failed: str | None = None
        self._enabled = False
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._batches: Any = None
        self._batches_lock = threading.Lock()
        self._telemetry: Any = None
        self._doctor: Any = None
        self._allocators: dict[Transport, Any] = {}
        self._batch_hits: Any = None
        self._shadow: Any = None
        if os.environ.get(METRICS_PORT_ENV):
            self._telemetry_from_env()
        if source is not None:
            self.reload()
            if poll_interval:
                self._start_polling(poll_interval)

    # ---- constructors -------------------------------------------------------------
    @classmethod
    def from_file(
        cls,
        path: str | Path,
        state: str | None = None,
        *,
        decision_log: DecisionLog | str | Path | None = None,
        poll_interval: float | None = None,
        batch_poll_interval: float = 1.0,
        clock: Callable[[], float] | None = None,
    ) -> PolicyEngine:
        """A policy YAML file; ``poll_interval`` (seconds) re-reads it when it changes.

        ``decision_log``: a JSON-lines path (default ``$LLM_POLICY_DECISION_LOG``) or a
        :class:`DecisionLog`; ``batch_poll_interval``: seconds between batch status polls;
        ``clock``: epoch seconds (default ``time.time``).
        """
        return cls(
            _FileSource(path),
            state=state,
            decision_log=decision_log,
            poll_interval=poll_interval,
            batch_poll_interval=batch_poll_interval,
            clock=clock,
        )

    @classmethod
    def from_store(
        cls,
        url: str,
        name: str | None = None,
        state: str | None = None,
        *,
        poll_interval: float | None = 30.0,
        decision_log: DecisionLog | str | Path | None = None,
        batch_poll_interval: float = 1.0,
        clock: Callable[[], float] | None = None,
    ) -> PolicyEngine:
        """The active version of ``name`` in the policy store at ``url``, polled every ``poll_interval`` s.

        An unreachable store does not raise: the engine starts off and keeps trying.
        ``name`` defaults to ``$LLM_POLICY_NAME``, else ``pipeshub-default``: the same
        variable tells ``llm-policy disable`` / ``enable`` / ``rollback`` which policy the
        engine loads, so the kill switch can say when it was aimed at another one.
        """
        name = name or os.environ.get("LLM_POLICY_NAME") or "pipeshub-default"
        try:
            source: _Source = _StoreSource(url, name)
        except Exception as exc:  # the store module itself failed to open the url
            from engine.store import mask_url

            engine = cls(None, state=state, decision_log=decision_log, clock=clock)
            engine.once.warn(
                f"store:{type(exc).__name__}", "policy store %s unusable, engine off: %s", mask_url(url), exc
            )
            return engine
        return cls(
            source,
            state=state,
            decision_log=decision_log,
            poll_interval=poll_interval,
            batch_poll_interval=batch_poll_interval,
            clock=clock,
        )

    @classmethod
    def disabled(cls) -> PolicyEngine:
        """An engine with no policy: every wrapped factory returns its own models untouched."""
        return cls(None, decision_log=DecisionLog([]))

    # ---- the policy in force -------------------------------------------------------
    @property
    def policy(self) -> Policy | None:
        return self._policy

    @property
    def version(self) -> int | None:
        return self._version

    @property
    def enabled(self) -> bool:
        """Whether a policy is in force and switched on (``spec.enabled: true``)."""
        return self._enabled

    def reload(self) -> bool:
        """Apply the source's newest version if it changed and compiles; True if one was applied.

        For the host's ``llmConfigured`` handler: call it, then rebuild the model.
        A version that fails to load or compile never applies; the last good one stays.
        """
        source = self._source
        if source is None:
            return False
        with self._reload_lock:
            try:
                fingerprint = source.fingerprint()
            except Exception as exc:
                self.once.warn(
                    f"source:{type(exc).__name__}:{exc}",
                    "policy source %s unreachable, keeping %s: %s",
                    source.describe(),
                    self._describe_current(),
                    exc,
                )
                return False
            if fingerprint in (self._fingerprint, self._failed):
                return False
            return self._apply(source, fingerprint)

    def _apply(self, source: _Source, fingerprint: str) -> bool:
        from engine.compile import compile_policy

        try:
            policy, version = source.load()
            compiled = compile_policy(policy, version=version)
        except Exception as exc:
            self._failed = fingerprint
            self.once.warn(
                f"compile:{fingerprint}",
                "policy from %s (%s) not applied, keeping %s: %s",
                source.describe(),
                fingerprint,
                self._describe_current(),
                exc,
            )
            return False
        self._compiled, self._policy, self._version = compiled, policy, version
        self._enabled = bool(policy.spec.enabled)
        self._fingerprint, self._failed = fingerprint, None
        logger.info("policy %s applied (version %s, revision %s)", policy.name, version, policy.revision)
        return True

    def _describe_current(self) -> str:
        if self._policy is None:
            return "no policy (engine off)"
        return f"policy {self._policy.name} version {self._version} revision {self._policy.revision[:12]}"

    # ---- per call --------------------------------------------------------------------
    def decide(self, ctx: CallContext) -> Decision | None:
        """The decision for ``ctx``, or None when the engine is off for it (fail open)."""
        compiled = self._compiled
        if compiled is None or not self._enabled:
            return None
        from engine.evaluate import evaluate

        try:
            decision = evaluate(compiled, ctx)  # memoised per context by the compiled policy
        except Exception as exc:
            self.once.warn(
                f"evaluate:{type(exc).__name__}", "evaluation failed, call goes out unchanged: %r", exc
            )
            return None
        return decision if decision.enabled else None

    def allocator(self, transport: Transport) -> Any:
        """The breakpoint allocator for ``transport`` (one per engine: it learns reuse per call site)."""
        allocator = self._allocators.get(transport)
        if allocator is None:
            from engine.providers.anthropic.caching import BreakpointAllocator

            allocator = self._allocators[transport] = BreakpointAllocator(transport=transport)
        return allocator

    def batch_hit_rate(self, call_site: str) -> float:
        """The share of this call site's batch items that read their cache entry (learned from usage)."""
        return float(self.batch_hits().rate(call_site))

    def batch_hits(self) -> Any:
        """The per-call-site record of cache hits inside batches (one per engine)."""
        if self._batch_hits is None:
            from engine.providers.anthropic.caching import BatchHitRates

            self._batch_hits = BatchHitRates()
        return self._batch_hits

    def cache_doctor(self) -> Any:
        """Why calls miss the cache: each call site's previous request, remembered (one per engine)."""
        if self._doctor is None:
            from engine.doctor import CacheDoctor

            self._doctor = CacheDoctor()
        return self._doctor

    def shadow_billing(self) -> Any:
        """The simulated cache that prices shadow-mode calls as if the policy were enforced."""
        if self._shadow is None:
            from engine.ledger import ShadowBilling

            self._shadow = ShadowBilling()
        return self._shadow

    def batches(self) -> Any:
        """The batch service on the ``state`` journal, opened on first use (any event loop, any thread)."""
        with self._batches_lock:
            if self._batches is None:
                from engine.adapter._warm import warm_items
                from engine.providers.anthropic.batches import BatchService, open_journal

                service = BatchService(open_journal(self.state), poll_interval=self.batch_poll_interval)
                service.warm = lambda items: warm_items(self, items)
                self._batches = service
                if self._telemetry is not None:
                    self._telemetry.watch_pool(service)
            return self._batches

    def _telemetry_from_env(self) -> None:
        """``$LLM_POLICY_METRICS_PORT`` set: report to the process's telemetry and serve
        ``/metrics`` on that port (once per process), with no change to the host's code."""
        try:
            from engine.telemetry import from_env

            telemetry = from_env()
            if telemetry is not None:
                self.attach_telemetry(telemetry)
        except Exception as exc:  # telemetry is an extra: the engine runs without it
            self.once.warn(f"telemetry:{type(exc).__name__}", "metrics endpoint not started: %s", exc)

    def attach_telemetry(self, telemetry: Any) -> PolicyEngine:
        """Report every call as OpenTelemetry spans and metrics and Prometheus samples
        (an :class:`engine.telemetry.Telemetry`), and the batch pools' depth and age."""
        self._telemetry = telemetry
        self.log.sinks.append(telemetry.sink())
        with self._batches_lock:
            if self._batches is not None:
                telemetry.watch_pool(self._batches)
        return self

    async def batch_service(self, client: Any) -> Any:
        """The batch service. The journal keeps no API keys, so work a dead process left is
        resumed by the service the first time a call with the same credential and endpoint
        comes through (on each event loop). Opened in a thread: the journal's file I/O
        never blocks the event loop."""
        import asyncio

        if self._batches is not None:
            return self._batches
        return await asyncio.to_thread(self.batches)

    # ---- lifecycle -------------------------------------------------------------------
    def _start_polling(self, interval: float) -> None:
        def poll() -> None:
            while not self._stop.wait(interval):
                self.reload()

        self._poller = threading.Thread(target=poll, name="llm-policy-poll", daemon=True)
        self._poller.start()

    def close_polling(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
            self._poller = None

    async def aclose(self, timeout: float | None = 60.0) -> None:
        """Stop polling, flush pooled batch requests, close clients and the log.

        Waits at most ``timeout`` seconds for batches in flight (None: until they end);
        callers still waiting then get ``BatchItemError(failure="closed")`` and the
        journal keeps their items for the next start.
        """
        self.close_polling()
        if self._batches is not None:
            batches, self._batches = self._batches, None
            await batches.aclose(timeout)
        self.log.close()

    def __repr__(self) -> str:
        return f"PolicyEngine({self._describe_current()}, enabled={self.enabled})"
