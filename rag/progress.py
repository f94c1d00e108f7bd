"""Progress of one long piece of work (a file being read, OCR'd, split and embedded), for whoever watches it.

The library and the OCR reader call `begin`/`advance`/`report`; nothing happens unless a watcher was set
in the current context with `watching(callback)` (the UI's upload does, per file, in the thread that does
the work), so the CLI and the folder sync pay nothing. A watcher gets `Step`s: the stage, how far it is,
and an estimate of the time the stage still needs, from its own pace so far.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum


class Stage(str, Enum):
    READ = "read"  # the file's text (a PDF's text layer, a page image's pixels)
    OCR = "ocr"  # scanned pages through the recogniser, page by page
    SPLIT = "split"  # articles and chunks
    EMBED = "embed"  # chunk vectors
    SENTENCES = "sentences"  # sentence vectors
    SAVE = "save"  # into the index (under the writer lock)


@dataclass(frozen=True)
class Step:
    stage: Stage
    done: int  # units of the stage finished (pages, chunks, sentences); 0 when it has no count
    total: int  # 0: no count
    stage_s: float  # seconds since the stage began
    eta_s: float | None  # seconds the stage still needs at its pace so far; None until one unit is done


class _Tracker:
    def __init__(self, callback: Callable[[Step], None]):
        self.callback = callback
        self.stage: Stage | None = None
        self.began = time.monotonic()
        self.done = self.total = 0

    def report(self, stage: Stage, done: int, total: int) -> None:
        now = time.monotonic()
        if stage is not self.stage:
            self.stage, self.began = stage, now
        self.done, self.total = done, total
        spent = now - self.began
        eta = spent / done * (total - done) if 0 < done < total else (0.0 if total and done >= total else None)
        self.callback(Step(stage, done, total, spent, eta))


_trackers: ContextVar[tuple[_Tracker, ...]] = ContextVar("rag_progress", default=())


@contextlib.contextmanager
def watching(callback: Callable[[Step], None]) -> Iterator[None]:
    """Send the steps reported in this context (this thread) to `callback` until the block ends."""
    token = _trackers.set(_trackers.get() + (_Tracker(callback),))
    try:
        yield
    finally:
        _trackers.reset(token)


def watched() -> bool:
    return bool(_trackers.get())


def report(stage: Stage, done: int = 0, total: int = 0) -> None:
    for tracker in _trackers.get():
        try:
            tracker.report(stage, done, total)
        except Exception:  # a watcher's failure never stops the work it watches
            pass


def begin(stage: Stage, total: int = 0) -> None:
    """A stage starts (with `total` units to do, when known)."""
    if total or stage is not Stage.OCR:  # a PDF without scanned pages announces 0 pages to OCR: nothing to show
        report(stage, 0, total)


def advance(stage: Stage, units: int = 1) -> None:
    """`units` more of the current stage are done."""
    for tracker in _trackers.get():
        if tracker.stage is stage:
            try:
                tracker.report(stage, tracker.done + units, tracker.total)
            except Exception:
                pass


@contextlib.contextmanager
def counting(stage: Stage) -> Iterator[list[int]]:
    """How many units of `stage` were done inside the block (e.g. pages OCR'd while one file was read)."""
    seen = [0]

    def count(step: Step) -> None:
        if step.stage is stage:
            seen[0] = max(seen[0], step.done)

    with watching(count):
        yield seen
