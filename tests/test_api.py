"""The JSON API for real: the whole app (uvicorn on 127.0.0.1) queried with httpx."""

from __future__ import annotations

import os
import re
import shutil
import time

import httpx
import pytest

from rag import BackendUnavailable, IndexLocked, LexicalUnavailable, build_index

from .conftest import SEEDS
from .serving import PASSWORD, USER, fresh_index, serve

QUESTION = "智慧岛核心区签约入驻了多少家企业？"
NEW_DOC = """口袋公园扮靓川汇区
本报讯（记者 张三 通讯员 李四）川汇区今年新建了12座口袋公园，总面积达到3.6万平方米。口袋公园里种植了银杏和月季，市民纷纷前往游玩。
"""
NEW_QUESTION = "川汇区今年新建了多少座口袋公园？"


@pytest.fixture(scope="module")
def server(lexical_index):
    with serve(lexical_index) as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.api, timeout=60) as c:
        yield c


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert "Traceback" not in response.text
    return body["error"]


def test_health_and_info(client):
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/info").json()
    assert info["documents"] == 5 and info["articles"] > 30 and info["chunks"] > 50
    assert info["dense"]["enabled"] is False and info["dense"]["reason"]
    assert info["read_only"] is False and info["generation"] >= 1


def test_retrieve_returns_passages_with_sources_spans_and_ranks(client):
    r = client.get("/retrieve", params={"q": "智慧岛核心区签约入驻企业", "k": 3})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert "智慧岛" in r.text and "\\u" not in r.text  # plain UTF-8, not ASCII-escaped
    body = r.json()
    assert body["mode"] == "lexical" and body["notice"] and body["engine"] == "" and body["elapsed_ms"] > 0
    first = body["passages"][0]
    assert first["source"] == "002_d930b353b5af356e.txt" and first["sources"] == [first["source"]]
    assert first["title"] == "示范区:真抓实干求突破 全力以赴谋发展" and "姬慧洋" in first["byline"]
    assert 0 <= first["span"]["start"] < first["span"]["end"] and first["page"] is None
    assert first["ranks"]["lexical"] >= 1 and first["ranks"]["dense"] is None
    assert len(body["passages"]) == 3


def test_retrieve_filters_by_repeated_source(client):
    wanted = ["001_39b2f5fd87845c7e.txt", "003_dbd476b8f86f7364.txt"]
    body = client.get("/retrieve", params=[("q", "停车位 社区"), ("k", "8")] + [("source", s) for s in wanted]).json()
    assert body["passages"] and {p["source"] for p in body["passages"]} <= set(wanted)


def test_ask_answers_with_citations_that_point_into_passages(client):
    body = client.post("/ask", json={"question": QUESTION}).json()
    assert body["found"] is True and "359" in body["answer"] and "[1]" in body["answer"]
    for c in body["citations"]:
        assert c["sentence"] in body["passages"][c["passage"]]["text"]
    assert body["passages"][body["citations"][0]["passage"]]["source"] == "002_d930b353b5af356e.txt"
    assert body["mode"] == "lexical" and "语义检索未开启" in body["notice"]
    first = body["citations"][0]
    start, end = first["answer_span"]
    assert first["sentence"][start:end] == "359家"  # the answer itself, for clients to mark
    assert 0.5 <= body["confidence"] <= 1 and "unsure" not in {n["code"] for n in body["notices"]}


def test_ask_follow_up_uses_the_history(client):
    body = client.post("/ask", json={"question": "那里新建了多少个停车位？", "k": 5,
                                     "history": [{"role": "user", "content": "黄淮市场和麒麟建材城是怎么治理的？"}]}).json()
    assert "停车位325个" in body["answer"] and body["query"] != body["question"]


def test_ask_not_found(client):
    body = client.post("/ask", json={"question": "火星有几颗卫星？"}).json()
    assert body["found"] is False and body["citations"] == [] and body["answer"] == "资料中没有找到相关内容。"
    assert body["confidence"] is None or body["confidence"] < 0.35


def test_an_english_question_gets_an_english_answer_and_a_chinese_one_a_chinese_answer(client):
    english = client.post("/ask", json={"question": "What is the capital of France?"}).json()
    assert english["found"] is False and english["language"] == "en"
    assert english["answer"] == "Nothing in the archive answers this question."
    assert english["notice"] and not any("\u4e00" <= ch <= "\u9fff" for ch in english["notice"]), english["notice"]
    chinese = client.post("/ask", json={"question": "火星有几颗卫星？"}).json()
    assert chinese["language"] == "zh" and chinese["answer"] == "资料中没有找到相关内容。"
    found = client.post("/ask", json={"question": QUESTION}).json()
    assert found["found"] and "359家" in found["answer"]  # the quoted evidence stays as the archive has it


