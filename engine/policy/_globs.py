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

__all__ = ["META", "GlobIndex", "bits", "covers", "covers_all", "is_literal", "literal_prefix", "to_regex"]

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
    parts = [fnmatch.translate(g) for g in dict.fromkeys(globs)]
    return re.compile("|".join(f"(?:{p})" for p in parts))


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
        self._prefix_lengths = tuple(sorted({len(p) for p in self.prefixes}))
        self._suffix_lengths = tuple(sorted({len(s) for s in self.suffixes}))

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


def bits(mask: int) -> Iterator[int]:
    """The indices of the set bits of ``mask``, lowest first (policy order for rules)."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low
