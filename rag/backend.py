"""The one seam between retrieval logic and storage.

`Index` talks only to a `Backend`. `LocalBackend` keeps bm25s, FAISS and SQLite files in one
folder; a distributed backend would implement the same few methods.
"""

from __future__ import annotations

import abc
from pathlib import Path

import numpy as np

from .ann import VectorIndex
from .articles import Article
from .chunks import Chunk
from .lexical import LexicalIndex, build_lexical
from .store import ArticleRow, ChunkStore


class Backend(abc.ABC):
    @property
    @abc.abstractmethod
    def has_vectors(self) -> bool: ...

    @abc.abstractmethod
    def lexical(self, tokens, k: int, query: str = "") -> list[tuple[int, float]]:
        """`tokens`: a list, or {token: weight}; `query`: the raw text, for the bigram field."""

    @abc.abstractmethod
    def dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]: ...

    @abc.abstractmethod
    def chunks(self, ids: list[int]) -> dict[int, Chunk]: ...

    @abc.abstractmethod
    def article_bodies(self, ids: list[int]) -> dict[int, str]: ...

    @abc.abstractmethod
    def articles(self) -> list[ArticleRow]: ...

    @abc.abstractmethod
    def document_frequency(self, tokens: list[str]) -> dict[str, int]: ...


class LocalBackend(Backend):
    FILES = ("chunks.sqlite", "lexical.json", "chunk_article.npy")
    VECTORS = "vectors.faiss"

    def __init__(self, folder: Path, lexical: LexicalIndex, store: ChunkStore, vectors: VectorIndex | None):
        self.folder = folder
        self._lexical = lexical
        self._store = store
        self._vectors = vectors

    # Writing happens in steps, each freeing its memory before the next: 1M chunks must build in 8 GB.
    @staticmethod
    def write_lexical(folder: Path, articles, chunks, weights, workers: int, progress: bool, hard_max: int):
        """bm25s fields into `folder`; returns (word, chunk df) pairs for the store."""
        return build_lexical(folder, articles, chunks, weights, workers, progress, hard_max)

    @staticmethod
    def write_store(folder: Path, articles: list[Article], chunks: list[Chunk], terms) -> None:
        ChunkStore.create(folder / "chunks.sqlite", articles, chunks, terms)

    @classmethod
    def write_vectors(cls, folder: Path, vectors: np.ndarray) -> None:
        VectorIndex.build(vectors).save(folder / cls.VECTORS)

    @classmethod
    def open(cls, folder: Path, with_vectors: bool, mmap: bool = True) -> "LocalBackend":
        """Raises FileNotFoundError or another error when a file is missing or damaged."""
        for name in cls.FILES + ((cls.VECTORS,) if with_vectors else ()):
            if not (folder / name).exists():
                raise FileNotFoundError(f"缺少索引文件 {name}")
        for name in LexicalIndex.files(folder):
            if not (folder / name).exists():
                raise FileNotFoundError(f"缺少索引文件 {name}")
        store = ChunkStore(folder / "chunks.sqlite")
        n = store.check()
        lexical = LexicalIndex.load(folder, mmap=mmap)
        if len(lexical) != n or len(lexical.chunk_article) != n:
            raise ValueError(f"BM25 索引有 {len(lexical)} 条，而块存储有 {n} 条")
        vectors = VectorIndex.load(folder / cls.VECTORS, mmap=mmap) if with_vectors else None
        if vectors is not None and len(vectors) != n:
            raise ValueError(f"向量索引有 {len(vectors)} 条，而块存储有 {n} 条")
        return cls(folder, lexical, store, vectors)

    @property
    def has_vectors(self) -> bool:
        return self._vectors is not None

    @property
    def vector_dim(self) -> int | None:
        return self._vectors.dim if self._vectors is not None else None

    def lexical(self, tokens, k, query=""):
        return self._lexical.search(tokens, k, query)

    def dense(self, vector, k):
        if self._vectors is None:
            return []
        return self._vectors.search(vector, k)

    def chunks(self, ids):
        return self._store.chunks(ids)

    def article_bodies(self, ids):
        return self._store.article_bodies(ids)

    def articles(self):
        return self._store.articles()

    def document_frequency(self, tokens):
        return self._store.document_frequency(tokens)
