"""The local Writer: builds the next generation under the writer lock; deletes what no reader holds."""

from __future__ import annotations

import logging
import shutil
from array import array
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...articles import Article, stored_key
from ...results import DocumentInfo
from ..base import IndexCorrupt, Writer
from . import folder as fs
from . import segment
from .manifest import GENERATION_FORMAT, DocRecord, GenerationManifest, dump, info_of, load, record_of
from .merge import live_articles, plan_merge

if TYPE_CHECKING:
    from .backend import LocalBackend

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
        super().__init__({d.source: d for d in self.manifest.documents} if self.manifest else {})
        self.docs: dict[str, DocRecord]
        self._keys: dict[int, tuple[str, int]] | None = None
        self._vector_key: str | None = None
        self.written: list[str] = []
        collect_garbage(self.folder, keep_number=self.base)  # leftovers of writers that died

    def _doc_info(self, record):
        return info_of(record)

    @property
    def recovering(self):
        return self.manifest is None

    def remove(self, sources):
        super().remove(sources)
        self._keys = None

    def restamp(self, stamps):
        for source, (size, mtime_ns) in stamps.items():
            if source in self.docs:
                self.docs[source] = self.docs[source].model_copy(update={"size": size, "mtime_ns": mtime_ns})

    def clear(self):
        super().clear()
        self.segments = []
        self._keys = None

    def _live_keys(self) -> dict[int, tuple[str, int]]:
        """Article key -> (segment, article) of every live stored article, for de-duplication."""
        if self._keys is None:
            keys: dict[int, tuple[str, int]] = {}
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
        new_articles: list[Article]
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
                settings=self.backend.settings, timings=self.timings,
            )
            self.written.append(seg_id)
            self.segments.append(seg_id)
        for p in self.pending:
            info = p.info
            if info.status == "ok":
                info = DocumentInfo(**{**asdict(info), "duplicates": duplicates.get(info.source, 0)})
            self.docs[info.source] = record_of(info, refs[info.source])
        self.pending = []

    def attach_vectors(self, part, vector_key, vectors, sentences):
        return self._replace(part, vector_key, vectors, sentences, None)

    def attach_graph(self, part, graph):
        seg = self.backend.segment(part) if part in self.segments else None
        if seg is None or not seg.wants_graph or seg.vector_key is None:
            return False
        return self._replace(part, seg.vector_key, None, None, graph)

    def _replace(self, part, vector_key, vectors, sentences, graph) -> bool:
        """`part` gives way to a copy with what `segment.with_vectors` adds; False when it is gone."""
        if part not in self.segments:
            return False
        seg_id = f"{self.number:08d}-{len(self.written)}"
        segment.with_vectors(self.folder / fs.SEGMENTS, seg_id, self.backend.segment(part), vector_key, vectors, sentences,
                             self.backend.settings, graph)
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
        collect_garbage(self.folder, keep_number=self.base)
        return self.base

    # --- merging -------------------------------------------------------------------------------

    def merge_once(self) -> bool:
        """Merge one group of segments chosen by the tiered policy into a new generation; False if none."""
        if self.manifest is None or self.pending:
            return False
        live = live_articles(self.manifest, self.backend)
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


def _numbers(path: Path) -> list[int]:
    if not path.is_dir():
        return []
    return [int(p.stem) for p in path.glob("*.json") if p.stem.isdigit()]


def collect_garbage(folder: Path, keep_number: int | None) -> None:
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
