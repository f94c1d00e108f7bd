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
from collections import OrderedDict
from pathlib import Path

import numpy as np

from . import fusion, heap
from .backends import open_backend
from .backends.base import Backend, BackendUnavailable, IndexCorrupt, IndexLocked, Snapshot
from .chunks import sentence_spans
from .crosslingual import default_bridge
from .encoders import Encoder, load_encoder, wanted_engine
from .errors import DenseUnavailable, LexicalUnavailable
from .library import Change, Library, LibraryError, folder_changes
from .meta import meta_for, stale_reason, validate_meta
from .notices import Notice, NoticeCode
from .passages import coverage, expand, idf_weights, rare_weight, strip_span, trim_overlap
from .results import ArticleView, DocumentInfo, IndexInfo, Passage, Passages
from .retrieval import Retrieval
from .settings import Settings
from .tokenizer import Tokenizer, default_tokenizer

log = logging.getLogger(__name__)

__all__ = ["Index", "IndexCorrupt", "IndexLocked", "BackendUnavailable", "DenseUnavailable", "LexicalUnavailable", "LibraryError",
           "build_index", "load_index", "open_index"]

MODES = ("hybrid", "lexical", "dense")
# Longer queries are cut: no question needs more, and it bounds the work of one request.
MAX_QUERY_CHARS = 2000
FUSIONS = ("score", "rrf")
# Embeddings kept per index, only so that answering reuses retrieval's query vector: small, so that
# latency measured over a list of questions is never a cache hit.
QUERY_VECTORS = 8
# Sentences of the top passages without stored vectors that one search may embed (they cost ~30 ms each).
MAX_EMBEDDED_SENTENCES = 12


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
            return encoder, (dense.get("note") or "") if encoder is not None else why
    return load_encoder(settings.model, settings.device, settings.model_timeout)


def _snapshot_meta(backend: Backend) -> dict | None:
    if not backend.exists:
        return None
    with backend.snapshot() as snap:
        return validate_meta(snap.meta)


def _commit(library: Library, writer, settings: Settings, encoder: Encoder | None, note: str, started: float,
            self_test: float | None = None) -> int:
    """Commit with the timings of this change: read+split+chunk, embed, near-duplicate lookups, write
    (tokenize, BM25, store, FAISS).

    The dense self-test is measured by a full rebuild; other changes carry `self_test` over. A library
    that defers its vectors commits text alone (no vector space) under a meta that names the encoder.
    """
    key = encoder.key if encoder is not None and not library.defer_vectors else None
    t0 = time.perf_counter()
    writer.flush(key)
    timings = {**library.stats, "write_s": round(time.perf_counter() - t0, 3), **writer.timings,
               "total_s": round(time.perf_counter() - started, 3)}
    measured = library.self_test if library.self_test is not None else self_test
    return writer.commit(meta_for(settings, encoder, note, timings, measured), key)


def _defers(backend: Backend, encoder: Encoder | None) -> bool:
    """Whether vectors can come after the text: a backend that can attach them, a model whose vectors are cached."""
    return bool(backend.defers_vectors and encoder is not None and encoder.cacheable)


def build_index(
    docs_dir: str | Path | None = None,
    index_dir: str | Path | None = None,
    model: str | None = None,
    settings: Settings | None = None,
    progress: bool = True,
    embedder: Encoder | None = None,
    wait_dense: bool = True,
) -> Index:
    """Read every document again and write a fresh index (one writer at a time); returns it open.

    `embedder` replaces loading `model` (benchmarks pass a labelled random-vector encoder).
    `wait_dense=False` commits the keyword leg alone (seconds); the vectors are filled in later by
    whoever opens the index to write (rag/dense_fill.py): the app in the background, others at once.
    """
    settings = (settings or Settings()).with_(docs_dir=docs_dir, index_dir=index_dir, model=model)
    backend = open_backend(settings, progress)
    if embedder is not None:
        return _build(settings, backend, embedder, "", progress, defer=not wait_dense)
    try:
        old = _snapshot_meta(backend)
    except IndexCorrupt:
        old = None
    encoder, note = choose_encoder(settings, old)
    return _build(settings, backend, encoder, note, progress, defer=not wait_dense)


