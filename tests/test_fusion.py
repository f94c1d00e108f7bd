"""rag.fusion (normalisation, leg weights, language, self-test), answers by similarity, and sentence
vectors stored in segments: written, checksummed, merged, re-embedded only where text changed."""

import json
import math
import shutil

import numpy as np
import pytest
import xxhash

from rag import fusion, open_index
from rag.answer import answer
from rag.encoders.base import Encoder
from rag.library import sentence_table
from rag.passages import coverage
from rag.settings import Settings

from .conftest import SEEDS


@pytest.mark.parametrize(
    "text, language",
    [
        ("智慧岛核心区签约入驻了多少家企业？", "zh"),
        ("How many enterprises signed up in the Smart Island core area?", "other"),
        ("Wie viele Unternehmen haben sich angesiedelt?", "other"),
        ("LED电子屏宣传了什么内容？", "zh"),  # a few Latin letters inside a Chinese question
        ("What does 智慧岛 mean?", "other"),
        ("Python 怎么读取文件？", "zh"),  # ties go to Chinese
        ("2023？！", ""),
        ("", ""),
    ],
)
def test_query_language(text, language):
    assert fusion.query_language(text) == language


def test_normalise_lexical_divides_by_the_best_score():
    assert fusion.normalise_lexical([(3, 2.0), (1, 1.0), (7, 0.5)]) == {3: 1.0, 1: 0.5, 7: 0.25}
    assert fusion.normalise_lexical([]) == {}
    assert fusion.normalise_lexical([(1, 0.0)]) == {1: 0.0}


def test_normalise_dense_gives_z_scores_and_survives_flat_lists():
    z = fusion.normalise_dense([(1, 0.9), (2, 0.8), (3, 0.7)])
    assert z[1] == pytest.approx(math.sqrt(1.5)) and z[2] == pytest.approx(0.0) and z[3] == pytest.approx(-math.sqrt(1.5))
    assert fusion.normalise_dense([(1, 0.8), (2, 0.8)]) == {1: 0.0, 2: 0.0}
    assert fusion.normalise_dense([(5, 0.8)]) == {5: 0.0}
    assert fusion.normalise_dense([]) == {}


def test_dense_weight_follows_what_the_lexical_leg_could_not_find():
    assert fusion.dense_weight(0.0) == 1.0  # nothing found by BM25 (an English question over Chinese pages)
    assert fusion.dense_weight(0.4) == pytest.approx(0.6)
    assert fusion.dense_weight(1.0) == fusion.DENSE_FLOOR  # the dense leg never goes silent
    assert fusion.dense_weight(1.7) == fusion.DENSE_FLOOR and fusion.dense_weight(-0.2) == 1.0
    assert fusion.dense_weight(None) == 1.0
    assert fusion.dense_weight(0.9, floor=0.0) == pytest.approx(0.1)


LEXICAL = [(1, 2.0), (2, 1.9), (3, 0.2)]
DENSE = [(2, 0.90), (4, 0.89), (1, 0.80), (5, 0.79), (6, 0.78)]


def test_fuse_trusts_bm25_when_it_covers_the_question_and_dense_when_it_does_not():
    covered = fusion.fuse(LEXICAL, DENSE, lexical_coverage=1.0)
    assert [cid for cid, _ in covered][:2] == [2, 1]
    uncovered = fusion.fuse(LEXICAL, DENSE, lexical_coverage=0.0)
    assert [cid for cid, _ in uncovered][:2] == [2, 4]
    assert {cid for cid, _ in covered} == {1, 2, 3, 4, 5, 6}  # every candidate of either leg is kept


def test_fuse_scores_a_chunk_missing_from_one_leg_at_that_legs_bottom():
    fused = dict(fusion.fuse(LEXICAL, DENSE, lexical_coverage=0.5))
    z = fusion.normalise_dense(DENSE)
    assert fused[4] == pytest.approx(0.0 + 0.5 * z[4])  # no query term: nothing from BM25
    assert fused[3] == pytest.approx(0.1 + 0.5 * min(z.values()))  # not a dense candidate: the lowest z


def test_fuse_with_one_leg_empty_returns_the_other_unchanged():
    assert fusion.fuse([], DENSE) == DENSE
    assert fusion.fuse(LEXICAL, []) == LEXICAL
    assert fusion.fuse([], []) == []


