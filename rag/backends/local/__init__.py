"""The local backend: segments of BM25 arrays, FAISS vectors and SQLite text in one folder.

Every commit is a generation: a manifest naming its segments and its documents (and through
them, which articles are live). Readers pin a generation for a whole request and move to a newer
one between requests, by themselves; a generation's files are deleted only when no reader holds
it (see folder.py). Adds write one small segment; removes write only a new manifest; small
segments are merged in the background (`maintain`), as Lucene does.
"""

from __future__ import annotations

import contextlib
import logging
from array import array
import math
import os
import shutil
import threading
from collections import defaultdict
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ...articles import stored_key
from ...results import ArticleView, DocumentInfo
from ...chunks import Chunk
from ...settings import Settings
from ..base import Backend, IndexCorrupt, IndexLocked, Prepared, Snapshot, VectorPhase, Writer
from . import bm25, folder as fs, segment
from .manifest import GENERATION_FORMAT, DocRecord, GenerationManifest, dump, load

log = logging.getLogger(__name__)

# A tier holds segments of similar size (powers of MERGE_FACTOR chunks); MERGE_FACTOR segments in
# one tier are merged into one. Segments with more than EXPUNGE of their articles dead are rewritten.
MERGE_FACTOR = 4
EXPUNGE = 0.3


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _record(info: DocumentInfo, refs) -> DocRecord:
    return DocRecord(**asdict(info), refs=refs)


def _info(rec: DocRecord) -> DocumentInfo:
    data = rec.model_dump()
    data.pop("refs")
    return DocumentInfo(**data)


class Generation:
    """A loaded generation: its segments, which of their articles and chunks are live, and who holds them."""

    def __init__(self, manifest: GenerationManifest, segments: dict[str, segment.Segment], lease, stamp):
        self.manifest = manifest
        self.number = manifest.number
        self.lease = lease
        self.stamp = stamp
        self.refs = 0
        self.retired = False
        self.segments = [segments[s] for s in manifest.segments]
        position = {s: i for i, s in enumerate(manifest.segments)}
        live = [np.zeros(seg.n_articles, dtype=bool) for seg in self.segments]
        first_doc = [np.full(seg.n_articles, -1, dtype=np.int32) for seg in self.segments]
        self.extra_sources: dict[tuple[int, int], list[str]] = defaultdict(list)
        for d, doc in enumerate(manifest.documents):
            for seg_id, a0, a1 in doc.refs:
                i = position.get(seg_id)
                if i is None or not 0 <= a0 < a1 <= self.segments[i].n_articles:
                    raise IndexCorrupt(f"第 {self.number} 代清单中文档 {doc.source} 引用了不存在的文章（{seg_id}:{a0}-{a1}）")
                taken = first_doc[i][a0:a1] >= 0
                if taken.any():
                    for a in np.flatnonzero(taken) + a0:
                        self.extra_sources[(i, int(a))].append(doc.source)
                first_doc[i][a0:a1] = np.where(taken, first_doc[i][a0:a1], d)
                live[i][a0:a1] = True
        self.article_live = live
        self.first_doc = first_doc
        self.chunk_live = [None if lv.all() else lv[seg.chunk_article] for lv, seg in zip(live, self.segments)]
        self.chunk_offsets = np.cumsum([0] + [s.n_chunks for s in self.segments])
        self.article_offsets = np.cumsum([0] + [s.n_articles for s in self.segments])
        self.chunk_article = (
            np.concatenate([seg.chunk_article + off for seg, off in zip(self.segments, self.article_offsets)])
            if self.segments else np.zeros(0, dtype=np.int64)
        )
        self.parts: dict[str, list[bm25.Part]] = {}
        self.stats: dict[str, tuple[int, float]] = {}
        names = self.segments[0].fields if self.segments else {}
        for name in names:
            self.parts[name] = [
                bm25.Part(seg.fields[name], int(off), None if lv.all() else lv)
                if name == "articles" else bm25.Part(seg.fields[name], int(coff), clive)
                for seg, lv, off, coff, clive in zip(
                    self.segments, live, self.article_offsets, self.chunk_offsets, self.chunk_live
                )
            ]
            self.stats[name] = bm25.statistics(self.parts[name])
        self.n_live_articles = sum(int(lv.sum()) for lv in live)
        self.n_live_chunks = sum(int(lv[seg.chunk_article].sum()) for lv, seg in zip(live, self.segments))
        self.documents = [_info(d) for d in manifest.documents]
        # Segments still waiting for their vectors (serve first, embed after) are skipped by the dense leg.
        keys = {seg.vector_key for seg in self.segments} - {None}
        self.vector_key = keys.pop() if len(keys) == 1 else None

    def locate(self, gid: int, offsets) -> tuple[int, int]:
        i = int(np.searchsorted(offsets, gid, side="right")) - 1
        return i, gid - int(offsets[i])

    def sources(self, i: int, local_article: int) -> tuple[str, ...]:
        d = int(self.first_doc[i][local_article])
        if d < 0:
            return ()
        return (self.manifest.documents[d].source, *self.extra_sources.get((i, local_article), ()))

    def check(self) -> None:
        for seg in self.segments:
            seg.check()


