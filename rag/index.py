"""Indexes -> passages: open, build and query the library; each request reads one pinned snapshot.

`open_index` is what the app and `rag.retrieve` use: it builds the index on first use, brings it
up to date with the docs folder (only changed files), rebuilds in full when the model, the
chunking or the tokenizer changed, and rebuilds a damaged index. `load_index` only reads.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from .backends import open_backend
from .backends.base import Backend, IndexCorrupt, IndexLocked, Snapshot
from .chunks import sentence_spans
from .encoders import Encoder, ModelUnavailable, load_encoder, wanted_engine
from .library import Change, Library, LibraryError, meta_for, stale_reason
from .passages import expand, idf_weights, strip_span, trim_overlap
from .results import ArticleView, DocumentInfo, IndexInfo, Passage, Passages
from .settings import Settings
from .tokenizer import Tokenizer, default_tokenizer

log = logging.getLogger(__name__)

__all__ = ["Index", "IndexCorrupt", "IndexLocked", "DenseUnavailable", "LibraryError", "build_index", "load_index", "open_index"]

MODES = ("hybrid", "lexical", "dense")
# Longer queries are cut: no question needs more, and it bounds the work of one request.
MAX_QUERY_CHARS = 2000


class DenseUnavailable(RuntimeError):
    """Dense mode was asked for but no dense model serves this index."""


class _DenseMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    enabled: bool
    wanted: str
    reason: str = ""
    note: str = ""
    engine: str = ""
    model: str = ""
    key: str = ""
    label: str = ""
    dim: int | None = None


class _Meta(BaseModel):
    """The shape a commit's meta must have; anything else is a corrupt index."""

    model_config = ConfigDict(extra="allow")
    format: int
    rag_version: str
    updated_at: str
    docs_dir: str
    model: str
    dense: _DenseMeta
    chunking: dict[str, int]
    tokenizer: str
    lexical_weights: dict[str, float]
    timings: dict


def _validate_meta(meta: dict) -> dict:
    try:
        _Meta.model_validate(meta)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise IndexCorrupt(f"索引清单的 meta 结构不符（{'.'.join(map(str, first['loc']))}：{first['msg']}）") from exc
    return meta


def _progress(msg: str, *args) -> None:
    log.info(msg, *args)


def _warn(msg: str) -> None:
    log.warning(msg)
    warnings.warn(msg, RuntimeWarning, stacklevel=3)


def encoder_for_index(meta: dict, settings: Settings) -> tuple[Encoder | None, str]:
    """The encoder that made this index's vectors, or None and why: vectors are never compared across models."""
    dense = meta.get("dense") or {}
    if not dense.get("enabled"):
        return None, dense.get("reason") or "索引未包含语义向量"
    engine, model = dense.get("engine", ""), dense.get("model", "")
    encoder, why = load_encoder("bundled" if engine == "bundled" else model, settings.device, settings.model_timeout)
    if encoder is None or encoder.key != dense.get("key"):
        now = encoder.key if encoder is not None else why
        return None, (f"索引的向量由 {dense.get('label') or dense.get('key')} 生成，而该模型现在无法使用（{now}）；"
                      f"运行 python -m rag build 以当前可用的模型重新向量化")
    return encoder, ""


def choose_encoder(settings: Settings, meta: dict | None) -> tuple[Encoder | None, str]:
    """The encoder a build should use. An index that already fell back to the bundled engine keeps it
    without probing the hub again, unless the model has since appeared in the local cache."""
    dense = (meta or {}).get("dense") or {}
    if (
        dense.get("enabled") and dense.get("engine") == "bundled" and dense.get("wanted") == settings.model
        and wanted_engine(settings.model) == "sentence-transformers" and dense.get("note")
    ):
        from .encoders.sentence_transformers import is_cached

        if not is_cached(settings.model):
            encoder, why = load_encoder("bundled", settings.device, settings.model_timeout)
            return encoder, dense.get("note") if encoder is not None else why
    return load_encoder(settings.model, settings.device, settings.model_timeout)