def test_with_sentences_averages_chunk_and_best_sentence():
    rescored = fusion.with_sentences([(1, 0.90), (2, 0.86), (3, 0.85)], {1: 0.78, 2: 0.95})
    assert [cid for cid, _ in rescored] == [2, 3, 1]
    assert dict(rescored)[2] == pytest.approx(0.905) and dict(rescored)[3] == 0.85  # no sentence: its own cosine
    assert fusion.with_sentences([(1, 0.9)], {}) == [(1, 0.9)]


def test_rrf_adds_reciprocal_ranks():
    fused = dict(fusion.rrf([[(1, 9.0), (2, 1.0)], [(2, 0.9)]], k=60))
    assert fused[2] == pytest.approx(1 / 62 + 1 / 61) and fused[1] == pytest.approx(1 / 61)


def test_self_test_finds_the_article_of_a_sentence_among_the_top_chunks():
    rng = np.random.default_rng(1)
    chunks = rng.standard_normal((6, 8)).astype(np.float32)
    chunks /= np.linalg.norm(chunks, axis=1, keepdims=True)  # unit vectors, as encoders give
    articles = np.array([0, 0, 1, 1, 2, 2])
    queries = chunks[[0, 3, 5]] + 0.01
    assert fusion.self_test(queries, [(chunks, articles)], np.array([0, 1, 2]), k=1) == 1.0
    # the same chunks in two blocks give the same verdict; wrong targets give none
    assert fusion.self_test(queries, [(chunks[:3], articles[:3]), (chunks[3:], articles[3:])], np.array([0, 1, 2]), k=1) == 1.0
    assert fusion.self_test(queries, [(chunks, articles)], np.array([2, 0, 1]), k=1) == 0.0


def test_an_english_question_covers_its_passage_only_through_the_terms_it_names(lexical_index):
    """Its own words never occur in Chinese pages; the dictionary's terms do (rag/crosslingual.py), and
    its words that lead to none count as missing (coverage below the Chinese question's)."""
    from rag.index import Index

    english = "How many enterprises signed up in the Smart Island core area?"
    chinese = "智慧岛核心区签约入驻了多少家企业？"

    def covered(index, question):
        r = index.search(question, k=1, mode="lexical")
        return coverage(list(r.terms), r.weights, r.rare_weight, [p.text for p in r.passages] or ["智慧岛"])

    own_words = Index(lexical_index.backend, lexical_index.settings.with_(crosslingual=False), None)
    assert covered(own_words, english) == 0.0
    assert 0.1 < covered(lexical_index, english) < covered(lexical_index, chinese)
    assert covered(lexical_index, chinese) > 0.8


class HashEncoder(Encoder):
    """Deterministic pseudo-vectors from a text's hash: cacheable like a model, meaningless like noise
    (a query and the same text as a passage get unrelated vectors), and instant."""

    engine = "test-hash"
    name = "hash-16"

    def __init__(self):
        super().__init__()
        self.calls = 0

    @property
    def dim(self):
        return 16

    def _encode(self, texts, batch_size, progress, query):
        self.calls += len(texts)
        seeds = [xxhash.xxh64_intdigest((("q:" if query else "p:") + t).encode("utf-8")) for t in texts]
        return np.stack([np.random.default_rng(s).standard_normal(16) for s in seeds]).astype(np.float32)


def _stored_sentences_match(index, encoder, article_ids=None):
    """Every stored sentence span lies in its article and carries that text's passage vector."""
    with index.backend.snapshot() as snap:
        ids = article_ids if article_ids is not None else [a.id for a in snap.articles()]
        stored, bodies = snap.sentences(ids), snap.article_bodies(ids)
    assert set(stored) == set(ids)
    for a, (spans, vecs) in stored.items():
        texts = [bodies[a][s:e] for s, e in spans]
        assert texts == sentence_table([type("A", (), {"body": bodies[a]})()], 600)[1]
        np.testing.assert_allclose(vecs, encoder.encode_passages(texts), atol=2e-3)  # float16 storage
    return stored


