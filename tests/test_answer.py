"""rag.ask(): extractive answers with citations, not-found, follow-ups."""

from pathlib import Path

import pytest

from rag import ask
from rag.answer import NOT_FOUND, contextualize, history_questions, is_follow_up

from .conftest import DEV_QUESTIONS


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


def test_an_answer_the_model_only_just_let_through_says_so_first(lexical_index):
    """Every answer below UNSURE_BELOW carries the unsure notice, and no other answer does; the chat bubble
    opens with it, before the quoted sentences."""
    from rag.answerability import UNSURE_BELOW
    from rag.chat_view import answer_markdown
    from rag.evaluate import load_questions
    from rag.notices import NoticeCode

    eval_dir = Path(__file__).resolve().parent.parent / "eval"
    paths = [DEV_QUESTIONS, eval_dir / "extra_questions.jsonl", eval_dir / "unanswerable_questions.jsonl"]
    counts = {"unsure": 0, "sure": 0}
    for q in (q for path in paths if path.exists() for q in load_questions(path)):
        result = ask(q.question, index=lexical_index, mode="lexical")
        unsure = any(n.code == NoticeCode.UNSURE for n in result.notices)
        assert unsure == (result.found and result.confidence < UNSURE_BELOW), q.question
        if unsure:
            bubble = answer_markdown(result, 1, "zh", dense_on=False)
            assert bubble.startswith("<em class='notice unsure'>把握不大：") and "<em class='notice'>把握不大" not in bubble
            assert "把握不大" in result.notice
        counts["unsure" if unsure else "sure"] += result.found
    assert counts["unsure"] and counts["sure"], counts  # both kinds were met