class LocalSnapshot(Snapshot):
    def __init__(self, gen: Generation, field_weights: dict[str, float]):
        self.gen = gen
        self.meta = gen.manifest.meta
        self.number = gen.number
        self._weights = field_weights

    @property
    def n_chunks(self) -> int:
        return self.gen.n_live_chunks

    @property
    def n_articles(self) -> int:
        return self.gen.n_live_articles

    @property
    def vector_key(self) -> str | None:
        return self.gen.vector_key

    def _field(self, name, weights, size):
        if name not in self.gen.parts or not weights:
            return None
        n, avg = self.gen.stats[name]
        return bm25.scores(self.gen.parts[name], weights, n, avg, size)

    def lexical(self, weights, k, query=""):
        gen = self.gen
        gen.check()
        size = int(gen.chunk_offsets[-1])
        combined = None
        bigrams = {}
        for b in segment.char_bigrams(query) if query else []:
            bigrams[b] = bigrams.get(b, 0.0) + 1.0
        for name, field_weights in (("words", weights), ("bigrams", bigrams)):
            scores = self._field(name, field_weights, size)
            if scores is not None:
                scores *= self._weights.get(name, 1.0)
                combined = scores if combined is None else np.add(combined, scores, out=combined)
        if combined is None:
            return []
        candidates = np.flatnonzero(combined)
        if not len(candidates):
            return []
        values = combined[candidates]
        articles = self._field("articles", weights, int(gen.article_offsets[-1]))
        if articles is not None:
            values += self._weights.get("articles", 0.5) * articles[gen.chunk_article[candidates]]
        k = min(k, len(candidates))
        top = np.argpartition(-values, k - 1)[:k]
        top = top[np.argsort(-values[top], kind="stable")]
        return [(int(candidates[i]), float(values[i])) for i in top]

    def dense(self, vector, k):
        gen = self.gen
        gen.check()
        found = []
        for i, seg in enumerate(gen.segments):
            if seg.vectors is None:
                continue
            live = gen.chunk_live[i]
            dead = 0 if live is None else int(len(live) - live.sum())
            if dead == len(seg.chunk_article):
                continue
            ids, scores = seg.vectors.search(vector, k + dead)
            if live is not None:
                keep = live[ids]
                ids, scores = ids[keep], scores[keep]
            off = int(gen.chunk_offsets[i])
            found += [(int(c) + off, float(s)) for c, s in zip(ids[:k], scores[:k])]
        found.sort(key=lambda cs: -cs[1])
        return found[:k]

    def _group(self, ids, offsets):
        groups = defaultdict(list)
        for gid in ids:
            i, local = self.gen.locate(int(gid), offsets)
            groups[i].append(local)
        return groups

    def chunks(self, ids):
        gen = self.gen
        gen.check()
        out = {}
        try:
            for i, local_ids in self._group(ids, gen.chunk_offsets).items():
                seg = gen.segments[i]
                coff, aoff = int(gen.chunk_offsets[i]), int(gen.article_offsets[i])
                for cid, art, start, end, text, title, byline, page in seg.store.chunks(local_ids):
                    sources = gen.sources(i, art)
                    if not sources:
                        continue  # removed since: never returned
                    out[cid + coff] = Chunk(sources[0], title, byline, art + aoff, start, end, text, page, sources)
        except Exception as exc:
            raise _corrupt(exc) from exc
        return out

    def article_bodies(self, ids):
        gen = self.gen
        out = {}
        try:
            for i, local_ids in self._group(ids, gen.article_offsets).items():
                aoff = int(gen.article_offsets[i])
                out.update({a + aoff: body for a, body in gen.segments[i].store.bodies(local_ids).items()})
        except Exception as exc:
            raise _corrupt(exc) from exc
        return out

    def articles(self, source=None):
        gen = self.gen
        position = {s: i for i, s in enumerate(gen.manifest.segments)}
        out, seen = [], set()
        for doc in gen.manifest.documents:
            if source is not None and doc.source != source:
                continue
            for seg_id, a0, a1 in doc.refs:
                i = position[seg_id]
                aoff = int(gen.article_offsets[i])
                try:
                    rows = gen.segments[i].store.articles(list(range(a0, a1)))
                except Exception as exc:
                    raise _corrupt(exc) from exc
                for aid, title, byline, kicker, body, page, _pos, chunks in rows:
                    if (i, aid) in seen:
                        continue
                    seen.add((i, aid))
                    out.append(ArticleView(aid + aoff, gen.sources(i, aid), title, byline, kicker, page, body, chunks))
        return out

    def documents(self):
        return list(self.gen.documents)

    def document_frequency(self, tokens):
        return bm25.document_frequency(self.gen.parts.get("words", []), tokens)

    def sentences(self, article_ids):
        gen = self.gen
        out = {}
        try:
            for i, local_ids in self._group(article_ids, gen.article_offsets).items():
                aoff = int(gen.article_offsets[i])
                out.update({a + aoff: found for a, found in gen.segments[i].sentences(local_ids).items()})
        except Exception as exc:
            raise _corrupt(exc) from exc
        return out


    def dense_coverage(self):
        gen = self.gen
        if self.vector_key is None:
            return 0, gen.n_live_chunks
        done = sum(int(seg.n_chunks if live is None else live.sum())
                   for seg, live in zip(gen.segments, gen.chunk_live) if seg.vector_key == self.vector_key)
        return done, gen.n_live_chunks

    def missing_vectors(self, sentences):
        out = []
        for seg in self.gen.segments:
            if seg.vectors is None:
                out.append((seg.id, VectorPhase.CHUNKS, seg.n_chunks))
            elif sentences and seg.sentence_rows is None:
                out.append((seg.id, VectorPhase.SENTENCES, seg.n_chunks))
        return out

    def part_texts(self, part):
        seg = next((s for s in self.gen.segments if s.id == part), None)
        if seg is None:
            raise KeyError(part)
        try:
            chunk_texts = [Chunk("", title, "", 0, 0, 0, text).embed_text for title, text in seg.store.embed_rows()]
            bodies = [row[4] for row in seg.store.articles()]
        except Exception as exc:
            raise _corrupt(exc) from exc
        return chunk_texts, bodies


