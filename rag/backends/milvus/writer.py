"""Changes to the library in Milvus, made visible by one row (see state.py for the protocol).

The order of writes is what makes a crash harmless:
1. document versions for the next generation (they list the articles about to be stored: an
   intent log), then articles and chunks, in batches, by deterministic ids (upserts: a re-run
   writes the same rows again, never duplicates);
2. at commit: tombstones and changed versions, the document-frequency table, the garbage list;
3. the commit row. Until it exists nothing of 1-2 is visible; the next writer undoes 1-2 of a
   writer that died (its versions and df table are deleted, its articles become garbage).
Articles already live are never written again (content-addressed: a reprint is stored once).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import asdict, replace

import numpy as np

from ...articles import Article, article_key
from ...chunks import Chunk
from ...results import DocumentInfo
from ..base import Writer
from . import terms
from .layout import BODY_PART, MAX_TEXT, Layout
from .sentences import rows as packed_sentences
from .state import MASK63, Commit, DocVersion, newest, stable_id
from .vocab import DfTable

log = logging.getLogger(__name__)

ARTICLES_PER_BATCH = 500  # tokenized and written together
ROWS_PER_CALL = 256  # rows per insert call (well under gRPC's message limit with 1024-d vectors)
AVGLEN_SAMPLE = 2000  # articles a new "sparse" layout takes its mean field lengths from


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def _page(page) -> int:
    return -1 if page is None else int(page)


class MilvusWriter(Writer):
    def __init__(self, backend):
        self.b = backend
        self.prefix = backend.target.prefix
        self.base: Commit | None = backend.newest_commit()
        self.generation = self.base.generation if self.base else 0
        self.next = self.generation + 1
        self.base_layout = backend.layout_from(self.base) if self.base else None
        versions = backend.read_versions()
        self.committed = newest(versions, self.generation)
        self._undo([v for v in versions if v.gen > self.generation])
        super().__init__(self.committed)
        self.docs: dict[str, DocVersion]
        self.intents: set[int] = set()  # document rows flushed for the next generation
        self.cleared = False
        self.layout: Layout | None = None
        self.written: set[int] = set()  # articles stored by this writer
        self.contrib: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # df keys each adds
        self._seq = 0

    # --- the library as it will be ----------------------------------------------------------------

    def _doc_info(self, record):
        return record.info

    @property
    def recovering(self):
        return self.base is None

    def restamp(self, stamps):
        for source, (size, mtime_ns) in stamps.items():
            v = self.docs.get(source)
            if v is not None and v.info is not None:
                info = DocumentInfo(**{**asdict(v.info), "size": size, "mtime_ns": mtime_ns})
                self.docs[source] = replace(v, gen=self.next, info=info)

    def clear(self):
        super().clear()
        self.cleared = True

    # --- writing ----------------------------------------------------------------------------------

    def _live(self) -> dict[int, int]:
        return {a: n for v in self.docs.values() for a, n in v.refs}

    def _next_seq(self) -> int:
        self._seq += 1
        return (self.next << 24) + self._seq

    def _choose_layout(self, vector_key: str | None) -> Layout:
        dims = {int(p.vectors.shape[1]) for p in self.pending if p.vectors is not None and len(p.vectors)}
        if len(dims) > 1:
            raise ValueError(f"同一次写入中的向量维度不一致：{sorted(dims)}")
        if any(p.vectors is None and p.chunks for p in self.pending) and vector_key is not None:
            raise ValueError("部分文档缺少向量：同一次写入中的文档必须都带向量或都不带")
        base = self.base_layout
        dim = dims.pop() if dims else (base.dim if base is not None and self.base is not None
                                            and self.base.vector_key == vector_key else None)
        layout = self.b.make_layout(vector_key if dim else None, dim)
        if base is not None and layout.id != base.id:
            if not self.cleared and self._live_at_base():
                assert self.base is not None  # base_layout comes from base
                was = self.base.vector_key or "无"
                raise ValueError(
                    f"索引中的向量来自 {was}（{base.dim or 0} 维，{base.lexical or '无关键词'}），新文档为 {vector_key or '无'}"
                    f"（{dim or 0} 维）：请完整重建（python -m rag build）")
        if base is not None and layout.id == base.id:
            layout = layout.with_avglen(base.avglen)
        return layout

    def _live_at_base(self) -> dict[int, int]:
        return {a: n for v in self.committed.values() for a, n in v.refs}

    def flush(self, vector_key: str | None = None) -> None:
        if self.layout is None or self.pending:
            if self.pending:
                self.layout = self._choose_layout(vector_key)
            elif self.base_layout is not None:
                self.layout = self.base_layout
            else:
                self.layout = self.b.make_layout(None, None)
        if self.layout.dim is None and self.layout.lexical is None:
            raise ValueError(
                f"Milvus 服务器（{self.b.target.uri}，版本 {self.b.version}）不支持关键词检索（BM25 需要 2.5 以上），"
                f"而索引又没有语义向量（RAG_MODEL=none 或模型不可用）：没有可用的检索方式；请配置语义模型或改用 Milvus 2.5 以上")
        self.b.ensure_layout(self.layout)
        if not self.pending:
            return
        live = self._live()
        if self.base_layout is not None and self.base_layout.id != self.layout.id:
            stored: set[int] = set()  # a new layout stores everything again
        else:
            stored = set(self._live_at_base())
        versions, new_items = [], []
        seen: set[int] = set()
        for p in self.pending:
            if p.info.status != "ok":
                versions.append(DocVersion(p.info.source, self.next, self._next_seq(), False, p.info, []))
                continue
            by_article: dict[int, list[int]] = {}
            for row, c in enumerate(p.chunks):
                by_article.setdefault(c.article, []).append(row)
            sentence_at = (np.searchsorted(p.sentences[:, 0], np.arange(len(p.articles) + 1))
                           if p.sentences is not None and p.sentence_vectors is not None else None)
            refs, dup = [], 0
            for i, article in enumerate(p.articles):
                aid = article_key(article.body) & MASK63
                if aid not in live and aid not in seen and article.same_as is not None:
                    near = article.same_as & MASK63  # a near duplicate of a stored article (near_duplicates.py)
                    aid = near if near in live or near in seen else aid
                rows = by_article.get(i, [])
                if aid in live or aid in seen:
                    dup += 1
                else:
                    seen.add(aid)
                    if aid not in stored:
                        sentences = None
                        if sentence_at is not None:
                            assert p.sentences is not None and p.sentence_vectors is not None  # as sentence_at
                            lo, hi = sentence_at[i], sentence_at[i + 1]
                            sentences = (p.sentences[lo:hi, 1:], p.sentence_vectors[lo:hi])
                        new_items.append((aid, article, [p.chunks[r] for r in rows],
                                          None if p.vectors is None else p.vectors[rows], sentences))
                refs.append((aid, live.get(aid, len(rows))))
                live.setdefault(aid, len(rows))
            info = DocumentInfo(**{**asdict(p.info), "duplicates": dup})
            versions.append(DocVersion(p.info.source, self.next, self._next_seq(), False, info, refs))
        doc_rows = [r for v in versions for r in v.rows()]
        self.b.upsert("documents", None, doc_rows)  # the intent: which articles the next generation lists
        self.intents.update(r["id"] for r in doc_rows)
        self._store(new_items)
        for v in versions:
            self.docs[v.source] = v
        self.pending = []

    def _store(self, items) -> None:
        """Articles and chunks, tokenized and written in batches, with a progress bar."""
        if not items:
            return
        from tqdm import tqdm

        layout = self.layout
        assert layout is not None  # set by flush
        bar = tqdm(total=len(items), desc="写入 Milvus", unit="篇", disable=not self.b.progress, mininterval=1.0)
        try:
            for start in range(0, len(items), ARTICLES_PER_BATCH):
                batch = items[start : start + ARTICLES_PER_BATCH]
                counts = terms.tokenize([(a, cs) for _, a, cs, _, _ in batch], self.b.hard_max, layout.fields,
                                        self.b.workers if len(items) > ARTICLES_PER_BATCH else 1,
                                        parallel_min_articles=self.b.settings.parallel_min_articles)
                if layout.lexical == "sparse" and not layout.avglen:
                    self.layout = layout = layout.with_avglen(self._avglen(items[:AVGLEN_SAMPLE], batch, counts))
                chunk_rows, article_rows, body_rows, sentence_rows = [], [], [], []
                for (aid, article, chunks, vectors, sentences), t in zip(batch, counts):
                    chunk_rows += self._chunk_rows(aid, article, chunks, vectors, t)
                    if sentences is not None and layout.dim and len(sentences[0]):
                        sentence_rows += packed_sentences(aid, *sentences)
                    article_rows.append(self._article_row(aid, article, len(chunks), t))
                    body_rows += self._body_rows(aid, article.body)
                    self.contrib[aid] = self._keys(t)
                    self.written.add(aid)
                self.b.upsert("chunks", layout, chunk_rows)
                self.b.upsert("articles", layout, article_rows)
                if body_rows:
                    self.b.upsert("bodies", layout, body_rows)
                if sentence_rows:
                    self.b.upsert("sentences", layout, sentence_rows)
                bar.update(len(batch))
        finally:
            bar.close()

    def _avglen(self, sample, batch, counts) -> dict:
        """Mean field lengths of a new layout, from its first articles (exact for a library up to AVGLEN_SAMPLE)."""
        assert self.layout is not None  # set by flush
        if len(sample) > len(batch):
            counts = terms.tokenize([(a, cs) for _, a, cs, _, _ in sample], self.b.hard_max, self.layout.fields,
                                    self.b.workers, parallel_min_articles=self.b.settings.parallel_min_articles)
        out = {}
        for name in self.layout.fields:
            if name == "articles":
                lengths = [terms.length(t.article) for t in counts]
            else:
                lengths = [terms.length(c) for t in counts for c in getattr(t, name)]
            out[name] = float(np.mean(lengths)) if lengths else 1.0
        return out

    def _lexical_value(self, name: str, counts: Counter, raw: str):
        layout = self.layout
        assert layout is not None  # set by flush
        if layout.lexical == "sparse":
            return {name: terms.bm25_vector(counts, layout.avglen.get(name, 1.0))}
        if layout.lexical == "jieba" and name != "bigrams":
            return {f"{name}_text": _clip(raw)}
        return {f"{name}_text": _clip(terms.as_text(counts))}

    def _chunk_rows(self, aid: int, article: Article, chunks: list[Chunk], vectors, t: terms.ArticleTerms) -> list[dict]:
        layout = self.layout
        assert layout is not None  # set by flush
        rows = []
        for i, c in enumerate(chunks):
            row = {"id": stable_id(aid, c.start, c.end), "article": aid, "start": c.start, "end": c.end,
                   "page": _page(article.page), "text": _clip(c.text), "title": _clip(article.title),
                   "byline": _clip(article.byline)}
            if layout.lexical:
                row.update(self._lexical_value("words", t.words[i], c.embed_text))
                if "bigrams" in layout.fields:
                    row.update(self._lexical_value("bigrams", t.bigrams[i], ""))
            if layout.dim:
                row["dense"] = np.asarray(vectors[i], dtype=np.float32).tolist()
            elif not layout.lexical:
                row["_v"] = [0.0, 0.0]
            rows.append(row)
        return rows

    def _article_row(self, aid: int, article: Article, n_chunks: int, t: terms.ArticleTerms) -> dict:
        parts = max(1, -(-len(article.body) // BODY_PART))
        row = {"id": aid, "page": _page(article.page), "position": int(article.position), "chunks": n_chunks,
               "parts": parts, "title": _clip(article.title), "byline": _clip(article.byline),
               "kicker": _clip(article.kicker), "body": article.body[:BODY_PART]}
        assert self.layout is not None  # set by flush
        if self.layout.lexical and "articles" in self.layout.fields:
            row.update(self._lexical_value("articles", t.article, f"{article.title}\n{article.body}"))
        else:
            row["_v"] = [0.0, 0.0]
        return row

    def _body_rows(self, aid: int, body: str) -> list[dict]:
        return [{"id": stable_id(aid, "body", p), "article": aid, "part": p, "body": body[p * BODY_PART : (p + 1) * BODY_PART],
                 "_v": [0.0, 0.0]}
                for p in range(1, -(-len(body) // BODY_PART))]

    def _keys(self, t: terms.ArticleTerms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The df-table keys this article adds: per chunk for words and bigrams, once for the article field."""
        def chunk_keys(field, counters):
            keys = [terms.vocab_key(field, d) for c in counters for d in {terms.dim(tok) for tok in c}]
            return np.array(keys, dtype=np.uint64)

        assert self.layout is not None  # set by flush
        sparse = self.layout.lexical == "sparse"
        words = chunk_keys("words", t.words)
        bigrams = chunk_keys("bigrams", t.bigrams) if sparse and "bigrams" in self.layout.fields else np.zeros(0, np.uint64)
        whole = (np.array(sorted({terms.vocab_key("articles", terms.dim(tok)) for tok in t.article}), dtype=np.uint64)
                 if sparse and "articles" in self.layout.fields else np.zeros(0, np.uint64))
        return words, bigrams, whole

    # --- commit -----------------------------------------------------------------------------------

    def commit(self, meta: dict, vector_key: str | None = None) -> int:
        self.flush(vector_key)
        layout = self.layout
        assert layout is not None  # set by flush
        # Document versions: new and restamped ones, tombstones for what was committed and is gone.
        versions = [v for v in self.docs.values() if v.gen == self.next]
        versions += [DocVersion(s, self.next, v.seq, True) for s, v in self.committed.items() if s not in self.docs]
        rows = [r for v in versions for r in v.rows()]
        stale = self.intents - {r["id"] for r in rows}  # flushed, then removed again before this commit
        if stale:
            self.b.delete("documents", None, ids=sorted(stale))
        if rows:
            self.b.upsert("documents", None, rows)
        new_live = self._live()
        same = self.base_layout is not None and self.base_layout.id == layout.id
        old_live = self._live_at_base() if same else {}
        # Document frequencies of the new generation.
        table = self.b.read_df(self.base, layout) if same else DfTable.empty()
        plus = [self.contrib[a] for a in new_live.keys() - old_live.keys() if a in self.contrib]
        missing = [a for a in new_live.keys() - old_live.keys() if a not in self.contrib]
        if missing:
            plus += self._stored_keys(missing)
        minus = self._stored_keys(sorted(old_live.keys() - new_live.keys())) if same else []
        table = table.apply(plus, minus)
        self.b.write_df(layout, self.next, table)
        # Articles no document lists any more: deleted after the grace period (readers may hold them).
        dead = (old_live.keys() - new_live.keys()) | (self.written - new_live.keys())
        if dead:
            now = time.time()
            self.b.upsert("garbage", layout, [{"article": a, "since": now, "_v": [0.0, 0.0]} for a in sorted(dead)])
        self.b.seal(layout)
        commit = Commit(self.next, time.time(), layout.to_json(), vector_key if layout.dim else None, meta)
        self.b.upsert("commits", None, [commit.row()])  # the atomic step: generation `next` exists from here on
        number = self.next
        self.base, self.generation, self.next = commit, number, number + 1
        self.base_layout = layout
        self.committed = dict(self.docs)
        self.docs = dict(self.committed)
        self.intents.clear()
        self.written.clear()
        self.contrib.clear()
        self.cleared = False
        self._seq = 0
        try:
            self.collect()
        except Exception as exc:  # housekeeping only: the commit stands
            log.warning("Milvus 清理旧数据失败（下次写入时重试）：%s", exc)
        return number

    def _stored_keys(self, articles: list[int]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """df keys of stored articles, by tokenizing their stored text again (same tokenizer: same layout)."""
        if not articles:
            return []
        layout = self.layout
        assert layout is not None  # set by flush
        out = []
        for start in range(0, len(articles), ARTICLES_PER_BATCH):
            ids = articles[start : start + ARTICLES_PER_BATCH]
            arts = self.b.fetch_articles(layout, ids)
            chunks = self.b.fetch_chunks(layout, ids)
            items = []
            for aid in ids:
                if aid not in arts:
                    continue
                r = arts[aid]
                article = Article("", r["title"], r["byline"], r["body"])
                cs = sorted(chunks.get(aid, []), key=lambda c: (c["start"], c["end"]))
                items.append((article, [Chunk("", r["title"], r["byline"], 0, c["start"], c["end"], c["text"]) for c in cs]))
            for t in terms.tokenize(items, self.b.hard_max, layout.fields, 1):
                out.append(self._keys(t))
        return out

    # --- undo and housekeeping ------------------------------------------------------------------

    def _undo(self, leftovers: list[DocVersion]) -> None:
        """Take back what a writer that died before its commit stored."""
        if not leftovers:
            self.b.delete_df_after(self.base_layout, self.generation)
            return
        log.warning("发现 %d 条未提交的文档记录（上次写入中断），正在清理", len(leftovers))
        self.b.delete("documents", None, ids=[i for v in leftovers for i in v.ids()])
        self.b.delete_df_after(self.base_layout, self.generation)
        live = {a for v in self.committed.values() for a, _ in v.refs}
        orphans = sorted({a for v in leftovers for a, _ in v.refs} - live)
        if orphans and self.base_layout is not None:
            self.b.upsert("garbage", self.base_layout, [{"article": a, "since": 0.0, "_v": [0.0, 0.0]} for a in orphans])

    def collect(self) -> None:
        """Delete what no reader can need any more: superseded document versions, old commits and df
        tables, garbage articles, layouts no retained commit uses; each only after the grace period."""
        self.b.collect_after(self.base, self.committed)

