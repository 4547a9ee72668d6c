"""A call site's memory of what it sent: taking back a request that failed."""

from __future__ import annotations

from engine.providers.anthropic.caching._reuse import MAX_PENDING_POSITIONS, ReuseTracker

D = [bytes([i]) * 8 for i in range(8)]  # prefix hashes of one prompt and its extensions
HOUR = 3600.0


def _state(tracker: ReuseTracker, now: float) -> tuple[object, ...]:
    seen = tracker.lookup("s", D[:4], now)
    return (seen.seen, seen.runs, seen.written, seen.gaps, seen.reached, seen.last_request)


def test_a_request_taken_back_leaves_the_site_as_it_was_before_it() -> None:
    tracker = ReuseTracker()
    tracker.record("s", D[:3], 0.0, written=[(2, 300.0)])
    tracker.record("s", D[:3], 60.0, written=[(2, 300.0)])
    before = _state(tracker, 200.0)
    tracker.record("s", D[:4], 120.0, written=[(3, HOUR)])  # a third use and a new turn, then it fails
    assert _state(tracker, 200.0) != before
    tracker.forget(D[:4], 120.0)
    assert _state(tracker, 200.0) == before
    tracker.forget(D[:4], 120.0)  # twice is harmless
    assert _state(tracker, 200.0) == before


def test_taking_a_request_back_keeps_what_a_later_request_did() -> None:
    tracker = ReuseTracker()
    tracker.record("s", D[:3], 0.0)
    tracker.record("s", D[:3], 60.0, written=[(2, 300.0)])  # fails, but its resend goes out first
    tracker.record("s", D[:3], 61.0, written=[(2, 300.0)])
    tracker.forget(D[:3], 60.0)
    sighting = tracker.lookup("s", D[:3], 100.0)
    assert sighting.seen[2] == 61.0 and sighting.written[2], "the resend's sighting and entry stay"


def test_the_same_request_recorded_twice_is_taken_back_to_before_the_first() -> None:
    tracker = ReuseTracker()
    tracker.record("s", D[:2], 0.0)
    before = _state(tracker, 200.0)
    tracker.record("s", D[:3], 30.0)
    tracker.record("s", D[:3], 30.0, written=[(2, 300.0)])
    tracker.forget(D[:3], 30.0)
    assert _state(tracker, 200.0) == before


def test_what_can_be_taken_back_is_bounded_by_positions() -> None:
    tracker = ReuseTracker()
    wide = [bytes([k % 256, k // 256]) * 4 for k in range(1000)]
    for t in range(2 * MAX_PENDING_POSITIONS // len(wide)):
        tracker.record("s", [*wide, t.to_bytes(8, "big")], float(t))
    assert tracker._pending_positions <= MAX_PENDING_POSITIONS
    tracker.forget([*wide, (0).to_bytes(8, "big")], 0.0)  # too old: nothing to take back, no error