def _corrupt(exc: Exception) -> Exception:
    if isinstance(exc, IndexCorrupt):
        return exc
    import sqlite3

    if isinstance(exc, sqlite3.DatabaseError):
        return IndexCorrupt(f"块存储已损坏：{exc}")
    return exc


class LocalBackend(Backend):
    defers_vectors = True

    def __init__(self, folder: Path, field_weights: dict[str, float] | None = None, hard_max: int = 600,
                 workers: int = 1, progress: bool = False, settings: Settings | None = None):
        self.settings = settings or Settings()  # segments' tuning: ann, verify_sync_mb, parallel_min_articles
        self.folder = Path(folder)
        self.field_weights = field_weights or {"words": 1.0, "bigrams": 0.5, "articles": 0.5}
        self.hard_max = hard_max
        self.workers = workers
        self.progress = progress
        self._lock = threading.RLock()
        self._segments: dict[str, segment.Segment] = {}
        self._gen: Generation | None = None
        self._reloader: threading.Thread | None = None
        self._failed_stamp = None
        self._closed = False
        self.reload_error = ""  # why the newest generation could not be opened (the previous one serves)

    @property
    def location(self) -> str:
        return str(self.folder)

    @property
    def exists(self) -> bool:
        return fs.read_pointer(self.folder) is not None

    # --- reading -------------------------------------------------------------------------------

    def _open_generation(self) -> Generation:
        """Lease the generation CURRENT names, then check it is still current (see folder.py)."""
        for _ in range(20):
            stamp = fs.pointer_stamp(self.folder)
            number = fs.read_pointer(self.folder)
            if number is None:
                raise IndexCorrupt(f"{self.folder} 中没有索引（缺少 CURRENT）；请先运行 python -m rag build")
            lease = fs.Lease(self.folder, number)
            if fs.read_pointer(self.folder) != number:
                lease.release()
                continue
            try:
                manifest = load(GenerationManifest, self.folder / fs.GENERATIONS / f"{number:08d}.json")
                with self._lock:
                    for seg_id in manifest.segments:
                        if seg_id not in self._segments:
                            self._segments[seg_id] = segment.Segment(self.folder / fs.SEGMENTS / seg_id,
                                                                     settings=self.settings)
                    return Generation(manifest, self._segments, lease, stamp)
            except BaseException:
                lease.release()
                raise
        raise IndexCorrupt(f"{self.folder} 的 CURRENT 一直在变化，无法打开索引")

    def _install(self, gen: Generation) -> None:
        with self._lock:
            old, self._gen = self._gen, gen
            if old is not None:
                old.retired = True
                if old.refs == 0:
                    self._close_generation(old)

    def _close_generation(self, gen: Generation) -> None:
        gen.lease.release()
        current = set(self._gen.manifest.segments) if self._gen is not None else set()
        for seg in gen.segments:
            if seg.id not in current and seg.id in self._segments:
                self._segments.pop(seg.id).close()

    def refresh(self, wait: bool = False) -> bool:
        """Open the newest generation if CURRENT moved; in the background unless `wait`."""
        with self._lock:
            running = self._reloader
        if running is not None:
            if not wait:
                return False
            running.join()  # a background reload is under way: let it finish, then look again
        with self._lock:
            if self._gen is not None and fs.pointer_stamp(self.folder) == self._gen.stamp:
                return running is not None
            if self._reloader is not None:
                return False
            if not wait:
                self._reloader = threading.Thread(target=self._reload, name="rag-refresh", daemon=True)
                self._reloader.start()
                return True
            self._reloader = threading.current_thread()
        return self._reload()

    def _reload(self) -> bool:
        try:
            gen = self._open_generation()
        except IndexCorrupt as exc:
            with self._lock:
                self._reloader = None
                if self._gen is None:
                    raise
                self.reload_error = str(exc)
                self._failed_stamp = fs.pointer_stamp(self.folder)  # not retried until CURRENT moves again
            log.error("新一代索引无法打开，继续使用第 %d 代：%s", self._gen.number, exc)
            return False
        except BaseException:
            with self._lock:
                self._reloader = None
            raise
        self.reload_error = ""
        with self._lock:
            self._reloader = None
            if self._closed:  # closed while this was loading: hold nothing
                gen.lease.release()
                return False
            self._install(gen)
        log.info("已切换到第 %d 代索引", gen.number)
        return True

    @contextlib.contextmanager
    def snapshot(self):
        with self._lock:
            self._closed = False  # a closed backend opens again on use
            if self._gen is None:
                self._install(self._open_generation())
            elif self._reloader is None and fs.pointer_stamp(self.folder) not in (self._gen.stamp, self._failed_stamp):
                self.refresh(wait=False)
            gen = self._gen
            gen.refs += 1
        try:
            yield LocalSnapshot(gen, self.field_weights)
        finally:
            with self._lock:
                gen.refs -= 1
                if gen.retired and gen.refs == 0:
                    self._close_generation(gen)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._gen is not None:
                self._gen.retired = True
                if self._gen.refs == 0:
                    gen, self._gen = self._gen, None
                    gen.lease.release()
            for seg in self._segments.values():
                seg.close()
            self._segments.clear()

    # --- writing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self, timeout: float = 0.0, on_wait=None):
        lock = fs.WriterLock(self.folder)
        lock.acquire(timeout, on_wait)
        try:
            writer = LocalWriter(self)
            yield writer
        finally:
            lock.release()

    def segment(self, seg_id: str) -> segment.Segment:
        with self._lock:
            if seg_id not in self._segments:
                self._segments[seg_id] = segment.Segment(self.folder / fs.SEGMENTS / seg_id, settings=self.settings)
            return self._segments[seg_id]

    def maintain(self) -> None:
        """Merge segments by the tiered policy, one generation per merge; safe to call any time."""
        with self.writer(timeout=0.0) as w:
            while w.merge_once():
                pass

    def collect(self) -> None:
        """Delete what no reader holds any more, if no writer is busy (a writer does it anyway)."""
        lock = fs.WriterLock(self.folder)
        try:
            lock.acquire(timeout=0.0)
        except IndexLocked:
            return
        try:
            _collect(self.folder, keep_number=fs.read_pointer(self.folder))
        finally:
            lock.release()


