"""Sentence vectors in Milvus: one article's sentence spans and float16 vectors, packed into VARCHAR rows.

They are only ever read by article and compared in this process (the dense leg's best-sentence score,
answers picking sentences by meaning), never searched, so one packed blob per article is cheaper than a
row and an index per sentence.
"""

from __future__ import annotations

import base64

import numpy as np

from ..base import IndexCorrupt
from .state import stable_id

PART_BYTES = 48_000  # base64 of this is 64,000 characters: one VARCHAR(65535)


def rows(article: int, spans: np.ndarray, vectors: np.ndarray) -> list[dict]:
    """Rows for one article: int32 (start, end) pairs then float16 vectors, cut into parts."""
    blob = np.asarray(spans, dtype="<i4").tobytes() + np.asarray(vectors, dtype="<f2").tobytes()
    pieces = [blob[i : i + PART_BYTES] for i in range(0, len(blob), PART_BYTES)] or [b""]
    return [{"id": stable_id(article, "sentences", p), "article": article, "part": p, "parts": len(pieces),
             "data": base64.b64encode(piece).decode("ascii"), "_v": [0.0, 0.0]} for p, piece in enumerate(pieces)]


def decode(parts: list[dict], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(spans (m, 2) int32, vectors (m, dim) float32) from one article's rows."""
    parts = sorted(parts, key=lambda r: int(r["part"]))
    if len(parts) != int(parts[0]["parts"]):
        raise IndexCorrupt(f"Milvus 中文章 {parts[0]['article']} 的句向量不完整（{len(parts)}/{parts[0]['parts']} 行）")
    blob = b"".join(base64.b64decode(r["data"]) for r in parts)
    m = len(blob) // (8 + 2 * dim)
    if m * (8 + 2 * dim) != len(blob):
        raise IndexCorrupt(f"Milvus 中文章 {parts[0]['article']} 的句向量长度不符")
    spans = np.frombuffer(blob[: 8 * m], dtype="<i4").reshape(m, 2).astype(np.int32)
    vectors = np.frombuffer(blob[8 * m :], dtype="<f2").reshape(m, dim).astype(np.float32)
    return spans, vectors
