"""The vectorised BM25 builder must score exactly like bm25s's own builder."""

import bm25s
import numpy as np
import pytest

from rag.articles import split_articles
from rag.ingest import read_documents
from rag.lexical import FieldBuilder, char_bigrams
from rag.tokenizer import default_tokenizer


@pytest.mark.parametrize("part_docs", [4096, 5])  # one part, and many parts scattered into the matrix
def test_field_builder_matches_bm25s(seeds_dir, monkeypatch, part_docs):
    monkeypatch.setattr(FieldBuilder, "PART_DOCS", part_docs)
    tk = default_tokenizer()
    docs = [tk(a.body) for d in read_documents(seeds_dir) for a in split_articles(d)]
    reference = bm25s.BM25()
    reference.index(docs, show_progress=False)
    builder = FieldBuilder()
    for tokens in docs:
        builder.add(tokens)
    ours = builder.build()
    for query in (["智慧岛", "企业"], ["许寨社区", "党员", "多少"], ["开发区"]):
        np.testing.assert_allclose(ours.get_scores(query), reference.get_scores(query), rtol=1e-5, atol=1e-6)


def test_char_bigrams():
    assert char_bigrams("就业意向2135人") == ["就业", "业意", "意向", "人"]
    assert char_bigrams("LED 屏") == ["屏"]


def test_query_pieces_of_one_word_share_its_weight():
    weights = default_tokenizer().weighted("为了让商户管好自家门口的卫生")
    assert set(weights) >= {"商户", "家门", "门口", "家门口", "卫生"}
    assert abs(weights["家门口"] - 1 / 3**0.5) < 1e-9 and weights["商户"] == 1.0
    assert "的" not in weights and "为了" not in weights


def test_parallel_tokenization_matches_serial(seeds_dir):
    from rag.chunks import sentence_spans
    from rag.tokenizer import tokenize_articles

    items = [(a.title, [a.body[s:e] for s, e in sentence_spans(a.body)]) for d in read_documents(seeds_dir) for a in split_articles(d)]
    assert list(tokenize_articles(iter(items * 3), workers=2)) == list(tokenize_articles(iter(items * 3), workers=1))
