"""The engine's book of cache entries across call sites: reads, refreshes, follow gaps."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.providers.anthropic.cache_accounting import account, commit
from engine.providers.anthropic.caching._entries import CacheBook

D = [bytes([i]) * 8 for i in range(8)]  # prefix hashes of one growing conversation
FIVE_M, ONE_H = 300.0, 3600.0


def test_follow_gaps_go_to_the_site_of_the_request_whose_prompt_was_carried_on() -> None:
    book = CacheBook()
    book.record("complete", D[:3], 0.0)
    book.record("stream", D[:5], 2.0)  # carries the complete call's prompt on, 2 s later
    book.record("complete", D[:7], 500.0)  # carries the stream call's prompt on, 498 s later
    assert book.standing("complete", D[:8], 600.0).follows == (2.0,)
    assert book.standing("stream", D[:8], 600.0).follows == (498.0,)
    book.record("complete", D[:7], 500.0)  # the same request recorded again: no new gap
    assert book.standing("stream", D[:8], 600.0).follows == (498.0,)


def test_a_request_that_carries_no_earlier_prompt_on_measures_nothing() -> None:
    book = CacheBook()
    book.record("a", D[:3], 0.0)
    book.record("b", [D[0], b"other" * 2], 10.0)  # shares only the head, where no request ended
    assert book.standing("a", D[:3], 20.0).follows == ()
    assert book.standing("x", [b"new" * 3], 20.0).known is False
    assert book.standing("x", D[:4], 20.0).known is True


def test_hit_and_checkpoint_follow_the_entries_ttls() -> None:
    book = CacheBook(long_ttl_s=ONE_H)
    book.record("s", D[:4], 0.0, markers=[(1, ONE_H), (3, FIVE_M)])
    assert book.standing("s", D[:6], 0.0).hit == -1, "not readable at the instant it is written"
    soon = book.standing("s", D[:6], 100.0)
    assert (soon.hit, soon.checkpoint) == (3, 1)
    later = book.standing("s", D[:6], 400.0)
    assert (later.hit, later.checkpoint) == (1, 1), "the 5m entry lapsed, the 1h one is read"
    gone = book.standing("s", D[:6], 3700.0)
    assert (gone.hit, gone.checkpoint) == (-1, -1)


def test_a_read_refreshes_at_the_entrys_own_ttl_and_a_write_past_the_hit_starts_a_new_one() -> None:
    book = CacheBook(long_ttl_s=ONE_H)
    book.record("s", D[:3], 0.0, markers=[(2, FIVE_M)])
    # 200 s later a longer request reads position 2 (lookback from its marker at 4) and writes 4 at 1h
    book.record("s", D[:5], 200.0, markers=[(4, ONE_H)])
    at = book.standing("s", D[:6], 450.0)
    assert (at.hit, at.checkpoint) == (4, 4)
    book.record("s", D[:5], 460.0, markers=[(4, FIVE_M)])  # reads the 1h entry: it stays 1h
    assert book.standing("s", D[:6], 460.0 + 3000.0).checkpoint == 4
    # position 2's 5m entry was refreshed at 200 s (the read), so it lives to 500 s, not 300 s
    assert book.standing("s", D[:3], 450.0).hit == 2
    assert book.standing("s", D[:3], 501.0).hit == -1


def test_memory_is_bounded() -> None:
    book = CacheBook(max_prefixes=4, max_sites=2)
    for k in range(10):
        book.record(f"site{k}", [bytes([k]) * 8, bytes([k, k]) * 4], float(k), markers=[(1, FIVE_M)])
        book.record(f"other{k}", [bytes([k]) * 8, bytes([k, k]) * 4, b"x" * 8], float(k) + 1.0)
    assert len(book._prefixes) <= 4
    assert len(book._follows) <= 2


@st.composite
def _requests(draw: st.DrawFn) -> list[tuple[float, int, list[tuple[int, str]]]]:
    """Requests along one conversation's prefix chain: time step, prompt length, markers (1h first)."""
    out = []
    for _ in range(draw(st.integers(1, 12))):
        step = draw(st.sampled_from([1.0, 100.0, 299.0, 301.0, 1000.0, 3599.0, 3601.0]))
        n = draw(st.integers(1, len(D)))
        chosen = sorted(draw(st.sets(st.integers(0, n - 1), max_size=4)))
        ones = draw(st.integers(0, len(chosen)))
        out.append((step, n, [(i, "1h" if k < ones else "5m") for k, i in enumerate(chosen)]))
    return out


@settings(max_examples=300, deadline=None)
@given(_requests())
def test_the_book_reads_where_the_emulators_accounting_reads(
    requests: list[tuple[float, int, list[tuple[int, str]]]],
) -> None:
    """Whatever markers went out, the book's hit and 1h reach are the API rules' (cache_accounting)."""
    seconds = {"5m": FIVE_M, "1h": ONE_H}
    book, store = CacheBook(long_ttl_s=ONE_H), {}
    now = 0.0
    for step, n, markers in requests:
        now += step
        digests = D[:n]
        alive = [d for d in D if d in store and store[d].expires > now]
        truth = book.standing("s", D, now)
        assert truth.hit == max((D.index(d) for d in alive), default=-1)
        assert truth.checkpoint == max((D.index(d) for d in alive if store[d].ttl == "1h"), default=-1)
        ttls: list[Any] = [None] * n
        for i, ttl in markers:
            ttls[i] = ttl
        outcome = account(
            digests, [1] * n, ttls, min_tokens=0, lookback=20, alive=set(alive).__contains__, overhead=0
        )
        commit(store, digests, outcome, now, {"5m": 300, "1h": 3600})
        book.record("s", digests, now, markers=[(i, seconds[ttl]) for i, ttl in markers], lookback=20)


def test_a_request_taken_back_leaves_the_book_as_it_was_before_it() -> None:
    """A send that failed with no answer wrote, refreshed and ended nothing: ``forget`` puts back
    the entries it touched and drops the follow gap it measured."""
    book = CacheBook(long_ttl_s=ONE_H)
    book.record("complete", D[:3], 0.0, markers=[(2, FIVE_M)])
    before = book.standing("stream", D[:6], 3.0)
    book.record("stream", D[:5], 2.0, markers=[(3, ONE_H), (4, FIVE_M)])
    assert book.standing("stream", D[:6], 3.0).hit == 4
    book.forget(D[:5], 2.0)
    after = book.standing("stream", D[:6], 3.0)
    assert (after.hit, after.checkpoint) == (before.hit, before.checkpoint) == (2, -1)
    assert book.standing("complete", D[:6], 3.0).follows == (), "the failed send followed nothing"
    assert book.standing("complete", D[:6], 299.0).hit == 2, "the read it assumed refreshed nothing"
    book.forget(D[:5], 2.0)  # twice, or for a request never recorded: nothing happens
    book.forget(D[:4], 7.0)
    assert book.standing("stream", D[:6], 3.0).hit == 2


def test_taking_a_request_back_keeps_what_a_later_request_wrote_over_it() -> None:
    book = CacheBook(long_ttl_s=ONE_H)
    book.record("s", D[:4], 0.0, markers=[(3, FIVE_M)])
    book.record("s", D[:4], 100.0, markers=[(3, FIVE_M)])  # a later request read and refreshed it
    book.forget(D[:4], 0.0)  # the first send's failure is reported late: the entry is not its own now
    assert book.standing("s", D[:6], 350.0).hit == 3
