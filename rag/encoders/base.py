"""Chunks -> vectors: the one interface every embedding engine implements.

An encoder's `key` (engine + model) names its vector space. Vectors are stored with that key,
and an index is only ever queried with vectors of the same key.
"""

from __future__ import annotations

import abc
import threading

import numpy as np

from ..errors import ModelUnavailable  # noqa: F401 - defined with the others


class Encoder(abc.ABC):
    engine: str = ""  # "sentence-transformers", "bundled", ...
    name: str = ""  # the model: hub id or local directory
    query_prompt: str = ""
    passage_prompt: str = ""
    # Longest query text embedded: a question needs no more, and cost grows with length.
    max_query_chars: int = 512
    # Whether the same text always gets the same vector (so it may be cached).
    cacheable: bool = True
    # Where it runs, and the batch that suits that (rag/encoders/device.py); RAG_BATCH_SIZE overrides it.
    device: str = "cpu"
    batch_size: int = 32
    fp16: bool = False

    def __init__(self):
        self._lock = threading.Lock()  # neither engine promises re-entrant encoding across threads

    @property
    @abc.abstractmethod
    def dim(self) -> int: ...

    @property
    def key(self) -> str:
        """The vector space: vectors of two encoders may only be compared when their keys are equal."""
        return f"{self.engine}:{self.name}"

    @property
    def label(self) -> str:
        """How the UI and the CLI name it."""
        return self.name

    @abc.abstractmethod
    def _encode(self, texts: list[str], batch_size: int, progress: bool, query: bool) -> np.ndarray:
        """Normalised float32 vectors, one row per text, prompts already applied or added by the engine."""

    def encode_passages(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._encode(list(texts), batch_size, progress, query=False)
        return _normalised(vectors)

    def encode_query(self, text: str) -> np.ndarray:
        with self._lock:
            vectors = self._encode([text[: self.max_query_chars]], 1, False, query=True)
        return _normalised(vectors)[0]


def _normalised(vectors) -> np.ndarray:
    """Inner product must be cosine: bge has no Normalize module, and a 4-bit engine drifts slightly."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, norms, out=vectors, where=norms > 0)
    return vectors
