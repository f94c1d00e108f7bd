"""Chunks -> indexes -> passages: build, persist, load and query the hybrid index.

Layout of an index folder:
    CURRENT                 name of the live build folder (replaced atomically)
    build-<stamp>/          manifest.json, chunks.sqlite, bm25_*/, chunk_article.npy, vectors.faiss
A build writes a fresh folder and only then points CURRENT at it, so an interrupted build
leaves the previous index usable.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

from . import __version__
from .articles import split_articles
from .backend import Backend, LocalBackend
from .chunks import chunk_article, sentence_spans
from .ingest import SUFFIXES, fingerprint, read_documents
from .passages import expand, idf_weights, strip_span, trim_overlap
from .results import IndexInfo, Passage, Passages
from .settings import Settings
from .tokenizer import Tokenizer, default_tokenizer
from .vectors import Embedder, ModelUnavailable, load_embedder

log = logging.getLogger(__name__)

MODES = ("hybrid", "lexical", "dense")
FORMAT = 1
# Longer queries are cut: no question needs more, and it bounds tokenization time.
MAX_QUERY_CHARS = 2000


class IndexCorrupt(RuntimeError):
    """The index folder is missing, partial or corrupt."""


class DenseUnavailable(RuntimeError):
    """Dense mode was asked for but no dense model is loaded."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _progress(msg: str, *args) -> None:
    log.info(msg, *args)


def current_folder(index_dir: Path) -> Path | None:
    pointer = Path(index_dir) / "CURRENT"
    if not pointer.is_file():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    return Path(index_dir) / name if name else None


