"""Segments: immutable folders of articles, chunks, BM25 fields and vectors.

A segment is written once, into a temp folder that is fsynced and renamed into place, and never
changed afterwards; its manifest holds a checksum of every file. Documents come and go by
generation manifests that say which of a segment's articles are live, so an add writes one small
segment and a remove writes nothing but a new generation. Small segments are merged into larger
ones (`merge`) without tokenizing or embedding anything again.

Files: segment.json, store.sqlite, {words,bigrams,articles}.{hashes,indptr,docs,tf,lengths}.npy,
chunk_article.npy, article_keys.npy, vectors.faiss (when the dense leg is on), sentences.npy and
sentence_vectors.npy (when sentence vectors were embedded: (S, 3) int32 rows of article, start,
end, sorted by article then start; (S, dim) float16 unit vectors in the same order).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

from ... import forked
from ...articles import Article, article_key
from ...chunks import Chunk, sentence_spans
from ...settings import Settings
from ..base import IndexCorrupt
from . import bm25, store
from .folder import fsync_dir, fsync_tree
from .manifest import SEGMENT_FORMAT, FieldTotals, FileSum, SegmentManifest, SegmentVectors, dump, file_checksum, load
from .vectors import VectorIndex

log = logging.getLogger(__name__)

FIELDS = ("words", "bigrams", "articles")
MANIFEST = "segment.json"
# Tuned by the backend's Settings (`settings=`; by default Settings() of the environment now):
# - segments up to `verify_sync_mb` (RAG_VERIFY_SYNC_MB) are verified before they serve, larger ones in
#   a background thread, so a 1M-chunk index still opens in about a second (see README, "Operating it");
# - a second process (the bigrams field; jieba's tokenizer workers) only for `parallel_min_articles`
#   (RAG_PARALLEL_MIN_ARTICLES) or more articles: starting it costs more than building fewer on one core;
# - FAISS exact, IVF or HNSW by `ann` (RAG_ANN_THRESHOLD, RAG_ANN_NPROBE, RAG_ANN_INDEX; vectors.py).


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _add_time(timings: dict[str, float] | None, name: str, seconds: float) -> None:
    if timings is not None:
        timings[name] = round(timings.get(name, 0.0) + seconds, 3)


@contextmanager
def _timed(timings: dict[str, float] | None, name: str) -> Iterator[None]:
    """Add the block's seconds to `timings[name]` (the build's stages, reported with its timings)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        _add_time(timings, name, time.perf_counter() - started)


SENTENCES = "sentences.npy"
SENTENCE_VECTORS = "sentence_vectors.npy"


def _write_sentences(tmp: Path, rows: np.ndarray, vectors: np.ndarray | list[np.ndarray], dim: int) -> int:
    """Write the sentence table and its vectors; returns the number of sentences."""
    blocks = [np.asarray(b).reshape(-1, dim) for b in (vectors if isinstance(vectors, list) else [vectors])]
    n = sum(len(b) for b in blocks)
    if n != len(rows):
        raise ValueError(f"句向量有 {n} 条，而句子有 {len(rows)} 条")
    np.save(tmp / SENTENCES, np.ascontiguousarray(rows, dtype=np.int32).reshape(-1, 3))
    # Block by block, as np.save would write them stacked: stacking copied them all once more (0.5 GB at 100k chunks).
    with open(tmp / SENTENCE_VECTORS, "wb") as f:
        header = {"descr": npformat.dtype_to_descr(np.dtype(np.float16)), "fortran_order": False, "shape": (n, dim)}
        npformat.write_array_header_1_0(f, header)
        for b in blocks:
            f.write(np.ascontiguousarray(b, dtype=np.float16).tobytes())
    return len(rows)


