"""Random unit vectors standing in for an embedding model: for timing only, never for quality."""

from __future__ import annotations

import numpy as np

NAME = "random-unit-vectors（仅用于计时，不代表语义质量）"


class RandomEmbedder:
    name = NAME
    query_prompt = ""
    passage_prompt = ""

    def __init__(self, dim: int = 384, seed: int = 0):
        self.dim = dim
        self._rng = np.random.default_rng(seed)

    def _unit(self, n: int) -> np.ndarray:
        v = self._rng.standard_normal((n, self.dim), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v

    def encode_passages(self, texts, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(texts), 65536):
            out[i : i + 65536] = self._unit(min(65536, len(texts) - i))
        return out

    def encode_query(self, text: str) -> np.ndarray:
        return self._unit(1)[0]
