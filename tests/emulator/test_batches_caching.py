"""Prompt caching inside Message Batches: concurrent waves and the seeded hit model.

ANTHROPIC.md, "Later facts", Batches and caching: items are processed concurrently,
so hits inside a batch are best effort (30%-98%); a cold batch can read nothing;
entries written by ordinary requests are not reliably read by batch items. And
"Prompt caching": an entry is usable only once the response that wrote it started.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types.messages import MessageBatchSucceededResult
from test_batches_support import Emu, emu, item, results_by_id, wait_ended

from engine.emulator.cache import ItemAccess

__all__ = ["emu"]

LONG_SYSTEM = "You are a meticulous extraction assistant. Follow the house rules exactly. " * 120


def _cached_item(custom_id: str) -> dict[str, Any]:
    system = [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    return item(custom_id, f"extract document {custom_id}", system=system)


def _run(emu: Emu, n: int, client: anthropic.Anthropic | None = None) -> tuple[str, list[Any]]:
    """Send ``n`` cached items; return the batch id and the usages in processing order."""
    client = client or emu.client
    batch = client.messages.batches.create(requests=[_cached_item(f"d{i}") for i in range(n)])  # type: ignore[misc]
    wait_ended(client, batch.id)
    results = [line.result for line in client.messages.batches.results(batch.id)]
    usages = [r.message.usage for r in results if isinstance(r, MessageBatchSucceededResult)]
    assert len(usages) == n
    return batch.id, usages


def _warm(emu: Emu) -> int:
    warm = emu.client.messages.create(**_cached_item("warm")["params"])
    written = warm.usage.cache_creation_input_tokens or 0
    assert written and warm.usage.cache_creation.ephemeral_1h_input_tokens == written
    return written


def test_with_every_item_reading_a_warmed_prefix_is_read_by_the_whole_batch(emu: Emu) -> None:
    """The documented remedy: one ordinary request writes the shared prefix at 1h first."""
    emu.set_faults(batch_cache_hit_rate=1.0)
    written = _warm(emu)
    _, usages = _run(emu, 5)
    for usage in usages:
        assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (written, 0)
        assert usage.service_tier == "batch"


def test_a_cold_batch_within_one_wave_reads_nothing(emu: Emu) -> None:
    """Items of one wave start together: none can read what another of them writes."""
    emu.set_faults(batch_cache_hit_rate=1.0, batch_wave_size=100)
    _, usages = _run(emu, 6)
    assert all(u.cache_read_input_tokens == 0 and (u.cache_creation_input_tokens or 0) > 0 for u in usages)


def test_later_waves_read_what_earlier_waves_wrote(emu: Emu) -> None:
    emu.set_faults(batch_cache_hit_rate=1.0, batch_wave_size=3)
    _, usages = _run(emu, 9)
    first, later = usages[:3], usages[3:]
    written = first[0].cache_creation_input_tokens
    assert all(u.cache_read_input_tokens == 0 and u.cache_creation_input_tokens == written for u in first)
    assert all((u.cache_read_input_tokens, u.cache_creation_input_tokens) == (written, 0) for u in later)
    assert emu.billing()["cache_write_tokens"] == 3 * written


def test_a_held_write_is_readable_only_once_released(emu: Emu) -> None:
    """A batch item's write waits for the next wave; an ordinary request cannot read it before."""
    state = emu.state
    params = _cached_item("x")["params"]
    held: list[bytes] = []
    first = state.run_message("k", params, tier="batch", access=ItemAccess(reads=True, held=held))
    assert first["usage"]["cache_creation_input_tokens"] and held
    before = state.run_message("k", params)
    assert before["usage"]["cache_read_input_tokens"] == 0
    state.reset()
    held.clear()
    state.run_message("k", params, tier="batch", access=ItemAccess(reads=True, held=held))
    state.release_batch_writes("k", held)
    after = state.run_message("k", params)
    assert after["usage"]["cache_read_input_tokens"] == first["usage"]["cache_creation_input_tokens"]
    assert after["usage"]["cache_creation_input_tokens"] == 0


