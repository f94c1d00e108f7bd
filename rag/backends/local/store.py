"""A segment's chunk store: article and chunk text in SQLite, ids local to the segment.

Written once when the segment is built, read-only afterwards (so its checksum holds). Which
documents hold an article is not stored here: that changes with adds and removes, and lives in
the generation manifest.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

SCHEMA = """
CREATE TABLE articles (
    id INTEGER PRIMARY KEY, title TEXT NOT NULL, byline TEXT NOT NULL, kicker TEXT NOT NULL,
    body TEXT NOT NULL, page INTEGER, position INTEGER NOT NULL, chunks INTEGER NOT NULL
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY, article INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL
);
"""
ARTICLE_COLUMNS = "id, title, byline, kicker, body, page, position, chunks"


def create(path: Path, articles, chunks) -> None:
    """`articles`: (title, byline, kicker, body, page, position, chunks) rows; `chunks`: (article, start, end, text)."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=OFF")  # a new file: a crash leaves a temp folder, never a half-written live store
        db.executescript(SCHEMA)
        db.executemany("INSERT INTO articles VALUES (?,?,?,?,?,?,?,?)", ((i, *row) for i, row in enumerate(articles)))
        db.executemany("INSERT INTO chunks VALUES (?,?,?,?,?)", ((i, *row) for i, row in enumerate(chunks)))
        db.commit()
    finally:
        db.close()


class Store:
    """One read-only SQLite connection per thread; `close` closes all of them."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(f"file:{self.path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()

    def counts(self) -> tuple[int, int]:
        db = self._db()
        return (
            int(db.execute("SELECT count(*) FROM articles").fetchone()[0]),
            int(db.execute("SELECT count(*) FROM chunks").fetchone()[0]),
        )

    def chunks(self, ids: list[int]) -> list[tuple]:
        """(id, article, start, end, text, title, byline, page) rows."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return self._db().execute(
            f'SELECT c.id, c.article, c.start, c."end", c.text, a.title, a.byline, a.page '
            f"FROM chunks c JOIN articles a ON a.id = c.article WHERE c.id IN ({marks})",
            [int(i) for i in ids],
        ).fetchall()

    def bodies(self, ids: list[int]) -> dict[int, str]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return dict(self._db().execute(f"SELECT id, body FROM articles WHERE id IN ({marks})", [int(i) for i in ids]))

    def articles(self, ids: list[int] | None = None) -> list[tuple]:
        if ids is None:
            return self._db().execute(f"SELECT {ARTICLE_COLUMNS} FROM articles ORDER BY id").fetchall()
        out = []
        for start in range(0, len(ids), 900):
            part = [int(i) for i in ids[start : start + 900]]
            out += self._db().execute(
                f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE id IN ({','.join('?' * len(part))}) ORDER BY id", part
            ).fetchall()
        return out

    def embed_rows(self) -> list[tuple[str, str]]:
        """(headline, text) of every chunk in id order: what the dense leg embeds."""
        return self._db().execute(
            "SELECT a.title, c.text FROM chunks c JOIN articles a ON a.id = c.article ORDER BY c.id").fetchall()

    def chunk_rows(self, article_ids: list[int]) -> list[tuple]:
        """(article, start, end, text) of the chunks of these articles, in id order: for merging segments."""
        out = []
        for start in range(0, len(article_ids), 900):
            part = [int(i) for i in article_ids[start : start + 900]]
            out += self._db().execute(
                f'SELECT article, start, "end", text FROM chunks WHERE article IN ({",".join("?" * len(part))}) ORDER BY id',
                part,
            ).fetchall()
        return out
