"""A segment's vectors in FAISS: exact inner-product search for small segments, IVF or an HNSW graph above a size threshold."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ...settings import AnnSettings

# Above `AnnSettings.threshold` vectors (RAG_ANN_THRESHOLD) exact search takes 60 ms at 1M. A segment is
# written with an IVF index (trained in seconds, searched with `AnnSettings.nprobe` lists: recall@10 about
# 0.60 on e5 vectors) and, with RAG_ANN_INDEX=hnsw (the default), gets an HNSW graph after the commit
# (`build(graph=True)`, minutes at 1M: rag/dense_fill.py builds it outside the writer lock), which finds
# 0.957 in under 5 ms. All from the backend's Settings (`Settings.ann`).


HNSW_EF_CONSTRUCTION = 40


class VectorIndex:
    def __init__(self, index):
        self.index = index

    @classmethod
    def build(cls, vectors: np.ndarray | list[np.ndarray], ann: AnnSettings | None = None,
              graph: bool = False) -> VectorIndex:
        """FAISS ids are row numbers, which are chunk ids. `vectors` may come in blocks, added one by
        one, so a 1M-chunk build never holds a second copy of them all. Above the threshold: the HNSW
        graph when `graph` (and the settings want one), else IVF."""
        import faiss

        ann = ann or AnnSettings()

        blocks = [np.ascontiguousarray(b, dtype=np.float32) for b in (vectors if isinstance(vectors, list) else [vectors])]
        blocks = [b for b in blocks if len(b)]
        n, dim = sum(len(b) for b in blocks), blocks[0].shape[1]
        index: faiss.Index
        if n < ann.threshold:
            index = faiss.IndexFlatIP(dim)
        elif graph and ann.index == "hnsw":
            # efConstruction 40: a higher one cost twice the build for no better recall at 1M (README,
            # "Dense index at archive scale"); a larger M did better per millisecond of search.
            index = faiss.IndexHNSWFlat(dim, ann.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index.hnsw.efSearch = ann.ef_search
        else:
            # About 2*sqrt(n) lists trained on 50 points each, 10 k-means rounds: a 1M build trains
            # in well under a minute on 2 cores; memory-mappable, unlike HNSW.
            nlist = int(2 * math.sqrt(n))
            quantizer = faiss.IndexFlatIP(dim)
            index = ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            ivf.cp.niter = 10
            rng = np.random.default_rng(0)
            rows = np.sort(rng.choice(n, size=min(n, nlist * 50), replace=False))
            starts = np.cumsum([0] + [len(b) for b in blocks])
            sample = np.concatenate([b[rows[(rows >= a) & (rows < a + len(b))] - a] for b, a in zip(blocks, starts)])
            index.train(sample)
            ivf.nprobe = ann.nprobe
        for block in blocks:
            index.add(block)
        return cls(index)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, mmap: bool = False, ann: AnnSettings | None = None) -> VectorIndex:
        import faiss

        flags = 0
        if mmap:  # IVF maps its inverted lists; flat and HNSW indexes their vector storage (the graph is read)
            with open(path, "rb") as f:
                ivf = f.read(2) == b"Iw"  # FAISS's four-character code of IVF indexes
            flags = (faiss.IO_FLAG_MMAP if ivf else faiss.IO_FLAG_MMAP_IFC) | faiss.IO_FLAG_READ_ONLY
        index = faiss.read_index(str(path), flags)
        ann = ann or AnnSettings()
        if hasattr(index, "nprobe"):
            index.nprobe = ann.nprobe
        if hasattr(index, "hnsw"):
            index.hnsw.efSearch = ann.ef_search
        return cls(index)

    @property
    def kind(self) -> str:
        """"flat", "ivf" or "hnsw"."""
        return "hnsw" if hasattr(self.index, "hnsw") else "ivf" if hasattr(self.index, "nprobe") else "flat"

    def wants_graph(self, ann: AnnSettings) -> bool:
        """An IVF index where the settings ask for an HNSW graph (written at once, graphed after the commit)."""
        return ann.index == "hnsw" and self.kind == "ivf"

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(local ids, scores) of the `k` nearest, best first."""
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        scores, ids = self.index.search(query, min(k, len(self)))
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def vectors(self) -> np.ndarray:
        """Every stored vector in id order, for merging segments."""
        if hasattr(self.index, "make_direct_map"):
            self.index.make_direct_map()
        return self.index.reconstruct_n(0, len(self))