def _build(settings: Settings, backend: Backend, encoder: Encoder | None, note: str, progress: bool,
           defer: bool = False, background_dense: bool = False) -> Index:
    if encoder is None:
        _warn(f"语义模型不可用，仅使用关键词检索（BM25）：{note}")
    library = Library(settings, encoder, progress, defer_vectors=defer and _defers(backend, encoder))
    started = time.perf_counter()
    try:
        with backend.writer(settings.lock_timeout, _waiting) as writer, heap.full_collections_deferred():
            _progress("读取文档：%s", settings.docs_dir)
            changes = library.rebuild(writer)
            _progress("共 %d 篇文档", len(changes))
            _commit(library, writer, settings, encoder, note, started)
            library.collect_files(writer)
    finally:
        library.close()
    _progress("索引完成，用时 %.1f 秒", time.perf_counter() - started)
    index = Index(backend, settings, encoder, note, writable=True, background_dense=background_dense)
    backend.collect()  # the index this build replaced, once no reader holds it
    return index


def load_index(index_dir: str | Path | None = None, settings: Settings | None = None, embedder: Encoder | None = None) -> Index:
    """Open a persisted index read-only; raises IndexCorrupt with a clear message when it is missing or damaged."""
    settings = (settings or Settings()).with_(index_dir=index_dir)
    backend = open_backend(settings)
    meta = _snapshot_meta(backend)
    if meta is None:
        raise IndexCorrupt(f"{backend.location or settings.index_dir} 中没有索引；请先运行 python -m rag build")
    if embedder is not None:
        encoder, why = (embedder, "") if embedder.key == meta["dense"].get("key") else (None, "给定的模型与索引的向量不符")
    else:
        encoder, why = encoder_for_index(meta, settings)
    if encoder is None and meta["dense"].get("enabled"):
        _warn(f"语义模型无法加载，仅使用关键词检索：{why}")
    return Index(backend, settings, encoder, why if encoder is None else meta["dense"].get("note", ""), writable=False)


