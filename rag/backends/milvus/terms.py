"""Our tokenizer's terms for Milvus: the same three fields as the local backend, as term counts.

An article is tokenized exactly as `local/segment.build` does it (each sentence once; a chunk's
words are its headline's plus its sentences'; bigrams of its embed text; the whole article for the
article field), so both backends score the same tokens. Terms become sparse-vector dimensions by a
32-bit hash (Milvus sparse vectors index by uint32); the vocabulary collection keys document
frequencies by field and that hash.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass

import xxhash

from ...articles import Article
from ...bm25_math import K1, B
from ...chunks import Chunk, sentence_spans
from ...tokenizer import char_bigrams

FIELDS = ("words", "bigrams", "articles")
NAMESPACE = {"words": 1, "bigrams": 2, "articles": 3}
_TOP = 2**32 - 1  # the largest uint32 is reserved by the Milvus sparse format


def dim(token: str) -> int:
    return xxhash.xxh3_64_intdigest(token.encode("utf-8")) % _TOP


def vocab_key(field: str, d: int) -> int:
    return (NAMESPACE[field] << 32) | d


@dataclass
class ArticleTerms:
    """Term counts of one article: per chunk (words, bigrams, in chunk order) and for the whole article."""

    words: list[Counter]
    bigrams: list[Counter]
    article: Counter


def tokenize(items: list[tuple[Article, list[Chunk]]], hard_max: int, fields: tuple[str, ...], workers: int = 1,
             progress: bool = False, parallel_min_articles: int | None = None) -> list[ArticleTerms]:
    """Term counts for (article, its chunks) pairs, on `workers` processes for batches of at least
    `parallel_min_articles` (Settings.parallel_min_articles, RAG_PARALLEL_MIN_ARTICLES)."""
    from tqdm import tqdm

    from ...settings import Settings
    from ...tokenizer import tokenize_articles

    if parallel_min_articles is None:
        parallel_min_articles = Settings().parallel_min_articles

    spans = [sentence_spans(a.body, hard_max) for a, _ in items]
    work = ((a.title, [a.body[s:e] for s, e in sp]) for (a, _), sp in zip(items, spans))
    results = tokenize_articles(work, workers if len(items) >= parallel_min_articles else 1)
    out = []
    for (_, chunks), sp, (title_tokens, sentence_tokens) in zip(
        items, spans, tqdm(results, total=len(items), desc="分词", unit="篇", disable=not progress, mininterval=1.0)
    ):
        starts = [s for s, _ in sp]
        ends = [e for _, e in sp]
        words, bigrams = [], []
        for c in chunks:
            i, j = bisect_left(starts, c.start), bisect_right(ends, c.end)
            words.append(Counter(title_tokens + [t for toks in sentence_tokens[i:j] for t in toks]))
            bigrams.append(Counter(char_bigrams(c.embed_text)) if "bigrams" in fields else Counter())
        whole = Counter(title_tokens + [t for toks in sentence_tokens for t in toks]) if "articles" in fields else Counter()
        out.append(ArticleTerms(words, bigrams, whole))
    return out


def length(counts: Counter) -> int:
    return sum(counts.values())


def bm25_vector(counts: Counter, avg_len: float) -> dict[int, float]:
    """A document's BM25 term weights without idf: tf / (tf + k1 (1 - b + b len/avglen)).

    Inner product with a query vector of weight x idf is then exactly the local backend's BM25;
    `avg_len` is the field's mean length when the layout was first built (kept, so that every row
    of a layout is scored on one scale).
    """
    n = length(counts)
    norm = K1 * (1 - B + B * n / max(avg_len, 1e-9))
    out: dict[int, float] = {}
    for token, tf in counts.items():
        d = dim(token)
        out[d] = out.get(d, 0.0) + tf  # two tokens sharing a hash share a dimension
    return {d: tf / (tf + norm) for d, tf in out.items()}


def as_text(counts: Counter) -> str:
    """Pre-tokenised text for a server-side BM25 over our tokens: each token as often as it occurs."""
    return " ".join(t for t, n in counts.items() for _ in range(n) if " " not in t)
