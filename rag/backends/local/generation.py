"""A loaded generation: the segments its manifest names, which of their articles and chunks are live."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..base import IndexCorrupt
from . import bm25, segment
from .manifest import GenerationManifest, info_of


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
        self.documents = [info_of(d) for d in manifest.documents]
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
