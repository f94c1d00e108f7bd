"""BM25 over segments must score exactly like bm25s over the live documents, after adds, deletes and merges."""

from collections import Counter

import bm25s
import numpy as np
import pytest

from rag.articles import split_articles
from rag.backends.local import bm25
from rag.ingest import read_documents
from rag.tokenizer import char_bigrams, default_tokenizer

QUERIES = ({"智慧岛": 1.0, "企业": 1.0}, {"许寨社区": 1.0, "党员": 0.5, "多少": 1.0}, {"开发区": 1.0})


@pytest.fixture(scope="module")
def docs(seeds_dir):
    tk = default_tokenizer()
    return [tk(a.body) for d in read_documents(seeds_dir) for a in split_articles(d)]


def _field(tmp_path, name, docs, part_docs=4096):
    builder = bm25.FieldBuilder()
    builder.PART_DOCS = part_docs
    for tokens in docs:
        builder.add(tokens)
    builder.write(tmp_path, name)
    return bm25.Field.load(tmp_path, name)


def _reference(docs, query):
    model = bm25s.BM25()
    model.index(docs, show_progress=False)
    scores = np.zeros(len(docs))
    for token, weight in query.items():
        scores += weight * model.get_scores([token])
    return scores / scores.max()


def _ours(parts, query, size):
    n, avg = bm25.statistics(parts)
    return bm25.scores(parts, query, n, avg, size)


@pytest.mark.parametrize("part_docs", [4096, 5])  # one part, and many parts scattered into the matrix
def test_one_segment_scores_like_bm25s(tmp_path, docs, part_docs):
    field = _field(tmp_path, "w", docs, part_docs)
    for query in QUERIES:
        np.testing.assert_allclose(_ours([bm25.Part(field, 0, None)], query, len(docs)), _reference(docs, query), rtol=1e-5, atol=1e-6)


def test_statistics_stay_global_across_segments_and_deletes(tmp_path, docs):
    half = len(docs) // 2
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = _field(tmp_path / "a", "w", docs[:half]), _field(tmp_path / "b", "w", docs[half:])
    live_b = np.ones(len(docs) - half, dtype=bool)
    live_b[::3] = False  # a third of the second segment deleted
    parts = [bm25.Part(a, 0, None), bm25.Part(b, half, live_b)]
    survivors = docs[:half] + [d for d, keep in zip(docs[half:], live_b) if keep]
    for query in QUERIES:
        ours = _ours(parts, query, len(docs))
        alive = np.r_[np.ones(half, dtype=bool), live_b]
        assert not ours[~alive].any(), "a deleted document never scores"
        np.testing.assert_allclose(ours[alive], _reference(survivors, query), rtol=1e-5, atol=1e-6)
    assert bm25.document_frequency(parts, ["开发区"])["开发区"] == sum("开发区" in d for d in survivors)


def test_merged_field_equals_a_fresh_one(tmp_path, docs):
    half = len(docs) // 2
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = _field(tmp_path / "a", "w", docs[:half]), _field(tmp_path / "b", "w", docs[half:])
    live_a = np.ones(half, dtype=bool)
    live_a[1::4] = False
    bm25.merge_fields([a, b], [live_a, None], tmp_path, "m")
    merged = bm25.Field.load(tmp_path, "m")
    survivors = [d for d, keep in zip(docs[:half], live_a) if keep] + docs[half:]
    fresh = _field(tmp_path, "f", survivors)
    for key in bm25.ARRAYS:
        np.testing.assert_array_equal(getattr(merged, key), getattr(fresh, key))


def test_char_bigrams():
    assert char_bigrams("就业意向2135人") == ["就业", "业意", "意向", "人"]
    assert char_bigrams("LED 屏") == ["屏"]


