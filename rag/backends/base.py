"""The one seam between retrieval logic and storage.

`Index` reads through a `Snapshot` (one consistent state of the library, pinned for the whole
request) and changes the library through a `Writer` (one writer at a time; everything it does
becomes visible at once, on `commit`). `LocalBackend` keeps segments of bm25 arrays, FAISS and
SQLite files in a folder; `MilvusBackend` keeps the same in Milvus.
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from ..articles import Article
from ..chunks import Chunk
from ..errors import BackendUnavailable, IndexCorrupt, IndexLocked  # noqa: F401 - defined with the others
from ..results import ArticleView, DocumentInfo


class VectorPhase(str, Enum):
    """What a part stored without vectors still lacks: chunk vectors first (the dense leg), then sentence vectors."""

    CHUNKS = "chunks"
    SENTENCES = "sentences"


@dataclass
class Prepared:
    """One document, read, split, chunked and embedded, ready to be stored.

    `chunks[i].article` is the index of its article in `articles`; `vectors` has one row per chunk
    (None when the dense leg is off).

    Sentence vectors let the dense leg score a chunk by its best sentence and answers pick
    sentences by meaning: `sentences` is (m, 3) int32 rows (article index in `articles`, start,
    end in its body), sorted by article then start; `sentence_vectors` has one unit row per
    sentence (float16: they are only ever compared, never searched). Both None when not embedded.
    """

    info: DocumentInfo
    articles: list[Article] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    vectors: np.ndarray | None = None
    sentences: np.ndarray | None = None
    sentence_vectors: np.ndarray | None = None


class Snapshot(abc.ABC):
    """One committed state of the library. Chunk and article ids are valid within it only."""

    meta: dict  # what the writer committed with it: settings, dense leg, counts, timings

    @property
    @abc.abstractmethod
    def n_chunks(self) -> int:
        """Live chunks (BM25's N)."""

    @property
    @abc.abstractmethod
    def n_articles(self) -> int:
        """Live articles (a reprint counts once)."""

    @property
    @abc.abstractmethod
    def vector_key(self) -> str | None:
        """The vector space of the stored vectors (`Encoder.key`), None without vectors."""

    @property
    def lexical_reason(self) -> str:
        """Why this storage cannot serve the lexical leg (a server too old for BM25); "" when it can."""
        return ""

    @abc.abstractmethod
    def lexical(self, weights: dict[str, float], k: int, query: str = "") -> list[tuple[int, float]]:
        """Top chunks for weighted query tokens; `query` is the raw text (for character bigrams)."""

    @abc.abstractmethod
    def dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]: ...

    @abc.abstractmethod
    def chunks(self, ids: list[int]) -> dict[int, Chunk]:
        """Chunks by id, with `article` an article id of this snapshot and every live source."""

    @abc.abstractmethod
    def article_bodies(self, ids: list[int]) -> dict[int, str]: ...

    @abc.abstractmethod
    def articles(self, source: str | None = None) -> list[ArticleView]:
        """Articles in document order: all, or those of one document."""

    @abc.abstractmethod
    def documents(self) -> list[DocumentInfo]: ...

    @abc.abstractmethod
    def document_frequency(self, tokens: list[str]) -> dict[str, int]:
        """Live chunks containing each token (for idf weights of answer sentences)."""

    def sentences(self, article_ids: list[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per article: its sentences' (start, end) spans in the body, (m, 2), and their unit vectors,
        (m, dim) float32. Optional: a backend without sentence vectors returns {} and the dense leg
        then scores chunks alone."""
        return {}

    # --- vectors filled in after the commit (serve first, embed after; see rag/dense_fill.py) ---

    def dense_coverage(self) -> tuple[int, int]:
        """(live chunks whose vectors are stored, live chunks)."""
        return (self.n_chunks if self.vector_key is not None else 0), self.n_chunks

    def missing_vectors(self, sentences: bool) -> list[tuple[str, VectorPhase, int]]:
        """(part, what it lacks, its chunks) of the stored parts still without chunk vectors, or (when
        `sentences`) without sentence vectors; a backend that always stores vectors with the text returns []."""
        return []

    def missing_graphs(self) -> list[str]:
        """Parts whose vectors are searched by a coarse index (IVF) until their graph is built after the
        commit (rag/dense_fill.py); [] for a backend that indexes its vectors itself."""
        return []

    def part_texts(self, part: str) -> tuple[list[str], list[str]]:
        """(every chunk's embedded text in row order, every article's body in row order) of one part."""
        raise NotImplementedError


class Writer(abc.ABC):
    """Changes to the library; nothing is visible to readers before `commit`.

    The library as it will be is `docs` (source -> the backend's record of a written document)
    and `pending` (documents `add`ed, stored at the next `flush`); a source is in one or the other.
    """

    def __init__(self, docs: dict | None = None):
        self.docs: dict = dict(docs or {})
        self.pending: list[Prepared] = []
        self.timings: dict[str, float] = {}  # seconds of the write's stages, where a backend measures them

    @abc.abstractmethod
    def _doc_info(self, record) -> DocumentInfo | None:
        """The DocumentInfo of one of `docs`' records; None for a record that lists no document."""

    def documents(self) -> list[DocumentInfo]:
        """The library as this writer will commit it so far."""
        infos = [self._doc_info(record) for record in self.docs.values()]
        return [info for info in infos if info is not None] + [
            p.info for p in self.pending if p.info.source not in self.docs]

    @property
    def recovering(self) -> bool:
        """True when no readable committed state was found: a rebuild then trusts every stored original,
        since no list of documents says which of them were committed."""
        return False

    def add(self, documents: list[Prepared]) -> None:
        """Store documents; an article already in the library is stored once and listed with both sources.
        A source named twice keeps its last document, placed last."""
        latest: dict[str, Prepared] = {}
        for p in documents:
            latest.pop(p.info.source, None)
            latest[p.info.source] = p
        self.remove(list(latest))  # once for the batch: per document, 15,090 pages took 7.7 s
        self.pending += latest.values()

    def remove(self, sources: list[str]) -> None:
        gone = set(sources)
        for source in gone:
            self.docs.pop(source, None)
        if gone:
            self.pending = [p for p in self.pending if p.info.source not in gone]

    @abc.abstractmethod
    def restamp(self, stamps: dict[str, tuple[int, int]]) -> None:
        """New (size, mtime_ns) for documents whose file was touched but not changed."""

    def clear(self) -> None:
        """Drop every document (a full rebuild starts here)."""
        self.docs.clear()
        self.pending.clear()

    def flush(self, vector_key: str | None = None) -> None:
        """Write what `add` gathered (still invisible to readers); `commit` does it if this was not called."""

    def attach_vectors(self, part: str, vector_key: str, vectors: np.ndarray | None,
                       sentences: tuple[np.ndarray, np.ndarray] | None) -> bool:
        """Give a stored part the vectors it was committed without (chunk vectors, or sentence rows and
        vectors); visible at `commit`. False when the part is no longer in the library (merged, removed)."""
        raise NotImplementedError

    def attach_graph(self, part: str, graph: Path) -> bool:
        """Search a part's vectors with the graph saved at `graph` (`Backend.build_graph`; the file is
        taken); visible at `commit`. False when the part is gone or no longer wants one."""
        return False

    @abc.abstractmethod
    def commit(self, meta: dict, vector_key: str | None = None) -> int:
        """Make everything visible at once and return the new generation's number; a crash before
        this leaves the previous state. `vector_key` names the vector space of the added vectors."""


class Backend(abc.ABC):
    # Whether a commit may store text first and its vectors later (`Writer.attach_vectors`).
    defers_vectors: bool = False

    @property
    @abc.abstractmethod
    def exists(self) -> bool:
        """Whether anything has been committed yet."""

    @abc.abstractmethod
    def snapshot(self) -> contextlib.AbstractContextManager[Snapshot]:
        """The newest committed state, pinned until the context exits. Raises IndexCorrupt."""

    @abc.abstractmethod
    def writer(self, timeout: float = 0.0, on_wait=None) -> contextlib.AbstractContextManager[Writer]:
        """Exclusive write access, waiting up to `timeout` seconds (calling `on_wait(holder)` once if it
        must wait); raises IndexLocked naming the holder."""

    def build_graph(self, part: str) -> Path:
        """Save the graph index of a part that `Snapshot.missing_graphs` lists, for `Writer.attach_graph`,
        and return its file: slow (minutes at 1M), so done outside the writer, with the part pinned by a
        snapshot."""
        raise NotImplementedError

    def refresh(self, wait: bool = False) -> bool:
        """Move to a newer committed state if there is one; True if it moved."""
        return False

    def maintain(self) -> None:
        """Housekeeping a writer may do after a commit (merging segments); never changes results."""

    def collect(self) -> None:
        """Free what no reader holds any more (old generations' files); never changes results."""

    def close(self) -> None:
        pass

    @property
    def location(self) -> str:
        return ""