def _snapshot_meta(backend: Backend) -> dict | None:
    if not backend.exists:
        return None
    with backend.snapshot() as snap:
        return _validate_meta(snap.meta)


def _commit(library: Library, writer, settings: Settings, encoder: Encoder | None, note: str, started: float) -> int:
    """Commit with the timings of this change: read+split+chunk, embed, write (tokenize, BM25, store, FAISS)."""
    key = encoder.key if encoder is not None else None
    t0 = time.perf_counter()
    writer.flush(key)
    timings = {**library.stats, "write_s": round(time.perf_counter() - t0, 3), "total_s": round(time.perf_counter() - started, 3)}
    return writer.commit(meta_for(settings, encoder, note, timings), key)


def build_index(
    docs_dir: str | Path | None = None,
    index_dir: str | Path | None = None,
    model: str | None = None,
    settings: Settings | None = None,
    progress: bool = True,
    embedder: Encoder | None = None,
) -> "Index":
    """Read every document again and write a fresh index (one writer at a time); returns it open.

    `embedder` replaces loading `model` (benchmarks pass a labelled random-vector encoder).
    """
    settings = (settings or Settings()).with_(docs_dir=docs_dir, index_dir=index_dir, model=model)
    backend = open_backend(settings, progress)
    if embedder is not None:
        return _build(settings, backend, embedder, "", progress)
    try:
        old = _snapshot_meta(backend)
    except IndexCorrupt:
        old = None
    encoder, note = choose_encoder(settings, old)
    return _build(settings, backend, encoder, note, progress)


def _build(settings: Settings, backend: Backend, encoder: Encoder | None, note: str, progress: bool) -> "Index":
    if encoder is None:
        _warn(f"语义模型不可用，仅使用关键词检索（BM25）：{note}")
    library = Library(settings, encoder, progress)
    started = time.perf_counter()
    try:
        with backend.writer(settings.lock_timeout, _waiting) as writer:
            _progress("读取文档：%s", settings.docs_dir)
            changes = library.rebuild(writer)
            _progress("共 %d 篇文档", len(changes))
            _commit(library, writer, settings, encoder, note, started)
            library.collect_files(writer)
    finally:
        library.close()
    _progress("索引完成，用时 %.1f 秒", time.perf_counter() - started)
    return Index(backend, settings, encoder, note, writable=True)


def load_index(index_dir: str | Path | None = None, settings: Settings | None = None, embedder: Encoder | None = None) -> "Index":
    """Open a persisted index read-only; raises IndexCorrupt with a clear message when it is missing or damaged."""
    settings = (settings or Settings()).with_(index_dir=index_dir)
    backend = open_backend(settings)
    meta = _snapshot_meta(backend)
    if meta is None:
        raise IndexCorrupt(f"{settings.index_dir} 中没有索引；请先运行 python -m rag build")
    if embedder is not None:
        encoder, why = (embedder, "") if embedder.key == meta["dense"].get("key") else (None, "给定的模型与索引的向量不符")
    else:
        encoder, why = encoder_for_index(meta, settings)
    if encoder is None and meta["dense"].get("enabled"):
        _warn(f"语义模型无法加载，仅使用关键词检索：{why}")
    return Index(backend, settings, encoder, why if encoder is None else meta["dense"].get("note", ""), writable=False)


def open_index(settings: Settings | None = None, progress: bool = True, embedder: Encoder | None = None) -> "Index":
    """The index over the docs folder, up to date: built, synced or rebuilt as needed.

    `embedder` replaces choosing the encoder from the settings (benchmarks use random vectors).
    """
    settings = settings or Settings()
    backend = open_backend(settings, progress)
    try:
        meta = _snapshot_meta(backend)
    except IndexCorrupt as exc:
        log.warning("%s，正在重建", exc)
        meta = None
    encoder, note = (embedder, "") if embedder is not None else choose_encoder(settings, meta)
    reason = stale_reason(meta, settings, encoder)
    if reason:
        _progress("构建索引（%s）", reason)
        return _build(settings, backend, encoder, note, progress)
    index = Index(backend, settings, encoder, note, writable=True)
    index.sync()
    return index