def test_query_pieces_of_one_word_share_its_weight():
    weights = default_tokenizer().weighted("为了让商户管好自家门口的卫生")
    assert set(weights) >= {"商户", "家门", "门口", "家门口", "卫生"}
    assert abs(weights["家门口"] - 1 / 3**0.5) < 1e-9 and weights["商户"] == 1.0
    assert "的" not in weights and "为了" not in weights


def test_parallel_tokenization_matches_serial(seeds_dir, monkeypatch):
    import rag.tokenizer
    from rag.chunks import sentence_spans
    from rag.tokenizer import Engine, Tokenizer, tokenize_articles

    monkeypatch.setattr(rag.tokenizer, "_default", Tokenizer(engine=Engine.JIEBA))  # the engine that uses workers

    items = [(a.title, [a.body[s:e] for s, e in sentence_spans(a.body)]) for d in read_documents(seeds_dir) for a in split_articles(d)]
    assert list(tokenize_articles(iter(items * 3), workers=2)) == list(tokenize_articles(iter(items * 3), workers=1))


@pytest.mark.parametrize("query", ["许寨社区有多少名党员？", "智慧岛", "开发区的企业在哪里？是什么时候的事情？"])
def test_lexical_ranks_as_archive_wide_sums_do(lexical_index, query):
    """The local lexical leg sums over the candidates alone when postings are few, over the whole archive
    when they are many (a common bigram): either way it scores as the plain archive-wide BM25 fields do."""
    weights = lexical_index.tokenizer.weighted(query)
    bigrams = {b: float(n) for b, n in Counter(char_bigrams(query)).items()}
    with lexical_index.backend.snapshot() as snap:
        gen, field_weights = snap.gen, snap._weights
        size = int(gen.chunk_offsets[-1])
        expected = np.zeros(size)
        for name, w in (("words", weights), ("bigrams", bigrams)):
            found = bm25.scores(gen.parts[name], w, *gen.stats[name], size)
            expected += 0 if found is None else field_weights[name] * found
        articles = bm25.scores(gen.parts["articles"], weights, *gen.stats["articles"], int(gen.article_offsets[-1]))
        expected += (expected != 0) * field_weights["articles"] * articles[gen.chunk_article]
        got = snap.lexical(weights, 20, query)
    ids = [i for i, _ in got]
    np.testing.assert_allclose([s for _, s in got], np.sort(expected)[::-1][: len(got)], rtol=1e-12)
    np.testing.assert_allclose([s for _, s in got], expected[ids], rtol=1e-12)


def test_bigrams_built_beside_equal_the_serial_build(tmp_path, seeds_dir, monkeypatch):
    """With two workers the bigrams field and then the store are built by a forked process while this one
    tokenizes: the segment's arrays are byte for byte the one-process segment's and the store holds the
    same rows; a child that fails fails the build."""
    import sqlite3

    from rag import build_index
    from rag.backends.local import segment
    from rag.settings import Settings

    def segment_files(workers: int, name: str) -> dict[str, bytes | list]:
        settings = Settings(model="none", workers=workers, parallel_min_articles=1)
        index = build_index(seeds_dir, tmp_path / name, settings=settings, progress=False)
        index.close()
        folder = next((tmp_path / name / "segments").iterdir())
        db = sqlite3.connect(folder / "store.sqlite")
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        rows = {t: db.execute(f"SELECT * FROM {t}").fetchall() for t in tables}
        db.close()
        return {**{p.name: p.read_bytes() for p in sorted(folder.glob("*.npy"))}, "store": [tables, rows]}

    serial, beside = segment_files(1, "serial"), segment_files(2, "beside")
    assert "bigrams.docs.npy" in beside and len(beside["store"][1]["chunks"]) > 50 and serial == beside

    def fail(*args):
        raise MemoryError("no room")

    monkeypatch.setattr(segment.bm25.FieldBuilder, "write", lambda self, folder, name: fail() if name == "bigrams" else {})
    with pytest.raises(RuntimeError, match="MemoryError"):
        segment_files(2, "failing")
