"""Storage backends behind one seam (`base.Backend`), chosen by `RAG_BACKEND`.

- `local` (the default): segments of bm25 arrays, FAISS and SQLite under `RAG_INDEX_DIR`.
"""

from __future__ import annotations

from pathlib import Path

from ..settings import Settings
from .base import Backend, IndexCorrupt, IndexLocked, Prepared, Snapshot, Writer

__all__ = ["Backend", "IndexCorrupt", "IndexLocked", "Prepared", "Snapshot", "Writer", "open_backend"]


def open_backend(settings: Settings, progress: bool = False) -> Backend:
    uri = settings.backend.strip()
    if uri in ("", "local"):
        from .local import LocalBackend

        return LocalBackend(Path(settings.index_dir), settings.lexical_weights(), settings.chunk_hard_max,
                            settings.workers, progress)
    raise ValueError(f"未知的存储后端 RAG_BACKEND={uri!r}（可选：local）")
