"""One committed generation as the Index reads it: searches on the server, liveness from the pinned state.

Searches run over every row of a collection, including rows a writer has stored but not committed
and rows of removed documents not yet collected; a hit counts only if its article is live in the
pinned state. Such rows are few and short-lived, so a field asks for some extra hits to make up.
"""

from __future__ import annotations

from typing import Any

from ...chunks import Chunk
from ...results import ArticleView
from ..base import Snapshot
from . import lexical as lex
from . import sentences as packed
from . import terms
from .layout import Layout
from .state import State

CHUNK_FIELDS = ["article", "start", "end", "text", "title", "byline", "page"]


def _id_filter(field: str, ids) -> str:
    return f"{field} in [{','.join(str(int(i)) for i in ids)}]"


def _batches(ids: list[int], size: int = lex.IN_BATCH):
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


class MilvusSnapshot(Snapshot):
    def __init__(self, backend, state: State):
        self.backend = backend
        self.state = state
        self.meta = state.commit.meta
        self.number = state.generation
        self.layout: Layout = backend.layout_of(state)
        self._names = {kind: self.layout.name(backend.target.prefix, kind) for kind in ("chunks", "articles", "bodies")}

    # --- counts --------------------------------------------------------------------------------

    @property
    def n_chunks(self) -> int:
        return self.state.n_chunks

    @property
    def n_articles(self) -> int:
        return self.state.n_articles

    @property
    def vector_key(self) -> str | None:
        return self.state.commit.vector_key if self.layout.dim else None

    @property
    def lexical_reason(self) -> str:
        if self.layout.lexical:
            return ""
        return (f"Milvus 服务器（{self.backend.target.uri}，版本 {self.backend.version}）不支持稀疏向量与 BM25"
                f"（需要 Milvus 2.4 以上，服务器端 BM25 需要 2.5 以上），关键词检索不可用")

    # --- server calls --------------------------------------------------------------------------

    def _call(self, doing: str, fn, *args, **kwargs):
        return self.backend.call(doing, fn, *args, **kwargs)

    def _search(self, kind: str, anns: str, data, metric: str, limit: int, flt: str = "", fields=("article",)):
        client = self.backend.client
        params: dict[str, Any] = {"metric_type": metric}
        if metric == "IP" and anns == "dense" and self.layout.dense_index == "HNSW":
            params["params"] = {"ef": max(64, limit)}
        res = self._call("检索", client.search, self._names[kind], data=[data], anns_field=anns, limit=limit,
                         filter=flt, output_fields=list(fields), search_params=params)
        return res[0] if res else []

    def _query(self, kind: str, ids: list[int], fields: list[str], key: str = "id") -> list[dict]:
        out = []
        for batch in _batches(sorted(set(ids))):
            out += self._call("读取", self.backend.client.query, self._names[kind], filter=_id_filter(key, batch),
                              output_fields=fields)
        return out

    # --- the legs ------------------------------------------------------------------------------

    def _df(self, field: str, tokens: list[str]) -> dict[str, int]:
        """Live document frequencies of `tokens` in one field, from this generation's table."""
        toks = list(dict.fromkeys(tokens))
        values = self.state.df.get([terms.vocab_key(field, terms.dim(t)) for t in toks])
        return {t: v for t, v in zip(toks, values) if v}

    def _live_hits(self, hits, metric: str) -> dict[int, tuple[float, int]]:
        live = self.state.article_sources
        out = {}
        for h in hits:
            article = int(h["entity"]["article"] if "entity" in h else h["article"])
            if article in live:
                out[int(h["id"])] = (lex.score(h, metric), article)
        return out

    def lexical(self, weights, k, query=""):
        layout = self.layout
        if not layout.lexical or not self.state.n_chunks:
            return []
        queries = lex.field_queries(layout.lexical, layout.fields, weights, query, self._df, self.n_chunks, self.n_articles)
        limit = max(self.backend.settings.milvus.field_k, k)
        found: dict[str, dict[int, float]] = {}
        articles: dict[int, int] = {}
        maxima: dict[str, float] = {}
        for name in ("words", "bigrams"):
            if name not in queries:
                continue
            q = queries[name]
            hits = self._live_hits(self._search("chunks", name, q.data, q.metric, limit), q.metric)
            found[name] = {cid: s for cid, (s, _) in hits.items()}
            articles.update({cid: a for cid, (_, a) in hits.items()})
            maxima[name] = max(found[name].values(), default=0.0)
        if not articles:
            return []
        for name in found:  # a candidate one field found gets its exact score in the other
            missing = [cid for cid in articles if cid not in found[name]]
            q = queries[name]
            for batch in _batches(missing):
                hits = self._search("chunks", name, q.data, q.metric, len(batch), _id_filter("id", batch))
                found[name].update({cid: s for cid, (s, _) in self._live_hits(hits, q.metric).items()})
        article_scores: dict[int, float] = {}
        if "articles" in queries:
            q = queries["articles"]
            top = self._search("articles", "articles", q.data, q.metric, 16, fields=("id",))
            maxima["articles"] = max((lex.score(h, q.metric) for h in top if int(h["id"]) in self.state.article_sources), default=0.0)
            wanted = sorted(set(articles.values()))
            for batch in _batches(wanted):
                hits = self._search("articles", "articles", q.data, q.metric, len(batch), _id_filter("id", batch), fields=("id",))
                article_scores.update({int(h["id"]): lex.score(h, q.metric) for h in hits})
        return lex.fuse(found, articles, article_scores, maxima, self.backend.field_weights, k)

    def dense(self, vector, k):
        if not self.layout.dim or not self.state.n_chunks:
            return []
        data = [float(x) for x in vector]
        limit = k + 16
        while True:
            hits = self._search("chunks", "dense", data, "IP", limit)
            live = self._live_hits(hits, "IP")
            if len(live) >= k or len(hits) < limit or limit >= 16384:
                break
            limit = min(16384, limit * 4)  # many dead rows in the way: ask for more
        ranked = sorted(((cid, s) for cid, (s, _) in live.items()), key=lambda cs: (-cs[1], cs[0]))
        return ranked[:k]

    # --- rows ----------------------------------------------------------------------------------

    def chunks(self, ids):
        out = {}
        sources = self.state.article_sources
        for r in self._query("chunks", list(ids), CHUNK_FIELDS):
            srcs = sources.get(int(r["article"]))
            if not srcs:
                continue  # not live in this generation: never returned
            page = int(r["page"])
            out[int(r["id"])] = Chunk(srcs[0], r["title"], r["byline"], int(r["article"]), int(r["start"]), int(r["end"]),
                                      r["text"], None if page < 0 else page, srcs)
        return out

    def _bodies(self, rows: list[dict]) -> dict[int, str]:
        bodies = {int(r["id"]): r["body"] for r in rows}
        long = [int(r["id"]) for r in rows if int(r["parts"]) > 1]
        if long:
            rest = sorted(self._query("bodies", long, ["article", "part", "body"], key="article"),
                          key=lambda r: (int(r["article"]), int(r["part"])))
            for r in rest:
                bodies[int(r["article"])] += r["body"]
        return bodies

    def article_bodies(self, ids):
        live = [i for i in ids if i in self.state.article_sources]
        return self._bodies(self._query("articles", live, ["body", "parts"]))

    def articles(self, source=None):
        docs = self.state.docs.values() if source is None else [d for d in self.state.docs.values() if d.source == source]
        order, seen = [], set()
        for d in docs:
            for article, _ in d.refs:
                if article not in seen:
                    seen.add(article)
                    order.append(article)
        rows = {int(r["id"]): r for r in self._query("articles", order, ["title", "byline", "kicker", "page", "chunks", "body", "parts"])}
        bodies = self._bodies(list(rows.values()))
        out = []
        for a in order:
            r = rows.get(a)
            if r is None:
                continue
            page = int(r["page"])
            out.append(ArticleView(a, self.state.article_sources[a], r["title"], r["byline"], r["kicker"],
                                   None if page < 0 else page, bodies[a], int(r["chunks"])))
        return out

    def sentences(self, article_ids):
        if not self.layout.dim or not self.backend.has_sentences(self.layout):
            return {}  # no vectors, or a layout stored before sentence vectors
        self._names["sentences"] = self.layout.name(self.backend.target.prefix, "sentences")
        live = [a for a in article_ids if a in self.state.article_sources]
        grouped: dict[int, list[dict]] = {}
        for r in self._query("sentences", live, ["article", "part", "parts", "data"], key="article"):
            grouped.setdefault(int(r["article"]), []).append(r)
        return {a: packed.decode(parts, self.layout.dim) for a, parts in grouped.items()}

    def documents(self):
        return list(self.state.documents)

    def document_frequency(self, tokens):
        return self._df("words", tokens)