def test_error_details_name_the_field_the_method_and_say_it_in_chinese_first(client):
    error = _error(client.post("/ask", content=b'{"question": ', headers={"content-type": "application/json"}), 422,
                   "invalid_parameter")
    assert error["field"] == "body" and error["message"].startswith("请求体不是有效的 JSON")  # not a byte offset
    response = client.get("/ask")
    error = _error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST" and "POST" in error["message"]
    _error(client.post("/retrieve", params={"q": "智慧岛"}), 405, "method_not_allowed")
    _error(client.get("/no-such-route"), 404, "not_found")
    error = _error(client.post("/ask", data={"question": QUESTION}), 422, "invalid_parameter")  # a form, not JSON
    assert error["field"] == "body" and error["message"].startswith("请求体必须是 JSON 对象")
    assert "Input should" not in error["message"]  # no raw pydantic English inside the Chinese message
    error = _error(client.post("/ask", json={"question": 42}), 422, "invalid_parameter")
    assert error["field"] == "question" and error["message"].startswith("参数 question 必须是字符串")
    assert "Input should" not in error["message"]


def test_empty_question_is_a_400(client):
    error = _error(client.post("/ask", json={"question": "   "}), 400, "empty_question")
    assert error["message"].startswith("问题不能为空") and error["field"] == "question"
    _error(client.get("/retrieve", params={"q": ""}), 400, "empty_query")


@pytest.mark.parametrize("k", [0, 51, "many"])
def test_k_out_of_range_is_a_422(client, k):
    error = _error(client.get("/retrieve", params={"q": "智慧岛", "k": k}), 422, "invalid_parameter")
    assert error["field"] == "k" and "1 到 50" in error["message"]
    _error(client.post("/ask", json={"question": QUESTION, "k": k}), 422, "invalid_parameter")


def test_unknown_mode_and_bad_bodies_are_clear_errors(client):
    error = _error(client.get("/retrieve", params={"q": "智慧岛", "mode": "fast"}), 422, "invalid_parameter")
    assert error["field"] == "mode" and "hybrid" in error["message"]
    _error(client.post("/ask", json={"question": QUESTION, "mode": "fast"}), 422, "invalid_parameter")
    _error(client.post("/ask", json={}), 422, "invalid_parameter")
    _error(client.post("/ask", content=b"{not json", headers={"content-type": "application/json"}), 422,
           "invalid_parameter")
    error = _error(client.get("/retrieve", params={"q": "智慧岛", "mode": "dense"}), 400, "dense_unavailable")
    assert "语义检索不可用" in error["message"]
    _error(client.get("/nothing-here"), 404, "not_found")


def test_documents_and_their_articles(client):
    docs = client.get("/documents").json()
    assert docs["count"] == 5 and docs["documents"][0]["name"] == "000_511f53cd465d0282.txt"
    assert all(d["status"] == "ok" and d["origin"] == "folder" and d["articles"] > 0 for d in docs["documents"])
    articles = client.get("/documents/002_d930b353b5af356e.txt/articles").json()
    heads = {a["headline"]: a for a in articles["articles"]}
    assert articles["count"] == len(articles["articles"]) > 3
    article = heads["示范区:真抓实干求突破 全力以赴谋发展"]
    assert "姬慧洋" in article["byline"] and "359" in article["body"]
    _error(client.get("/documents/nope.txt/articles"), 404, "not_found")
    _error(client.delete("/documents/nope.txt"), 404, "not_found")
    _error(client.delete("/documents/002_d930b353b5af356e.txt"), 409, "in_docs_folder")


def test_archive_text_is_returned_raw_never_html_escaped(tmp_path):
    from .test_app import MALICIOUS

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "evil.txt").write_text(MALICIOUS, encoding="utf-8")
    index = build_index(docs, tmp_path / "index", model="none", progress=False)
    with serve(index) as s:
        body = httpx.get(s.api + "/retrieve", params={"q": "智慧岛测试稿件"}).json()
    text = body["passages"][0]["text"]
    assert "<img src=x onerror=" in text and "<script>" in text and "&#" not in text and "&lt;" not in text


