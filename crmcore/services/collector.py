"""The garbage collector during bulk work: imports and exports of thousands of contacts.

Python's collector starts a pass every 700 new containers (dicts, lists, ORM objects), and its
full passes walk every object of the process: the application's models, metadata, translations.
Bulk work makes millions of short-lived containers and keeps a chunk or a page of them alive at a
time, so with the defaults the collector walks the same live rows again and again, and the whole
application every few hundred of them (an export of 100,000 contacts spent a fifth of its time
there). :func:`bulk_work` freezes what exists when the work starts (left out of every pass, given
back after) and lets 50,000 containers come between passes. Cycles (ORM objects and their states)
are still collected, in fewer, larger passes.

The collector's settings belong to the process: bulk work running in several threads at once (a
web process exporting while it imports) shares one setting, restored when the last one ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

#: New containers between two passes over the youngest generation during bulk work.
THRESHOLD = 50_000

_lock = threading.Lock()
_running = 0
_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def bulk_work() -> Iterator[None]:
    """Collect garbage as bulk work needs, inside the block (see the module's docstring)."""
    global _running, _saved
    with _lock:
        if _running == 0:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(max(_saved[0], THRESHOLD), _saved[1], _saved[2])
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()


def bulk_iteration(items: Iterator[T]) -> Iterator[T]:
    """``items`` produced under :func:`bulk_work` (a streamed export), until exhausted or closed."""
    with bulk_work():
        yield from items