class LocalWriter(Writer):
    """Holds the writer lock; builds the next generation in memory and on disk, visible at `commit`."""

    def __init__(self, backend: LocalBackend):
        self.backend = backend
        self.folder = backend.folder
        (self.folder / fs.SEGMENTS).mkdir(parents=True, exist_ok=True)
        (self.folder / fs.GENERATIONS).mkdir(parents=True, exist_ok=True)
        self.base = fs.read_pointer(self.folder)
        self.manifest: GenerationManifest | None = None
        if self.base is not None:
            try:
                self.manifest = load(GenerationManifest, self.folder / fs.GENERATIONS / f"{self.base:08d}.json")
            except IndexCorrupt as exc:
                log.warning("当前一代索引清单已损坏（%s），只能完整重建", exc)
        self.number = max([self.base or 0] + _numbers(self.folder / fs.GENERATIONS)) + 1
        self.segments: list[str] = list(self.manifest.segments) if self.manifest else []
        self.docs: dict[str, DocRecord] = {d.source: d for d in self.manifest.documents} if self.manifest else {}
        self.pending: list[Prepared] = []
        self._keys: dict[int, tuple[str, int]] | None = None
        self._vector_key: str | None = None
        self.written: list[str] = []
        _collect(self.folder, keep_number=self.base)  # leftovers of writers that died

    def documents(self):
        return [_info(d) for d in self.docs.values()] + [p.info for p in self.pending if p.info.source not in self.docs]

    @property
    def recovering(self):
        return self.manifest is None

    def remove(self, sources):
        for source in sources:
            self.docs.pop(source, None)
            self.pending = [p for p in self.pending if p.info.source != source]
        self._keys = None

    def restamp(self, stamps):
        for source, (size, mtime_ns) in stamps.items():
            if source in self.docs:
                self.docs[source] = self.docs[source].model_copy(update={"size": size, "mtime_ns": mtime_ns})

    def clear(self):
        self.docs.clear()
        self.pending.clear()
        self.segments = []
        self._keys = None

    def add(self, documents):
        for p in documents:
            self.remove([p.info.source])
            self.pending.append(p)

    def _live_keys(self) -> dict[int, tuple[str, int]]:
        """Article key -> (segment, article) of every live stored article, for de-duplication."""
        if self._keys is None:
            keys = {}
            for doc in self.docs.values():
                for seg_id, a0, a1 in doc.refs:
                    ak = self.backend.segment(seg_id).article_keys
                    for a in range(a0, a1):
                        keys.setdefault(int(ak[a]), (seg_id, a))
            self._keys = keys
        return self._keys

    def _write_pending(self) -> None:
        """The pending documents' new articles into one segment; references for the duplicates."""
        if not self.pending:
            return
        keys = self._live_keys()
        seg_id = f"{self.number:08d}-{len(self.written)}"
        new_articles, new_chunks, chunk_articles, vector_blocks = [], [], array("i"), []
        sentence_rows, sentence_blocks, with_sentences = [], [], True  # all documents have them, or none is stored
        refs: dict[str, list[tuple[str, int, int]]] = {}
        duplicates: dict[str, int] = {}
        for p in self.pending:
            if p.info.status != "ok":
                refs[p.info.source] = []
                continue
            new_id_of: dict[int, int] = {}  # the document's article index -> its id in the new segment
            doc_refs, dup = [], 0
            for a_index, article in enumerate(p.articles):
                key = stored_key(article, keys)
                if key in keys:
                    doc_refs.append(keys[key])
                    dup += 1
                    continue
                new_id_of[a_index] = len(new_articles)
                keys[key] = (seg_id, len(new_articles))
                doc_refs.append((seg_id, len(new_articles)))
                new_articles.append(article)
            rows = [row for row, c in enumerate(p.chunks) if c.article in new_id_of]
            new_chunks += [p.chunks[row] for row in rows]  # the same objects: no copy of 1M chunks
            chunk_articles.extend(new_id_of[p.chunks[row].article] for row in rows)
            if p.vectors is not None:
                vector_blocks.append(p.vectors if len(rows) == len(p.chunks) else p.vectors[rows])
            if p.sentences is None or p.sentence_vectors is None:
                with_sentences = with_sentences and not new_id_of
            elif new_id_of:
                remap = np.full(len(p.articles), -1, dtype=np.int32)
                remap[list(new_id_of)] = list(new_id_of.values())
                keep = remap[p.sentences[:, 0]] >= 0
                kept = np.array(p.sentences[keep], dtype=np.int32)
                kept[:, 0] = remap[kept[:, 0]]
                sentence_rows.append(kept)
                sentence_blocks.append(p.sentence_vectors if keep.all() else p.sentence_vectors[keep])
            refs[p.info.source] = _ranges(doc_refs)
            duplicates[p.info.source] = dup
        if new_articles:
            vectors = None
            if self._vector_key is not None:
                if sum(len(b) for b in vector_blocks) != len(new_chunks):
                    raise ValueError("部分文档缺少向量：同一次写入中的文档必须都带向量或都不带")
                vectors = vector_blocks
            sentences = None
            if vectors is not None and with_sentences and sentence_rows:
                sentences = (np.concatenate(sentence_rows), sentence_blocks)
            segment.build(
                self.folder / fs.SEGMENTS, seg_id, new_articles, new_chunks, vectors, self._vector_key,
                tuple(n for n in segment.FIELDS if n == "words" or self.backend.field_weights.get(n, 0) > 0),
                self.backend.workers, self.backend.progress, self.backend.hard_max,
                chunk_articles=np.frombuffer(chunk_articles, dtype=np.int32), sentences=sentences,
                settings=self.backend.settings,
            )
            self.written.append(seg_id)
            self.segments.append(seg_id)
        for p in self.pending:
            info = p.info
            if info.status == "ok":
                info = DocumentInfo(**{**asdict(info), "duplicates": duplicates.get(info.source, 0)})
            self.docs[info.source] = _record(info, refs[info.source])
        self.pending = []

    def attach_vectors(self, part, vector_key, vectors, sentences):
        if part not in self.segments:
            return False
        seg_id = f"{self.number:08d}-{len(self.written)}"
        segment.with_vectors(self.folder / fs.SEGMENTS, seg_id, self.backend.segment(part), vector_key, vectors, sentences,
                             self.backend.settings)
        self.written.append(seg_id)
        self.segments = [seg_id if s == part else s for s in self.segments]
        for source, doc in list(self.docs.items()):
            if any(r[0] == part for r in doc.refs):
                self.docs[source] = doc.model_copy(update={"refs": [(seg_id if r[0] == part else r[0], *r[1:]) for r in doc.refs]})
        self._keys = None
        return True

    def flush(self, vector_key: str | None = None) -> None:
        self._vector_key = vector_key
        # Segments without vectors (None) wait for them (serve first, embed after): they mix with any space.
        existing = {self.backend.segment(s).vector_key for s in self.segments} - {None}
        if self.pending and vector_key is not None and existing and existing != {vector_key}:
            raise ValueError(f"索引中的向量来自 {existing}，新文档的向量来自 {vector_key}：请完整重建（python -m rag build）")
        self._write_pending()

    def commit(self, meta: dict, vector_key: str | None = None) -> int:
        """Write the next generation and point CURRENT at it; returns its number."""
        self.flush(vector_key)
        referenced = {r[0] for d in self.docs.values() for r in d.refs}
        self.segments = [s for s in self.segments if s in referenced]  # wholly dead segments leave
        manifest = GenerationManifest(
            format=GENERATION_FORMAT, number=self.number, created_at=_now(), segments=self.segments,
            documents=list(self.docs.values()), meta=meta,
        )
        dump(manifest, self.folder / fs.GENERATIONS / f"{self.number:08d}.json")
        fs.write_pointer(self.folder, self.number)  # the atomic, durable swap
        self.base, self.manifest = self.number, manifest
        self.number += 1
        self.written = []
        _collect(self.folder, keep_number=self.base)
        return self.base

    # --- merging -------------------------------------------------------------------------------

    def merge_once(self) -> bool:
        """Merge one group of segments chosen by the tiered policy into a new generation; False if none."""
        if self.manifest is None or self.pending:
            return False
        live = _live_articles(self.manifest, self.backend)
        group = plan_merge([(s, self.backend.segment(s).n_articles, int(live[s].sum()), self.backend.segment(s).n_chunks)
                            for s in self.segments])
        if not group:
            return False
        seg_id = f"{self.number:08d}-m"
        path, maps = segment.merge(self.folder / fs.SEGMENTS, seg_id,
                                   [(self.backend.segment(s), live[s]) for s in group], self.backend.settings)
        remap = dict(zip(group, maps))
        for source, doc in list(self.docs.items()):
            refs = []
            for seg_id_old, a0, a1 in doc.refs:
                if seg_id_old in remap:
                    new = remap[seg_id_old][a0:a1]
                    refs += [(seg_id, int(a)) for a in new]
                else:
                    refs += [(seg_id_old, a) for a in range(a0, a1)]
            self.docs[source] = doc.model_copy(update={"refs": _ranges(refs)})
        first = min(self.segments.index(s) for s in group)
        rest = [s for s in self.segments if s not in remap]
        self.segments = rest[:first] + [seg_id] + rest[first:]
        self._vector_key = self.backend.segment(seg_id).vector_key
        self.commit(dict(self.manifest.meta), self._vector_key)
        log.info("已合并 %d 个段为 %s", len(group), path.name)
        return True