def _waiting(holder: str) -> None:
    log.warning("索引正由进程 %s 写入，等待它完成…", holder or "?")


class Index:
    def __init__(self, backend: Backend, settings: Settings, encoder: Encoder | None, dense_note: str = "", writable: bool = False):
        self.backend = backend
        self.settings = settings
        self.encoder = encoder
        self.dense_note = dense_note  # why dense is off, or how it is served (a fallback)
        self.writable = writable
        self.tokenizer: Tokenizer = default_tokenizer()
        self.tokenizer.warm()
        self._write_lock = threading.Lock()  # one writer per process; other processes wait on the index lock
        self._repairing = False
        self.backend.refresh(wait=True)  # a build or sync just committed: start on the newest generation
        with self.backend.snapshot() as snap:
            _validate_meta(snap.meta)
            self._check_vectors(snap)

    # --- state -----------------------------------------------------------------------------------

    @property
    def folder(self) -> Path:
        return Path(self.backend.location)

    @property
    def manifest(self) -> dict:
        with self.backend.snapshot() as snap:
            return snap.meta

    def _check_vectors(self, snap: Snapshot) -> None:
        if self.encoder is not None and snap.vector_key not in (None, self.encoder.key) and snap.n_chunks:
            raise IndexCorrupt(f"索引的向量（{snap.vector_key}）与模型 {self.encoder.key} 不符")

    def _encoder_for(self, snap: Snapshot) -> Encoder | None:
        """The encoder for this snapshot's vectors; None (lexical only) when they are from another model."""
        if self.encoder is None or snap.vector_key is None:
            return None
        return self.encoder if snap.vector_key == self.encoder.key else None

    @property
    def dense_enabled(self) -> bool:
        with self.backend.snapshot() as snap:
            return self._encoder_for(snap) is not None

    @property
    def dense_reason(self) -> str:
        with self.backend.snapshot() as snap:
            return self._dense_reason(snap)

    def _dense_reason(self, snap: Snapshot) -> str:
        if self._encoder_for(snap) is not None:
            return ""
        if self.encoder is not None and snap.vector_key is not None:
            return f"索引的向量来自 {snap.vector_key}，与当前模型 {self.encoder.key} 不同；运行 python -m rag build 重新向量化"
        return self.dense_note or (snap.meta.get("dense") or {}).get("reason") or "语义模型未加载"

    @property
    def n_chunks(self) -> int:
        with self.backend.snapshot() as snap:
            return snap.n_chunks

    def info(self) -> IndexInfo:
        with self.backend.snapshot() as snap:
            docs = snap.documents()
            ok = [d for d in docs if d.status == "ok"]
            encoder = self._encoder_for(snap)
            meta = snap.meta
            return IndexInfo(
                index_dir=self.backend.location,
                documents=len(ok),
                articles=snap.n_articles,
                chunks=snap.n_chunks,
                model=meta.get("model", ""),
                dense=encoder is not None,
                dense_reason=self._dense_reason(snap),
                dim=encoder.dim if encoder is not None else None,
                built_at=meta.get("updated_at", ""),
                engine=encoder.engine if encoder is not None else "",
                dense_label=encoder.label if encoder is not None else "",
                dense_note=self.dense_note if encoder is not None else "",
                skipped=len(docs) - len(ok),
                generation=getattr(snap, "number", 0),
            )

    def documents(self) -> list[DocumentInfo]:
        with self.backend.snapshot() as snap:
            return snap.documents()

    def articles(self, source: str | None = None) -> list[ArticleView]:
        with self.backend.snapshot() as snap:
            return snap.articles(source)

    def sources(self) -> list[str]:
        return sorted(d.source for d in self.documents() if d.status == "ok")

    def refresh(self) -> bool:
        """Move to the newest committed generation now (the index also does this by itself between requests)."""
        return self.backend.refresh(wait=True)

    def close(self) -> None:
        self.backend.close()

    # --- reading ---------------------------------------------------------------------------------

    def retrieve(self, query: str, k: int = 5, mode: str = "hybrid", sources: list[str] | None = None) -> Passages:
        """Best passages first. `sources` keeps only passages from those documents."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError("查询不能为空（query must be a non-empty string）")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k 必须是不小于 1 的整数（k must be an integer >= 1），收到 {k!r}")
        if mode not in MODES:
            raise ValueError(f"未知检索模式 {mode!r}，可选：{', '.join(MODES)}")
        started = time.perf_counter()
        query = query.strip()[:MAX_QUERY_CHARS]
        try:
            with self.backend.snapshot() as snap:
                passages = self._retrieve(snap, query, k, mode, sources)
        except IndexCorrupt as exc:
            self._schedule_repair(exc)
            raise
        passages.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        return passages

    def _retrieve(self, snap: Snapshot, query: str, k: int, mode: str, sources) -> Passages:
        encoder = self._encoder_for(snap)
        if mode == "dense" and encoder is None:
            raise DenseUnavailable(f"语义检索不可用：{self._dense_reason(snap)}（dense mode needs a dense model）")
        used = mode if encoder is not None else "lexical"
        notice = "" if used == mode else f"语义检索未开启（{self._dense_reason(snap)}），本次仅使用关键词检索。"
        wanted = set(sources) if sources else None
        n = max(self.settings.candidates, 4 * k)
        if wanted is not None:
            n = max(n, 2000)
        query_weights = self.tokenizer.weighted(query)  # one jieba pass serves both BM25 and passage widening
        tokens = list(query_weights)
        lexical = snap.lexical(query_weights, n, query) if used in ("hybrid", "lexical") else []
        dense = snap.dense(encoder.encode_query(query), n) if used in ("hybrid", "dense") else []
        lex_rank = {cid: r for r, (cid, _) in enumerate(lexical, 1)}
        dense_rank = {cid: r for r, (cid, _) in enumerate(dense, 1)}
        if used == "hybrid":
            fused: dict[int, float] = {}
            for ranking in (lexical, dense):
                for r, (cid, _) in enumerate(ranking, 1):
                    fused[cid] = fused.get(cid, 0.0) + 1.0 / (self.settings.rrf_k + r)
            ranked = sorted(fused.items(), key=lambda kv: -kv[1])
        else:
            ranked = lexical if used == "lexical" else dense
        weights = idf_weights(tokens, snap.document_frequency(tokens), snap.n_chunks)
        chosen = self._passages(snap, ranked, k, weights, wanted, lex_rank, dense_rank)
        return Passages(chosen, mode=used, notice=notice, engine=encoder.label if encoder is not None and used != "lexical" else "")

    def _passages(self, snap, ranked, k, weights, wanted, lex_rank, dense_rank) -> list[Passage]:
        """Each hit widened inside its article; nothing already shown is shown twice."""
        chosen: list[Passage] = []
        sentences: dict[int, list] = {}  # per-article sentence spans, computed once per query
        pos, batch = 0, max(2 * k, 10)
        while len(chosen) < k and pos < len(ranked):
            part, pos, batch = ranked[pos : pos + batch], pos + batch, batch * 2  # fetch rows only as needed
            rows = snap.chunks([cid for cid, _ in part])
            part = [(cid, sc) for cid, sc in part if cid in rows and (wanted is None or wanted & set(rows[cid].sources))]
            bodies = snap.article_bodies(sorted({rows[cid].article for cid, _ in part}))
            for cid, score in part:
                c = rows[cid]
                body = bodies[c.article]
                if c.article not in sentences:
                    sentences[c.article] = sentence_spans(body, self.settings.chunk_hard_max)
                start, end = expand(body, c.start, c.end, weights, self.settings.chunk_hard_max, sentences[c.article])
                span = trim_overlap(start, end, [(p.start, p.end) for p in chosen if p.article_id == c.article])
                if span is None:
                    continue
                start, end = strip_span(body, *span)
                source = c.source if wanted is None or c.source in wanted else next(s for s in c.sources if s in wanted)
                chosen.append(
                    Passage(body[start:end], float(score), source, c.title, c.byline, cid, start, end,
                            lex_rank.get(cid), dense_rank.get(cid), c.article, c.page, c.sources)
                )
                if len(chosen) == k:
                    break
        return chosen

    def term_weights(self, tokens: list[str]) -> dict[str, float]:
        """idf of the query's tokens over chunks: used to widen passages and to pick answer sentences."""
        with self.backend.snapshot() as snap:
            return idf_weights(tokens, snap.document_frequency(tokens), snap.n_chunks)

    def article(self, article_id: int) -> str:
        with self.backend.snapshot() as snap:
            return snap.article_bodies([article_id]).get(article_id, "")

    # --- writing ---------------------------------------------------------------------------------

    def _write(self, action, *args, full: bool = False) -> list[Change]:
        """Run one library change as one commit; the index then serves it at once."""
        if not self.writable:
            raise LibraryError("此索引以只读方式打开（load_index），不能修改；请使用 open_index 或命令行")
        library = Library(self.settings, self.encoder, progress=False)
        started = time.perf_counter()
        try:
            with self._write_lock, self.backend.writer(self.settings.lock_timeout, _waiting) as writer:
                changes = action(library, writer, *args)
                if any(c.status in ("added", "replaced", "removed", "skipped") for c in changes) or full:
                    _commit(library, writer, self.settings, self.encoder, self.dense_note, started)
                    library.collect_files(writer)
                    changes = _with_duplicates(changes, writer.documents())
        finally:
            library.close()
        self.backend.refresh(wait=True)
        self.backend.collect()  # the generation this index held until now can go
        return changes

    def add(self, paths: list[str | Path] | list[tuple[str, bytes]]) -> list[Change]:
        """Add files (paths, or (name, bytes) pairs) to the library; returns what happened to each."""
        files = []
        for item in paths:
            if isinstance(item, tuple):
                files.append(item)
                continue
            path = Path(item)
            try:
                files.append((path.name, path.read_bytes()))
            except OSError as exc:
                raise LibraryError(f"无法读取 {path}：{exc.strerror or exc}") from exc
        return self._write(Library.add, files)

    def remove(self, source: str | list[str]) -> list[Change]:
        return self._write(Library.remove, [source] if isinstance(source, str) else list(source))

    def sync(self) -> list[Change]:
        """Pick up changed, new and deleted files of the docs folder (only those are read again)."""
        changes = self._write(Library.sync_folder)
        for c in changes:
            _progress("文档目录变化：%s %s", c.source, c.message)
        return changes

    def rebuild(self) -> list[Change]:
        return self._write(Library.rebuild, full=True)

    def maintain(self) -> None:
        """Merge small segments (background housekeeping; results do not change)."""
        try:
            self.backend.maintain()
        except IndexLocked:
            pass  # another writer is busy; it or a later call will merge
        self.backend.refresh(wait=True)
        self.backend.collect()

    def _schedule_repair(self, exc: Exception) -> None:
        """A damaged index found while serving: rebuild it in the background, once, if this process may write."""
        if not self.writable or self._repairing:
            return
        self._repairing = True
        log.error("索引损坏：%s；正在后台重建", exc)

        def repair():
            try:
                self.rebuild()
            except Exception:
                log.exception("重建索引失败")
            finally:
                self._repairing = False

        threading.Thread(target=repair, name="rag-repair", daemon=True).start()


def _with_duplicates(changes: list[Change], docs: list[DocumentInfo]) -> list[Change]:
    by_source = {d.source: d for d in docs}
    out = []
    for c in changes:
        d = by_source.get(c.source)
        if c.status in ("added", "replaced") and d is not None and d.duplicates:
            c = Change(c.source, c.status, f"{c.message}（其中 {d.duplicates} 篇与已有文章相同，只存一份）",
                       c.articles, c.chunks, d.duplicates)
        out.append(c)
    return out
