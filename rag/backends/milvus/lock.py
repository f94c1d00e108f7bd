"""One writer at a time.

Milvus Lite: a flock on `<archive.db>.writer-lock` beside the database folder, as the local backend
does (the kernel drops it when the holder dies).

A server: Milvus has no compare-and-swap, so there is no exact lock in it. Writers on one machine
are serialised by a flock under RAG_INDEX_DIR; writers on different machines by a claim row in
`{prefix}_lock` (holder, expiry) that the holder renews every few seconds: a writer that finds a
live claim of another holder waits, and a claim whose holder died expires after CLAIM_TTL seconds.
Two machines starting a write within the same fraction of a second can still both win; run
ingestion from one machine (the README says so) if that matters.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from pathlib import Path

from ..base import IndexLocked
from ..writer_lock import WriterLock
from .connection import Target

CLAIM_TTL = 30.0
RENEW_S = 5.0


def file_lock(path: Path) -> WriterLock:
    lock = WriterLock(path.parent)
    lock.path = path
    return lock


class ServerClaim:
    """A renewed claim row in the `{prefix}_lock` collection."""

    def __init__(self, backend, collection: str):
        self.backend = backend
        self.collection = collection
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read(self) -> dict | None:
        rows = self.backend.call("读取写入锁", self.backend.client.query, self.collection, filter="id == 0",
                                 output_fields=["holder", "expires"])
        return rows[0] if rows else None

    def _write(self) -> None:
        self.backend.call("写入写入锁", self.backend.client.upsert, self.collection,
                          [{"id": 0, "holder": self.holder, "expires": time.time() + CLAIM_TTL, "_v": [0.0, 0.0]}])

    def acquire(self, timeout: float, on_wait=None) -> None:
        deadline = time.monotonic() + max(0.0, timeout)
        told = False
        while True:
            row = self._read()
            if row is None or row["holder"] == self.holder or float(row["expires"]) < time.time():
                self._write()
                time.sleep(0.2)  # a rival that wrote at the same moment: the last write wins, both see it
                row = self._read()
                if row is not None and row["holder"] == self.holder:
                    break
            other = (row or {}).get("holder", "?")
            if time.monotonic() >= deadline:
                raise IndexLocked(
                    f"Milvus 索引（{self.backend.target.uri}）正由 {other} 写入；请等它完成后再试"
                    f"（index is being written by {other}）"
                )
            if on_wait is not None and not told:
                on_wait(other)
                told = True
            time.sleep(0.5)
        self._thread = threading.Thread(target=self._renew, name="rag-milvus-claim", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_S):
            try:
                self._write()
            except Exception:  # the server went away: the write itself will fail and say so
                pass

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            row = self._read()
            if row is not None and row["holder"] == self.holder:
                self.backend.call("释放写入锁", self.backend.client.delete, self.collection, ids=[0])
        except Exception:
            pass  # it expires by itself


class WriterLease:
    """The lock a MilvusBackend writer holds: a file lock, plus the claim row on a server."""

    def __init__(self, backend, target: Target, lock_dir: Path):
        self.backend = backend
        if target.lite:
            path = target.lite_path.with_name(target.lite_path.name + ".writer-lock")
        else:
            import hashlib

            key = hashlib.sha256(f"{target.address}/{target.db_name}/{target.prefix}".encode()).hexdigest()[:12]
            path = Path(lock_dir) / f"milvus-{key}.writer-lock"
        self.file = file_lock(path)
        self.claim = None if target.lite else ServerClaim(backend, f"{target.prefix}_lock")

    def acquire(self, timeout: float, on_wait=None) -> None:
        started = time.monotonic()
        self.file.acquire(timeout, on_wait)
        if self.claim is not None:
            try:
                self.claim.acquire(max(0.0, timeout - (time.monotonic() - started)), on_wait)
            except BaseException:
                self.file.release()
                raise

    def release(self) -> None:
        try:
            if self.claim is not None:
                self.claim.release()
        finally:
            self.file.release()
