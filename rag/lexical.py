"""The lexical leg: three BM25 fields fused into one chunk score.

- words: jieba search-mode tokens of each chunk (headline prefixed);
- bigrams: CJK character bigrams of each chunk, which catch partial-word overlap (就业意向/工作意向);
- articles: jieba tokens of the whole article, so a chunk from the article that matches the
  question best is preferred over a stray chunk elsewhere (chunking alone loses the words an
  article shares with a question outside the chunk).

Each field's scores are max-normalised and summed with its weight. Scoring, persistence and
memory-mapped loading are bm25s's; only the index matrix is built here, vectorised, because
bm25s's own builder loops in Python per document and keeps every token string alive, which does
not fit 1M chunks in 8 GB.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

K1, B = 1.5, 0.75  # bm25s defaults (method "lucene")
FIELDS = ("words", "bigrams", "articles")
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")


def char_bigrams(text: str) -> list[str]:
    """Overlapping CJK character bigrams; a lone CJK character stands for itself."""
    out = []
    for run in _CJK_RUN.findall(text):
        if len(run) == 1:
            out.append(run)
        else:
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


def _bm25s():
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on import
    return bm25s


class FieldBuilder:
    """Accumulates documents as sparse rows (token ids and term frequencies); no token strings are kept."""

    def __init__(self):
        self.vocab: dict[str, int] = {}
        self._toks: list[np.ndarray] = []  # unique token ids per document, documents in order
        self._tfs: list[np.ndarray] = []
        self._nnz: list[int] = []  # entries per document
        self.lengths: list[int] = []  # tokens per document
        self._pending = 0

    def add(self, tokens: list[str]) -> None:
        vocab = self.vocab
        ids = np.fromiter((vocab.setdefault(t, len(vocab)) for t in tokens), dtype=np.int32, count=len(tokens))
        self.lengths.append(len(tokens))
        uniq, counts = np.unique(ids, return_counts=True)
        self._nnz.append(len(uniq))
        self._toks.append(uniq.astype(np.int32))
        self._tfs.append(np.minimum(counts, 65535).astype(np.uint16))
        self._pending += 1
        if self._pending >= 4096:  # a few big arrays instead of millions of small ones
            self._toks, self._tfs = self._toks[: -self._pending] + [np.concatenate(self._toks[-self._pending :])], \
                self._tfs[: -self._pending] + [np.concatenate(self._tfs[-self._pending :])]
            self._pending = 0

    def __len__(self) -> int:
        return len(self.lengths)

    def document_frequency(self) -> np.ndarray:
        df = np.zeros(len(self.vocab), dtype=np.int64)
        for toks in self._toks:
            df += np.bincount(toks, minlength=len(self.vocab))
        return df

    def _take(self, parts: list[np.ndarray], dtype) -> np.ndarray:
        """Concatenate while releasing the parts, so the peak is one copy plus one part."""
        out = np.empty(sum(len(p) for p in parts), dtype=dtype)
        pos = 0
        for i, part in enumerate(parts):
            out[pos : pos + len(part)] = part
            pos += len(part)
            parts[i] = None
        parts.clear()
        return out

    def build(self):
        """A bm25s.BM25 whose score matrix equals what `bm25s.BM25().index(tokens)` computes.

        Rows arrive grouped by document (CSR); scipy's C routine turns them into the CSC that bm25s
        scores from, in O(nnz) and without a row-index array.
        """
        import scipy.sparse as sp

        bm25s = _bm25s()
        vocab = dict(self.vocab)
        vocab.setdefault("", len(vocab))  # bm25s's reserved empty token
        n_docs, n_vocab = len(self.lengths), len(vocab)
        df = self.document_frequency().astype(np.float32)
        df = np.concatenate([df, np.zeros(n_vocab - len(df), np.float32)])
        idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        lengths = np.asarray(self.lengths, dtype=np.float32)
        norm = K1 * ((1 - B) + B * lengths / (float(lengths.mean()) if n_docs else 1.0))
        nnz = np.asarray(self._nnz, dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(nnz)])
        toks = self._take(self._toks, np.int32)
        tfs = self._take(self._tfs, np.float32)
        data = idf[toks] * (tfs / (np.repeat(norm, nnz) + tfs))
        del tfs
        csr = sp.csr_matrix((data.astype(np.float32, copy=False), toks, indptr), shape=(n_docs, n_vocab))
        del data, toks
        csc = csr.tocsc()
        del csr
        model = bm25s.BM25(k1=K1, b=B)
        model.scores = {
            "data": csc.data.astype(np.float32, copy=False),
            "indices": csc.indices.astype(np.int32, copy=False),
            "indptr": csc.indptr.astype(np.int32 if csc.nnz < 2**31 else np.int64, copy=False),
            "num_docs": n_docs,
        }
        model.vocab_dict = vocab
        model.unique_token_ids_set = set(vocab.values())
        model.nonoccurrence_array = None  # only BM25L/BM25+ use it
        return model


def build_lexical(
    folder: Path, articles, chunks, weights: dict[str, float], workers: int = 1, progress: bool = False, hard_max: int = 600
):
    """Tokenize every sentence once (in parallel), assemble the word, bigram and article fields, and
    write each to `folder` as soon as it is built, so only one field's matrix is in memory at a time.

    Returns the chunk-level document frequency of every word, as (word, df) pairs (for answer scoring).
    """
    from bisect import bisect_left, bisect_right

    from tqdm import tqdm

    from .chunks import sentence_spans
    from .tokenizer import tokenize_articles

    builders = {name: FieldBuilder() for name in FIELDS if name == "words" or weights.get(name, 0) > 0}
    by_article: list[list] = [[] for _ in articles]
    for c in chunks:
        by_article[c.article].append(c)
    spans = [sentence_spans(a.body, hard_max) for a in articles]  # the same sentences the chunker used
    work = ((a.title, [a.body[s:e] for s, e in sp]) for a, sp in zip(articles, spans))
    results = tokenize_articles(work, workers)
    for a_id, (title_tokens, sentence_tokens) in enumerate(
        tqdm(results, total=len(articles), desc="分词", unit="篇", disable=not progress, mininterval=1.0)
    ):
        starts = [s for s, _ in spans[a_id]]
        ends = [e for _, e in spans[a_id]]
        if "articles" in builders:
            builders["articles"].add(title_tokens + [t for toks in sentence_tokens for t in toks])
        for c in by_article[a_id]:
            i, j = bisect_left(starts, c.start), bisect_right(ends, c.end)
            builders["words"].add(title_tokens + [t for toks in sentence_tokens[i:j] for t in toks])
            if "bigrams" in builders:
                builders["bigrams"].add(char_bigrams(c.embed_text))
        spans[a_id] = by_article[a_id] = None  # release as we go
    df = builders["words"].document_frequency()
    terms = list(zip(builders["words"].vocab, df.tolist()))
    folder.mkdir(parents=True, exist_ok=True)
    for name in list(builders):
        builders.pop(name).build().save(str(folder / f"bm25_{name}"))
    chunk_article = np.fromiter((c.article for c in chunks), dtype=np.int32, count=len(chunks))
    np.save(folder / "chunk_article.npy", chunk_article)
    (folder / "lexical.json").write_text(json.dumps({"weights": weights, "fields": [f for f in FIELDS if f == "words" or weights.get(f, 0) > 0]}))
    return terms


class LexicalIndex:
    def __init__(self, models: dict, chunk_article: np.ndarray, weights: dict[str, float]):
        self.models = models
        self.chunk_article = chunk_article
        self.weights = weights

    @classmethod
    def load(cls, folder: Path, mmap: bool = False) -> "LexicalIndex":
        params = json.loads((folder / "lexical.json").read_text())
        bm25s = _bm25s()
        models = {name: bm25s.BM25.load(str(folder / f"bm25_{name}"), mmap=mmap, load_corpus=False) for name in params["fields"]}
        for model in models.values():
            # Plain ndarray views of the maps: same pages, without np.memmap's per-slice overhead.
            for key in ("data", "indices", "indptr"):
                model.scores[key] = np.asarray(model.scores[key])
        chunk_article = np.load(folder / "chunk_article.npy", mmap_mode="r" if mmap else None)
        return cls(models, chunk_article, params["weights"])

    @staticmethod
    def files(folder: Path) -> list[str]:
        params = json.loads((folder / "lexical.json").read_text())
        return ["lexical.json", "chunk_article.npy"] + [f"bm25_{name}" for name in params["fields"]]

    def __len__(self) -> int:
        return int(self.models["words"].scores["num_docs"])

    @staticmethod
    def _scores(model, tokens: list[str]) -> np.ndarray | None:
        ids = model.get_tokens_ids(tokens)
        if not ids:
            return None
        scores = model.get_scores_from_ids(ids)
        top = float(scores.max())
        return scores / top if top > 0 else None

    def search(self, tokens: list[str], k: int, query: str = "") -> list[tuple[int, float]]:
        """Top `k` chunk ids by fused score; only chunks sharing a word or bigram with the query qualify."""
        combined = None
        for name, field_tokens in (("words", tokens), ("bigrams", char_bigrams(query) if query else [])):
            if name not in self.models or not field_tokens:
                continue
            scores = self._scores(self.models[name], field_tokens)
            if scores is not None:
                weighted = scores * self.weights.get(name, 1.0)
                combined = weighted if combined is None else combined + weighted
        if combined is None:
            return []
        matched = combined > 0
        n = int(np.count_nonzero(matched))
        if n == 0:
            return []
        articles = self._scores(self.models["articles"], tokens) if "articles" in self.models else None
        if articles is not None:
            combined += self.weights.get("articles", 0.5) * articles[self.chunk_article]
        combined[~matched] = -np.inf
        k = min(k, n)
        idx = np.argpartition(-combined, k - 1)[:k]
        idx = idx[np.argsort(-combined[idx], kind="stable")]
        return [(int(i), float(combined[i])) for i in idx]