def _ranges(refs: list[tuple[str, int]]) -> list[tuple[str, int, int]]:
    """(segment, article) pairs -> (segment, start, end) runs."""
    out: list[list] = []
    for seg_id, a in refs:
        if out and out[-1][0] == seg_id and out[-1][2] == a:
            out[-1][2] = a + 1
        else:
            out.append([seg_id, a, a + 1])
    return [tuple(r) for r in out]


def _live_articles(manifest: GenerationManifest, backend: LocalBackend) -> dict[str, np.ndarray]:
    live = {s: np.zeros(backend.segment(s).n_articles, dtype=bool) for s in manifest.segments}
    for doc in manifest.documents:
        for seg_id, a0, a1 in doc.refs:
            live[seg_id][a0:a1] = True
    return live


def plan_merge(segments: list[tuple[str, int, int, int]]) -> list[str]:
    """Segments to merge next, from (id, articles, live articles, chunks): a full tier, else one
    segment with too many dead articles; [] when nothing needs doing."""
    tiers = defaultdict(list)
    for seg_id, n_articles, n_live, n_chunks in segments:
        tiers[int(math.log(max(n_chunks, 1), MERGE_FACTOR))].append(seg_id)
    for tier in sorted(tiers):
        if len(tiers[tier]) >= MERGE_FACTOR:
            return tiers[tier][:MERGE_FACTOR]
    for seg_id, n_articles, n_live, _ in segments:
        if n_articles and n_live < (1 - EXPUNGE) * n_articles:
            return [seg_id]
    return []