def test_index_failures_become_json_errors(server, client, monkeypatch):
    def locked(*args, **kwargs):
        raise IndexLocked("另一个进程正在写入")

    monkeypatch.setattr(server.index, "retrieve", locked)
    error = _error(client.get("/retrieve", params={"q": "智慧岛"}), 503, "index_busy")
    assert "稍后重试" in error["message"]

    def storage_down(*args, **kwargs):  # a Milvus server that went away
        raise BackendUnavailable("无法连接 Milvus 服务器 milvus://10.0.0.5:19530")

    monkeypatch.setattr(server.index, "retrieve", storage_down)
    error = _error(client.get("/retrieve", params={"q": "智慧岛"}), 503, "storage_unavailable")
    assert "milvus://10.0.0.5:19530" in error["message"]

    def no_bm25(*args, **kwargs):  # a Milvus 2.3 server: no BM25
        raise LexicalUnavailable("Milvus 2.3 服务器不支持关键词检索；请用 hybrid 或 dense")

    monkeypatch.setattr(server.index, "retrieve", no_bm25)
    error = _error(client.get("/retrieve", params={"q": "智慧岛", "mode": "lexical"}), 400, "lexical_unavailable")
    assert error["field"] == "mode" and "dense" in error["message"]

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(server.index, "search", broken)  # what /ask reads through
    error = _error(client.post("/ask", json={"question": QUESTION}), 500, "internal_error")
    assert "disk on fire" not in error["message"]
    monkeypatch.undo()
    assert client.post("/ask", json={"question": QUESTION}).json()["found"] is True


# --- the library: upload, ask, delete ---------------------------------------------------------------


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api-library")
    index = fresh_index(folder)
    with serve(index) as s:
        yield s


def test_upload_then_ask_then_delete(library):
    docs_before = sorted(p.name for p in (library.index.settings.docs_dir).iterdir())
    with httpx.Client(base_url=library.api, timeout=120) as c:
        assert c.post("/ask", json={"question": NEW_QUESTION}).json()["found"] is False
        files = [("files", ("口袋公园.txt", NEW_DOC.encode("utf-8"), "text/plain")),
                 ("files", ("../../etc/evil.txt", "周口\n本报讯（记者 王五）测试。\n".encode(), "text/plain")),
                 ("files", ("tool.exe", b"\x7fELF\x02\x01\x01" + bytes(64), "application/octet-stream"))]
        changes = {ch["name"]: ch for ch in c.post("/documents", files=files).json()["changes"]}
        assert changes["口袋公园.txt"]["status"] == "added" and changes["口袋公园.txt"]["articles"] == 1
        assert changes["evil.txt"]["status"] == "added"  # the path is dropped: only a safe file name is kept
        assert changes["tool.exe"]["status"] == "refused" and "不支持" in changes["tool.exe"]["message"]

        body = c.post("/ask", json={"question": NEW_QUESTION}).json()
        assert body["found"] and "12座口袋公园" in body["answer"]
        assert body["passages"][body["citations"][0]["passage"]]["source"] == "口袋公园.txt"
        names = [d["name"] for d in c.get("/documents").json()["documents"]]
        assert "口袋公园.txt" in names and "evil.txt" in names and "tool.exe" not in names
        articles = c.get("/documents/口袋公园.txt/articles").json()["articles"]
        assert articles[0]["headline"] == "口袋公园扮靓川汇区" and "张三" in articles[0]["byline"]

        # stored inside the index folder, never in the docs folder or elsewhere
        stored = [p.name for p in (library.index.folder / "files").iterdir()]
        assert any(n.endswith("-口袋公园.txt") for n in stored) and any(n.endswith("-evil.txt") for n in stored)
        assert sorted(p.name for p in library.index.settings.docs_dir.iterdir()) == docs_before

        again = c.post("/documents", files=[("files", ("口袋公园.txt", NEW_DOC.encode("utf-8"), "text/plain"))]).json()
        assert again["changes"][0]["status"] == "unchanged"

        removed = c.delete("/documents/口袋公园.txt").json()["changes"]
        assert removed[0]["status"] == "removed"
        after = c.post("/ask", json={"question": NEW_QUESTION}).json()
        assert all(p["source"] != "口袋公园.txt" for p in after["passages"])
        assert "12座口袋公园" not in after["answer"]
        _error(c.delete("/documents/口袋公园.txt"), 404, "not_found")
        assert c.delete("/documents/evil.txt").status_code == 200


def test_upload_limits(library):
    settings = library.index.settings.with_(max_uploads=2, max_upload_mb=1, watch_seconds=0)
    with serve(library.index, settings) as s, httpx.Client(base_url=s.api, timeout=60) as c:
        three = [("files", (f"{i}.txt", b"x", "text/plain")) for i in range(3)]
        error = _error(c.post("/documents", files=three), 400, "too_many_files")
        assert "最多上传 2 个" in error["message"]
        big = ("本报讯（记者 甲）" + "周口" * 400_000).encode("utf-8")  # 2.4 MB
        change = c.post("/documents", files=[("files", ("big.txt", big, "text/plain"))]).json()["changes"][0]
        assert change["status"] == "refused" and "过大" in change["message"]
        _error(c.post("/documents"), 422, "invalid_parameter")


