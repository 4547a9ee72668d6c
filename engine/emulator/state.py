"""The emulator's whole mutable state and the one entry point that answers a message.

``EmulatorState.run_message`` is shared by ``POST /v1/messages`` (standard tier)
and the Message Batches module (batch tier), so a request costs, caches and logs
the same way whichever path it comes by. Faults are not injected here: the HTTP
layer adds them to ``/v1/messages`` and the batch module draws its own
error/expiry outcomes from :attr:`EmulatorState.rng`.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

from engine.emulator.billing import Billing
from engine.emulator.cache import CacheOutcome, ItemAccess, PromptCache
from engine.emulator.clock import Clock
from engine.emulator.config import EmulatorConfig
from engine.emulator.diagnostics import Diagnoser, Fingerprint, check_diagnostics
from engine.emulator.errors import ApiError, invalid_request
from engine.emulator.reply import build_message
from engine.emulator.validate import Prepared, prepare
from engine.providers.anthropic.capabilities import Usage, capabilities

__all__ = ["ApiError", "EmulatorConfig", "EmulatorState", "Tier"]

Tier = Literal["standard", "batch"]


class EmulatorState:
    """Caches (one per API key), billing, the request log, the clock and the seeded RNG."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.clock = Clock()
        self.rng = random.Random(self.config.seed)
        self.billing = Billing()
        self.lock = threading.RLock()
        #: Free-form room for plug-ins (the batch module keeps its store here).
        self.extensions: dict[str, Any] = {}
        self._caches: dict[str, PromptCache] = {}
        self._log: deque[dict[str, Any]] = deque(maxlen=self.config.requests_log_size)
        self._reset_hooks: list[Callable[[], None]] = []
        self._diagnoser = Diagnoser()

    # -- the message path ---------------------------------------------------------------

    def run_message(
        self,
        api_key: str,
        params: dict[str, Any],
        *,
        tier: Tier = "standard",
        access: ItemAccess | None = None,
    ) -> dict[str, Any]:
        """Validate, cache, answer, bill and log one ``messages.create`` request.

        Raises :class:`ApiError` (400 / 404) with the documented messages. A standard
        request's cache writes become readable once its response starts, i.e. after
        the configured latency; a batch item's as its :class:`ItemAccess` says
        (held until the next wave starts, and read only under the hit model).
        """
        if not isinstance(params, dict):
            raise invalid_request("body: Input should be a valid dictionary")
        prepared = prepare(params, tier=tier)
        previous = check_diagnostics(params)
        with self.lock:
            now = self.clock.now()
            ready_at = now + (self.config.latency_s if tier == "standard" else 0.0)
            outcome = self._cache(api_key).apply(prepared, now, ready_at, access)
            message = build_message(prepared, outcome, tier)
            fingerprint = Fingerprint.of(prepared, outcome.read + outcome.write)
            if previous is not False:
                named = previous if isinstance(previous, str) else None
                reason = (
                    None
                    if named is None
                    else self._diagnoser.reason(api_key, named, fingerprint, outcome.read)
                )
                message["diagnostics"] = None if reason is None else {"cache_miss_reason": reason}
            self._diagnoser.remember(api_key, message["id"], fingerprint)
            billed = _billed_usage(prepared, outcome, message, tier)
            self.billing.add(api_key, prepared.info, billed, tier)
            self.log_request(tier, params, message["usage"], api_key=api_key, ts=now)
        return message

    def count_tokens(self, params: dict[str, Any]) -> dict[str, int]:
        """``{"input_tokens": N}``: the uncached total a ``messages.create`` would report."""
        if not isinstance(params, dict):
            raise invalid_request("body: Input should be a valid dictionary")
        prepared = prepare(params, tier="standard", counting=True)
        return {"input_tokens": prepared.total_tokens + prepared.overhead_tokens}

    def release_batch_writes(self, api_key: str, keys: list[bytes]) -> None:
        """Entries written by a wave of batch items become readable now."""
        with self.lock:
            self._cache(api_key).release(keys, self.clock.now())

    def _cache(self, api_key: str) -> PromptCache:
        cache = self._caches.get(api_key)
        if cache is None:
            cache = self._caches[api_key] = PromptCache(capabilities())
        return cache

    # -- the request log ----------------------------------------------------------------

    def log_request(
        self,
        tier: str,
        body: Any,
        usage: dict[str, Any] | None,
        *,
        api_key: str | None = None,
        status: int = 200,
        ts: float | None = None,
    ) -> None:
        """Append to the bounded ring buffer ``GET /_emulator/requests`` reads."""
        entry = {
            "ts": self.clock.now() if ts is None else ts,
            "tier": tier,
            "status": status,
            "api_key": api_key,
            "body": body,
            "usage": usage,
        }
        with self.lock:
            self._log.append(entry)

    def recent_requests(self, last: int) -> list[dict[str, Any]]:
        """The last ``last`` logged requests, oldest first."""
        with self.lock:
            items = list(self._log)
        return items[-last:] if last > 0 else []

    # -- lifecycle ----------------------------------------------------------------------

    def add_reset_hook(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` on every :meth:`reset` (plug-ins clear their own state there)."""
        self._reset_hooks.append(hook)

    def reseed(self, seed: int) -> None:
        with self.lock:
            self.config.seed = seed
            self.rng = random.Random(seed)

    def reset(self) -> None:
        """Forget caches, billing, the log and clock offset; reseed the RNG."""
        with self.lock:
            self._caches.clear()
            self._diagnoser = Diagnoser()
            self.billing = Billing()
            self._log = deque(maxlen=self.config.requests_log_size)
            self.clock.reset()
            self.rng = random.Random(self.config.seed)
        for hook in self._reset_hooks:
            hook()

    def cache_entries(self, api_key: str) -> int:
        """How many live entries ``api_key``'s cache holds (for tests and docs)."""
        with self.lock:
            cache = self._caches.get(api_key)
            return 0 if cache is None else cache.live_entries(self.clock.now())


def _billed_usage(prepared: Prepared, outcome: CacheOutcome, message: dict[str, Any], tier: Tier) -> Usage:
    usage = message["usage"]
    return Usage(
        input_tokens=usage["input_tokens"],
        cache_write_5m_tokens=outcome.write_5m,
        cache_write_1h_tokens=outcome.write_1h,
        cache_read_tokens=usage["cache_read_input_tokens"],
        output_tokens=usage["output_tokens"],
        batch=tier == "batch",
    )
