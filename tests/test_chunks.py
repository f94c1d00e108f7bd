"""Chunking on the seed articles."""

from rag.articles import split_articles
from rag.chunks import chunk_article, chunk_spans, sentence_spans
from rag.ingest import read_documents


def test_chunks_are_sentence_aligned_bounded_and_overlap_by_one_sentence(seeds_dir):
    for doc in read_documents(seeds_dir):
        for i, article in enumerate(split_articles(doc)):
            chunks = chunk_article(article, i)
            assert chunks, article.title
            ends = {e for _, e in sentence_spans(article.body)}
            for a, b in zip(chunks, chunks[1:]):
                assert b.start < a.end, "neighbours share a sentence"
                assert b.start > a.start
            for c in chunks:
                assert c.text == article.body[c.start : c.end]
                assert len(c.text) <= 600
                assert c.end in ends, "a chunk ends at a sentence end"
                assert c.source == doc.source and c.title == article.title and c.byline == article.byline
                assert c.embed_text.startswith(article.title)


def test_chunk_sizes_aim_for_150_to_400(seeds_dir):
    sizes = [len(c.text) for d in read_documents(seeds_dir) for i, a in enumerate(split_articles(d)) for c in chunk_article(a, i)]
    in_range = sum(130 <= s <= 420 for s in sizes) / len(sizes)
    assert in_range > 0.85, sizes


def test_sentence_split_keeps_closing_quotes_with_the_sentence():
    text = "他说：“好！”大家鼓掌。下一步怎么办？"
    assert [text[s:e] for s, e in sentence_spans(text)] == ["他说：“好！”", "大家鼓掌。", "下一步怎么办？"]


def test_overlong_sentence_is_cut_at_commas_under_the_hard_limit():
    text = "，".join(["这是一个很长的分句没有句号"] * 80) + "。"
    spans = chunk_spans(text)
    assert len(spans) > 1 and all(e - s <= 600 for s, e in spans)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(b[0] <= a[1] for a, b in zip(spans, spans[1:])), "no text is skipped"