def open_index(settings: Settings | None = None, progress: bool = True, embedder: Encoder | None = None,
               background_dense: bool = False) -> Index:
    """The index over the docs folder, up to date: built, synced or rebuilt as needed.

    `embedder` replaces choosing the encoder from the settings (benchmarks use random vectors).
    `background_dense` (the app): serve first, embed after. What is new is searchable by keywords as
    soon as it is tokenized; its vectors are embedded in a background thread (`info().dense_progress`).
    Otherwise every missing vector is embedded before this returns.
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
        index = _build(settings, backend, encoder, note, progress, defer=background_dense, background_dense=background_dense)
    else:
        index = Index(backend, settings, encoder, note, writable=True, background_dense=background_dense)
        index.sync()
    index.fill_dense(progress)
    return index


def _waiting(holder: str) -> None:
    log.warning("索引正由进程 %s 写入，等待它完成…", holder or "?")


class Index:
    def __init__(self, backend: Backend, settings: Settings, encoder: Encoder | None, dense_note: str = "", writable: bool = False,
                 background_dense: bool = False):
        from .dense_fill import DenseFill

        self.backend = backend
        self.settings = settings
        self.encoder = encoder
        self.dense_note = dense_note  # why dense is off, or how it is served (a fallback)
        self.writable = writable
        # Serve first, embed after: changes commit text alone and this fills in their vectors.
        self.background_dense = bool(writable and background_dense and _defers(backend, encoder))
        self._filler = DenseFill(self)
        if settings.fusion not in FUSIONS:
            raise ValueError(f"未知的融合方式 RAG_FUSION={settings.fusion!r}，可选：{', '.join(FUSIONS)}")
        self.tokenizer: Tokenizer = default_tokenizer()
        self.tokenizer.warm()
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()  # query text -> its vector
        self._vectors_lock = threading.Lock()
        self._write_lock = threading.Lock()  # one writer per process; other processes wait on the index lock
        self._repairing = False
        self.backend.refresh(wait=True)  # a build or sync just committed: start on the newest generation
        with self.backend.snapshot() as snap:
            validate_meta(snap.meta)
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

    @staticmethod
    def _self_test(snap: Snapshot) -> float | None:
        """The dense leg's build-time self-test score (None: not measured; such an index counts as passed)."""
        value = (snap.meta.get("dense") or {}).get("self_test")
        return float(value) if value is not None else None

    def _dense_progress(self, snap: Snapshot):
        from .dense_fill import fillable

        return self._filler.progress(snap) if fillable(self, snap) else None

    @property
    def dense_progress(self):
        """How far the dense leg has been filled in (`DenseProgress`), or None when it is complete or off."""
        with self.backend.snapshot() as snap:
            return self._dense_progress(snap)

    def fill_dense(self, progress: bool = False) -> None:
        """Embed what was committed without vectors, and build the vector graphs that parts served by IVF
        wait for (RAG_ANN_INDEX=hnsw): in a background thread for a serve-first index, else now."""
        if not self.writable:
            return
        if self.background_dense:
            self._filler.start()
            self._filler.wake()
            return
        with self.backend.snapshot() as snap:
            if self._dense_progress(snap) is None and not snap.missing_graphs():
                return
        self._filler.show_progress = progress
        self._filler.run_until_done()

    def _dense_off(self, snap: Snapshot) -> Notice:
        """Why a hybrid search is served by keywords alone: still filling in, or off (and why)."""
        filling = self._dense_progress(snap)
        if filling is not None:
            return Notice(NoticeCode.DENSE_FILLING, {"percent": filling.percent, "minutes": filling.minutes})
        return Notice(NoticeCode.DENSE_OFF, {"reason": self._dense_reason(snap)})

    def _dense_reason(self, snap: Snapshot) -> str:
        if self._encoder_for(snap) is not None:
            return ""
        filling = self._dense_progress(snap)
        if filling is not None:
            return f"{filling.text()}，完成后开启"
        if self.encoder is not None and snap.vector_key is not None:
            return f"索引的向量来自 {snap.vector_key}，与当前模型 {self.encoder.key} 不同；运行 python -m rag build 重新向量化"
        return self.dense_note or (snap.meta.get("dense") or {}).get("reason") or "语义模型未加载"

    @property
    def lexical_reason(self) -> str:
        """Why the storage cannot run the lexical leg; "" when it can."""
        with self.backend.snapshot() as snap:
            return snap.lexical_reason

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
                lexical_reason=snap.lexical_reason,
                dense_progress=self._dense_progress(snap),
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
        self._filler.stop()
        self.backend.close()

    # --- reading ---------------------------------------------------------------------------------

    def retrieve(self, query: str, k: int = 5, mode: str = "hybrid", sources: list[str] | None = None) -> Passages:
        """Best passages first. `sources` keeps only passages from those documents."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError("查询不能为空（query must be a non-empty string）")
        self._check_request(k, mode)
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

    @staticmethod
    def _check_request(k, mode: str) -> None:
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k 必须是不小于 1 的整数（k must be an integer >= 1），收到 {k!r}")
        if mode not in MODES:
            raise ValueError(f"未知检索模式 {mode!r}，可选：{', '.join(MODES)}")

    def _retrieve(self, snap: Snapshot, query: str, k: int, mode: str, sources, query_weights=None) -> Passages:
        encoder = self._encoder_for(snap)
        no_lexical = snap.lexical_reason
        if mode == "dense" and encoder is None:
            raise DenseUnavailable(f"语义检索不可用：{self._dense_reason(snap)}（dense mode needs a dense model）")
        if no_lexical and (mode == "lexical" or encoder is None):
            raise LexicalUnavailable(f"关键词检索不可用：{no_lexical}（lexical retrieval is not available on this storage）")
        used = "dense" if no_lexical else mode if encoder is not None else "lexical"
        notices: tuple[Notice, ...] = ()
        if used != mode:
            notices = (Notice(NoticeCode.LEXICAL_OFF, {"reason": no_lexical}),) if no_lexical else (self._dense_off(snap),)
        self_test = self._self_test(snap)
        if used == "hybrid" and self_test is not None and self_test < fusion.SELF_TEST_MIN:
            used = "lexical"
            notices = (Notice(NoticeCode.SELF_TEST, {"percent": round(100 * self_test)}),)
        wanted = set(sources) if sources else None
        n = max(self.settings.candidates, 4 * k)
        if wanted is not None:
            n = max(n, 2000)
        if query_weights is None:  # one jieba pass serves BM25, passage widening and answering
            query_weights = self._query_terms(snap, query)
        tokens = list(query_weights)
        weights = idf_weights(tokens, snap.document_frequency(tokens), snap.n_chunks)
        # Character bigrams come from the query, or from the Chinese terms an English question names.
        text = " ".join(query_weights) if fusion.query_language(query) == "other" else query
        lexical = snap.lexical(query_weights, n, text) if used in ("hybrid", "lexical") else []
        dense = self._dense_leg(snap, encoder, query, n) if encoder is not None and used in ("hybrid", "dense") else []
        lex_rank = {cid: r for r, (cid, _) in enumerate(lexical, 1)}
        dense_rank = {cid: r for r, (cid, _) in enumerate(dense, 1)}
        if used == "hybrid":
            ranked = self._fuse(snap, tokens, weights, lexical, dense)
        else:
            ranked = lexical if used == "lexical" else dense
        chosen = self._passages(snap, ranked, k, weights, wanted, lex_rank, dense_rank)
        return Passages(chosen, mode=used, notices=notices, engine=encoder.label if encoder is not None and used != "lexical" else "",
                        dense_top=dense[0][1] if dense else None)

    def _query_terms(self, snap: Snapshot, query: str) -> dict[str, float]:
        """The query's weighted tokens (Tokenizer.weighted). A question in another language gets the
        Chinese terms it names (rag/crosslingual.py) in place of its own words, of which only those that
        lead to no archive term stay (unseen: they lower its coverage, as 市长 does a Chinese question's)."""
        terms = self.tokenizer.weighted(query)
        if not self.settings.crosslingual or fusion.query_language(query) != "other":
            return terms
        bridged = default_bridge(self.tokenizer.frequency).terms(query, lambda ts: snap.document_frequency(ts))
        if not bridged.terms:
            return terms
        # Words that lead to nothing stay, as terms the archive never uses (France in "the capital of France").
        known = snap.document_frequency(list(terms))
        return {**{t: w for t, w in terms.items() if t in known}, **bridged.terms, **dict.fromkeys(bridged.unmatched, 1.0)}

    def _fuse(self, snap: Snapshot, tokens, weights, lexical, dense) -> list[tuple[int, float]]:
        """Both legs' rankings -> one (rag/fusion.py); RAG_FUSION=rrf keeps plain RRF for comparison.

        `tokens` and their idf `weights` are the query's search-mode tokens, the same set answers
        measure coverage with (the two are calibrated together)."""
        if self.settings.fusion == "rrf":
            return fusion.rrf([lexical, dense], self.settings.rrf_k)
        top = snap.chunks([lexical[0][0]]) if lexical else {}
        covered = coverage(tokens, weights, rare_weight(snap.n_chunks), [c.embed_text for c in top.values()])
        return fusion.fuse(lexical, dense, lexical_coverage=covered)

    def _dense_leg(self, snap: Snapshot, encoder: Encoder, query: str, n: int) -> list[tuple[int, float]]:
        """The top `n` chunks by cosine, rescored with each chunk's best sentence where the snapshot has sentence vectors."""
        vector = self._query_vector(encoder, query)
        dense = snap.dense(vector, n)
        if not dense:
            return dense
        rows = snap.chunks([cid for cid, _ in dense])
        stored = snap.sentences(sorted({c.article for c in rows.values()}))
        if not stored:
            return dense
        cosines = {a: (spans, vecs @ vector) for a, (spans, vecs) in stored.items()}
        best = {}
        for cid, c in rows.items():
            if c.article in cosines:
                spans, cos = cosines[c.article]
                inside = (spans[:, 0] >= c.start) & (spans[:, 1] <= c.end)
                if inside.any():
                    best[cid] = float(cos[inside].max())
        return fusion.with_sentences(dense, best)

    def _query_vector(self, encoder: Encoder, text: str) -> np.ndarray:
        """A query embedding, kept in a small per-index LRU (answering reuses retrieval's query vector)."""
        with self._vectors_lock:
            found = self._vectors.get(text)
            if found is not None:
                self._vectors.move_to_end(text)
                return found
        vector = encoder.encode_query(text)
        with self._vectors_lock:
            self._vectors[text] = vector
            while len(self._vectors) > QUERY_VECTORS:
                self._vectors.popitem(last=False)
        return vector

    def search(self, query: str, k: int = 5, mode: str = "hybrid", sources: list[str] | None = None,
               sentences_from: int = 3) -> Retrieval:
        """`retrieve` plus what answering needs, all read from one pinned snapshot (rag/retrieval.py):
        the query's idf weights, the bodies of the passages' articles, and the cosine of the query with
        each sentence of the top `sentences_from` passages (stored sentence vectors; at most
        MAX_EMBEDDED_SENTENCES others are embedded)."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError("查询不能为空（query must be a non-empty string）")
        started = time.perf_counter()
        query = query.strip()[:MAX_QUERY_CHARS]
        self._check_request(k, mode)
        try:
            with self.backend.snapshot() as snap:
                query_weights = self._query_terms(snap, query)
                passages = self._retrieve(snap, query, k, mode, sources, query_weights)
                tokens = list(query_weights)
                weights = idf_weights(tokens, snap.document_frequency(tokens), snap.n_chunks)
                ids = sorted({p.article_id for p in passages})
                bodies = snap.article_bodies(ids)
                encoder = self._encoder_for(snap)
                similarity = {}
                if encoder is not None and passages.mode != "lexical":
                    similarity = self._sentence_similarity(snap, encoder, query, list(passages[:sentences_from]), bodies)
                rare, n_chunks = rare_weight(snap.n_chunks), snap.n_chunks
        except IndexCorrupt as exc:
            self._schedule_repair(exc)
            raise
        passages.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        return Retrieval(query, passages, query_weights, weights, rare, similarity, bodies, n_chunks)

    def _sentence_similarity(self, snap: Snapshot, encoder: Encoder, query: str, passages: list[Passage],
                             bodies: dict[int, str]) -> dict[str, float]:
        """Cosine of the query with each sentence of `passages` (stripped sentence text -> cosine)."""
        vector = self._query_vector(encoder, query)
        stored = snap.sentences(sorted({p.article_id for p in passages}))
        sims: dict[str, float] = {}
        for p in passages:
            body = bodies.get(p.article_id)
            if p.article_id not in stored or body is None:
                continue
            spans, vecs = stored[p.article_id]
            inside = (spans[:, 0] >= p.start) & (spans[:, 1] <= p.end)
            for (s, e), cos in zip(spans[inside], vecs[inside] @ vector):
                sims[body[s:e].strip()] = float(cos)
        missing = [p.text[s:e].strip() for p in passages for s, e in sentence_spans(p.text)]
        missing = [t for t in dict.fromkeys(missing) if len(t) >= 4 and t not in sims][:MAX_EMBEDDED_SENTENCES]
        if missing:  # one batch; passage vectors stay out of the small query-vector cache
            sims.update(zip(missing, (encoder.encode_passages(missing, progress=False) @ vector).tolist()))
        return sims

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

    def article(self, article_id: int) -> str:
        with self.backend.snapshot() as snap:
            return snap.article_bodies([article_id]).get(article_id, "")

    # --- writing ---------------------------------------------------------------------------------

    def _write(self, action, *args, full: bool = False, library: Library | None = None) -> list[Change]:
        """Run one library change as one commit; the index then serves it at once."""
        if not self.writable:
            raise LibraryError("此索引以只读方式打开（load_index），不能修改；请使用 open_index 或命令行")
        library = library or Library(self.settings, self.encoder, progress=False, defer_vectors=self.background_dense)
        started = time.perf_counter()
        try:
            with self._write_lock, self.backend.writer(self.settings.lock_timeout, _waiting) as writer:
                changes = action(library, writer, *args)
                committed = full or any(c.status in ("added", "replaced", "removed", "skipped", "touched") for c in changes)
                if committed:
                    with self.backend.snapshot() as snap:
                        carried = self._self_test(snap) if self._encoder_for(snap) is not None else None
                    _commit(library, writer, self.settings, self.encoder, self.dense_note, started, carried)
                    library.collect_files(writer)
                    changes = _with_duplicates(changes, writer.documents())
        finally:
            library.close()
        if committed:
            self.backend.refresh(wait=True)
            self.backend.collect()  # the generation this index held until now can go
            if self.background_dense:
                self._filler.wake()
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
        if not self.writable:
            return self._write(Library.add, files)  # refused with the reason
        # Reading, splitting and embedding take long: they run before the writer lock is taken, so that
        # other changes wait only for this one's short commit.
        library = Library(self.settings, self.encoder, progress=False, defer_vectors=self.background_dense)
        try:
            uploads = library.prepare_uploads(files, {d.source: d for d in self.documents()})
        except BaseException:
            library.close()
            raise
        if all(up.change is not None for up in uploads):
            library.close()
            return [up.change for up in uploads if up.change is not None]
        return self._write(Library.commit_uploads, uploads, library=library)

    def remove(self, source: str | list[str]) -> list[Change]:
        return self._write(Library.remove, [source] if isinstance(source, str) else list(source))

    def sync(self) -> list[Change]:
        """Pick up changed, new and deleted files of the docs folder (only those are read again)."""
        if self.background_dense:
            self._filler.wake()  # another process may have committed text without vectors
        if not self.writable:
            return self._write(Library.sync_folder)  # refused with the reason
        # The app's watch runs this every few seconds: no writer lock unless a file changed, and changed
        # files are read and embedded before the lock is taken (a long scan does not hold up uploads).
        with self.backend.snapshot() as snap:
            stale, gone = folder_changes(self.settings, {d.source: d for d in snap.documents()})
        if not stale and not gone:
            return []
        library = Library(self.settings, self.encoder, progress=False, defer_vectors=self.background_dense)
        try:
            ahead = library.prepare_folder(stale)
        except BaseException:
            library.close()
            raise
        changes = [c for c in self._write(Library.sync_folder, ahead, library=library) if c.status != "touched"]
        for c in changes:
            _progress("文档目录变化：%s %s", c.source, c.message)
        return changes

    def rebuild(self) -> list[Change]:
        return self._write(Library.rebuild, full=True)

    def collect_files(self) -> None:
        """Drop stored originals no committed document refers to (an upload killed before its commit).

        Originals are written only under the writer lock, so holding it no upload is half-way."""
        if not self.writable:
            return
        library = Library(self.settings, self.encoder, progress=False)
        with self._write_lock, self.backend.writer(self.settings.lock_timeout, _waiting) as writer:
            library.collect_files(writer)

    def maintain(self) -> None:
        """Merge small segments (background housekeeping; results do not change)."""
        try:
            self.backend.maintain()
        except IndexLocked:
            pass  # another writer is busy; it or a later call will merge
        self.backend.refresh(wait=True)
        self.backend.collect()
        if self.background_dense:
            self._filler.wake()  # a merge with a segment still without vectors makes one without vectors

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
