"""English questions find Chinese terms: CC-CEDICT glosses and pinyin names, kept only where the archive uses them."""

import pytest

from rag.crosslingual import Bridge
from rag.tokenizer import default_tokenizer


@pytest.fixture(scope="module")
def bridge():
    return Bridge(default_tokenizer().frequency)


def archive(*terms):
    known = set(terms)
    return lambda asked: [t for t in asked if t in known]


def test_glosses_lead_to_the_archive_terms(bridge):
    found = bridge.terms("How many street lights were replaced in the development zone?",
                         archive("路灯", "更换", "开发区", "灯光", "发展"))
    assert {"路灯", "更换", "开发区"} <= set(found.terms) and found.unmatched == ()
    assert "发展" not in found.terms  # "development zone" is one phrase: its words are not looked up alone


def test_a_word_as_written_wins_over_its_stem(bridge):
    terms = bridge.terms("Who chaired the meeting?", archive("会议", "满足")).terms
    assert "会议" in terms and "满足" not in terms  # meeting -> 会议, not meet -> 满足


def test_names_and_places_are_read_as_pinyin(bridge):
    assert "许寨" in bridge.pinyin_candidates("Xuzhai")
    terms = bridge.terms("Where did Wang Wenfeng inspect Xuzhai community?", archive("王文峰", "许寨", "社区")).terms
    assert {"王文峰", "许寨", "社区"} <= set(terms)


def test_nothing_the_archive_lacks_and_no_question_words(bridge):
    found = bridge.terms("What is the capital of France?", archive("首都"))
    assert found.terms == {"首都": 1.0} and found.unmatched == ("france",)  # France leads to no archive term
    assert bridge.terms("What is it and where was it?", archive("什么", "哪里")).terms == {}


def test_an_english_question_is_found_and_answered_by_keywords(lexical_index):
    """Without the dense leg an English question finds its Chinese article (it found none before)."""
    from rag import ask

    question = "How much land did Xuzhai community lease out along the Ningluo expressway?"
    passages = lexical_index.retrieve(question)
    assert passages and "流转土地203亩" in passages[0].text
    result = ask(question, index=lexical_index)
    assert result.found and "203亩" in result.citations[0].sentence
