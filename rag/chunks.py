"""Articles -> chunks: sentence-aligned windows with a one-sentence overlap, never crossing articles."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .articles import Article

# A sentence ends at 。！？；… (or ! ? ;) plus any closing quotes/brackets, or at a paragraph break.
_SENTENCE = re.compile(r"[^\n。！？；…!?;]*(?:[。！？；!?;]+|…+)[”’」』）)》\"]*|[^\n]+")
_SOFT_BREAK = re.compile(r"[，、：,:]")


@dataclass(frozen=True)
class Chunk:
    source: str
    title: str
    byline: str
    article: int  # article id within the index
    start: int  # span in the cleaned article body
    end: int
    text: str
    page: int | None = None  # the article's page, for paged documents
    sources: tuple[str, ...] = ()  # every document that holds this article (a reprint is stored once)

    @property
    def embed_text(self) -> str:
        """What is embedded and BM25-indexed: the headline keeps short chunks findable by their subject."""
        return f"{self.title}\n{self.text}" if self.title else self.text


def sentence_spans(text: str, hard_max: int = 600) -> list[tuple[int, int]]:
    """Spans of sentences; a sentence longer than `hard_max` is cut at commas, then at `hard_max`."""
    spans = []
    for m in _SENTENCE.finditer(text):
        start, end = m.start(), m.end()
        while start < end and text[start].isspace():
            start += 1
        if start >= end:
            continue
        spans.extend(_cut_long(text, start, end, hard_max))
    return spans


def _cut_long(text: str, start: int, end: int, hard_max: int) -> list[tuple[int, int]]:
    out = []
    while end - start > hard_max:
        window = text[start : start + hard_max]
        breaks = [m.end() for m in _SOFT_BREAK.finditer(window)]
        cut = start + (breaks[-1] if breaks and breaks[-1] > hard_max // 3 else hard_max)
        out.append((start, cut))
        start = cut
    out.append((start, end))
    return out


def chunk_spans(text: str, min_chars: int = 150, max_chars: int = 400, hard_max: int = 600) -> list[tuple[int, int]]:
    """Pack sentences into windows of about min..max chars; each window repeats the previous one's last sentence."""
    sentences = sentence_spans(text, hard_max)
    if not sentences:
        return []
    chunks: list[tuple[int, int]] = []
    first = 0  # index of the first sentence of the current window
    while first < len(sentences):
        last = first
        while last + 1 < len(sentences) and sentences[last + 1][1] - sentences[first][0] <= max_chars:
            last += 1
        chunks.append((sentences[first][0], sentences[last][1]))
        if last + 1 >= len(sentences):
            break
        # Overlap by one sentence unless that would stall progress or overflow the next window.
        nxt = last if last > first and sentences[last + 1][1] - sentences[last][0] <= max_chars else last + 1
        first = nxt
    # Fold a short tail into the window before it when the result stays within the hard limit.
    if len(chunks) >= 2:
        (a0, _), (b0, b1) = chunks[-2], chunks[-1]
        if b1 - b0 < min_chars and b1 - a0 <= hard_max:
            chunks[-2:] = [(a0, b1)]
    return chunks


def chunk_article(article: Article, article_id: int, min_chars: int = 150, max_chars: int = 400, hard_max: int = 600) -> list[Chunk]:
    return [
        Chunk(article.source, article.title, article.byline, article_id, s, e, article.body[s:e], article.page, (article.source,))
        for s, e in chunk_spans(article.body, min_chars, max_chars, hard_max)
    ]
