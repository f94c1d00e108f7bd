"""The local backend: segments of BM25 arrays, FAISS vectors and SQLite text in one folder.

    backend.py      LocalBackend: opens generations for readers, hands out the one writer
    generation.py   Generation: a loaded generation and which of its articles and chunks are live
    snapshot.py     LocalSnapshot: search and reads over one pinned generation
    writer.py       LocalWriter: builds the next generation; deletes what no reader holds
    merge.py        the tiered merge policy (MERGE_FACTOR, EXPUNGE, plan_merge)
    segment.py, bm25.py, vectors.py, store.py, manifest.py, folder.py: a segment's parts and the folder protocol
"""

from .backend import LocalBackend
from .generation import Generation
from .merge import EXPUNGE, MERGE_FACTOR, plan_merge
from .snapshot import LocalSnapshot
from .writer import LocalWriter

__all__ = ["EXPUNGE", "MERGE_FACTOR", "Generation", "LocalBackend", "LocalSnapshot", "LocalWriter", "plan_merge"]