def _numbers(path: Path) -> list[int]:
    if not path.is_dir():
        return []
    return [int(p.stem) for p in path.glob("*.json") if p.stem.isdigit()]


def _collect(folder: Path, keep_number: int | None) -> None:
    """Delete what no reader can need: generations other than CURRENT and the held ones, their
    segments, temp files of dead writers. Called only by the lock holder."""
    held = fs.held_generations(folder)
    keep = held | ({keep_number} if keep_number is not None else set())
    gens = folder / fs.GENERATIONS
    keep_segments: set[str] = set()
    for number in sorted(keep):
        path = gens / f"{number:08d}.json"
        try:
            keep_segments.update(load(GenerationManifest, path).segments)
        except IndexCorrupt:
            if number == keep_number:
                return  # cannot tell what CURRENT needs: delete nothing
    for path in list(gens.iterdir()) if gens.is_dir() else []:
        if path.name.startswith(".") or (path.stem.isdigit() and int(path.stem) not in keep):
            path.unlink(missing_ok=True)
    segs = folder / fs.SEGMENTS
    for path in list(segs.iterdir()) if segs.is_dir() else []:
        if path.name not in keep_segments:
            shutil.rmtree(path, ignore_errors=True)
    for path in folder.glob(".*.tmp"):
        path.unlink(missing_ok=True)
    for old in ("lexical.json",):  # nothing of the format-1 layout is read any more
        (folder / old).unlink(missing_ok=True)
    for path in folder.glob("build-*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in folder.glob(".build-*"):
        shutil.rmtree(path, ignore_errors=True)
