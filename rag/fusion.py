"""Fusing the lexical and the dense leg into one ranking.

Pure functions over rankings ([(chunk id, score)], best first); nothing here touches storage.

Why not plain reciprocal-rank fusion: RRF throws the scores away, so a leg that is sure (one chunk
far ahead) and a leg that is guessing (a flat list of near-equal cosines) count the same, and on the
news pages the dense leg's confident-looking rank 1 among near-duplicate meeting reports pulled wrong
hits up. Here each leg's scores are put on a common scale instead:

- lexical: divided by the best score (the fused BM25 fields are already max-normalised per field);
- dense: z-scores over the candidate list, so a chunk counts by how far it stands out from the other
  candidates, not by the cosine's absolute value (e5 cosines all sit in 0.7-0.9);

and summed, the dense leg weighted by how much of the question the lexical leg could not find:
w = max(DENSE_FLOOR, 1 - lexical coverage), where coverage is the share of the question's idf weight
that the best lexical chunk contains (`dense_weight`). A question whose words are all in one chunk
(most CMRC and seed questions) is decided mostly by BM25, which is then the stronger leg; a paraphrase
or a question in another language (coverage near 0: an English question shares no term with Chinese
pages) is decided mostly by the dense leg. Equal weights lost 1.3 points of CMRC hit@1 to BM25 alone.
A chunk only one leg returned gets 0 from the lexical leg (it shares no query term) or the lowest dense
z-score (it was not among the dense candidates).

The dense score of a chunk is the mean of the chunk's cosine and its best sentence's cosine
(`with_sentences`): a fact question matches one sentence much better than a 400-character window
whose other sentences are about something else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

import numpy as np

# The dense leg's weight never drops below this, even when BM25 finds every query term.
DENSE_FLOOR = 0.25
# A dense model that finds the article of fewer than this share of the corpus's own sentences (top 3)
# cannot read the corpus's language: hybrid then uses BM25 alone. Measured on the seeds: the 4-bit
# multilingual-e5-small 0.95, the English-only all-MiniLM-L6-v2 0.61 (whose fusion cost dev hit@1 0.905 -> 0.714).
SELF_TEST_MIN = 0.8
SENTENCE_WEIGHT = 1.0  # the best sentence counts as much as the whole chunk

Ranking = list[tuple[int, float]]

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LETTER = re.compile(r"[^\W\d_]")


def query_language(text: str) -> str:
    """'zh' when most letters are CJK ideographs, 'other' when some letters are not, '' without letters."""
    letters = _LETTER.findall(text)
    if not letters:
        return ""
    cjk = sum(1 for c in letters if _CJK.match(c))
    return "zh" if cjk * 2 >= len(letters) else "other"


def normalise_lexical(ranking: Ranking) -> dict[int, float]:
    """Scores divided by the best one (1.0 for the top chunk); empty for an empty ranking."""
    if not ranking:
        return {}
    top = max(score for _, score in ranking)
    if top <= 0:
        return {cid: 0.0 for cid, _ in ranking}
    return {cid: score / top for cid, score in ranking}


def normalise_dense(ranking: Ranking) -> dict[int, float]:
    """z-scores over the candidates; all zero when the list is flat (or has one item)."""
    if not ranking:
        return {}
    scores = [s for _, s in ranking]
    mean = sum(scores) / len(scores)
    sd = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    if sd < 1e-9:
        return {cid: 0.0 for cid, _ in ranking}
    return {cid: (s - mean) / sd for cid, s in ranking}


def with_sentences(dense: Ranking, best_sentence: Mapping[int, float], weight: float = SENTENCE_WEIGHT) -> Ranking:
    """Dense ranking rescored as (chunk cosine + weight * best sentence cosine) / (1 + weight).

    Chunks without sentence vectors keep their own cosine. Measured on the seed questions (dense leg
    alone, hit@1): dev 0.81 -> 0.905, English 0.62 -> 0.74, paraphrases 0.48 -> 0.55.
    """
    if not best_sentence:
        return list(dense)
    rescored = [
        (cid, (cos + weight * best_sentence[cid]) / (1 + weight) if cid in best_sentence else cos)
        for cid, cos in dense
    ]
    return sorted(rescored, key=lambda kv: -kv[1])


def dense_weight(lexical_coverage: float | None, floor: float = DENSE_FLOOR) -> float:
    """The dense leg's weight beside the lexical leg's 1: the share of the question BM25 did not find.

    `lexical_coverage` (0-1) is the share of the query's idf weight the best lexical hit contains;
    None (unknown) weighs both legs equally.
    """
    if lexical_coverage is None:
        return 1.0
    return max(floor, 1.0 - min(max(lexical_coverage, 0.0), 1.0))


def fuse(lexical: Ranking, dense: Ranking, *, lexical_coverage: float | None = None, floor: float = DENSE_FLOOR) -> Ranking:
    """One ranking from both legs: lexical/top + dense_weight(coverage) * dense z-score (module docstring)."""
    if not dense:
        return list(lexical)
    if not lexical:
        return list(dense)
    lex = normalise_lexical(lexical)
    den = normalise_dense(dense)
    ids: Iterable[int] = dict.fromkeys([cid for cid, _ in lexical] + [cid for cid, _ in dense])
    weight = dense_weight(lexical_coverage, floor)
    lowest = min(den.values())
    fused = [(cid, lex.get(cid, 0.0) + weight * den.get(cid, lowest)) for cid in ids]
    return sorted(fused, key=lambda kv: -kv[1])


def self_test(query_vectors: np.ndarray, blocks: Iterable[tuple[np.ndarray, np.ndarray]],
              target_articles: np.ndarray, k: int = 3) -> float:
    """Share of sentence queries whose own article is among the top `k` chunks by inner product.

    A corpus-level check of the dense leg, run at full builds on sampled sentences of the corpus:
    any model that reads the language finds a sentence's article; one that does not, often does not.
    `blocks` are (chunk vectors, their article ids) pairs, scanned one at a time (bounded memory).
    """
    if not len(query_vectors):
        return 1.0
    best = np.full((len(query_vectors), k), -np.inf, dtype=np.float32)
    articles = np.full((len(query_vectors), k), -1, dtype=np.int64)
    seen = False
    for vectors, chunk_article in blocks:
        if not len(vectors):
            continue
        seen = True
        scores = query_vectors @ np.asarray(vectors, dtype=np.float32).T
        cand = np.concatenate([best, scores], axis=1)
        cand_articles = np.concatenate([articles, np.broadcast_to(np.asarray(chunk_article, dtype=np.int64), scores.shape)], axis=1)
        top = np.argsort(-cand, axis=1, kind="stable")[:, :k]
        best, articles = np.take_along_axis(cand, top, 1), np.take_along_axis(cand_articles, top, 1)
    if not seen:
        return 1.0
    found = (articles == np.asarray(target_articles)[:, None]).any(axis=1)
    return float(found.mean())


def rrf(rankings: Iterable[Ranking], k: int = 60) -> Ranking:
    """Reciprocal-rank fusion (each ranking adds 1/(k + rank)); kept for comparison in evaluations."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for r, (cid, _) in enumerate(ranking, 1):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (k + r)
    return sorted(fused.items(), key=lambda kv: -kv[1])