def test_sentence_vectors_live_in_segments_survive_merges_and_are_embedded_once(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    encoder = HashEncoder()
    index = open_index(Settings(docs_dir=docs, index_dir=tmp_path / "index"), progress=False, embedder=encoder)
    stored = _stored_sentences_match(index, encoder)
    assert sum(len(s) for s, _ in stored.values()) == index.manifest["timings"]["sentences_embedded"] > index.info().chunks
    [seg] = (tmp_path / "index" / "segments").iterdir()
    listed = json.loads((seg / "segment.json").read_text().split("\n#xxh3:")[0])
    assert {"sentences.npy", "sentence_vectors.npy"} <= set(listed["files"]) and listed["sentences"] > 0

    for n in range(4):  # four one-article pages: four small segments, merged into one by maintain()
        page = tmp_path / f"page{n}.txt"
        page.write_text(f"周口新建第{n}号天文馆\n本报讯 周口第{n}号天文馆今日开馆。馆内有球幕影院，可容纳{n}百名观众。\n", encoding="utf-8")
        index.add([page])
        assert index.manifest["timings"]["sentences_embedded"] == 2, "only the new page's sentences are embedded"
    before = len(list((tmp_path / "index" / "segments").iterdir()))
    index.maintain()
    assert len(list((tmp_path / "index" / "segments").iterdir())) < before
    added = [a.id for s in (f"page{n}.txt" for n in range(4)) for a in index.articles(s)]
    assert len(_stored_sentences_match(index, encoder, added)) == 4
    _stored_sentences_match(index, encoder)
    index.close()


def test_a_batch_embedded_slice_by_slice_stores_the_same_vectors(tmp_path, monkeypatch):
    """A large batch is embedded EMBED_SLICE texts at a time into one array (float16 for sentences):
    the seeds' 87 chunks and their sentences, 50 at a time, store what one call would."""
    import rag.library

    monkeypatch.setattr(rag.library, "EMBED_SLICE", 50)
    encoder = HashEncoder()
    index = open_index(Settings(docs_dir=SEEDS, index_dir=tmp_path / "index"), progress=False, embedder=encoder)
    stored = _stored_sentences_match(index, encoder)
    timings = index.manifest["timings"]
    assert timings["sentences_embedded"] == sum(len(s) for s, _ in stored.values()) > 50
    assert timings["embedded"] == index.info().chunks > 50
    assert len(index.retrieve("智慧岛核心区签约入驻了多少家企业？", k=3, mode="dense")) == 3
    index.close()


def test_a_dense_model_that_fails_its_self_test_is_not_fused(tmp_path):
    index = open_index(Settings(docs_dir=SEEDS, index_dir=tmp_path / "index"), progress=False, embedder=HashEncoder())
    assert index.manifest["dense"]["self_test"] < fusion.SELF_TEST_MIN, "noise cannot find a sentence's article"
    hybrid = index.retrieve("智慧岛核心区签约入驻了多少家企业？", k=3)
    assert hybrid.mode == "lexical" and "自检" in hybrid.notice
    asked = answer(index, "智慧岛核心区签约入驻了多少家企业？")  # the answer reports the mode really used, not the one asked for
    assert (asked.mode, asked.engine) == ("lexical", "") and "自检" in asked.notice
    assert index.retrieve("智慧岛核心区签约入驻了多少家企业？", k=3, mode="dense").mode == "dense"
    page = tmp_path / "page.txt"
    page.write_text("周口新建天文馆\n本报讯 周口天文馆今日开馆。\n", encoding="utf-8")
    index.add([page])  # an incremental change keeps the verdict of the last full build
    assert index.manifest["dense"]["self_test"] < fusion.SELF_TEST_MIN
    index.close()


def test_turning_sentence_vectors_off_rebuilds_without_them(tmp_path):
    encoder = HashEncoder()
    index = open_index(Settings(docs_dir=SEEDS, index_dir=tmp_path / "index"), progress=False, embedder=encoder)
    index.close()
    index = open_index(Settings(docs_dir=SEEDS, index_dir=tmp_path / "index", sentence_vectors=False),
                       progress=False, embedder=encoder)
    timings = index.manifest["timings"]
    assert index.manifest["sentence_vectors"] is False and timings["sentences_embedded"] == 0
    assert timings["embedded"] == 0 and timings["cached"] == index.info().chunks, "chunk vectors come from the cache"
    with index.backend.snapshot() as snap:
        assert snap.sentences([a.id for a in snap.articles()]) == {}
    index.maintain()  # lets the previous generation's files go
    assert not list((tmp_path / "index" / "segments").glob("*/sentences.npy"))
    index.close()


def test_an_english_question_is_answered_with_its_chinese_sentence(bundled_index):
    result = answer(bundled_index, "How many enterprises signed up in the Smart Island core area?")
    assert result.found and "359家企业" in result.citations[0].sentence
    assert result.mode == "hybrid" and "multilingual-e5-small" in result.engine
    assert not answer(bundled_index, "How many moons does Mars have?").found
    assert not answer(bundled_index, "火星有几颗卫星？").found
