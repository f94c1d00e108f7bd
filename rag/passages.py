"""Ranked chunks -> passages: widen each hit inside its article, and never show a sentence twice.

Chunks are small so that scoring is sharp; the passage shown around a chunk may grow to the
hard limit (600 characters) with neighbouring sentences, preferring the side whose sentences
carry more query terms. The answer to "how many" often sits one sentence after the sentence
that matches the question's words.
"""

from __future__ import annotations

from .bm25_math import idf
from .chunks import sentence_spans


def idf_weights(tokens: list[str], df: dict[str, int], n_docs: int) -> dict[str, float]:
    """BM25-style idf for each distinct query token the corpus knows."""
    return {
        t: idf(df[t], n_docs)
        for t in dict.fromkeys(tokens)
        if df.get(t)
    }


def rare_weight(n_docs: int) -> float:
    """The idf a term the corpus never uses counts with: that of the rarest possible term (so "火星" sinks a question)."""
    return idf(0, max(n_docs, 1))


def coverage(tokens: list[str], weights: dict[str, float], rare: float, texts: list[str]) -> float:
    """Best share, over `texts`, of the idf weight of `tokens` a text contains; unseen tokens weigh `rare`."""
    tokens = list(dict.fromkeys(tokens))
    if not tokens or not texts:
        return 0.0
    total = sum(weights.get(t, rare) for t in tokens)
    return max(term_weight(text, weights) for text in texts) / total


def term_weight(text: str, weights: dict[str, float]) -> float:
    """Summed idf of the query terms that occur in `text` (substring match: cheap and tokenizer-free)."""
    lowered = text.lower()
    return sum(w for t, w in weights.items() if t in lowered)


def expand(body: str, start: int, end: int, weights: dict[str, float], limit: int, spans=None) -> tuple[int, int]:
    """Grow [start, end) by whole sentences of `body` (`spans`, if already known) up to `limit` characters."""
    spans = spans if spans is not None else sentence_spans(body, limit)
    left = [s for s in spans if s[1] <= start]
    right = [s for s in spans if s[0] >= end]
    while left or right:
        options = []
        if left and end - left[-1][0] <= limit:
            options.append(("left", term_weight(body[left[-1][0] : left[-1][1]], weights)))
        if right and right[0][1] - start <= limit:
            # Following sentences win ties: they tend to hold the figures a question asks for.
            options.append(("right", term_weight(body[right[0][0] : right[0][1]], weights) + 1e-9))
        if not options:
            break
        side = max(options, key=lambda o: o[1])[0]
        if side == "left":
            start = left.pop()[0]
        else:
            end = right.pop(0)[1]
    return start, end


def trim_overlap(start: int, end: int, taken: list[tuple[int, int]], min_chars: int = 20) -> tuple[int, int] | None:
    """The part of [start, end) not already shown by `taken` spans of the same article.

    Neighbouring windows share sentences; rather than dropping the second one (and the answer it
    may hold) we show only what it adds. None when less than `min_chars` would remain.
    """
    original = (start, end)
    for a, b in sorted(taken):
        if b <= start or a >= end:
            continue
        if a <= start and b >= end:
            return None
        if a <= start:
            start = b
        elif b >= end:
            end = a
        else:  # a shown span sits strictly inside: keep the longer side
            start, end = (start, a) if a - start >= end - b else (b, end)
    if (start, end) == original:
        return original
    return (start, end) if end - start >= min_chars else None


def strip_span(body: str, start: int, end: int) -> tuple[int, int]:
    while start < end and body[start].isspace():
        start += 1
    while end > start and body[end - 1].isspace():
        end -= 1
    return start, end
