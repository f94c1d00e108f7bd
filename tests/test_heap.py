"""The cycle collector's full collections, deferred through a build (rag/heap.py)."""

from __future__ import annotations

import gc

from rag.heap import DEFERRED, full_collections_deferred


def _full_collections_while(make) -> int:
    """How many full collections start while `make()` runs."""
    seen: list[int] = []

    def watch(phase, info):
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(watch)
    try:
        make()
    finally:
        gc.callbacks.remove(watch)
    return seen.count(2)


def _grow():
    """A heap growing as a build's does: many long-lived containers."""
    return [[i] for i in range(2_000_000)]


def test_full_collections_wait_for_the_end_and_the_thresholds_come_back():
    before = gc.get_threshold()
    kept = []
    assert _full_collections_while(lambda: kept.append(_grow())) >= 1  # the control: a growing heap is scanned
    kept.clear()
    gc.collect()

    def deferred():
        with full_collections_deferred():
            assert gc.get_threshold() == (before[0], before[1], DEFERRED)
            assert _full_collections_while(lambda: kept.append(_grow())) == 0

    assert _full_collections_while(deferred) == 1  # the one at its end
    assert gc.get_threshold() == before


def test_thresholds_come_back_when_the_build_fails():
    before = gc.get_threshold()
    try:
        with full_collections_deferred():
            raise ValueError("a failed build")
    except ValueError:
        pass
    assert gc.get_threshold() == before


def test_overlapping_builds_restore_the_thresholds_once_both_end():
    """Two builds in two threads of one process, the first ending before the second: full collections
    stay deferred until the second ends, and the thresholds come back then."""
    import threading

    before = gc.get_threshold()
    first_in, first_out = threading.Event(), threading.Event()

    def first():
        with full_collections_deferred():
            first_in.set()
            first_out.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(10)
    with full_collections_deferred():
        first_out.set()
        thread.join(10)
        assert gc.get_threshold()[2] == DEFERRED, "the second build is still running"
    assert gc.get_threshold() == before
