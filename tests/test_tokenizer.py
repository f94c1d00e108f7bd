"""The lexical tokenizer: rjieba cuts documents as jieba did, with the user dictionary; a change of engine rebuilds."""

import pytest

from rag.articles import split_articles
from rag.chunks import sentence_spans
from rag.ingest import read_documents
from rag.meta import FORMAT, stale_reason
from rag.settings import Settings
from rag.tokenizer import DATA, Engine, Tokenizer, default_tokenizer


@pytest.fixture(scope="module")
def engines():
    return Tokenizer(engine=Engine.JIEBA), Tokenizer(engine=Engine.RJIEBA)


def test_default_engine_is_rjieba():
    assert default_tokenizer().engine == Engine.RJIEBA
    assert not default_tokenizer().parallel and Tokenizer(engine=Engine.JIEBA).parallel  # no worker processes for rjieba


def test_rjieba_tokens_equal_jieba_on_the_seeds(engines, seeds_dir):
    jieba_tk, rjieba_tk = engines
    texts = [text for d in read_documents(seeds_dir) for a in split_articles(d)
             for text in [a.title] + [a.body[s:e] for s, e in sentence_spans(a.body)]]
    assert len(texts) > 100
    assert [jieba_tk(t) for t in texts] == [rjieba_tk(t) for t in texts]


def test_user_dictionary_words_stay_whole(engines):
    jieba_tk, rjieba_tk = engines
    words = [line.split()[0] for line in (DATA / "userdict.txt").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    for word in words:
        assert word.lower() in rjieba_tk(word), word
        assert rjieba_tk(f"记者在{word}采访") == jieba_tk(f"记者在{word}采访"), word


@pytest.mark.parametrize("text", ["Jean-Pierre 获得冠军", "以7-6、6-2击败对手", "T-92 40毫米快砲", "09-10赛季", "U.S. Open", "增长3.5%"])
def test_ascii_runs_joined_by_punctuation_cut_as_jieba_does(engines, text):
    jieba_tk, rjieba_tk = engines
    assert rjieba_tk(text) == jieba_tk(text)
    # every query term (jieba's default cut) is a document term
    assert set(rjieba_tk.weighted(text)) <= set(rjieba_tk(text))


def test_engine_change_rebuilds_the_index(engines):
    jieba_tk, rjieba_tk = engines
    assert jieba_tk.version != rjieba_tk.version
    settings = Settings()
    meta = {"format": FORMAT, "chunking": settings.chunking(), "tokenizer": jieba_tk.version}
    assert stale_reason(meta, settings, None) == "分词器或词典有变化"


def test_many_texts_cut_at_once_give_each_text_its_own_tokens(engines, seeds_dir):
    """`cut_many` joins texts to cut them in one call: the tokens must be those of each text cut alone,
    at joins between ASCII runs, spaces and empty texts too, and texts holding line breaks are cut alone."""
    articles = [a for d in read_documents(seeds_dir) for a in split_articles(d)]
    groups = [[a.title] + [a.body[s:e] for s, e in sentence_spans(a.body)] for a in articles]
    groups += [["Jean-", "-Pierre 获得冠军", "6-", "2击败", "u.", "s. open "], ["", " ", "周口", "", "。"], ["a\r", "\nb 智慧岛"],
               ["第一行\n第二行", "智慧岛核心区"], ["单独一句"], []]
    for tk in engines:
        for texts in groups:
            assert tk.cut_many(texts) == [tk(t) for t in texts], texts
