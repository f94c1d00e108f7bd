"""rag.ask(): extractive answers with citations, not-found, follow-ups."""

import pytest

from rag import ask
from rag.answer import NOT_FOUND, contextualize, history_questions, is_follow_up


def test_answer_quotes_the_sentence_with_its_citation(lexical_index):
    result = ask("智慧岛核心区签约入驻了多少家企业？", index=lexical_index)
    assert result.found
    assert "359家企业签约入驻" in result.text and "[1]" in result.text
    first = result.citations[0]
    assert first.number == 1 and first.sentence in first.passage.text
    assert first.passage.source == "002_d930b353b5af356e.txt"
    assert "智慧岛核心区" in result.terms
    for c in result.citations:  # nothing is said that the passages don't say
        assert c.sentence in c.passage.text and f"{c.sentence}[{c.number}]" in result.text


@pytest.mark.parametrize("question", ["火星有几颗卫星？", "What is the capital of France?", "如何做红烧肉？"])
def test_out_of_domain_questions_are_not_found_but_list_nearest(lexical_index, question):
    result = ask(question, index=lexical_index)
    assert not result.found and result.text == NOT_FOUND and result.citations == []


def test_follow_up_uses_the_previous_turns_subject(lexical_index):
    history = [
        {"role": "user", "content": [{"type": "text", "text": "智慧岛核心区签约入驻了多少家企业？"}]},
        {"role": "assistant", "content": "……"},
    ]
    result = ask("那它的总投资是多少？", history=history, index=lexical_index)
    assert "智慧岛核心区" in result.query
    assert result.found and "总投资约70亿元" in result.text


def test_follow_up_context_changes_which_place_answers(lexical_index):
    question = "那里新建了多少个停车位？"
    with_context = ask(question, history=["黄淮市场和麒麟建材城是怎么治理的？"], index=lexical_index)
    assert "停车位325个" in with_context.citations[0].sentence
    alone = ask(question, index=lexical_index)
    assert "停车位325个" not in alone.citations[0].sentence


def test_new_question_does_not_inherit_the_old_subject(lexical_index):
    history = [("智慧岛核心区签约入驻了多少家企业？", "……")]
    assert contextualize(lexical_index, "火星有几颗卫星？", history) == "火星有几颗卫星？"
    assert not ask("火星有几颗卫星？", history=history, index=lexical_index).found


def test_history_formats_and_follow_up_detection():
    assert history_questions([{"role": "user", "content": "甲"}, {"role": "assistant", "content": "乙"}, ("丙", "丁"), "戊"]) == ["甲", "丙", "戊"]
    assert is_follow_up("那它的总投资是多少？") and is_follow_up("总投资呢？")
    assert not is_follow_up("许寨社区有多少名党员？")


def test_empty_question_is_rejected(lexical_index):
    with pytest.raises(ValueError):
        ask("  ", index=lexical_index)

