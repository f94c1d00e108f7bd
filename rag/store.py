"""The chunk store: chunk text and metadata in SQLite; a chunk's row id is its FAISS id and BM25 row."""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .articles import Article
from .chunks import Chunk

SCHEMA = """
CREATE TABLE articles (
    id INTEGER PRIMARY KEY, source TEXT NOT NULL, title TEXT NOT NULL, byline TEXT NOT NULL,
    kicker TEXT NOT NULL, body TEXT NOT NULL, position INTEGER NOT NULL, chunks INTEGER NOT NULL
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY, article INTEGER NOT NULL REFERENCES articles(id), source TEXT NOT NULL,
    title TEXT NOT NULL, byline TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL
);
CREATE TABLE terms (token TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class ArticleRow:
    id: int
    source: str
    title: str
    byline: str
    chunks: int

    @property
    def display_title(self) -> str:
        return self.title or "（无标题）"


class ChunkStore:
    """Read-only at query time; one SQLite connection per thread."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()

    @classmethod
    def create(
        cls,
        path: Path,
        articles: list[Article],
        chunks: list[Chunk],
        terms,
    ) -> "ChunkStore":
        """`terms` are (token, number of chunks containing it) pairs."""
        counts = Counter(c.article for c in chunks)
        with sqlite3.connect(path) as db:
            db.executescript(SCHEMA)
            db.executemany(
                "INSERT INTO articles VALUES (?,?,?,?,?,?,?,?)",
                ((i, a.source, a.title, a.byline, a.kicker, a.body, a.position, counts[i]) for i, a in enumerate(articles)),
            )
            db.executemany(
                "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?)",
                ((i, c.article, c.source, c.title, c.byline, c.start, c.end, c.text) for i, c in enumerate(chunks)),
            )
            db.executemany("INSERT INTO terms VALUES (?,?)", terms)
            db.execute("INSERT INTO meta VALUES ('chunks', ?)", (str(len(chunks)),))
        return cls(path)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._local.db = db
        return db

    def check(self) -> int:
        """Number of chunks; raises sqlite3.DatabaseError when the file is unreadable.

        Cheap on purpose (a full integrity check reads the whole file): the manifest's file sizes
        catch truncation, and this catches a damaged header or schema.
        """
        db = self._db()
        return int(db.execute("SELECT max(id) + 1 FROM chunks").fetchone()[0] or 0)

    def chunks(self, ids: list[int]) -> dict[int, Chunk]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._db().execute(
            f'SELECT id, source, title, byline, article, start, "end", text FROM chunks WHERE id IN ({marks})',
            [int(i) for i in ids],
        )
        return {r[0]: Chunk(r[1], r[2], r[3], r[4], r[5], r[6], r[7]) for r in rows}

    def article_bodies(self, ids: list[int]) -> dict[int, str]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return dict(self._db().execute(f"SELECT id, body FROM articles WHERE id IN ({marks})", [int(i) for i in ids]))

    def articles(self) -> list[ArticleRow]:
        rows = self._db().execute("SELECT id, source, title, byline, chunks FROM articles ORDER BY source, position")
        return [ArticleRow(*r) for r in rows]

    def document_frequency(self, tokens: list[str]) -> dict[str, int]:
        if not tokens:
            return {}
        marks = ",".join("?" * len(tokens))
        return dict(self._db().execute(f"SELECT token, df FROM terms WHERE token IN ({marks})", list(tokens)))