def test_read_only_rejects_upload_and_delete(lexical_index):
    settings = lexical_index.settings.with_(read_only=True, watch_seconds=0)
    with serve(lexical_index, settings) as s, httpx.Client(base_url=s.api, timeout=60) as c:
        files = [("files", ("a.txt", NEW_DOC.encode("utf-8"), "text/plain"))]
        assert "只读" in _error(c.post("/documents", files=files), 403, "read_only")["message"]
        _error(c.delete("/documents/002_d930b353b5af356e.txt"), 403, "read_only")
        assert c.get("/documents").json()["count"] == 5
        assert c.get("/info").json()["read_only"] is True
        assert c.post("/ask", json={"question": QUESTION}).json()["found"]


# --- auth ---------------------------------------------------------------------------------------------


def test_auth_is_required_with_the_same_account_as_the_ui(lexical_index):
    with serve(lexical_index, auth=[(USER, PASSWORD)]) as s:
        with httpx.Client(base_url=s.url, timeout=60) as anonymous:
            r = anonymous.get("/api/v1/info")
            _error(r, 401, "unauthorized")
            assert r.headers["www-authenticate"].startswith("Basic")
            _error(anonymous.post("/api/v1/ask", json={"question": QUESTION}), 401, "unauthorized")
            _error(anonymous.get("/api/v1/documents"), 401, "unauthorized")
            _error(anonymous.get("/api/docs"), 401, "unauthorized")
            _error(anonymous.get("/api/openapi.json"), 401, "unauthorized")
            assert anonymous.get("/api/v1/health").status_code == 200  # liveness stays open
            _error(anonymous.get("/api/v1/info", auth=(USER, "wrong")), 401, "unauthorized")
        with httpx.Client(base_url=s.url, timeout=60, auth=(USER, PASSWORD)) as signed_in:
            assert signed_in.get("/api/v1/info").json()["documents"] == 5
            assert signed_in.post("/api/v1/ask", json={"question": QUESTION}).json()["found"]
        with httpx.Client(base_url=s.url, timeout=60) as browser:  # the UI's login session works too
            assert browser.post("/login", data={"username": USER, "password": PASSWORD}).status_code == 200
            assert browser.get("/api/v1/info").status_code == 200


