"""What each Claude model and transport can do, and what it costs.

Every drifting number (prices, minimum cacheable lengths, API limits) lives in one
data file, ``engine/data/anthropic.yaml``; this module only reads it. Operators
override or extend it without a release by pointing ``LLM_POLICY_MODELS`` at a
YAML file of the same shape (its models are tried first).

Unknown model ids get conservative values (the largest minimum, the highest
prices) and one warning per id, never one per call.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

__all__ = [
    "Capabilities",
    "ModelApi",
    "ModelInfo",
    "Prices",
    "Transport",
    "TransportInfo",
    "Usage",
    "capabilities",
    "normalize_model_id",
]

logger = logging.getLogger("llm_policy.capabilities")

Transport = Literal["direct", "custom", "bedrock", "vertex"]
DATA_FILE = Path(__file__).resolve().parents[2] / "data" / "anthropic.yaml"
OVERRIDE_ENV = "LLM_POLICY_MODELS"

_PREFIX = re.compile(r"^(?:[a-z]{2,4}\.)?anthropic\.")  # Bedrock: "us.anthropic.", "anthropic."
_BEDROCK_VERSION = re.compile(r"-v\d+(?::\d+)?$")
_VERTEX_DATE = re.compile(r"@\d{8}$")
_DATE = re.compile(r"-\d{8}$")


def normalize_model_id(model: str) -> str:
    """Strip what varies between a family's ids: vendor prefix, version, date, alias tag."""
    m = model.strip().lower()
    m = _PREFIX.sub("", m)
    m = _BEDROCK_VERSION.sub("", m)
    m = _VERTEX_DATE.sub("", m)
    m = _DATE.sub("", m)
    if m.endswith("-latest"):
        m = m[: -len("-latest")]
    return m


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per million tokens at the standard tier."""

    input: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    output: float


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one response, as the API's ``usage`` reports them."""

    input_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0
    output_tokens: int = 0
    batch: bool = False

    @property
    def cache_write_tokens(self) -> int:
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @classmethod
    def from_api(cls, usage: dict[str, Any], *, batch: bool | None = None) -> Usage:
        """Read an API ``usage`` object (dict form); ``batch`` defaults to its service_tier."""
        creation = usage.get("cache_creation") or {}
        total_write = int(usage.get("cache_creation_input_tokens") or 0)
        w1h = int(creation.get("ephemeral_1h_input_tokens") or 0)
        w5m = int(creation.get("ephemeral_5m_input_tokens") or (total_write - w1h))
        tier_batch = usage.get("service_tier") == "batch"
        return cls(
            input_tokens=int(usage.get("input_tokens") or 0),
            cache_write_5m_tokens=w5m,
            cache_write_1h_tokens=w1h,
            cache_read_tokens=int(usage.get("cache_read_input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            batch=tier_batch if batch is None else batch,
        )


@dataclass(frozen=True, slots=True)
class ModelApi:
    """What a family's ``messages.create`` accepts (the data file's ``api`` row).

    The emulator refuses what the API refuses with these; the engine may read them
    too. Defaults are those of a recent model without thinking extras.
    """

    max_output_tokens: int = 64000
    thinking: tuple[str, ...] = ()
    effort: bool = False
    sampling: bool = True
    keeps_thinking: bool = False
    dated_id: str | None = None

    @classmethod
    def from_data(cls, raw: dict[str, Any] | None) -> ModelApi:
        raw = dict(raw or {})
        if "thinking" in raw:
            raw["thinking"] = tuple(str(t) for t in raw["thinking"] or ())
        return cls(**raw)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    family: str
    min_cache_tokens: int
    prices: Prices
    known: bool = True
    verified: bool = True
    ttl_1h: bool = True
    batches: bool = True
    api: ModelApi = ModelApi()

    def cost(self, usage: Usage, *, batch_multiplier: float = 0.5) -> float:
        """The USD price of ``usage`` on this model (batch tier if ``usage.batch``)."""
        p = self.prices
        micro = (
            usage.input_tokens * p.input
            + usage.cache_write_5m_tokens * p.cache_write_5m
            + usage.cache_write_1h_tokens * p.cache_write_1h
            + usage.cache_read_tokens * p.cache_read
            + usage.output_tokens * p.output
        )
        return micro / 1_000_000 * (batch_multiplier if usage.batch else 1.0)


@dataclass(frozen=True, slots=True)
class TransportInfo:
    batches: bool
    top_level_cache: bool
    block_markers: bool
    ttl_1h: bool


def _prices(raw: dict[str, Any]) -> Prices:
    return Prices(**{k: float(raw[k]) for k in Prices.__slots__})


class Capabilities:
    """The parsed data file. Build one with :func:`capabilities`."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.limits: dict[str, Any] = dict(data["limits"])
        self.multipliers: dict[str, float] = {k: float(v) for k, v in data["multipliers"].items()}
        self.transports: dict[str, TransportInfo] = {
            name: TransportInfo(**t) for name, t in data["transports"].items()
        }
        unknown = data["unknown_model"]
        self._unknown = (int(unknown["min_cache_tokens"]), _prices(unknown["prices"]))
        self._unknown_features = (bool(unknown.get("ttl_1h", True)), bool(unknown.get("batches", True)))
        self._families: list[tuple[tuple[str, ...], ModelInfo]] = [
            (
                tuple(m["match"]),
                ModelInfo(
                    family=m["family"],
                    min_cache_tokens=int(m["min_cache_tokens"]),
                    prices=_prices(m["prices"]),
                    verified=bool(m.get("verified", True)),
                    ttl_1h=bool(m.get("ttl_1h", True)),
                    batches=bool(m.get("batches", True)),
                    api=ModelApi.from_data(m.get("api")),
                ),
            )
            for m in data["models"]
        ]
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    @property
    def max_min_cache_tokens(self) -> int:
        return max([self._unknown[0], *(info.min_cache_tokens for _, info in self._families)])

    def ttl_seconds(self, ttl: str) -> int:
        return int(self.limits["ttl_seconds"][ttl])

    def model(self, model_id: str) -> ModelInfo:
        """The family of ``model_id``; conservative values (and one warning) if unknown."""
        return self._lookup(normalize_model_id(model_id), model_id)

    def transport(self, name: str) -> TransportInfo:
        return self.transports[name]

    @lru_cache(maxsize=1024)  # noqa: B019 - the instance lives as long as the process
    def _lookup(self, normalized: str, original: str) -> ModelInfo:
        for globs, info in self._families:
            if any(fnmatch.fnmatchcase(normalized, g) for g in globs):
                return info
        with self._lock:
            if normalized not in self._warned:
                self._warned.add(normalized)
                logger.warning(
                    "unknown model %r: assuming a %d-token cache minimum and the highest prices "
                    "(add it to %s or to the file named by %s)",
                    original,
                    self._unknown[0],
                    DATA_FILE.name,
                    OVERRIDE_ENV,
                )
        return ModelInfo(
            family="unknown",
            min_cache_tokens=self._unknown[0],
            prices=self._unknown[1],
            known=False,
            verified=False,
            ttl_1h=self._unknown_features[0],
            batches=self._unknown_features[1],
        )


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if key == "models":
            merged["models"] = list(value) + list(base.get("models", []))
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = {**base[key], **value}
        else:
            merged[key] = value
    return merged


def load_capabilities(path: Path = DATA_FILE, override: Path | None = None) -> Capabilities:
    """Read the data file (and an operator's override file, if given)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if override is not None:
        data = _merge(data, yaml.safe_load(override.read_text(encoding="utf-8")) or {})
    return Capabilities(data)


_cached: tuple[str | None, Capabilities] | None = None


def capabilities() -> Capabilities:
    """The process-wide table, re-read when ``LLM_POLICY_MODELS`` changes."""
    global _cached
    override = os.environ.get(OVERRIDE_ENV) or None
    if _cached is None or _cached[0] != override:
        _cached = (override, load_capabilities(override=Path(override) if override else None))
    return _cached[1]