def _finish(tmp: Path, final: Path, manifest_fields: dict, articles: int, chunks: int, vectors: SegmentVectors | None,
            sentences: int | None = None) -> None:
    """Checksum every file, write the manifest, fsync everything, then rename into place."""
    files = {
        p.name: FileSum(size=p.stat().st_size, xxh3=file_checksum(p))
        for p in sorted(tmp.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    manifest = SegmentManifest(
        format=SEGMENT_FORMAT, id=final.name, created_at=_now(), articles=articles, chunks=chunks,
        fields={k: FieldTotals(**v) for k, v in manifest_fields.items()},
        vectors=vectors, sentences=sentences, files=files,
    )
    dump(manifest, tmp / MANIFEST, durable=False)
    fsync_tree(tmp)
    os.replace(tmp, final)
    fsync_dir(final.parent)


class BigramsBeside:
    """The bigrams field, then the store, built and written by a forked process (rag/forked.py) while this
    one tokenizes and builds the words and articles fields: the two use both cores. The child writes its
    own files, so only the field's totals come back (tokens sent back from workers cost more than rjieba's
    tokenizing: see Tokenizer.parallel). The store needs no tokens: at 1M chunks it took 19.9 s of the
    parent's write, and the child, done with the bigrams, had been idle by then."""

    def __init__(self, tmp: Path, by_article: list[list[Chunk]], articles: list[Article], chunks: list[Chunk],
                 chunk_articles: np.ndarray):
        self._child = forked.Forked(_write_beside, tmp, by_article, articles, chunks, chunk_articles)

    def result(self) -> dict:
        outcome = next(self._child.messages(), None)  # None: it died (killed, out of memory) before sending
        if not isinstance(outcome, dict) or self._child.exitcode != 0:
            raise RuntimeError(f"二元词字段和存储的构建进程失败（退出码 {self._child.exitcode}）：{outcome or '无输出'}")
        return outcome

    def stop(self) -> None:
        """The build failed here: the child must not go on writing into the temp folder."""
        self._child.stop()


def _write_beside(send, tmp: Path, by_article: list[list[Chunk]], articles: list[Article], chunks: list[Chunk],
                  chunk_articles: np.ndarray) -> None:
    from ...tokenizer import char_bigrams

    try:
        builder = bm25.FieldBuilder()
        for article_chunks in by_article:  # chunk order: a segment's chunks are grouped by article, in article order
            for c in article_chunks:
                builder.add(char_bigrams(c.embed_text))
        totals = builder.write(tmp, "bigrams")
        del builder
        _write_store(tmp, articles, chunks, chunk_articles)
        send.send(totals)
    except BaseException as exc:  # the parent raises it
        send.send(f"{type(exc).__name__}: {exc}")
        raise


def _write_store(tmp: Path, articles: list[Article], chunks: list[Chunk], chunk_articles: np.ndarray) -> None:
    """The article and chunk rows (store.sqlite), each chunk's article, each article's key."""
    np.save(tmp / "chunk_article.npy", np.asarray(chunk_articles, dtype=np.int32))
    np.save(tmp / "article_keys.npy", np.fromiter((article_key(a.body) for a in articles), dtype=np.uint64, count=len(articles)))
    counts = np.bincount(chunk_articles, minlength=len(articles))
    store.create(
        tmp / "store.sqlite",
        ((a.title, a.byline, a.kicker, a.body, a.page, a.position, int(counts[i])) for i, a in enumerate(articles)),
        ((int(a), c.start, c.end, c.text) for c, a in zip(chunks, chunk_articles)),
    )


def build(
    folder: Path,
    seg_id: str,
    articles: list[Article],
    chunks: list[Chunk],
    vectors: np.ndarray | list[np.ndarray] | None,
    vector_key: str | None,
    fields: tuple[str, ...],
    workers: int = 1,
    progress: bool = False,
    hard_max: int = 600,
    chunk_articles: np.ndarray | None = None,
    sentences: tuple[np.ndarray, np.ndarray | list[np.ndarray]] | None = None,
    settings: Settings | None = None,
    timings: dict[str, float] | None = None,
) -> Path:
    """Write a segment. `chunk_articles[i]` (default `chunks[i].article`) indexes `articles`; `vectors`
    has one row per chunk, possibly in blocks; `sentences` is (rows of article, start, end; their
    vectors, possibly in blocks) or None. Each sentence is tokenized once, on `workers`
    processes; each field is written as soon as it is built, so only one field's matrix is in memory
    at a time. `timings` gains the seconds of each stage: tokenizing (`tokenize_s`), adding to the fields
    (`fields_add_s`), writing them (`fields_write_s`), the store (`store_s`, unless the bigrams process
    writes it), the vectors, the sentences, waiting for the bigrams process (`bigrams_wait_s`) and checksumming, syncing and renaming (`finish_s`)."""
    from tqdm import tqdm

    from ...tokenizer import char_bigrams, tokenize_articles

    settings = settings or Settings()
    tmp = folder / f".{seg_id}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    builders = {name: bm25.FieldBuilder() for name in fields}
    if chunk_articles is None:
        chunk_articles = np.fromiter((c.article for c in chunks), dtype=np.int32, count=len(chunks))
    by_article: list[list[Chunk]] = [[] for _ in articles]
    for c, a in zip(chunks, chunk_articles):
        by_article[a].append(c)
    spans = [sentence_spans(a.body, hard_max) for a in articles]  # the sentences the chunker used
    work = ((a.title, [a.body[s:e] for s, e in sp]) for a, sp in zip(articles, spans))
    parallel = workers > 1 and len(articles) >= settings.parallel_min_articles
    beside = None
    if parallel and "bigrams" in builders and forked.available():
        del builders["bigrams"]
        beside = BigramsBeside(tmp, by_article, articles, chunks, chunk_articles)
    try:
        results = tokenize_articles(work, workers if parallel else 1)
        loop_started, adding = time.perf_counter(), 0.0  # tokenizing and adding interleave: timed apart
        for a_id, (title_tokens, sentence_tokens) in enumerate(
            tqdm(results, total=len(articles), desc="分词", unit="篇", disable=not progress, mininterval=1.0)
        ):
            started = time.perf_counter()
            starts = [s for s, _ in spans[a_id]]
            ends = [e for _, e in spans[a_id]]
            if "articles" in builders:
                builders["articles"].add(title_tokens + [t for toks in sentence_tokens for t in toks])
            for c in by_article[a_id]:
                i, j = bisect_left(starts, c.start), bisect_right(ends, c.end)
                builders["words"].add(title_tokens + [t for toks in sentence_tokens[i:j] for t in toks])
                if "bigrams" in builders:
                    builders["bigrams"].add(char_bigrams(c.embed_text))
            spans[a_id] = by_article[a_id] = None  # type: ignore[call-overload]  # release as we go; never read again
            adding += time.perf_counter() - started
        _add_time(timings, "tokenize_s", time.perf_counter() - loop_started - adding)
        _add_time(timings, "fields_add_s", adding)
        totals = {}
        with _timed(timings, "fields_write_s"):
            for name in ("words", "articles", "bigrams"):  # the largest field last, when the others are freed
                if name in builders:
                    totals[name] = builders.pop(name).write(tmp, name)
        if beside is None:  # else the child writes the store after the bigrams
            with _timed(timings, "store_s"):
                _write_store(tmp, articles, chunks, chunk_articles)
        seg_vectors = None
        if vectors is not None:
            with _timed(timings, "vectors_s"):
                index = VectorIndex.build(vectors, settings.ann)
                index.save(tmp / "vectors.faiss")
            assert vector_key is not None  # the writer passes vectors only with their key
            seg_vectors = SegmentVectors(key=vector_key, dim=index.dim)
        n_sentences = None
        if sentences is not None and seg_vectors is not None:
            with _timed(timings, "sentences_s"):
                n_sentences = _write_sentences(tmp, *sentences, index.dim)
        if beside is not None:
            with _timed(timings, "bigrams_wait_s"):
                totals["bigrams"] = beside.result()
    except BaseException:
        if beside is not None:
            beside.stop()
        raise
    final = folder / seg_id
    with _timed(timings, "finish_s"):
        _finish(tmp, final, totals, len(articles), len(chunks), seg_vectors, n_sentences)
    return final


def with_vectors(folder: Path, seg_id: str, old: Segment, vector_key: str, vectors: np.ndarray | None,
                 sentences: tuple[np.ndarray, np.ndarray] | None, settings: Settings | None = None,
                 graph: Path | None = None) -> Path:
    """A new segment: `old`'s files (hard links: segments are immutable) plus chunk vectors and/or
    sentence rows and vectors that `old` was written without (serve first, embed after), or with
    `graph` (a saved index of `old`'s own vectors: `build_graph`) in place of its IVF index."""
    tmp = folder / f".{seg_id}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    replaced = ({"vectors.faiss"} if vectors is not None or graph is not None else set()) | (
        {SENTENCES, SENTENCE_VECTORS} if sentences is not None else set())
    for name in old.manifest.files:
        if name not in replaced:
            try:
                os.link(old.path / name, tmp / name)
            except OSError:  # a file system without hard links
                shutil.copy2(old.path / name, tmp / name)
    seg_vectors = old.manifest.vectors
    if vectors is not None:
        if len(vectors) != old.n_chunks:
            raise ValueError(f"段 {old.id} 有 {old.n_chunks} 个文本块，而向量有 {len(vectors)} 条")
        index = VectorIndex.build(vectors, (settings or Settings()).ann)
        index.save(tmp / "vectors.faiss")
        seg_vectors = SegmentVectors(key=vector_key, dim=index.dim)
    elif graph is not None:
        os.replace(graph, tmp / "vectors.faiss")  # the caller's file, in the index folder: moved, not copied
    if seg_vectors is None or seg_vectors.key != vector_key:
        raise ValueError(f"段 {old.id} 没有 {vector_key} 的文本块向量，不能只加句向量")
    n_sentences = old.manifest.sentences
    if sentences is not None:
        n_sentences = _write_sentences(tmp, sentences[0], sentences[1], seg_vectors.dim)
    final = folder / seg_id
    _finish(tmp, final, {k: v.model_dump() for k, v in old.manifest.fields.items()}, old.n_articles, old.n_chunks,
            seg_vectors, n_sentences)
    return final


def build_graph(seg: Segment, path: Path, settings: Settings) -> None:
    """Save at `path` the HNSW graph of `seg`'s vectors (read from its IVF index; minutes at 1M, so
    run outside the writer lock: `Writer.attach_graph` swaps it in)."""
    vectors = VectorIndex.load(seg.path / "vectors.faiss", mmap=False, ann=settings.ann).vectors()
    VectorIndex.build(vectors, settings.ann, graph=True).save(path)


class Segment:
    """An opened segment: memory-mapped fields and vectors, a read-only store."""

    def __init__(self, path: Path, verify: bool = True, settings: Settings | None = None):
        self.path = Path(path)
        self.settings = settings or Settings()
        self.id = self.path.name
        self.corrupt = ""  # set by background verification
        try:
            self.manifest: SegmentManifest = load(SegmentManifest, self.path / MANIFEST)
            for name, info in self.manifest.files.items():
                size = (self.path / name).stat().st_size
                if size != info.size:
                    raise IndexCorrupt(f"段 {self.id} 的文件 {name} 大小不符（应为 {info.size}，实为 {size}）")
            if verify:
                self._verify_or_schedule()
            self.fields = {name: bm25.Field.load(self.path, name) for name in self.manifest.fields}
            self.chunk_article = np.asarray(np.load(self.path / "chunk_article.npy", mmap_mode="r"))
            self.article_keys = np.asarray(np.load(self.path / "article_keys.npy", mmap_mode="r"))
            self.store = store.Store(self.path / "store.sqlite")
            self.vectors = (VectorIndex.load(self.path / "vectors.faiss", mmap=True, ann=self.settings.ann)
                            if self.manifest.vectors else None)
            self.sentence_rows: np.ndarray | None = None
            self.sentence_vectors: np.ndarray | None = None
            if self.manifest.sentences is not None:
                self.sentence_rows = np.load(self.path / SENTENCES, mmap_mode="r")
                self.sentence_vectors = np.load(self.path / SENTENCE_VECTORS, mmap_mode="r")
        except IndexCorrupt:
            raise
        except (OSError, ValueError, RuntimeError) as exc:
            raise IndexCorrupt(f"段 {self.id} 无法打开：{exc}") from exc
        m = self.manifest
        if len(self.chunk_article) != m.chunks or len(self.article_keys) != m.articles or (
            self.vectors is not None and len(self.vectors) != m.chunks
        ) or any(f.n_docs != (m.articles if n == "articles" else m.chunks) for n, f in self.fields.items()) or (
            self.sentence_rows is not None and self.sentence_vectors is not None and not (
                len(self.sentence_rows) == len(self.sentence_vectors) == m.sentences
                and self.sentence_rows.shape[1:] == (3,)
                and self.vectors is not None and self.sentence_vectors.shape[1:] == (self.vectors.dim,)
            )
        ):
            raise IndexCorrupt(f"段 {self.id} 的各文件条数不一致")

    def sentences(self, local_articles: list[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per local article id: its sentences' (start, end) spans and float32 vectors; {} without them."""
        if self.sentence_rows is None:
            return {}
        assert self.sentence_vectors is not None  # loaded together with sentence_rows
        column = self.sentence_rows[:, 0]
        out = {}
        for a in sorted(set(local_articles)):
            # Keys of the column's own type: Python ints made numpy convert the whole column to int64 on
            # every lookup (6.7M rows at 1M chunks: a hybrid query took 824 ms instead of milliseconds).
            lo, hi = np.searchsorted(column, np.array([a, a + 1], dtype=column.dtype))
            if hi > lo:
                out[a] = (np.asarray(self.sentence_rows[lo:hi, 1:]), np.asarray(self.sentence_vectors[lo:hi], dtype=np.float32))
        return out

    @property
    def n_chunks(self) -> int:
        return self.manifest.chunks

    @property
    def n_articles(self) -> int:
        return self.manifest.articles

    @property
    def vector_key(self) -> str | None:
        return self.manifest.vectors.key if self.manifest.vectors else None

    @property
    def wants_graph(self) -> bool:
        """Its vectors are searched by IVF where the settings ask for an HNSW graph (built after the commit)."""
        return self.vectors is not None and self.vectors.wants_graph(self.settings.ann)

    def _verify_or_schedule(self) -> None:
        total = sum(f.size for f in self.manifest.files.values())
        if total <= self.settings.verify_sync_mb * 2**20:
            self.corrupt = self._verify()
            if self.corrupt:
                raise IndexCorrupt(self.corrupt)
        else:
            threading.Thread(target=self._verify_in_background, name=f"verify-{self.id}", daemon=True).start()

    def _verify(self) -> str:
        for name, info in self.manifest.files.items():
            if file_checksum(self.path / name) != info.xxh3:
                return f"段 {self.id} 的文件 {name} 校验和不符（内容被改动或损坏）"
        return ""

    def _verify_in_background(self) -> None:
        started = time.perf_counter()
        try:
            self.corrupt = self._verify()
        except OSError as exc:
            self.corrupt = f"段 {self.id} 无法校验：{exc}"
        if self.corrupt:
            log.error("%s", self.corrupt)
        else:
            log.info("段 %s 校验完成（%.1f 秒）", self.id, time.perf_counter() - started)

    def check(self) -> None:
        if self.corrupt:
            raise IndexCorrupt(self.corrupt)

    def close(self) -> None:
        self.store.close()


def merge(folder: Path, seg_id: str, parts: list[tuple[Segment, np.ndarray]],
          settings: Settings | None = None) -> tuple[Path, list[np.ndarray]]:
    """One segment from the live articles of several (`parts`: segment, bool mask of live articles).

    Returns the new segment's path and, per part, the new id of each old article (-1 if dropped).
    Nothing is tokenized or embedded again: postings, rows and vectors are copied.
    """
    tmp = folder / f".{seg_id}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    article_maps, chunk_keep, base = [], [], 0
    for seg, live in parts:
        new_ids = np.full(seg.n_articles, -1, dtype=np.int64)
        new_ids[live] = np.arange(base, base + int(live.sum()))
        base += int(live.sum())
        article_maps.append(new_ids)
        chunk_keep.append(live[seg.chunk_article])
    totals = {}
    for name in parts[0][0].fields:
        keep = [live if name == "articles" else ck for (seg, live), ck in zip(parts, chunk_keep)]
        totals[name] = bm25.merge_fields([seg.fields[name] for seg, _ in parts], keep, tmp, name)
    chunk_article = np.concatenate([m[seg.chunk_article[ck]] for (seg, _), m, ck in zip(parts, article_maps, chunk_keep)])
    np.save(tmp / "chunk_article.npy", chunk_article.astype(np.int32))
    np.save(tmp / "article_keys.npy", np.concatenate([np.asarray(seg.article_keys)[live] for seg, live in parts]).astype(np.uint64))

    def article_rows():
        for seg, live in parts:
            for row in seg.store.articles(np.flatnonzero(live).tolist()):
                yield row[1:]

    def chunk_rows():
        for (seg, live), m in zip(parts, article_maps):
            for article, start, end, text in seg.store.chunk_rows(np.flatnonzero(live).tolist()):
                yield int(m[article]), start, end, text

    store.create(tmp / "store.sqlite", article_rows(), chunk_rows())
    seg_vectors = None
    if all(seg.vectors is not None for seg, _ in parts):
        ann = (settings or Settings()).ann
        vectors = np.concatenate([
            VectorIndex.load(seg.path / "vectors.faiss", mmap=False, ann=ann).vectors()[ck] for (seg, _), ck in zip(parts, chunk_keep)
        ])
        VectorIndex.build(vectors, ann).save(tmp / "vectors.faiss")
        seg_vectors = parts[0][0].manifest.vectors
    n_sentences = None
    if seg_vectors is not None and all(seg.sentence_rows is not None for seg, _ in parts):
        rows, blocks = [], []
        for (seg, live), m in zip(parts, article_maps):
            assert seg.sentence_rows is not None and seg.sentence_vectors is not None  # checked above; loaded together
            keep_rows = live[seg.sentence_rows[:, 0]]
            kept = np.array(seg.sentence_rows[keep_rows], dtype=np.int64)
            kept[:, 0] = m[kept[:, 0]]
            rows.append(kept)
            blocks.append(np.asarray(seg.sentence_vectors[keep_rows]))
        n_sentences = _write_sentences(tmp, np.concatenate(rows), blocks, seg_vectors.dim)
    final = folder / seg_id
    _finish(tmp, final, totals, base, int(len(chunk_article)), seg_vectors, n_sentences)
    return final, article_maps
