"""Question answering over a Chinese local-news archive: hybrid (jieba BM25 + dense) retrieval with sources.

Public API:
    retrieve(query, k=5, mode="hybrid") -> Passages     on the default index (built on first use)
    ask(question, k=5, history=None) -> Answer          extractive answer with [n] citations
    build_index(docs_dir, index_dir, model=None) -> Index     full (re)build
    open_index(settings) -> Index                            build, sync with the docs folder, or reuse
    load_index(index_dir) -> Index                           read-only
    Index.add(paths) / Index.remove(source) / Index.documents()   the library
"""

from __future__ import annotations

import logging
import os
import threading

# OpenMP (the bundled embedding engine, FAISS) reads this once, when the first of them loads. Its
# default busy-wait made one query embedding take 1.7 s instead of 20-40 ms on a busy 2-core machine.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its AVX2 probe logs a harmless ImportError

__version__ = "0.1.0"

from .index import (  # noqa: E402
    BackendUnavailable,
    DenseUnavailable,
    Index,
    IndexCorrupt,
    IndexLocked,
    LexicalUnavailable,
    build_index,
    load_index,
    open_index,
)
from .library import Change, LibraryError  # noqa: E402
from .results import Answer, ArticleView, Citation, DocumentInfo, IndexInfo, Passage, Passages  # noqa: E402
from .settings import Settings  # noqa: E402

__all__ = [
    "Answer", "ArticleView", "BackendUnavailable", "Change", "Citation", "DenseUnavailable", "DocumentInfo", "Index",
    "IndexCorrupt", "IndexInfo", "IndexLocked", "LexicalUnavailable", "LibraryError", "Passage", "Passages", "Settings", "ask", "build_index",
    "default_index", "load_index", "open_index", "retrieve",
]

_default: Index | None = None
_default_lock = threading.Lock()


def default_index() -> Index:
    """The index over RAG_DOCS_DIR in RAG_INDEX_DIR, loaded (or built) once per process."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = open_index(Settings())
    return _default


def retrieve(query: str, k: int = 5, mode: str = "hybrid") -> Passages:
    return default_index().retrieve(query, k=k, mode=mode)


def ask(question: str, k: int = 5, history=None, mode: str = "hybrid", sources=None, index: Index | None = None) -> Answer:
    from .answer import answer

    return answer(index or default_index(), question, k=k, history=history, mode=mode, sources=sources)
