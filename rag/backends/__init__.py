"""Storage backends behind one seam (`base.Backend`), chosen by `RAG_BACKEND`.

- `local` (the default): segments of bm25 arrays, FAISS and SQLite under `RAG_INDEX_DIR`.
- `milvus:///path/archive.db` (Milvus Lite, in-process), `milvus://host:19530` or
  `milvus+https://host` (a Milvus server or cluster); see `milvus/connection.py`.
"""

from __future__ import annotations

from pathlib import Path

from ..settings import Settings
from .base import Backend, BackendUnavailable, IndexCorrupt, IndexLocked, Prepared, Snapshot, Writer

__all__ = ["Backend", "BackendUnavailable", "IndexCorrupt", "IndexLocked", "Prepared", "Snapshot", "Writer", "open_backend"]


def open_backend(settings: Settings, progress: bool = False) -> Backend:
    """The backend `settings.backend` names; local and Milvus alike are handed this same `settings`."""
    uri = settings.backend.strip()
    if uri in ("", "local"):
        from .local import LocalBackend

        return LocalBackend(Path(settings.index_dir), settings.lexical_weights(), settings.chunk_hard_max,
                            settings.workers, progress, settings)
    if uri.split(":", 1)[0] in ("milvus", "milvus+http", "milvus+https"):
        from .milvus import MilvusBackend

        return MilvusBackend(uri, settings, progress)
    raise ValueError(f"未知的存储后端 RAG_BACKEND={uri!r}（可选：local、milvus:///路径.db、milvus://主机:19530）")
