"""What happened to recent uploads: which are still being read, and how each one ended.

An upload of a large file takes a while; a client that gave up waiting (a timeout) can still learn
its outcome from GET /api/v1/documents/{name}. Kept in memory, for the most recent uploads only.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

from .library import Change, LibraryError, safe_name

KEEP = 1000  # outcomes remembered


@dataclass(frozen=True)
class UploadState:
    name: str
    state: str  # "processing", or the outcome: added, replaced, unchanged, refused, skipped
    message: str = ""


def library_name(name: str) -> str:
    """The name a file will have in the library (or the name as given, when it has none)."""
    try:
        return safe_name(name)
    except LibraryError:
        return str(name)[:80]


class UploadLog:
    def __init__(self, keep: int = KEEP):
        self.keep = keep
        self._working: dict[str, int] = {}
        self._done: OrderedDict[str, UploadState] = OrderedDict()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def working(self, names: list[str]):
        """While the block runs these uploads show as "processing"."""
        names = [library_name(n) for n in names]
        with self._lock:
            for n in names:
                self._working[n] = self._working.get(n, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                for n in names:
                    left = self._working.get(n, 1) - 1
                    if left:
                        self._working[n] = left
                    else:
                        self._working.pop(n, None)

    def finished(self, changes: list[Change]) -> None:
        with self._lock:
            for c in changes:
                self._done.pop(c.source, None)
                self._done[c.source] = UploadState(c.source, c.status, c.message)
            while len(self._done) > self.keep:
                self._done.popitem(last=False)

    def state(self, name: str) -> UploadState | None:
        with self._lock:
            if name in self._working:
                return UploadState(name, "processing", "正在读取和索引（processing）")
            return self._done.get(name)
