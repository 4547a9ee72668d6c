"""The floor for policies that cannot see the next pause is a floor on their expected cost.

A conversation's calls are fixed; only the pause after each call is drawn, from its
call site's distribution (up to 5 minutes, 5 minutes to 1h, longer). The best any
such policy can do is an expectimin: at each call, the cheapest marker set given
everything so far, in expectation over the pause that follows. On tiny
conversations that is enumerated exactly (every marker set with up to two markers,
every TTL order) and billed by the cache rules; it never falls below the expected
online floor, and the floor is reached where the pauses are certain.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.plan import TraceRecord, lower_bound, record_from_payload
from engine.plan._bound import lower_bound as per_call_floor
from engine.plan._online import Pauses, hindsight_lower_bound, observed_pauses, online_lower_bound
from tests.plan.test_bound import _marker_sets, _price, _try

MODEL = "claude-sonnet-4-5"
TEXTS = [f"w{i} " * n for i, n in enumerate((300, 900, 1500, 40, 2500, 700, 5, 150))]
GAP = (60.0, 1000.0, 4000.0)  # one pause of each class: up to 5 minutes, up to 1h, longer


def _call(system: list[int], turns: Sequence[int], site: str) -> TraceRecord:
    params: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": [{"type": "text", "text": TEXTS[i]} for i in turns]}],
    }
    if system:
        params["system"] = [{"type": "text", "text": TEXTS[i]} for i in system]
    return record_from_payload(params, ts=0.0, call_site=site, output_tokens=20)  # type: ignore[arg-type]


def _shares(p: Pauses) -> tuple[float, float, float]:
    return (p.short, p.medium, p.long)


def _expected_best(
    calls: list[TraceRecord], pauses: dict[str, Pauses], i: int = 0, now: float = 0.0, store: Any = None
) -> float:
    """The least expected cost from call ``i`` on, choosing markers before the next pause is drawn."""
    record = replace(calls[i], ts=now)
    best = math.inf
    for markers in _marker_sets(len(record.blocks)):
        outcome, after = _try(record, markers, store or {})
        cost = _price(record, outcome)
        if i + 1 < len(calls):
            shares = _shares(pauses[record.call_site])
            cost += sum(
                share * _expected_best(calls, pauses, i + 1, now + GAP[c], after)
                for c, share in enumerate(shares)
                if share
            )
        best = min(best, cost)
    return best


def _expected_floor(calls: list[TraceRecord], pauses: dict[str, Pauses]) -> float:
    """The online floor averaged over every sequence of pause classes, weighted by its chance."""
    total = 0.0
    for classes in itertools.product(range(3), repeat=len(calls) - 1):
        chance, now, trace = 1.0, 0.0, [replace(calls[0], ts=0.0)]
        for call, before, c in zip(calls[1:], calls[:-1], classes, strict=True):
            chance *= _shares(pauses[before.call_site])[c]
            now += GAP[c]
            trace.append(replace(call, ts=now))
        if chance:
            total += chance * online_lower_bound(trace, pauses=pauses)
    return total


PAUSES = st.sampled_from(
    [
        Pauses(1.0, 0.0, 0.0),
        Pauses(0.0, 1.0, 0.0),
        Pauses(0.7, 0.3, 0.0),
        Pauses(0.5, 0.5, 0.0),
        Pauses(0.3, 0.7, 0.0),
        Pauses(0.6, 0.2, 0.2),
        Pauses(0.2, 0.5, 0.3),
    ]
)


@st.composite
def conversation(draw: st.DrawFn) -> tuple[list[TraceRecord], dict[str, Pauses]]:
    """A conversation of 2-3 calls, each carrying the previous one's prompt on (or repeating it),
    alternating between two call sites, at most three blocks a call."""
    system = draw(st.lists(st.sampled_from([0, 2, 4]), max_size=1))
    room = 3 - len(system)
    turns = draw(st.lists(st.sampled_from(range(len(TEXTS))), min_size=room, max_size=room))
    n = draw(st.integers(2, 3))
    lengths = sorted(draw(st.lists(st.integers(1, room), min_size=n, max_size=n)))
    sites = ["ask", "answer"]
    calls = [_call(system, turns[:k], sites[i % 2]) for i, k in enumerate(lengths)]
    return calls, {"ask": draw(PAUSES), "answer": draw(PAUSES)}


@settings(max_examples=100, deadline=None)
@given(conversation())
def test_no_policy_that_cannot_see_the_next_pause_expects_to_pay_less_than_the_online_floor(
    case: tuple[list[TraceRecord], dict[str, Pauses]],
) -> None:
    calls, pauses = case
    assert _expected_best(calls, pauses) >= _expected_floor(calls, pauses) - 1e-12


def _growing(shares: Pauses) -> tuple[list[TraceRecord], dict[str, Pauses]]:
    """A system prompt, then three calls that each add a turn."""
    calls = [_call([4], [1, 7, 5][:n], "s") for n in (1, 2, 3)]
    return calls, {"s": shares}


def test_where_every_pause_is_certain_the_online_floor_is_the_expected_best() -> None:
    for shares in (Pauses(0.0, 1.0, 0.0), Pauses(1.0, 0.0, 0.0)):
        calls, pauses = _growing(shares)
        assert abs(_expected_best(calls, pauses) - _expected_floor(calls, pauses)) < 1e-12


def test_with_one_uncertain_pause_the_online_floor_is_the_expected_best() -> None:
    """Two calls, the pause between them drawn: the first call's new turn is written at 5m
    (wasted if the pause outlives it), at 1h (the premium, whatever comes), or not at all
    (a quick second call cannot read it). The floor charges the cheapest of the three in
    expectation, which is exactly what the best policy expects to pay."""
    draws = (Pauses(0.7, 0.3, 0.0), Pauses(0.5, 0.5, 0.0), Pauses(0.9, 0.1, 0.0), Pauses(0.6, 0.2, 0.2))
    for shares in draws:
        calls, pauses = _growing(shares)
        best, floor = _expected_best(calls[:2], pauses), _expected_floor(calls[:2], pauses)
        assert abs(best - floor) < 1e-12, shares


def test_on_three_calls_a_turn_lost_after_it_was_read_costs_the_whole_read() -> None:
    """Three calls, two drawn pauses. A turn the second call read and a pause then lost
    had its write premium charged already (to the call that first read it), so the third
    call loses all of ``input - read`` on it, and writing it again costs the 5m premium
    whatever follows. Charged that way, the floor is the expected best exactly where no
    pause outlives the hour, and within 0.1% where some do (a long pause ends the run)."""
    for shares in (
        Pauses(0.7, 0.3, 0.0),
        Pauses(0.5, 0.5, 0.0),
        Pauses(0.9, 0.1, 0.0),
        Pauses(0.3, 0.7, 0.0),
    ):
        calls, pauses = _growing(shares)
        best, floor = _expected_best(calls, pauses), _expected_floor(calls, pauses)
        assert abs(best - floor) < 1e-12, shares
    calls, pauses = _growing(Pauses(0.6, 0.2, 0.2))
    best, floor = _expected_best(calls, pauses), _expected_floor(calls, pauses)
    assert best * 0.999 <= floor <= best + 1e-12


def test_a_block_written_at_1h_after_it_was_left_unwritten_is_charged_from_plain_input() -> None:
    """The same prompt three times; the first pause is drawn, the second certain to outlast
    5 minutes. The best policy leaves the message unwritten at the first call and, after a
    short pause, writes it at 1h at the second: ``w1h - input`` over what step 5 charges.
    The floor's charge for that block may not also assume it was written before (``w1h -
    read`` less the write premium): the first call's uncertain-turn term already counted
    the chance it was not, and both together claimed more than the best pays."""
    calls = [_call([2], [0], site) for site in ("ask", "answer", "ask")]
    pauses = {"ask": Pauses(0.7, 0.3, 0.0), "answer": Pauses(0.0, 1.0, 0.0)}
    assert _expected_best(calls, pauses) >= _expected_floor(calls, pauses) - 1e-12


def test_not_knowing_which_pause_is_long_costs_more_than_the_clairvoyant_floor_says() -> None:
    """Half the pauses outlast 5 minutes: the clairvoyant floor (averaged over the draws)
    is below what any policy that cannot see them expects to pay, and the online floor
    closes part of that distance without passing it."""
    calls, pauses = _growing(Pauses(0.5, 0.5, 0.0))
    clairvoyant = 0.0
    for classes in itertools.product(range(2), repeat=2):
        trace, now = [replace(calls[0], ts=0.0)], 0.0
        for call, c in zip(calls[1:], classes, strict=True):
            now += GAP[c]
            trace.append(replace(call, ts=now))
        clairvoyant += 0.25 * lower_bound(trace)
    online, best = _expected_floor(calls, pauses), _expected_best(calls, pauses)
    assert clairvoyant < online <= best + 1e-12


def test_the_pause_shares_are_read_from_the_trace_per_call_site() -> None:
    sites = ("a", "b", "a", "b")
    calls = [_call([4], [1, 7, 5, 3][:n], site) for n, site in zip((1, 2, 3, 4), sites, strict=True)]
    trace = [replace(c, ts=t) for c, t in zip(calls, (0.0, 10.0, 1010.0, 5000.0), strict=True)]
    shares = observed_pauses(trace)
    assert shares == {"a": Pauses(0.5, 0.0, 0.5), "b": Pauses(0.0, 1.0, 0.0)}


def test_a_conversation_that_could_go_through_batches_keeps_the_clairvoyant_floor() -> None:
    """The online floor covers direct conversations only; a batch-tolerant one is floored as before."""
    calls = [replace(c, latency="awaitable") for c in _growing(Pauses(0.0, 1.0, 0.0))[0]]
    trace = [replace(c, ts=t) for c, t in zip(calls, (0.0, 1000.0, 2000.0), strict=True)]
    assert online_lower_bound(trace) == lower_bound(trace)
    direct = [replace(c, latency="interactive") for c in trace]
    # every pause here is certain, and still the 1h write before it covers all that was new at
    # that call: more than the per-call floor says, and exactly the hindsight floor
    assert online_lower_bound(direct) > per_call_floor(direct)
    assert online_lower_bound(direct) == hindsight_lower_bound(direct) == lower_bound(direct)


def test_a_checkpoint_after_a_short_pause_is_charged_only_on_what_is_new() -> None:
    """The first pause is short, the second one long: the cheapest policy writes the first
    turn at 5m and, at the second call, only its new turn at 1h (the whole prefix then
    lives an hour). The online floor charges exactly that, not the first turn again."""
    calls = [
        _call([4], [1, 7, 5][:n], site) for n, site in zip((1, 2, 3), ("ask", "answer", "ask"), strict=True)
    ]
    pauses = {"ask": Pauses(1.0, 0.0, 0.0), "answer": Pauses(0.0, 1.0, 0.0)}
    assert abs(_expected_best(calls, pauses) - _expected_floor(calls, pauses)) < 1e-12
