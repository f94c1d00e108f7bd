"""The lexical leg on Milvus: three fields searched on the server, fused here as the local backend fuses them.

Strategies (a layout holds one; `?lexical=` in RAG_BACKEND picks it, `auto` takes the measured best):

- `sparse`: our tokenizer's terms as sparse vectors of BM25 term weights (tf, length-normalised);
  the query vector carries weight x idf, idf from the vocabulary collection's live document
  frequencies. The inner product the server computes is then our BM25 (Milvus 2.4+ and Lite).
- `tokens`: our tokens as pre-tokenised text; the server's BM25 function scores it (2.5+; Lite).
  Query weights are approximated by repeating a token (the server counts query term frequency).
- `jieba`: the server's BM25 over raw text with its own jieba analyzer (2.5+; Lite): no user
  dictionary, stopwords or query weights of ours.

Each field returns its top hits; a chunk found by one field gets its exact score in the other by a
second, filtered search, and the article field scores the candidates' articles the same way, so a
candidate's score is what the local backend computes: words + 0.5 bigrams + 0.5 article, each
divided by its field's best live score.
"""

from __future__ import annotations

from collections import Counter

from ...bm25_math import idf
from ...tokenizer import char_bigrams
from . import terms

STRATEGIES = ("sparse", "tokens", "jieba")
# Measured on the dev questions and the CMRC trial set (see README, "Scaling out").
DEFAULT = "sparse"
# Hits each field returns before fusion: Settings.milvus.field_k (RAG_MILVUS_FIELD_K, 200).
QUERY_REPEAT = 2  # "tokens": a token of weight w is sent round(w * QUERY_REPEAT) times (at least once)
IN_BATCH = 1000  # ids per `in [...]` filter


class FieldQuery:
    """What one field is searched with: a sparse vector (metric IP) or text (metric BM25)."""

    def __init__(self, data, metric: str):
        self.data = data
        self.metric = metric


def field_queries(strategy: str, fields: tuple[str, ...], weights: dict[str, float], query: str,
                  df, n_chunks: int, n_articles: int) -> dict[str, FieldQuery]:
    """Per field, its query; `df(field, tokens)` gives live document frequencies (sparse only)."""
    bigrams = Counter(char_bigrams(query)) if query and "bigrams" in fields else Counter()
    out: dict[str, FieldQuery] = {}
    if strategy == "sparse":
        for name, wanted, n in (("words", weights, n_chunks), ("bigrams", bigrams, n_chunks), ("articles", weights, n_articles)):
            if name not in fields or not wanted:
                continue
            freq = df(name, list(wanted))
            vec: dict[int, float] = {}
            for token, w in wanted.items():
                f = freq.get(token, 0)
                if f:
                    d = terms.dim(token)
                    vec[d] = vec.get(d, 0.0) + w * idf(f, n)
            if vec:
                out[name] = FieldQuery(vec, "IP")
        return out
    repeated = " ".join(t for t, w in weights.items() if " " not in t for _ in range(max(1, round(w * QUERY_REPEAT))))
    text = {"words": query if strategy == "jieba" else repeated, "articles": query if strategy == "jieba" else repeated,
            "bigrams": " ".join(b for b, c in bigrams.items() for _ in range(c))}
    for name in fields:
        if text.get(name, "").strip():
            out[name] = FieldQuery(text[name], "BM25")
    return out


def score(hit: dict, metric: str) -> float:
    """Milvus Lite reports BM25 as a negative distance, servers as a positive score: BM25 is never negative."""
    value = float(hit["distance"])
    return abs(value) if metric == "BM25" else value


def fuse(chunk_scores: dict[str, dict[int, float]], chunk_article: dict[int, int], article_scores: dict[int, float],
         maxima: dict[str, float], weights: dict[str, float], k: int) -> list[tuple[int, float]]:
    """words + w_b * bigrams + w_a * article, each divided by its field's best live score."""
    combined: dict[int, float] = {}
    for name in ("words", "bigrams"):
        top = maxima.get(name, 0.0)
        if top <= 0:
            continue
        w = weights.get(name, 1.0) / top
        for cid, s in chunk_scores.get(name, {}).items():
            combined[cid] = combined.get(cid, 0.0) + w * s
    top = maxima.get("articles", 0.0)
    if top > 0:
        w = weights.get("articles", 0.5) / top
        for cid in combined:
            combined[cid] += w * article_scores.get(chunk_article[cid], 0.0)
    ranked = sorted(combined.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(cid, s) for cid, s in ranked[:k] if s > 0]
