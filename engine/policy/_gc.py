"""Pause the cyclic garbage collector while a policy is checked or compiled.

Loading a policy at the size cap allocates a few hundred thousand small objects (YAML
nodes, marks, dicts) and none of them form cycles; each allocation burst started a full
collection over everything allocated so far, which was a third to two thirds of the
time. Reference counting still frees everything; the collector runs again afterwards.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc"]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Collector off for the block, back on after it if it was on (nesting and threads:
    whoever turned it off turns it back on)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
