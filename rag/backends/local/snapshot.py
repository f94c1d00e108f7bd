"""The local Snapshot: lexical and dense search, chunks and articles, over one pinned generation."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from ...chunks import Chunk
from ...results import ArticleView
from ...tokenizer import char_bigrams
from ..base import IndexCorrupt, Snapshot, VectorPhase
from . import bm25
from .generation import Generation


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

    def _hits(self, name, weights):
        if name not in self.gen.parts or not weights:
            return None
        n, avg = self.gen.stats[name]
        return bm25.hits(self.gen.parts[name], weights, n, avg)

    def lexical(self, weights, k, query=""):
        gen = self.gen
        gen.check()
        bigrams = {}
        for b in char_bigrams(query) if query else []:
            bigrams[b] = bigrams.get(b, 0.0) + 1.0
        fields = [(name, found) for name, field_weights in (("words", weights), ("bigrams", bigrams))
                  if (found := self._hits(name, field_weights)) is not None]
        if not fields:
            return []
        size = int(gen.chunk_offsets[-1])
        if sum(len(docs) for _, (docs, _) in fields) < size:
            # Few postings: sum over the candidates (the chunks some posting names), not the whole archive.
            hit = np.zeros(size, dtype=bool)
            for _, (docs, _) in fields:
                hit[docs] = True
            candidates = np.flatnonzero(hit)
            slot = np.empty(size, dtype=np.int32)  # candidate -> its place in `candidates`; the rest is never read
            slot[candidates] = np.arange(len(candidates), dtype=np.int32)
        else:
            # As many postings as chunks (a common bigram): archive-wide sums cost less than mapping each posting.
            candidates, slot = None, None
        # Either way each chunk gets the same float64 sums, added in the same order: the same scores.
        values = None
        for name, (docs, contributions) in fields:
            sums = np.bincount(docs if slot is None else slot[docs], weights=contributions,
                               minlength=size if slot is None else len(candidates))
            top = sums.max()
            if top > 0:  # max-normalised per field, then weighted
                sums /= top
                sums *= self._weights.get(name, 1.0)
                values = sums if values is None else np.add(values, sums, out=values)
        if values is None:
            return []
        if candidates is None:
            candidates = np.flatnonzero(values != 0)  # a few times faster than on the floats themselves
            values = values[candidates]
        elif not (scored := values != 0).all():  # a chunk whose terms weigh nothing is no result, as before
            candidates, values = candidates[scored], values[scored]
        if not len(candidates):
            return []
        articles = self._hits("articles", weights)
        if articles is not None:
            # Each candidate's article score; the field's max runs over every article the query hits.
            sums = np.bincount(articles[0], weights=articles[1], minlength=int(gen.article_offsets[-1]))
            top = sums.max()
            if top > 0:
                weight = self._weights.get("articles", 0.5)
                if weight > 0 and 0 < k < len(candidates):
                    # An article adds at most `weight` (its score is normalised to 1 at most): a chunk that
                    # falls short of the k-th best chunk score by more cannot make the top k. Exact; only
                    # which of several chunks tied at the k-th final score are kept may differ.
                    kth = np.partition(values, len(candidates) - k)[len(candidates) - k]
                    near = values + weight >= kth
                    candidates, values = candidates[near], values[near]
                values += weight * (sums[gen.chunk_article[candidates]] / top)
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

    def missing_graphs(self):
        return [seg.id for seg in self.gen.segments if seg.wants_graph]

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
