"""The one-writer lock of an index folder (the local backend's, and Milvus Lite's beside its database).

An exclusive flock on a file named LOCK that holds the writer's PID, for the message a second
writer gets. The kernel drops it when the holder dies, so a stale lock never blocks.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from .base import IndexLocked

LOCK = "LOCK"


class WriterLock:
    """An exclusive flock on LOCK. The kernel drops it when the holder dies, so a stale lock never blocks."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK
        self._fd: int | None = None

    def acquire(self, timeout: float = 0.0, on_wait=None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + max(0.0, timeout)
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                holder = self.holder()
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise IndexLocked(
                        f"索引 {self.path.parent} 正由另一个进程（PID {holder or '未知'}）写入；请等它完成后再试"
                        f"（index is being written by PID {holder or '?'}）"
                    ) from None
                if on_wait is not None and not told:
                    on_wait(holder)
                    told = True
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def holder(self) -> str:
        try:
            return self.path.read_text().strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
