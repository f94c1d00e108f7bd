"""What the chat page shows, from real answers over the seeds: language, links, articles, copy text."""

from __future__ import annotations

import html

import pytest

from rag.answer import answer
from rag.chat_view import Trace, answer_markdown, article_html, build_turn, escape, how_found_markdown, plain_text, split_notice
from rag.lang import detect_language
from rag.notices import Notice, NoticeCode
from rag.results import Answer

QUESTION = "智慧岛核心区签约入驻了多少家企业？"


@pytest.mark.parametrize("text, lang", [
    ("How many enterprises signed up in the Smart Island core area?", "en"),
    ("what about LED lights?", "en"),
    ("Où est la mairie de Zhoukou ?", "en"),  # Latin letters: the English UI is the better guess
    ("智慧岛核心区签约入驻了多少家企业？", "zh"),
    ("How many 企业 signed up?", "zh"),  # any Chinese: answer in Chinese
    ("2023？", "zh"),  # no letters at all: the default
    ("", "zh"),
    ("Сколько предприятий?", "zh"),  # not mostly Latin
])
def test_detect_language(text, lang):
    assert detect_language(text) == lang


@pytest.fixture(scope="module")
def found(lexical_index):
    return answer(lexical_index, QUESTION)


def test_answer_bubble_in_both_languages(found):
    zh = answer_markdown(found, 3, "zh", dense_on=False)
    assert "在 1 篇文章中找到 · 来源" in zh and 'href="#cite-3-1"' in zh and 'href="#copy-3"' in zh
    assert "语义检索未开启" not in zh  # the banner says it; the folded view repeats it
    en = answer_markdown(found, 3, "en", dense_on=False)
    assert "Found in 1 article · Sources" in en and "Copy answer" in en
    assert "359家企业签约入驻" in en  # the quoted evidence stays Chinese
    for chinese_ui in ("找到", "来源", "复制", "点击"):
        assert chinese_ui not in en


def test_how_found_view_lists_each_leg_rank_engine_and_time(found):
    text = how_found_markdown(found, Trace("lexical", "", 12.3), 0, "zh")
    assert "关键词（jieba + BM25）" in text and "12 毫秒" in text and "语义检索未开启" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "#cite-0-p" in line]
    assert len(rows) == len(found.passages)
    assert " | 1 | — | " in rows[0]  # lexical rank 1, no dense rank
    en = how_found_markdown(found, Trace("hybrid", "multilingual-e5-small", 40), 0, "en")
    assert "hybrid (keywords + semantic)" in en and "multilingual-e5-small" in en and "Keyword rank" in en


def test_plain_copy_text_has_the_answer_and_its_sources(found):
    text = plain_text(found, "zh")
    assert text.startswith(found.text) and "\n来源:\n[1] 示范区:真抓实干求突破 全力以赴谋发展 — 002_d930b353b5af356e.txt" in text
    assert "<" not in text and "&#" not in text
    assert plain_text(found, "en").split("\n")[2] == "Sources:"


def test_a_source_line_lists_the_other_files_of_the_article(found):
    """An article stored once for several files (a reprint, a PDF and its scan) names them under the answer."""
    from dataclasses import replace

    from rag.chat_view import source_line

    p = found.citations[0].passage
    assert "同见于" not in source_line(p, "zh")
    twice = replace(p, sources=(p.source, "zkrb-p3-scan.pdf"))
    assert html.unescape(source_line(twice, "zh")).endswith(" · 同见于：zkrb-p3-scan.pdf")  # markdown-inert entities
    assert html.unescape(source_line(twice, "en")).endswith(" · Also in: zkrb-p3-scan.pdf")
    copied = plain_text(replace(found, citations=[replace(c, passage=twice) for c in found.citations]), "zh")
    assert "同见于：zkrb-p3-scan.pdf" in copied


def test_turn_keeps_the_whole_article_with_the_cited_sentences(lexical_index, found):
    turn = build_turn(found, "zh", lexical_index.article)
    card = turn.articles[turn.refs["1"]]
    assert card["body"] and card["title"] == "示范区:真抓实干求突破 全力以赴谋发展" and card["cited"]
    for start, end in card["cited"]:
        assert card["body"][start:end] in [c.sentence for c in found.citations]
    page = article_html(card, "[1]", "zh")
    assert '<mark class="cited">' in page and "姬慧洋" in page and "002_d930b353b5af356e.txt" in page
    assert len(html.unescape(page)) > len(found.passages[0].text)  # the whole article, not one passage


def test_article_of_a_changed_library_shows_the_passages_only(found):
    turn = build_turn(found, "en", lambda article_id: "some other text")  # the generation moved on
    card = turn.articles[turn.refs["1"]]
    assert card["body"] is None
    page = article_html(card, "[1]", "en")
    assert "no longer in the index" in page and '<mark class="cited">' in page


def test_article_panel_escapes_archive_text():
    card = {"title": "<b>标题</b>", "byline": "记者 <i>x</i>", "page": 2, "source": "a<.txt", "sources": ["a<.txt"],
            "body": "正文<img src=x onerror=alert(1)>句子。", "passages": [], "cited": [[2, 30]]}
    page = article_html(card, "[1]", "zh")
    assert "<img" not in page and "<b>" not in page and "<i>" not in page and "&lt;img" in page and "第 2 版" in page


def test_notices_follow_the_language():
    result = Answer("问", "", False, notices=(Notice(NoticeCode.SHORTENED, {"n": 2000}),
                                             Notice(NoticeCode.DENSE_OFF, {"reason": "未配置语义模型"})))
    shown, dense = split_notice(result, "zh")
    assert shown == "问题过长，只使用了前 2000 个字。" and dense == "语义检索未开启（未配置语义模型），本次仅使用关键词检索。"
    assert result.notice == f"{shown} {dense}"  # the Chinese text, as the CLI prints it
    shown, dense = split_notice(result, "en")
    assert shown == "The question was too long; only its first 2000 characters were used."
    assert dense.startswith("Semantic search is off")
    # every code speaks both languages, and English holds no Chinese
    for code in NoticeCode:
        note = Notice(code, {"n": 9, "reason": "原因", "percent": 12, "minutes": 3})
        assert note.text("zh") and not any("\u4e00" <= ch <= "\u9fff" for ch in note.text("en")), code


def test_escape_is_markdown_and_html_inert():
    assert escape("[a](javascript:x) <b> *x* _y_ `z` #") == (
        "&#91;a&#93;(javascript&#58;x) &#60;b&#62; &#42;x&#42; &#95;y&#95; &#96;z&#96; &#35;")
    # nothing an autolinker would pick up: URLs, www. names, e-mail addresses
    assert escape("见https://a.cn/x、WWW.zk.gov.cn和a@b.cn") == "见https&#58;//a.cn/x、WWW&#46;zk.gov.cn和a&#64;b.cn"
    assert html.unescape(escape("示范区:真抓实干 <b>&amp;")) == "示范区:真抓实干 <b>&amp;"
