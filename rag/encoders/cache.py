"""Passage vectors cached by (vector space, text hash), so no chunk text is ever embedded twice.

Embedding is the slow step of a build (a few chunks a second on 2 cores with the bundled
engine): a rebuild after one page changes must embed only that page's chunks. The cache is a
SQLite file beside the index; each vector carries its own checksum, and a damaged file is
dropped and recreated (it is only a cache).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import numpy as np
import xxhash

from .base import Encoder

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    space TEXT NOT NULL, hash BLOB NOT NULL, vec BLOB NOT NULL, checksum INTEGER NOT NULL,
    PRIMARY KEY (space, hash)
) WITHOUT ROWID;
"""
# Vectors embedded between two commits: a killed build keeps what it has paid for.
COMMIT_EVERY = 64


def text_hash(text: str) -> bytes:
    return xxhash.xxh3_128_digest(text.encode("utf-8"))


def _checksum(blob: bytes) -> int:
    return xxhash.xxh3_64_intdigest(blob) - 2**63  # SQLite integers are signed 64-bit


class EmbeddingCache:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            db = self._open()
            db.execute("SELECT count(*) FROM (SELECT 1 FROM vectors LIMIT 1)").fetchone()
            return db
        except sqlite3.DatabaseError as exc:
            log.warning("向量缓存 %s 已损坏（%s），已重建", self.path, exc)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            return self._open()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # a lost tail of a cache costs re-embedding, nothing else
        db.executescript(SCHEMA)
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get(self, space: str, hashes: list[bytes], dim: int) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(hashes), 500):
                part = hashes[start : start + 500]
                rows = self._db.execute(
                    f"SELECT hash, vec, checksum FROM vectors WHERE space = ? AND hash IN ({','.join('?' * len(part))})",
                    [space, *part],
                ).fetchall()
                for h, blob, check in rows:
                    if len(blob) == 4 * dim and _checksum(blob) == check:
                        found[h] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, space: str, items: list[tuple[bytes, np.ndarray]]) -> None:
        rows = []
        for h, vec in items:
            blob = np.ascontiguousarray(vec, dtype=np.float32).tobytes()
            rows.append((space, h, blob, _checksum(blob)))
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?,?,?,?)", rows)
            self._db.commit()

    def encode(self, encoder: Encoder, texts: list[str], batch_size: int = 32, progress: bool = False,
               desc: str = "向量化", unit: str = "块", on_stored=None, commit_every: int = COMMIT_EVERY) -> tuple[np.ndarray, int]:
        """Vectors of `texts` (one row each) and how many had to be embedded (the rest came from the cache).

        `on_stored(cached, embedded)` is called once with the count found in the cache and then after each
        stored batch; it may raise to stop (what was stored stays stored)."""
        space, dim = encoder.key, encoder.dim
        hashes = [text_hash(t) for t in texts]
        cached = self.get(space, list(dict.fromkeys(hashes)), dim)
        missing = list(dict.fromkeys(h for h in hashes if h not in cached))
        if on_stored is not None:
            on_stored(len(texts) - sum(h not in cached for h in hashes), 0)
        if missing:
            first_text: dict[bytes, str] = {}
            for h, t in zip(hashes, texts):
                first_text.setdefault(h, t)
            from tqdm import tqdm

            with tqdm(total=len(missing), desc=desc, unit=unit, disable=not progress, mininterval=1.0) as bar:
                for start in range(0, len(missing), commit_every):
                    part = missing[start : start + commit_every]
                    vectors = encoder.encode_passages([first_text[h] for h in part], batch_size, progress=False)
                    self.put(space, list(zip(part, vectors)))
                    cached.update(zip(part, vectors))
                    bar.update(len(part))
                    if on_stored is not None:
                        on_stored(0, len(part))
        out = np.empty((len(texts), dim), dtype=np.float32)
        for i, h in enumerate(hashes):
            out[i] = cached[h]
        return out, len(missing)
