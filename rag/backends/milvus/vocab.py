"""Document frequencies of a generation, stored as one table rather than one row per term.

idf needs the live document frequency of every query term, and the answer step needs it for its
weights. Kept per term in Milvus, every commit would rewrite hundreds of thousands of rows and every
query would look terms up on the server; as a sorted (key, df) table of ~12 bytes a term, zlib'd
and cut into VARCHAR rows tagged with their generation, a commit writes a few megabytes, a reader
loads it once per generation and looks terms up in memory, and the generation tag gives readers
exactly the table of the generation they pinned.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence

import numpy as np

from ..base import IndexCorrupt
from .state import stable_id

PART_BYTES = 48_000  # base64 of this is 64,000 characters: one VARCHAR(65535)


class DfTable:
    def __init__(self, keys: np.ndarray, df: np.ndarray):
        self.keys = keys  # uint64, sorted, unique: (field namespace << 32) | term dimension
        self.df = df  # uint32

    @classmethod
    def empty(cls) -> DfTable:
        return cls(np.zeros(0, np.uint64), np.zeros(0, np.uint32))

    def __len__(self) -> int:
        return len(self.keys)

    def apply(self, plus: Sequence[tuple[np.ndarray, ...]], minus: Sequence[tuple[np.ndarray, ...]]) -> DfTable:
        """A new table: +1 for every key occurrence in `plus`, -1 in `minus` (each a tuple of key arrays)."""
        def counted(groups):
            arrays = [a for g in groups for a in g if len(a)]
            if not arrays:
                return np.zeros(0, np.uint64), np.zeros(0, np.int64)
            keys, counts = np.unique(np.concatenate(arrays), return_counts=True)
            return keys, counts.astype(np.int64)

        pk, pc = counted(plus)
        mk, mc = counted(minus)
        keys = np.concatenate([self.keys, pk, mk])
        values = np.concatenate([self.df.astype(np.int64), pc, -mc])
        uniq, inverse = np.unique(keys, return_inverse=True)
        total = np.zeros(len(uniq), np.int64)
        np.add.at(total, inverse, values)
        keep = total > 0
        return DfTable(uniq[keep], total[keep].astype(np.uint32))

    def get(self, keys: list[int]) -> list[int]:
        if not len(self.keys) or not keys:
            return [0] * len(keys)
        q = np.array(keys, dtype=np.uint64)
        i = np.minimum(np.searchsorted(self.keys, q), len(self.keys) - 1)
        return np.where(self.keys[i] == q, self.df[i], 0).astype(int).tolist()

    def rows(self, generation: int) -> list[dict]:
        blob = zlib.compress(self.keys.astype("<u8").tobytes() + self.df.astype("<u4").tobytes(), 1)
        pieces = [blob[i : i + PART_BYTES] for i in range(0, len(blob), PART_BYTES)] or [b""]
        return [{"id": stable_id("df", generation, p), "gen": generation, "part": p, "parts": len(pieces),
                 "data": base64.b64encode(piece).decode("ascii"), "_v": [0.0, 0.0]} for p, piece in enumerate(pieces)]

    @classmethod
    def from_rows(cls, rows: list[dict], generation: int) -> DfTable:
        rows = sorted((r for r in rows if int(r["gen"]) == generation), key=lambda r: int(r["part"]))
        if not rows:
            raise IndexCorrupt(f"Milvus 中缺少第 {generation} 代的词频表；请运行 python -m rag build 重建")
        if len(rows) != int(rows[0]["parts"]):
            raise IndexCorrupt(f"Milvus 中第 {generation} 代的词频表不完整（{len(rows)}/{rows[0]['parts']} 行）")
        try:
            data = zlib.decompress(b"".join(base64.b64decode(r["data"]) for r in rows))
        except (ValueError, zlib.error) as exc:
            raise IndexCorrupt(f"Milvus 中第 {generation} 代的词频表已损坏：{exc}") from exc
        n = len(data) // 12
        if n * 12 != len(data):
            raise IndexCorrupt(f"Milvus 中第 {generation} 代的词频表长度不符")
        return cls(np.frombuffer(data[: 8 * n], dtype="<u8").astype(np.uint64), np.frombuffer(data[8 * n :], dtype="<u4").astype(np.uint32))
