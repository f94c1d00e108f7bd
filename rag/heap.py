"""Python's cyclic garbage collector during a full build.

A build creates millions of long-lived objects (articles, chunks, their token lists). CPython runs a
full collection each time the objects that survived since the last one reach a quarter of all it has
seen, so a growing heap is scanned over and over: at 1M chunks, 21 full collections took 10.3 s of the
build (eighth session's profile). Nothing the build makes needs the cycle collector to be freed in time:
its objects are freed by reference counting, and the cycles among them are few. So a build defers full
collections to its end; the young generations are still collected as usual.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Collections of the middle generation before the oldest is collected: never, within one build.
DEFERRED = 1 << 30

_lock = threading.Lock()
_inside = 0  # builds running now (threads of one process share the collector's thresholds)
_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def full_collections_deferred() -> Iterator[None]:
    """No full collection inside; once the last build running in this process ends, the thresholds as
    they were, and one full collection."""
    global _inside, _saved
    with _lock:
        if _inside == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(_saved[0], _saved[1], DEFERRED)
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            last = _inside == 0
            if last:
                gc.set_threshold(*_saved)
        if last:
            gc.collect()