def test_an_item_that_does_not_read_rewrites_without_hiding_a_live_entry(emu: Emu) -> None:
    state = emu.state
    params = _cached_item("x")["params"]
    state.run_message("k", params)
    held: list[bytes] = []
    miss = state.run_message("k", params, tier="batch", access=ItemAccess(reads=False, held=held))
    assert miss["usage"]["cache_read_input_tokens"] == 0 and not held
    assert state.run_message("k", params)["usage"]["cache_read_input_tokens"]


@pytest.mark.parametrize("rate", [0.3, 0.6, 0.98])
def test_a_fixed_hit_rate_is_the_share_of_items_that_read_an_available_entry(emu: Emu, rate: float) -> None:
    emu.set_faults(batch_cache_hit_rate=rate)
    written = _warm(emu)
    batch_id, usages = _run(emu, 300)
    reading = sum(1 for u in usages if u.cache_read_input_tokens == written)
    assert abs(reading / 300 - rate) < 0.1
    report = emu.billing()["batch_cache"]
    assert report["batch_cache_hit_rate"] == rate and report["hit_model"].startswith("fixed")
    assert report["batches"][batch_id] == {
        "hit_rate": rate,
        "source": "fixed",
        "wave_size": 100,
        "items": 300,
        "items_reading": reading,
    }


def test_the_default_draws_a_per_batch_rate_in_the_documented_range(emu: Emu) -> None:
    """Default hit model: per batch, uniform in 30%..98% with the seed; same seed, same reads."""
    written = _warm(emu)
    batch_id, usages = _run(emu, 200)
    report = emu.billing()["batch_cache"]
    assert report["batch_cache_hit_rate"] is None and report["hit_model"].startswith("documented default")
    record = report["batches"][batch_id]
    assert record["source"] == "default" and 0.30 <= record["hit_rate"] <= 0.98
    reading = [u.cache_read_input_tokens == written for u in usages]
    assert sum(reading) == record["items_reading"] < 200
    emu.state.reset()
    _warm(emu)
    batch_again, usages_again = _run(emu, 200)
    assert batch_again == batch_id  # the reset reseeds the ids too
    assert [u.cache_read_input_tokens == written for u in usages_again] == reading


def test_the_default_rate_differs_between_batches(emu: Emu) -> None:
    ids = [_run(emu, 1)[0] for _ in range(4)]
    rates = {emu.billing()["batch_cache"]["batches"][i]["hit_rate"] for i in ids}
    assert len(rates) == 4


def test_batch_caches_are_isolated_per_api_key(emu: Emu) -> None:
    emu.set_faults(batch_cache_hit_rate=1.0)
    _warm(emu)
    other = anthropic.Anthropic(base_url=emu.base_url, api_key="other-key", max_retries=0)
    batch = other.messages.batches.create(requests=[_cached_item("d0")])  # type: ignore[list-item]
    wait_ended(other, batch.id)
    (result,) = results_by_id(other, batch.id).values()
    assert result.message.usage.cache_read_input_tokens == 0


def test_the_hit_model_settings_are_shown_and_checked(emu: Emu) -> None:
    url = f"{emu.base_url}/_emulator/faults"
    assert httpx.get(url).json()["batch_cache_hit_rate"] is None
    assert httpx.post(url, json={"batch_cache_hit_rate": 0.6}).json()["batch_cache_hit_rate"] == 0.6
    assert httpx.post(url, json={"batch_cache_hit_rate": None}).json()["batch_cache_hit_rate"] is None
    for bad in ({"batch_cache_hit_rate": 1.5}, {"batch_cache_hit_rate": "x"}, {"batch_wave_size": 0}):
        reply = httpx.post(url, json=bad)
        assert reply.status_code == 400, bad
        assert reply.json()["error"]["type"] == "invalid_request_error"
