"""The lexical leg: BM25 (bm25s) over chunks, boosted by BM25 over whole articles.

Chunking alone loses the words an article shares with a question outside the chunk; adding the
article's (max-normalised) score to each chunk's own score keeps the right article on top while
the chunk score still picks the passage inside it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def _bm25s():
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on import
    return bm25s


def _bm25(tokens: list[list[str]], show_progress: bool):
    bm25s = _bm25s()
    model = bm25s.BM25()
    # bm25s needs at least one token per document; an empty chunk gets the reserved empty token.
    model.index([t or [""] for t in tokens], show_progress=show_progress)
    return model


def _load_bm25(path: Path, mmap: bool):
    bm25s = _bm25s()
    return bm25s.BM25.load(str(path), mmap=mmap, load_corpus=False)


class LexicalIndex:
    def __init__(self, chunks, articles, chunk_article: np.ndarray, article_weight: float = 0.5):
        self.chunks = chunks
        self.articles = articles
        self.chunk_article = chunk_article
        self.article_weight = article_weight

    @classmethod
    def build(
        cls,
        chunk_tokens: list[list[str]],
        article_tokens: list[list[str]],
        chunk_article: np.ndarray,
        article_weight: float = 0.5,
        show_progress: bool = False,
    ) -> "LexicalIndex":
        return cls(
            _bm25(chunk_tokens, show_progress),
            _bm25(article_tokens, show_progress),
            np.asarray(chunk_article, dtype=np.int32),
            article_weight,
        )

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.chunks.save(str(folder / "bm25_chunks"))
        self.articles.save(str(folder / "bm25_articles"))
        np.save(folder / "chunk_article.npy", self.chunk_article)
        (folder / "lexical.json").write_text(json.dumps({"article_weight": self.article_weight}))

    @classmethod
    def load(cls, folder: Path, mmap: bool = False, article_weight: float | None = None) -> "LexicalIndex":
        params = json.loads((folder / "lexical.json").read_text())
        return cls(
            _load_bm25(folder / "bm25_chunks", mmap),
            _load_bm25(folder / "bm25_articles", mmap),
            np.load(folder / "chunk_article.npy", mmap_mode="r" if mmap else None),
            params["article_weight"] if article_weight is None else article_weight,
        )

    def __len__(self) -> int:
        return int(self.chunks.scores["num_docs"])

    @staticmethod
    def _scores(model, tokens: list[str]) -> np.ndarray | None:
        ids = model.get_tokens_ids(tokens)
        if not ids:
            return None
        return model.get_scores_from_ids(ids)

    def search(self, tokens: list[str], k: int) -> list[tuple[int, float]]:
        """Top `k` chunk ids with their combined scores; empty when no query token is known."""
        chunk_scores = self._scores(self.chunks, tokens)
        if chunk_scores is None:
            return []
        top = float(chunk_scores.max())
        if top <= 0:
            return []
        combined = chunk_scores / top
        article_scores = self._scores(self.articles, tokens)
        if article_scores is not None and self.article_weight > 0 and article_scores.max() > 0:
            combined = combined + self.article_weight * (article_scores / article_scores.max())[self.chunk_article]
        combined = np.where(chunk_scores > 0, combined, -np.inf)
        k = min(k, int(np.count_nonzero(chunk_scores > 0)))
        if k <= 0:
            return []
        idx = np.argpartition(-combined, k - 1)[:k]
        idx = idx[np.argsort(-combined[idx], kind="stable")]
        return [(int(i), float(combined[i])) for i in idx]
