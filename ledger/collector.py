"""The cyclic garbage collector, paused while a big statement is parsed and imported.

A statement of 100,000 entries is millions of live objects (its parse tree, then its entries
and lines), none of them garbage until the import ends; yet every full pass of the collector
walks them all again, and such passes come each time the heap has grown by a quarter. They
were about 40% of the tree's build and a third of a second of the import.

A pause rather than `gc.freeze`: the server freezes its start-up heap for good (see
`api.runtime.settle_heap`), and `gc.unfreeze` would thaw that too.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Pauses:
    """How many threads are inside `collector_paused`, and whether to switch back on."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.was_enabled = False


_pauses = _Pauses()


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection until the block ends (in every thread: objects are still freed
    as soon as nothing refers to them; garbage in reference cycles waits, seconds at most,
    as the block is bounded by the statement limits). Blocks may overlap, in one thread or
    several: the collector comes back on when the last one ends, if it was on before."""
    with _pauses.lock:
        if _pauses.count == 0:
            _pauses.was_enabled = gc.isenabled()
            gc.disable()
        _pauses.count += 1
    try:
        yield
    finally:
        with _pauses.lock:
            _pauses.count -= 1
            if _pauses.count == 0 and _pauses.was_enabled:
                gc.enable()
