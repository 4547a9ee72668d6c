"""Glob semantics for ``match`` fields: shell-style, case-sensitive, ``*`` also crosses dots.

That is :func:`fnmatch.fnmatchcase` exactly (``*``, ``?``, ``[seq]``, ``[!seq]``), never the
case-folding :func:`fnmatch.fnmatch`. This module also answers, soundly but not completely,
whether one glob matches every string another does: the validator warns about an
unreachable rule only when that is certain.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache

__all__ = [
    "META",
    "CoverIndex",
    "GlobIndex",
    "LazyRegex",
    "bits",
    "covers",
    "covers_all",
    "is_literal",
    "literal_prefix",
    "to_regex",
]

META = frozenset("*?[")


def is_literal(glob: str) -> bool:
    return not any(ch in META for ch in glob)


def literal_prefix(glob: str) -> str:
    """The characters every match starts with: everything before the first wildcard."""
    for i, ch in enumerate(glob):
        if ch in META:
            return glob[:i]
    return glob


def _literal_suffix(glob: str) -> str:
    for i in range(len(glob) - 1, -1, -1):
        if glob[i] in META or glob[i] == "]":
            return glob[i + 1 :]
    return glob


def to_regex(globs: Sequence[str]) -> re.Pattern[str]:
    """One compiled regex matching a string when any of ``globs`` does (full match)."""
    return _regex(tuple(globs))


@lru_cache(maxsize=4096)
def _regex(globs: tuple[str, ...]) -> re.Pattern[str]:
    parts = [fnmatch.translate(g) for g in dict.fromkeys(globs)]
    return re.compile("|".join(f"(?:{p})" for p in parts))


class LazyRegex:
    """The regex of a rule's globs, compiled the first time a call needs it.

    The rule index leaves most rules of a large policy untried for any given call, and
    compiling ten thousand regexes up front was most of the time it took to compile a
    policy at the size cap.
    """

    __slots__ = ("_compiled", "globs")

    def __init__(self, globs: tuple[str, ...]) -> None:
        self.globs = globs
        self._compiled: re.Pattern[str] | None = None

    def match(self, value: str) -> re.Match[str] | None:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = _regex(self.globs)
        return compiled.match(value)


def _matches_everything(glob: str) -> bool:
    return glob != "" and set(glob) == {"*"}


def covers(wide: str, narrow: str) -> bool:
    """True only if every string ``narrow`` matches, ``wide`` matches too.

    Sound, deliberately incomplete: a star-only glob covers all; a glob covers any literal
    it matches; ``P*`` covers a glob whose literal prefix starts with ``P``; ``*S`` covers
    one whose literal suffix ends with ``S``. Anything subtler is answered "not sure" (False).
    """
    if _matches_everything(wide) or wide == narrow:
        return True
    if is_literal(narrow):
        return fnmatch.fnmatchcase(narrow, wide)
    if wide.endswith("*") and is_literal(wide.rstrip("*")):
        return literal_prefix(narrow).startswith(wide.rstrip("*"))
    if wide.startswith("*") and is_literal(wide.lstrip("*")):
        return _literal_suffix(narrow).endswith(wide.lstrip("*"))
    return False


def covers_all(wide: Sequence[str] | None, narrow: Sequence[str] | None) -> bool:
    """Whether a match field ``wide`` accepts every value field ``narrow`` accepts.

    ``None`` is a field left out: it accepts anything, including a call that does not carry
    the field (matched as the empty string, which only star-only globs match).
    """
    if wide is None:
        return True
    if narrow is None:
        return any(_matches_everything(g) for g in wide)
    return all(any(covers(w, n) for w in wide) for n in narrow)


class GlobIndex:
    """Rules as bits of an int, looked up by the literal start of their globs.

    ``lookup(value)`` returns a superset of the rules one of whose globs can match
    ``value``: rules without the field ("open"), rules with a literal glob equal to
    ``value``, rules with a glob whose literal prefix ``value`` starts with and, when
    ``suffixes`` is on, rules with a glob that starts with a wildcard and whose literal
    suffix ``value`` ends with (``*.classify``). A glob with neither (``*x*``) makes its
    rule open. A few dictionary lookups instead of one regex per rule; the caller
    verifies the few candidates with the real regexes.
    """

    __slots__ = (
        "_prefix_lengths",
        "_suffix_lengths",
        "exact",
        "open",
        "prefixes",
        "suffixes",
        "use_suffixes",
    )

    def __init__(self, *, suffixes: bool = True) -> None:
        self.use_suffixes = suffixes
        self.open = 0
        self.exact: dict[str, int] = {}
        self.prefixes: dict[str, int] = {}
        self.suffixes: dict[str, int] = {}
        self._prefix_lengths: tuple[int, ...] = ()
        self._suffix_lengths: tuple[int, ...] = ()

    def add(self, bit: int, globs: Sequence[str] | None) -> None:
        """Record rule ``bit`` (``1 << index``) with the globs of one of its fields."""
        if globs is None:
            self.open |= bit
            return
        for glob in globs:
            prefix, suffix = literal_prefix(glob), _literal_suffix(glob)
            if is_literal(glob):
                self.exact[glob] = self.exact.get(glob, 0) | bit
            elif prefix:
                self.prefixes[prefix] = self.prefixes.get(prefix, 0) | bit
            elif suffix and self.use_suffixes:
                self.suffixes[suffix] = self.suffixes.get(suffix, 0) | bit
            else:
                self.open |= bit
            # Re-sorted only when a new length appears (a handful), not on every add:
            # that made indexing ten thousand rules quadratic.
            if prefix and len(prefix) not in self._prefix_lengths:
                self._prefix_lengths = tuple(sorted({*self._prefix_lengths, len(prefix)}))
            if suffix and len(suffix) not in self._suffix_lengths:
                self._suffix_lengths = tuple(sorted({*self._suffix_lengths, len(suffix)}))

    def lookup(self, value: str) -> int:
        found = self.open | self.exact.get(value, 0)
        size = len(value)
        prefixes = self.prefixes
        for length in self._prefix_lengths:
            if length > size:
                break
            found |= prefixes.get(value[:length], 0)
        suffixes = self.suffixes
        for length in self._suffix_lengths:
            if length > size:
                break
            found |= suffixes.get(value[size - length :], 0)
        return found


class CoverIndex:
    """Earlier rules' globs by the shapes :func:`covers` can prove a cover for, so the
    unreachable-rule check compares a rule only with the few rules that might hide it,
    not with every earlier one (ten thousand ``*x*`` rules were 50 million comparisons).

    ``candidates(globs)`` is a superset of the rules covering a field: rules without the
    field, star-only globs, equal globs, ``P*`` with ``P`` a start of the literal prefix,
    ``*S`` with ``S`` an end of the literal suffix and, for a literal, any glob that
    could match it (by :class:`GlobIndex`).
    """

    __slots__ = ("absent", "equal", "matching", "prefix_star", "star", "suffix_star")

    def __init__(self) -> None:
        self.absent = 0
        self.star = 0
        self.equal: dict[str, int] = {}
        self.prefix_star = GlobIndex(suffixes=False)
        self.suffix_star = GlobIndex(suffixes=True)
        self.matching = GlobIndex(suffixes=True)

    def add(self, bit: int, globs: Sequence[str] | None) -> None:
        if globs is None:
            self.absent |= bit
            return
        self.matching.add(bit, globs)
        for glob in globs:
            self.equal[glob] = self.equal.get(glob, 0) | bit
            if _matches_everything(glob):
                self.star |= bit
            elif glob.endswith("*") and is_literal(glob.rstrip("*")):
                self.prefix_star.add(bit, [glob])
            elif glob.startswith("*") and is_literal(glob.lstrip("*")):
                self.suffix_star.add(bit, [glob])

    def candidates(self, globs: Sequence[str] | None) -> int:
        found = self.absent | self.star
        if not globs:
            return found
        every = -1
        for glob in globs:
            one = self.equal.get(glob, 0) | self.prefix_star.lookup(literal_prefix(glob))
            one |= self.suffix_star.lookup(_literal_suffix(glob))
            if is_literal(glob):
                one |= self.matching.lookup(glob)
            every &= one
        return found | every


def bits(mask: int) -> Iterator[int]:
    """The indices of the set bits of ``mask``, lowest first (policy order for rules)."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low
