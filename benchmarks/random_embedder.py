"""Random unit vectors standing in for an embedding model: for timing only, never for quality."""

from __future__ import annotations

import numpy as np

from rag.encoders.base import Encoder

NAME = "random-unit-vectors（仅用于计时，不代表语义质量）"


class RandomEmbedder(Encoder):
    engine = "random"
    name = NAME
    cacheable = False  # a text gets a different vector each time

    def __init__(self, dim: int = 384, seed: int = 0):
        super().__init__()
        self._dim = dim
        self._rng = np.random.default_rng(seed)

    @property
    def dim(self) -> int:
        return self._dim

    def _encode(self, texts, batch_size, progress, query):
        out = np.empty((len(texts), self._dim), dtype=np.float32)
        for i in range(0, len(texts), 65536):
            n = min(65536, len(texts) - i)
            out[i : i + n] = self._rng.standard_normal((n, self._dim), dtype=np.float32)
        return out
