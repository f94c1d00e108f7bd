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
from array import array
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
    """Accumulates documents as sparse rows (token ids and term frequencies); no token strings are kept.

    Rows are kept in parts of PART_DOCS documents; `build` scatters each part straight into the
    final column-major (CSC) arrays that bm25s scores from and frees it, so building needs about
    14 bytes per (document, token) entry at peak: 6 accumulated plus 8 in the result.
    """

    PART_DOCS = 4096

    def __init__(self):
        self.vocab: dict[str, int] = {}
        self._parts: list[tuple[int, np.ndarray, np.ndarray]] = []  # (documents, token ids, tfs)
        self._toks: list[np.ndarray] = []  # pending documents, not yet a part
        self._tfs: list[np.ndarray] = []
        self._nnz = array("i")  # entries per document
        self.lengths = array("i")  # tokens per document

    def add(self, tokens: list[str]) -> None:
        vocab = self.vocab
        ids = np.fromiter((vocab.setdefault(t, len(vocab)) for t in tokens), dtype=np.int32, count=len(tokens))
        self.lengths.append(len(tokens))
        uniq, counts = np.unique(ids, return_counts=True)
        self._nnz.append(len(uniq))
        self._toks.append(uniq.astype(np.int32))
        self._tfs.append(np.minimum(counts, 65535).astype(np.uint16))
        if len(self._toks) >= self.PART_DOCS:
            self._flush()

    def _flush(self) -> None:
        if self._toks:
            self._parts.append((len(self._toks), np.concatenate(self._toks), np.concatenate(self._tfs)))
            self._toks, self._tfs = [], []

    def __len__(self) -> int:
        return len(self.lengths)

    def document_frequency(self) -> np.ndarray:
        self._flush()
        df = np.zeros(len(self.vocab), dtype=np.int64)
        for _, toks, _ in self._parts:
            df += np.bincount(toks, minlength=len(self.vocab))
        return df

    def build(self):
        """A bm25s.BM25 whose score matrix equals what `bm25s.BM25().index(tokens)` computes."""
        bm25s = _bm25s()
        vocab = dict(self.vocab)
        vocab.setdefault("", len(vocab))  # bm25s's reserved empty token
        n_docs, n_vocab = len(self.lengths), len(vocab)
        df = np.zeros(n_vocab, dtype=np.int64)
        df[: len(self.vocab)] = self.document_frequency()
        idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        lengths = np.frombuffer(self.lengths, dtype=np.int32).astype(np.float32)
        norm = (K1 * ((1 - B) + B * lengths / (float(lengths.mean()) if n_docs else 1.0))).astype(np.float32)
        nnz = np.frombuffer(self._nnz, dtype=np.int32)
        indptr = np.zeros(n_vocab + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        indices = np.empty(indptr[-1], dtype=np.int32)
        data = np.empty(indptr[-1], dtype=np.float32)
        fill = indptr[:-1].copy()  # next free slot of each column
        doc0 = 0
        while self._parts:
            n, toks, tfs = self._parts.pop(0)
            docs = np.repeat(np.arange(doc0, doc0 + n, dtype=np.int32), nnz[doc0 : doc0 + n])
            tf = tfs.astype(np.float32)
            values = idf[toks] * (tf / (norm[docs] + tf))
            order = np.argsort(toks, kind="stable")  # by column; documents stay ascending within it
            col = toks[order]
            first = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
            rank = np.arange(len(col)) - np.repeat(first, np.diff(np.r_[first, len(col)]))
            slots = fill[col] + rank
            indices[slots] = docs[order]
            data[slots] = values[order]
            fill += np.bincount(col, minlength=n_vocab)
            doc0 += n
        model = bm25s.BM25(k1=K1, b=B)
        model.scores = {
            "data": data,
            "indices": indices,
            "indptr": indptr.astype(np.int32) if indptr[-1] < 2**31 else indptr,
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
    for name in ("words", "articles", "bigrams"):  # the largest field last, when the others are freed
        if name in builders:
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

    def _scores(self, model, tokens, n: int) -> np.ndarray | None:
        """BM25 scores of every document, max-normalised; None when no token is known.

        The same sums as bm25s's get_scores, over its own matrix, but with np.bincount instead of
        np.add.at: ten times faster on 1M chunks.
        """
        weights = tokens if isinstance(tokens, dict) else {t: 1.0 for t in tokens}
        vocab = model.vocab_dict
        known = [(vocab[t], w) for t, w in weights.items() if t in vocab]
        if not known:
            return None
        data, indices, indptr = model.scores["data"], model.scores["indices"], model.scores["indptr"]
        bounds = [(int(indptr[t]), int(indptr[t + 1]), w) for t, w in known]
        docs = np.concatenate([indices[a:b] for a, b, _ in bounds])
        if not len(docs):
            return None
        values = np.concatenate([data[a:b] * w if w != 1.0 else data[a:b] for a, b, w in bounds])
        scores = np.bincount(docs, weights=values, minlength=n)
        top = scores.max()
        return scores / top if top > 0 else None

    def search(self, tokens, k: int, query: str = "") -> list[tuple[int, float]]:
        """Top `k` chunk ids by fused score; only chunks sharing a word or bigram with the query qualify.

        `tokens` is a token list, or a {token: weight} dict (see Tokenizer.weighted).
        """
        n = len(self)
        combined = None
        for name, field_tokens in (("words", tokens), ("bigrams", char_bigrams(query) if query else [])):
            if name not in self.models or not field_tokens:
                continue
            scores = self._scores(self.models[name], field_tokens, n)
            if scores is not None:
                scores *= self.weights.get(name, 1.0)
                combined = scores if combined is None else np.add(combined, scores, out=combined)
        if combined is None:
            return []
        candidates = np.flatnonzero(combined)
        if not len(candidates):
            return []
        values = combined[candidates]
        if "articles" in self.models:
            articles = self._scores(self.models["articles"], tokens, int(self.models["articles"].scores["num_docs"]))
            if articles is not None:
                values += self.weights.get("articles", 0.5) * articles[self.chunk_article[candidates]]
        k = min(k, len(candidates))
        top = np.argpartition(-values, k - 1)[:k]
        top = top[np.argsort(-values[top], kind="stable")]
        return [(int(candidates[i]), float(values[i])) for i in top]
