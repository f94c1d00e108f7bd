"""Background upkeep of the running app: pick up changed files of the docs folder, merge small segments.

One daemon thread: every `watch_seconds` it calls `index.sync()`; after an upload or a delete it
calls `index.maintain()`. Errors are logged and the thread goes on: upkeep never stops the app.
"""

from __future__ import annotations

import logging
import threading

from .index import Index, IndexLocked

log = logging.getLogger(__name__)


class Upkeep:
    def __init__(self, index: Index, watch_seconds: float, sync: bool = True):
        self.index = index
        self.watch_seconds = watch_seconds if sync and watch_seconds and watch_seconds > 0 else None
        self.sync = sync
        self._stop = threading.Event()
        self._dirty = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.syncs = 0  # completed folder checks (tests wait on it)

    def start(self) -> Upkeep:
        self._thread = threading.Thread(target=self._run, name="rag-upkeep", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def changed(self) -> None:
        """The library changed (an upload, a delete): merge small segments soon, off the request."""
        self._dirty.set()
        self._wake.set()

    def _run(self) -> None:
        if self.sync:  # originals left by an upload killed before its commit (of this or an earlier run)
            self._step("清理未提交的上传原件", self.index.collect_files)
        while not self._stop.is_set():
            woken = self._wake.wait(self.watch_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            if not woken and self.watch_seconds is not None:
                self._step("检查文档目录", self._sync)
            if self._dirty.is_set():
                self._dirty.clear()
                self._step("合并索引分段", self.index.maintain)

    def _sync(self) -> None:
        changes = self.index.sync()
        self.syncs += 1
        if any(c.status != "unchanged" for c in changes):
            self.index.maintain()

    @staticmethod
    def _step(what: str, action) -> None:
        try:
            action()
        except IndexLocked as exc:
            log.info("%s：索引正被其他进程写入，下次再试（%s）", what, exc)
        except Exception:
            log.exception("%s失败（应用继续运行）", what)
