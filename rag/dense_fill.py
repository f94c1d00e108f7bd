"""Serve first, embed after: the dense leg of parts that were committed without vectors.

A serve-first commit (`open_index(background_dense=True)`, which the app uses, and `rag build`
without `--wait-dense`) stores the text and the keyword leg at once. `DenseFill` then embeds,
part by part, first the chunks (the dense leg) and then their sentences, through the vector cache
(`embeddings.sqlite`, committed every few dozen vectors, so a kill or a restart loses nothing that
was stored: the next run reads those back), and swaps the part for a copy that holds the vectors
(hard links plus the new files, one small commit). Until every part has its vectors, the dense leg
searches those that do, and `progress()` says how far it has come.

Then the graphs: a part above RAG_ANN_THRESHOLD is written with IVF (seconds; recall@10 about 0.60 on
e5 vectors) and, with RAG_ANN_INDEX=hnsw, its HNSW graph (0.957 in under 5 ms at 1M, minutes to build)
is built here from its stored vectors, outside the writer lock, and swapped in the same way. The dense
leg serves by IVF meanwhile, so the graphs are not part of `progress()`.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np

from .backends.base import IndexLocked, Snapshot, VectorPhase
from .library import SELF_TEST_MIN_POOL, SELF_TEST_QUERIES, Library, body_sentence_table
from .results import DenseProgress

log = logging.getLogger(__name__)

# Sentences per chunk, until one part has been measured (the seeds: 445 / 87).
DEFAULT_SENTENCE_RATIO = 5.0
# The self-test reads every article body; above this many chunks it is left out (it then counts as passed).
SELF_TEST_MAX_CHUNKS = 200_000
RETRY_SECONDS = 30.0
# Texts per call into the engine (and per cache commit) on a CPU: the engine serves one call at a time,
# so a question's embedding waits for at most this many background texts (a GPU batches more).
CPU_STEP = 8


class _Stopped(Exception):
    pass


def fillable(index, snap: Snapshot) -> bool:
    """Whether this index's encoder may fill in this snapshot's missing vectors."""
    enc = index.encoder
    dense = snap.meta.get("dense") or {}
    return bool(enc is not None and enc.cacheable and index.backend.defers_vectors and dense.get("enabled")
                and dense.get("key") == enc.key and snap.vector_key in (None, enc.key))


def coverage_progress(snap: Snapshot, ratio: float = DEFAULT_SENTENCE_RATIO) -> tuple[float, float]:
    """(texts left to embed, texts in all) in chunk-text units, estimated from the parts still missing vectors."""
    want = bool(snap.meta.get("sentence_vectors"))
    r = ratio if want else 0.0
    missing = snap.missing_vectors(want)
    left = sum(n * (1 + r) if phase == VectorPhase.CHUNKS else n * r for _, phase, n in missing)
    return left, max(snap.n_chunks * (1 + r), left, 1.0)


class DenseFill:
    """Fills in one index's missing vectors: `run_until_done()` in the caller, or `start()` a thread."""

    def __init__(self, index, progress: bool = False):
        self.index = index
        self.show_progress = progress
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._ratio = DEFAULT_SENTENCE_RATIO
        self._left: float | None = None  # units, as of the last step's snapshot
        self._total: float | None = None
        self._done_now = 0  # texts of the part being embedded that are stored
        self._embedded = 0  # texts embedded by this process, and the seconds that took: the rate
        self._seconds = 0.0
        self._last = 0.0  # when the last stored batch was counted (reset as each part starts)
        self._worked = False  # something was filled in since the last self-test
        self._graph_built: tuple[str, Path] | None = None  # a graph built but not swapped in: the writer was busy
        self.error = ""

    # --- progress --------------------------------------------------------------------------------

    def progress(self, snap: Snapshot) -> DenseProgress | None:
        """None when nothing is missing; else the share done and, once a rate is known, the time left."""
        left, total = coverage_progress(snap, self._ratio)
        if not left:
            return None
        with self._lock:
            if self._left is not None and self._total:
                left, total = max(self._left - self._done_now, 0.0), self._total
            rate = self._embedded / self._seconds if self._seconds > 0 and self._embedded else None
        fraction = min(max(1.0 - left / total, 0.0), 0.99)
        return DenseProgress(fraction, left / rate if rate else None)

    def _on_stored(self, cached: int, embedded: int) -> None:
        now = time.perf_counter()
        with self._lock:
            if embedded:
                self._embedded += embedded
                self._seconds += now - self._last
            self._done_now += cached + embedded
            self._last = now
        if self._stop.is_set():
            raise _Stopped()

    # --- work ------------------------------------------------------------------------------------

    def step(self) -> bool:
        """Fill in one part (one phase), or else build one part's graph; False when nothing is left to do."""
        index = self.index
        with index.backend.snapshot() as snap:
            missing = self._missing(snap)
            if not missing:
                graphs = snap.missing_graphs()
                if not graphs:
                    if self._worked and fillable(index, snap):
                        self._worked = False
                        self._record_self_test(snap)
                    return False
                part, key = graphs[0], snap.vector_key
                built = self._graph_built
                graph = (built[1] if built and built[0] == part and built[1].exists()
                         else self._build_graph(part))  # the part stays pinned by this snapshot meanwhile
            else:
                part, phase, _ = missing[0]
                chunk_texts, bodies = snap.part_texts(part)
        if not missing:
            return self._attach_graph(part, graph, key)
        return self._fill(part, phase, chunk_texts, bodies)

    def _missing(self, snap: Snapshot) -> list:
        """The parts still without vectors this index's encoder may fill in (and the progress figures)."""
        if not fillable(self.index, snap):
            return []
        left, total = coverage_progress(snap, self._ratio)
        with self._lock:
            self._left, self._total, self._done_now = left, total, 0
        return snap.missing_vectors(bool(snap.meta.get("sentence_vectors")))

    def _fill(self, part: str, phase: VectorPhase, chunk_texts: list[str], bodies: list[str]) -> bool:
        index = self.index
        enc, settings = index.encoder, index.settings
        rows = None
        if phase == VectorPhase.CHUNKS:
            texts = chunk_texts
        else:
            rows, texts = body_sentence_table(bodies, settings.chunk_hard_max)
            self._ratio = len(texts) / max(len(chunk_texts), 1)
        if self.show_progress:
            log.info("补全语义索引：%s %d 个%s…", part, len(texts), "文本块" if rows is None else "句子")
        library = Library(settings, enc)
        try:
            self._last = time.perf_counter()
            vectors, _ = library.cache.encode(enc, texts, settings.batch_size or enc.batch_size, self.show_progress,
                                              "补全语义索引", "块" if rows is None else "句", on_stored=self._on_stored,
                                              commit_every=CPU_STEP if enc.device == "cpu" else max(CPU_STEP, enc.batch_size))
        finally:
            library.close()
        vectors = vectors.reshape(-1, enc.dim)
        with index._write_lock, index.backend.writer(settings.lock_timeout) as writer:
            attached = writer.attach_vectors(
                part, enc.key, vectors if rows is None else None,
                None if rows is None else (rows, vectors.astype(np.float16)))
            if attached and writer.manifest is not None:
                writer.commit(dict(writer.manifest.meta), enc.key)
        if attached:
            self._worked = True
            index.backend.refresh(wait=True)
            index.backend.collect()
        return True  # a part that was merged or removed meanwhile: look again

    def _build_graph(self, part: str) -> Path:
        """The HNSW graph of a part served by IVF until now (minutes at 1M vectors; no lock held)."""
        started = time.perf_counter()
        if self.show_progress:
            log.info("构建向量图索引（HNSW）：%s…", part)
        graph = self.index.backend.build_graph(part)
        log.info("向量图索引 %s 已建好，用时 %.1f 秒", part, time.perf_counter() - started)
        return graph

    def _attach_graph(self, part: str, graph: Path, key: str | None) -> bool:
        """Swap the graph in (one small commit); a part merged or removed meanwhile keeps its new state."""
        index = self.index
        self._graph_built = None
        try:
            with index._write_lock, index.backend.writer(index.settings.lock_timeout) as writer:
                attached = writer.attach_graph(part, graph)
                if attached and writer.manifest is not None:
                    writer.commit(dict(writer.manifest.meta), key)
        except IndexLocked:
            self._graph_built = (part, graph)  # minutes of work: kept for the next try
            raise
        except BaseException:
            graph.unlink(missing_ok=True)
            raise
        graph.unlink(missing_ok=True)  # taken by the new part, or no longer wanted
        index.backend.refresh(wait=True)  # attached or not, the next step looks at the newest state
        if attached:
            index.backend.collect()
        return True

    def _record_self_test(self, snap: Snapshot) -> None:
        """The dense self-test a full build makes (rag/library.py), measured once every part has vectors."""
        if (snap.meta.get("dense") or {}).get("self_test") is not None or snap.n_chunks > SELF_TEST_MAX_CHUNKS:
            return
        enc, hard_max = self.index.encoder, self.index.settings.chunk_hard_max
        pool = [(text, view.id) for view in snap.articles()
                for text in body_sentence_table([view.body], hard_max)[1] if len(text) >= 15]
        if len(pool) < SELF_TEST_MIN_POOL:
            return
        rng = np.random.default_rng(0)
        picked = sorted(rng.choice(len(pool), size=min(SELF_TEST_QUERIES, len(pool)), replace=False))
        hits = 0
        for i in picked:
            text, article = pool[i]
            found = snap.dense(enc.encode_query(text), 3)
            hits += any(c.article == article for c in snap.chunks([cid for cid, _ in found]).values())
        score = round(hits / len(picked), 4)
        with self.index._write_lock, self.index.backend.writer(self.index.settings.lock_timeout) as writer:
            if writer.manifest is None:
                return
            meta = dict(writer.manifest.meta)
            meta["dense"] = {**meta.get("dense", {}), "self_test": score}
            writer.commit(meta, enc.key)
        self.index.backend.refresh(wait=True)
        log.info("语义模型自检（补全后）：%.0f%% 的抽样句子找回其文章", 100 * score)

    def run_until_done(self) -> None:
        while self.step():
            pass

    # --- the background thread -------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rag-dense-fill", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop after the batch being embedded (its vectors are stored)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                busy = self.step()
                self.error = ""
            except _Stopped:
                return
            except IndexLocked:
                self._wake.wait(RETRY_SECONDS)
                continue
            except Exception as exc:  # never stops the app: logged, retried later
                if self._stop.is_set():
                    return
                self.error = str(exc)
                log.exception("补全语义索引失败，%d 秒后重试", RETRY_SECONDS)
                self._wake.wait(RETRY_SECONDS)
                continue
            if not busy:
                self._wake.wait()