def read_manifest(index_dir: Path) -> dict | None:
    folder = current_folder(index_dir)
    if folder is None:
        return None
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _file_sizes(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def build_index(
    docs_dir: str | Path | None = None,
    index_dir: str | Path | None = None,
    model: str | None = None,
    settings: Settings | None = None,
    progress: bool = True,
    embedder: Embedder | None = None,
) -> "Index":
    """Read, clean, split, chunk, tokenize, embed and persist; returns the loaded index.

    `embedder` replaces loading `model` (benchmarks pass a labelled random-vector embedder).
    """
    settings = (settings or Settings()).with_(docs_dir=docs_dir, index_dir=index_dir, model=model)
    docs_dir, index_dir = Path(settings.docs_dir), Path(settings.index_dir)
    started = time.perf_counter()
    docs_fp = fingerprint(docs_dir)
    _progress("读取文档：%s", docs_dir)
    documents = read_documents(docs_dir)
    articles = [a for doc in documents for a in split_articles(doc)]
    chunks = [
        c
        for i, a in enumerate(articles)
        for c in chunk_article(a, i, settings.chunk_min, settings.chunk_max, settings.chunk_hard_max)
    ]
    timings = {"read_split_chunk": round(time.perf_counter() - started, 3)}
    _progress("共 %d 篇文档、%d 篇文章、%d 个文本块", len(documents), len(articles), len(chunks))
    if not chunks:
        raise ValueError(f"文档目录 {docs_dir} 中没有可索引的文本（支持 {'、'.join(SUFFIXES)}）")

    tokenizer = default_tokenizer()
    n_documents = len(documents)
    del documents  # raw pages are no longer needed; articles hold the cleaned text

    index_dir.mkdir(parents=True, exist_ok=True)
    name = f"build-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    tmp = index_dir / f".{name}.tmp"
    tmp.mkdir()

    workers = settings.workers if len(articles) >= 2000 else 1  # process start-up costs more than small corpora
    _progress("分词并建立 BM25 索引（jieba，%d 进程）…", workers)
    t0 = time.perf_counter()
    terms = LocalBackend.write_lexical(
        tmp, articles, chunks, settings.lexical_weights(), workers, progress, settings.chunk_hard_max
    )
    timings["lexical"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    LocalBackend.write_store(tmp, articles, chunks, terms)
    del terms
    timings["sqlite"] = round(time.perf_counter() - t0, 3)

    dense = {"enabled": False, "model": settings.model, "dim": None, "reason": "未配置语义模型（RAG_MODEL=none）"}
    vectors = None
    if embedder is not None:
        settings = settings.with_(model=embedder.name)
        dense["model"] = embedder.name
    t0 = time.perf_counter()
    if embedder is not None or settings.dense_wanted:
        try:
            embedder = embedder or load_embedder(settings.model, settings.device, settings.model_timeout)
            _progress("向量化 %d 个文本块（%s）…", len(chunks), settings.model)
            vectors = embedder.encode_passages([c.embed_text for c in chunks], settings.batch_size, progress)
            dense.update(enabled=True, dim=int(vectors.shape[1]), reason="",
                         query_prompt=embedder.query_prompt, passage_prompt=embedder.passage_prompt)
        except ModelUnavailable as exc:
            dense["reason"] = str(exc)
            msg = f"语义模型不可用，仅使用关键词检索（BM25）：{exc}"
            log.warning(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
    timings["embed"] = round(time.perf_counter() - t0, 3)
    if vectors is None:
        embedder = None
    else:
        t0 = time.perf_counter()
        LocalBackend.write_vectors(tmp, vectors)
        del vectors
        timings["faiss"] = round(time.perf_counter() - t0, 3)

    manifest = {
        "format": FORMAT,
        "rag_version": __version__,
        "built_at": _now(),
        "docs_dir": str(docs_dir.resolve()),
        "docs": docs_fp,
        "model": settings.model,
        "dense": dense,
        "chunking": settings.chunking(),
        "tokenizer": tokenizer.version,
        "lexical_weights": settings.lexical_weights(),
        "counts": {"documents": n_documents, "articles": len(articles), "chunks": len(chunks)},
        "files": _file_sizes(tmp),
        "build_seconds": round(time.perf_counter() - started, 2),
        "timings": timings,
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, index_dir / name)
    pointer_tmp = index_dir / f".CURRENT.{os.getpid()}"
    pointer_tmp.write_text(name, encoding="utf-8")
    os.replace(pointer_tmp, index_dir / "CURRENT")  # the atomic swap
    _cleanup(index_dir, keep=name)
    _progress("索引完成，用时 %.1f 秒", time.perf_counter() - started)
    folder = index_dir / name
    return Index(folder, manifest, LocalBackend.open(folder, with_vectors=embedder is not None), embedder, settings)


def _cleanup(index_dir: Path, keep: str) -> None:
    for p in index_dir.iterdir():
        if p.is_dir() and p.name != keep and (p.name.startswith("build-") or p.name.startswith(".build-")):
            shutil.rmtree(p, ignore_errors=True)


def load_index(index_dir: str | Path | None = None, settings: Settings | None = None, embedder: Embedder | None = None) -> "Index":
    """Open a persisted index; raises IndexCorrupt with a clear message when it is missing or damaged."""
    settings = (settings or Settings()).with_(index_dir=index_dir)
    index_dir = Path(settings.index_dir)
    folder = current_folder(index_dir)
    if folder is None or not folder.is_dir():
        raise IndexCorrupt(f"{index_dir} 中没有索引（缺少 CURRENT 或其指向的目录）；请先运行 python -m rag build")
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT:
            raise ValueError(f"索引格式 {manifest.get('format')} 与当前版本 {FORMAT} 不符")
        sizes = _file_sizes(folder)
        for name, size in manifest["files"].items():
            if sizes.get(name) != size:
                raise ValueError(f"文件 {name} 缺失或大小不符（应为 {size} 字节，实为 {sizes.get(name)}）")
        backend = LocalBackend.open(folder, with_vectors=manifest["dense"]["enabled"])
    except (OSError, ValueError, KeyError, sqlite3.DatabaseError, RuntimeError) as exc:
        raise IndexCorrupt(f"索引 {folder} 已损坏或不完整：{exc}；请运行 python -m rag build 重建") from exc
    if manifest["dense"]["enabled"]:
        try:
            embedder = embedder or load_embedder(manifest["dense"]["model"], settings.device, settings.model_timeout)
            if embedder.dim != manifest["dense"]["dim"]:
                raise ModelUnavailable(f"模型维度 {embedder.dim} 与索引的 {manifest['dense']['dim']} 不符")
        except ModelUnavailable as exc:
            msg = f"语义模型无法加载，仅使用关键词检索：{exc}"
            log.warning(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            embedder = None
            manifest = {**manifest, "dense": {**manifest["dense"], "enabled": False, "reason": str(exc)}}
    return Index(folder, manifest, backend, embedder, settings)


def is_stale(manifest: dict | None, settings: Settings) -> str:
    """Why the persisted index no longer matches the docs/settings; empty when it can be reused."""
    if manifest is None:
        return "尚无索引"
    if manifest.get("format") != FORMAT:
        return "索引格式已更新"
    if manifest.get("docs") != fingerprint(Path(settings.docs_dir)):
        return "文档有变化"
    if manifest.get("model") != settings.model:
        return f"模型由 {manifest.get('model')} 改为 {settings.model}"
    if manifest.get("chunking") != settings.chunking():
        return "分块参数有变化"
    if manifest.get("tokenizer") != default_tokenizer().version:
        return "分词词典有变化"
    if manifest.get("lexical_weights") != settings.lexical_weights():
        return "关键词检索权重有变化"
    return ""


def open_index(settings: Settings | None = None, progress: bool = True) -> "Index":
    """Reuse the persisted index when its manifest matches the docs and settings, else (re)build it."""
    settings = settings or Settings()
    reason = is_stale(read_manifest(Path(settings.index_dir)), settings)
    if not reason:
        try:
            return load_index(settings.index_dir, settings)
        except IndexCorrupt as exc:
            reason = str(exc)
            log.warning("%s，正在重建", exc)
    _progress("构建索引（%s）", reason)
    return build_index(settings=settings, progress=progress)


class Index:
    def __init__(self, folder: Path, manifest: dict, backend: Backend, embedder: Embedder | None, settings: Settings):
        self.folder = folder
        self.manifest = manifest
        self.backend = backend
        self.embedder = embedder
        self.settings = settings
        self.tokenizer: Tokenizer = default_tokenizer()
        self.tokenizer.warm()
        self._n_chunks = manifest["counts"]["chunks"]  # counting 1M rows in SQLite would slow every start

    @property
    def n_chunks(self) -> int:
        return self._n_chunks

    @property
    def dense_enabled(self) -> bool:
        return self.embedder is not None and self.backend.has_vectors

    @property
    def dense_reason(self) -> str:
        return "" if self.dense_enabled else self.manifest["dense"].get("reason") or "语义模型未加载"

    def info(self) -> IndexInfo:
        counts = self.manifest["counts"]
        return IndexInfo(
            index_dir=str(self.folder),
            documents=counts["documents"],
            articles=counts["articles"],
            chunks=counts["chunks"],
            model=self.manifest["model"],
            dense=self.dense_enabled,
            dense_reason=self.dense_reason,
            dim=self.manifest["dense"].get("dim"),
            built_at=self.manifest["built_at"],
        )

    def articles(self):
        return self.backend.articles()

    def sources(self) -> list[str]:
        return sorted({a.source for a in self.backend.articles()})

    def retrieve(self, query: str, k: int = 5, mode: str = "hybrid", sources: list[str] | None = None) -> Passages:
        """Best passages first. `sources` keeps only chunks from those files."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError("查询不能为空（query must be a non-empty string）")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k 必须是不小于 1 的整数（k must be an integer >= 1），收到 {k!r}")
        if mode not in MODES:
            raise ValueError(f"未知检索模式 {mode!r}，可选：{', '.join(MODES)}")
        if mode == "dense" and not self.dense_enabled:
            raise DenseUnavailable(f"语义检索不可用：{self.dense_reason}（dense mode needs a dense model）")
        query = query.strip()[:MAX_QUERY_CHARS]
        used = mode if self.dense_enabled else "lexical"
        notice = "" if used == mode else f"语义检索未开启（{self.dense_reason}），本次仅使用关键词检索。"

        wanted = set(sources) if sources else None
        n = max(self.settings.candidates, 4 * k)
        if wanted is not None:
            n = max(n, 2000)
        lexical, dense = [], []
        query_weights = self.tokenizer.weighted(query)  # one jieba pass serves both BM25 and passage widening
        tokens = list(query_weights)
        if used in ("hybrid", "lexical"):
            lexical = self.backend.lexical(query_weights, n, query)
        if used in ("hybrid", "dense"):
            dense = self.backend.dense(self.embedder.encode_query(query), n)

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

        weights = self.term_weights(tokens)
        chosen: list[Passage] = []
        sentences: dict[int, list] = {}  # per-article sentence spans, computed once per query
        pos, batch = 0, max(2 * k, 10)
        while len(chosen) < k and pos < len(ranked):
            part, pos, batch = ranked[pos : pos + batch], pos + batch, batch * 2  # fetch rows only as needed
            rows = self.backend.chunks([cid for cid, _ in part])
            part = [(cid, sc) for cid, sc in part if cid in rows and (wanted is None or rows[cid].source in wanted)]
            bodies = self.backend.article_bodies(sorted({rows[cid].article for cid, _ in part}))
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
                chosen.append(
                    Passage(body[start:end], float(score), c.source, c.title, c.byline, cid, start, end,
                            lex_rank.get(cid), dense_rank.get(cid), c.article)
                )
                if len(chosen) == k:
                    break
        return Passages(chosen, mode=used, notice=notice)

    def term_weights(self, tokens: list[str]) -> dict[str, float]:
        """idf of the query's tokens over chunks: used to widen passages and to pick answer sentences."""
        return idf_weights(tokens, self.backend.document_frequency(tokens), self._n_chunks)