def test_openapi_docs(server):
    docs = httpx.get(server.url + "api/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    # Every asset the page references is served by the app itself: it works on an intranet without a CDN.
    assets = re.findall(r'(?:href|src)=["\']([^"\']+)["\']', docs.text) + re.findall(r"url: ?'([^']+)'", docs.text)
    assert len(assets) >= 4, assets  # the CSS, the favicon, the JS and the schema
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
        response = httpx.get(server.url + asset.lstrip("/"))
        assert response.status_code == 200 and len(response.content) > 100, asset
    assert "validator.swagger.io" not in docs.text and "cdn.jsdelivr" not in docs.text
    schema = httpx.get(server.url + "api/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/api/v1/ask", "/api/v1/retrieve", "/api/v1/info", "/api/v1/health", "/api/v1/documents",
            "/api/v1/documents/{name}", "/api/v1/documents/{name}/articles"} <= paths
    assert "AskIn" in schema["components"]["schemas"] and "ErrorOut" in schema["components"]["schemas"]


# --- the folder watch ---------------------------------------------------------------------------------


def test_files_added_to_and_deleted_from_the_docs_folder_are_picked_up_while_running(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(SEEDS / "002_d930b353b5af356e.txt", docs)
    index = build_index(docs, tmp_path / "index", model="none", progress=False)
    with serve(index, index.settings.with_(watch_seconds=0.3)) as s, httpx.Client(base_url=s.api, timeout=60) as c:
        assert c.post("/ask", json={"question": NEW_QUESTION}).json()["found"] is False
        (docs / "new.txt").write_text(NEW_DOC, encoding="utf-8")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "12座口袋公园" in c.post("/ask", json={"question": NEW_QUESTION}).json()["answer"]:
                break
            time.sleep(0.3)
        else:
            pytest.fail("the new file of the docs folder was not picked up")
        assert "new.txt" in [d["name"] for d in c.get("/documents").json()["documents"]]

        (docs / "new.txt").unlink()  # a file deleted from the folder leaves the running app's answers too
        deadline = time.monotonic() + 60
        while "new.txt" in [d["name"] for d in c.get("/documents").json()["documents"]]:
            assert time.monotonic() < deadline, "the deleted file of the docs folder is still listed"
            time.sleep(0.3)
        assert "12座口袋公园" not in c.post("/ask", json={"question": NEW_QUESTION}).json()["answer"]


def test_app_py_serves_ui_and_api_read_only_behind_a_login(lexical_index):
    """`python app.py` for real: flags wired through to the app (subprocess, free port)."""
    import socket
    import subprocess
    import sys

    from .conftest import ROOT

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "app.py", "--port", str(port), "--docs", str(SEEDS), "--index", str(lexical_index.folder),
               "--model", "none", "--read-only", "--auth", f"{USER}:{PASSWORD}"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.5)
        else:
            pytest.fail("app.py did not start")
        assert httpx.get(base + "/api/v1/info").status_code == 401
        info = httpx.get(base + "/api/v1/info", auth=(USER, PASSWORD)).json()
        assert info["read_only"] is True and info["documents"] == 5
        assert httpx.get(base + "/", timeout=10).status_code == 200  # the login page
    finally:
        proc.terminate()
        proc.wait(20)


# --- reliability through the app (issue 9) -------------------------------------------------------------

EXTRA = "\n周口新建天文馆{n}\n本报讯（记者 宋风）周口天文馆第{n}期今日开馆，馆内有球幕影院，可容纳{n}百名观众。\n"


def test_ask_keeps_answering_across_rebuilds_and_switches_to_the_new_content(tmp_path):
    """Three rebuilds by another process while four clients keep asking: no failed request, new content served."""
    import subprocess
    import sys
    import threading

    from .conftest import ROOT

    index = fresh_index(tmp_path)
    docs = index.settings.docs_dir
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")} | {"RAG_MODEL": "none"}
    stop, failures, answered = threading.Event(), [], [0]
    with serve(index) as s:
        def asker():
            with httpx.Client(base_url=s.api, timeout=60) as c:
                while not stop.is_set():
                    try:
                        r = c.post("/ask", json={"question": QUESTION})
                        body = r.json()
                        assert r.status_code == 200 and body["found"] and "359" in body["answer"], r.text[:300]
                        answered[0] += 1
                    except Exception as exc:  # any failure is what this test is about
                        failures.append(repr(exc))

        threads = [threading.Thread(target=asker) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            with httpx.Client(base_url=s.api, timeout=60) as c:
                for n in range(1, 4):
                    with open(docs / "004_12cb73f56a8ba074.txt", "a", encoding="utf-8") as f:
                        f.write(EXTRA.format(n=n))
                    build = subprocess.run([sys.executable, "-m", "rag", "-q", "build", "--docs", str(docs),
                                            "--index", str(index.folder)], cwd=ROOT, env=env, capture_output=True,
                                           text=True, timeout=300)
                    assert build.returncode == 0, build.stderr[-2000:]
                    deadline = time.monotonic() + 30
                    while True:
                        body = c.post("/ask", json={"question": f"周口天文馆第{n}期可容纳多少名观众？"}).json()
                        if body["found"] and f"{n}百名观众" in body["answer"]:
                            break
                        assert time.monotonic() < deadline, f"the app never served rebuild {n}: {body['answer']}"
                        time.sleep(0.2)
        finally:
            stop.set()
            for t in threads:
                t.join()
    assert failures == [], failures[:5]
    assert answered[0] > 20


def test_a_60k_character_question_gets_a_clean_answer_and_does_not_hold_up_others(server, client):
    huge = "智慧岛核心区签约入驻了多少家企业？" * 3530  # 60,010 characters
    assert len(huge) > 60_000
    r = client.post("/ask", json={"question": huge})
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert "问题过长，只使用了前 2000 个字" in body["notice"] and len(body["question"]) == 2000
    assert {"code": "shortened", "params": {"n": 2000}} in body["notices"]  # for programs: a code, not a sentence
    assert "Traceback" not in r.text

    import concurrent.futures

    started = time.monotonic()
    client.post("/ask", json={"question": QUESTION})
    alone = time.monotonic() - started
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        def ask(q):
            with httpx.Client(base_url=server.api, timeout=120) as c:
                return c.post("/ask", json={"question": q}).status_code
        longs = [pool.submit(ask, huge) for _ in range(3)]
        time.sleep(0.1)  # the long ones are in flight
        started = time.monotonic()
        assert ask(QUESTION) == 200
        beside = time.monotonic() - started
        assert [f.result() for f in longs] == [200, 200, 200]
    assert beside < alone + 1.0, (alone, beside)
