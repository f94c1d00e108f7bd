"""Issue 17: a hostile client of the real app on 127.0.0.1.

No server file enters the archive through the UI's events, bodies are bounded and refused before
login, one slow upload does not hold up the others, names stay distinct and within 255 bytes,
one bad reader never stops a start or a sync, and wrong passwords are throttled.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
import unicodedata
import urllib.parse
import uuid
from pathlib import Path

import httpx
import pytest

from rag import build_index, open_index
from rag.guard import MAX_JSON_DEPTH, json_depth
from rag.library import Library, safe_name
from rag.settings import Settings

from .conftest import ROOT
from .serving import PASSWORD, USER, fresh_index, serve

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

NEW_DOC = "口袋公园扮靓川汇区\n本报讯（记者 张三）川汇区今年新建了12座口袋公园，总面积达到3.6万平方米。\n"
SECRET = "root:x:0:0:root:/root:/bin/bash\n本报讯（记者 甲）服务器上的机密文件，绝不能进入资料库。\n"


def _doc(n: int, text: str = NEW_DOC) -> bytes:
    return text.replace("12座", f"{n}座").encode("utf-8")


def _names(c: httpx.Client) -> list[str]:
    return [d["name"] for d in c.get("/api/v1/documents").json()["documents"]]


def _file_events(c: httpx.Client) -> list[tuple[int, dict, list[int]]]:
    """Every UI event that takes a file: (fn id, the event, positions of its file inputs)."""
    config = c.get("/config").json()
    kinds = {comp["id"]: comp.get("type") for comp in config["components"]}
    events = []
    for i, dep in enumerate(config["dependencies"]):
        slots = [n for n, cid in enumerate(dep.get("inputs", [])) if kinds.get(cid) in ("file", "uploadbutton", "image",
                                                                                         "video", "audio", "model3d")]
        if slots:
            events.append((dep.get("id", i), dep, slots))
    return events


def _queue_call(c: httpx.Client, fn: int, dep: dict, data: list) -> dict:
    """One raw call through the UI's queue, as the page makes it: join, then read the event stream to its end."""
    config = c.get("/config").json()
    kinds = {comp["id"]: comp for comp in config["components"]}
    session = uuid.uuid4().hex[:12]
    trigger = dep["targets"][0][0] if dep.get("targets") else None
    joined = c.post("/gradio_api/queue/join", json={"data": data, "fn_index": fn, "trigger_id": trigger,
                                                   "session_hash": session, "event_data": None})
    if joined.status_code != 200:
        return {"status": joined.status_code, "text": joined.text}
    assert kinds  # the config was read
    with c.stream("GET", f"/gradio_api/queue/data?session_hash={session}") as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    return message
    return {}


def _server_paths(server, tmp_path: Path) -> list[Path]:
    """Files of the server that must never enter the archive: outside every project folder, the
    project's README, the index's own files (and a stored original), and a file planted in the upload folder."""
    outside = tmp_path / "outside" / "passwd"
    outside.parent.mkdir()
    outside.write_text(SECRET, encoding="utf-8")
    index = server.index.folder
    stored = sorted((index / "files").glob("*")) if (index / "files").is_dir() else []
    from rag.ui import upload_folder

    planted = upload_folder() / uuid.uuid4().hex / "planted.txt"
    planted.parent.mkdir(parents=True)
    planted.write_text(SECRET, encoding="utf-8")
    return [outside, ROOT / "README.md", index / "CURRENT", *stored[:1], planted]


def _refused_everywhere(server, paths: list[Path], client: httpx.Client) -> None:
    before = sorted(_names(client))
    contents = {p: p.read_bytes() for p in paths}
    events = _file_events(client)
    assert events, "the UI has an event that takes a file"
    tried = 0
    for fn, dep, slots in events:
        for path in paths:
            for shape in ("list", "single"):
                value = {"path": str(path), "meta": {"_type": "gradio.FileData"}, "orig_name": path.name}
                data = [None] * len(dep["inputs"])
                for slot in slots:
                    data[slot] = [value] if shape == "list" else value
                result = _queue_call(client, fn, dep, data)
                tried += 1
                assert "已添加" not in json.dumps(result, ensure_ascii=False), (path, result)
                if dep.get("api_name"):  # the same event through Gradio's REST routes
                    for route in (f"/gradio_api/run/{dep['api_name']}", f"/gradio_api/call/{dep['api_name']}"):
                        answer = client.post(route, json={"data": data})
                        if route.startswith("/gradio_api/call/") and answer.status_code == 200:
                            answer = client.get(f"{route}/{answer.json()['event_id']}")
                        assert "已添加" not in answer.text, (route, path, answer.text[:300])
                        tried += 1
    assert sorted(_names(client)) == before  # nothing added
    for path, content in contents.items():
        assert path.read_bytes() == content  # nothing deleted or changed
    assert "root:x:0:0" not in json.dumps(client.get("/api/v1/documents").json())
    assert tried >= 2 * len(paths)


# --- 1. only real uploads are ingested --------------------------------------------------------------------


def test_raw_queue_call_with_a_server_path_is_refused(tmp_path):
    """The probe of issue 17: {"path": "/etc/passwd"} handed to the upload event (and to every event with a file)."""
    index = fresh_index(tmp_path)
    index.add([("已上传.txt", _doc(30))])  # so that the index folder holds a stored original too
    with serve(index) as s, httpx.Client(base_url=s.url.rstrip("/"), timeout=60) as c:
        paths = _server_paths(s, tmp_path)
        if Path("/etc/passwd").is_file():
            paths.append(Path("/etc/passwd"))
        _refused_everywhere(s, paths, c)
        assert sorted(_names(c)) == sorted(index.sources())
        (fn, dep, slots), = _file_events(c)
        data = [None] * len(dep["inputs"])
        data[slots[0]] = [{"path": "https://example.com/passwd.txt", "meta": {"_type": "gradio.FileData"}}]
        assert _queue_call(c, fn, dep, data)["status"] == 422  # a URL: Gradio would fetch it from the server
        assert s.app.state.demo.has_launched  # so that Gradio's own check (files in its upload folder only) runs too


def test_paths_into_the_index_folder_are_refused_and_nothing_is_deleted(tmp_path):
    index = fresh_index(tmp_path)
    index.add([("已上传.txt", _doc(31))])
    folder = index.folder
    inside = sorted(p for p in folder.rglob("*") if p.is_file())
    with serve(index) as s, httpx.Client(base_url=s.url.rstrip("/"), timeout=60) as c:
        tricks = [folder / "CURRENT", folder / "files" / ".." / "CURRENT", *sorted((folder / "files").glob("*"))]
        _refused_everywhere(s, tricks, c)
    assert all(p.exists() for p in inside)


def test_read_only_refuses_an_upload_without_deleting_it(lexical_index, tmp_path):
    from rag.ui import upload_folder

    planted = upload_folder() / uuid.uuid4().hex / "a.txt"
    planted.parent.mkdir(parents=True)
    planted.write_bytes(_doc(32))
    settings = lexical_index.settings.with_(read_only=True, watch_seconds=0)
    with serve(lexical_index, settings) as s, httpx.Client(base_url=s.url.rstrip("/"), timeout=60) as c:
        (fn, dep, slots), = _file_events(c)
        data = [None] * len(dep["inputs"])
        data[slots[0]] = [{"path": str(planted), "meta": {"_type": "gradio.FileData"}}]
        result = _queue_call(c, fn, dep, data)
        assert "只读模式" in json.dumps(result, ensure_ascii=False)
        assert planted.read_bytes() == _doc(32)  # (Gradio's own cache clean-up may remove it at shutdown)
        assert len(_names(c)) == 5


def test_real_ui_uploads_still_work_behind_a_login(tmp_path):
    index = fresh_index(tmp_path)
    doc = tmp_path / "口袋公园.txt"
    doc.write_bytes(_doc(12))
    with serve(index, auth=[(USER, PASSWORD)]) as s:
        client = gradio_client.Client(s.url, auth=(USER, PASSWORD), verbose=False)
        try:
            results, *_ = client.predict([gradio_client.handle_file(str(doc))], api_name="/upload")
        finally:
            client.close()
        assert results["data"][0][1] == "✓ 已添加"
        assert "口袋公园.txt" in index.sources()
        with httpx.Client(base_url=s.url.rstrip("/"), timeout=30) as anonymous:  # no login: refused before the body
            r = anonymous.post("/gradio_api/upload", files=[("files", ("x.txt", _doc(1)))])
            assert r.status_code == 401


# --- 2. bounded bodies, checked early ---------------------------------------------------------------------


class Body:
    """A streamed request body without Content-Length that counts what the server pulled from it."""

    def __init__(self, total: int, head: bytes = b"", chunk: int = 1 << 20):
        self.total, self.head, self.chunk, self.sent = total, head, chunk, 0

    def __iter__(self):
        if self.head:
            self.sent += len(self.head)
            yield self.head
        while self.sent < self.total:
            block = b"a" * min(self.chunk, self.total - self.sent)
            self.sent += len(block)
            yield block


def _post(c: httpx.Client, path: str, **kwargs) -> httpx.Response | None:
    try:
        return c.post(path, **kwargs)
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        return None  # the server answered and closed while the client was still sending


def _headers_only(url: str, path: str, declared: int, content_type: str) -> tuple[int, bytes]:
    """(status, body) of a POST that declares `declared` bytes and sends none. With a body in flight, the
    server's refusal can be lost: it closes with unread bytes, the kernel resets the connection, and the
    client may read nothing (this test once failed so under the full suite)."""
    import socket

    where = urllib.parse.urlsplit(url)
    with socket.create_connection((where.hostname, where.port), timeout=30) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Type: {content_type}\r\n"
                     f"Content-Length: {declared}\r\n\r\n".encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


MULTIPART_HEAD = (b'--b0undary\r\nContent-Disposition: form-data; name="files"; filename="big.txt"\r\n'
                  b"Content-Type: text/plain\r\n\r\n")


def test_bodies_are_capped_by_content_length_and_by_counting(lexical_index):
    settings = lexical_index.settings.with_(max_upload_mb=1, max_uploads=2, watch_seconds=0)  # uploads: 3 MB cap
    with serve(lexical_index, settings) as s, httpx.Client(base_url=s.url.rstrip("/"), timeout=60) as c:
        status, answer = _headers_only(s.url, "/api/v1/ask", 2 << 20, "application/json")
        assert status == 413 and json.loads(answer)["error"]["code"] == "too_large"
        # A declared size over the cap is refused before one byte is read.
        declared = Body(50 << 20, MULTIPART_HEAD)
        r = _post(c, "/api/v1/documents", content=declared,
                  headers={"content-type": "multipart/form-data; boundary=b0undary", "content-length": str(50 << 20)})
        assert r is None or r.status_code == 413
        assert declared.sent < 16 << 20
        for path, kind, total in (("/api/v1/ask", "application/json", 64 << 20),
                                  ("/api/v1/documents", "multipart/form-data; boundary=b0undary", 64 << 20),
                                  ("/gradio_api/queue/join", "application/json", 64 << 20)):
            body = Body(total, MULTIPART_HEAD if "multipart" in kind else b'{"question": "')
            r = _post(c, path, content=body, headers={"content-type": kind})
            assert r is None or r.status_code == 413, (path, r.status_code if r else None)
            assert body.sent < 16 << 20, (path, body.sent)  # the rest was never pulled from the client
        json_upload = Body(64 << 20, b"[")  # JSON is held in memory to measure it: the small cap on every route
        r = _post(c, "/api/v1/documents", content=json_upload, headers={"content-type": "application/json"})
        assert (r is None or r.status_code == 413) and json_upload.sent < 16 << 20
        assert c.post("/api/v1/ask", json={"question": "许寨社区有多少名党员？"}).json()["found"]  # still serving


def test_login_is_checked_before_an_upload_body_is_read(lexical_index):
    with serve(lexical_index, auth=[(USER, PASSWORD)]) as s, httpx.Client(base_url=s.url.rstrip("/"), timeout=60) as c:
        for path, kind in (("/api/v1/documents", "multipart/form-data; boundary=b0undary"),
                           ("/api/v1/ask", "application/json"),
                           ("/gradio_api/upload", "multipart/form-data; boundary=b0undary")):
            body = Body(200 << 20, MULTIPART_HEAD if "multipart" in kind else b"{")
            r = _post(c, path, content=body, headers={"content-type": kind})
            assert r is None or r.status_code == 401, (path, r.status_code if r else None)
            assert body.sent < 16 << 20, (path, body.sent)


def test_deep_json_is_a_422_not_a_500(server_default):
    c = server_default
    deep = b'{"question": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r = c.post("/api/v1/ask", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_parameter"
    r = c.post("/gradio_api/queue/join", content=b"[" * 5000 + b"]" * 5000, headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = c.post("/api/v1/ask", content=deep)  # no content type: FastAPI still reads it as JSON
    assert r.status_code == 422
    assert json_depth(b'{"a": "[[[[[[[[", "b": [1, {"c": [2]}]}') == 4  # brackets inside strings do not count
    ok = c.post("/api/v1/ask", json={"question": "许寨社区有多少名党员？", "history": [{"role": "user", "content": "[[[["}]})
    assert ok.status_code == 200
    assert MAX_JSON_DEPTH >= 16


@pytest.fixture(scope="module")
def server_default(lexical_index):
    with serve(lexical_index) as s, httpx.Client(base_url=s.url.rstrip("/"), timeout=60) as c:
        yield c


def test_malformed_multipart_is_a_400(server_default):
    r = server_default.post("/api/v1/documents", content=b"[[[[", headers={"content-type": "multipart/form-data; boundary=zz"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"


# --- 3. bounded ingest, outside the writer lock -----------------------------------------------------------


def test_files_over_the_limits_are_refused_with_the_reason(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "seeds", docs)
    settings = Settings().with_(max_chars=20_000, max_articles=20, watch_seconds=0)
    index = build_index(docs, tmp_path / "index", model="none", settings=settings, progress=False)
    many = "".join(f"第{i}条新闻标题\n本报讯（记者 李四）这是第{i}条消息的正文，内容不长。\n\n" for i in range(60)).encode()
    long = ("超长文件\n本报讯（记者 王五）" + "周口新闻" * 8_000 + "\n").encode()
    with serve(index, settings) as s, httpx.Client(base_url=s.api, timeout=60) as c:
        page = ("<!doctype html><html><body>" + "<p>本报讯（记者 王五）网页正文很长。</p>" * 4_000 + "</body></html>").encode()
        files = [("files", ("many.txt", many, "text/plain")), ("files", ("long.txt", long, "text/plain")),
                 ("files", ("ok.txt", _doc(12), "text/plain")), ("files", ("page.html", page, "text/html"))]
        changes = {ch["name"]: ch for ch in c.post("/documents", files=files).json()["changes"]}
        assert changes["many.txt"]["status"] == "refused" and "文章过多" in changes["many.txt"]["message"]
        assert "上限 20" in changes["many.txt"]["message"]
        assert changes["long.txt"]["status"] == "refused" and "文字过多" in changes["long.txt"]["message"]
        assert changes["ok.txt"]["status"] == "added"
        # a huge web page is refused from its stripped tags, before the (slow) main-text extraction
        assert changes["page.html"]["status"] == "refused" and "文字过多（约" in changes["page.html"]["message"]
        assert sorted(d for d in _names_api(c) if not d.startswith("00")) == ["ok.txt"]
    stored = [p.name for p in (index.folder / "files").iterdir()]
    assert len(stored) == 1 and stored[0].endswith("-ok.txt")  # refused files leave nothing behind


def _names_api(c: httpx.Client) -> list[str]:
    return [d["name"] for d in c.get("/documents").json()["documents"]]


def test_pages_to_ocr_are_limited_before_any_ocr(tmp_path, monkeypatch):
    from rag.ingest import IngestLimits, ocr, read_bytes
    from rag.ingest.base import Unreadable

    if not ocr.available():
        pytest.skip("OCR extra not installed")
    from PIL import Image

    monkeypatch.setattr(ocr, "engine", lambda: pytest.fail("OCR ran although the file is over the limit"))
    frames = [Image.new("L", (200, 200), 255) for _ in range(3)]
    tiff, pdf = tmp_path / "scan.tif", tmp_path / "scan.pdf"
    frames[0].save(tiff, save_all=True, append_images=frames[1:])
    frames[0].convert("RGB").save(pdf, save_all=True, append_images=[f.convert("RGB") for f in frames[1:]])
    for path in (tiff, pdf):
        with pytest.raises(Unreadable, match="OCR 的页数过多（3 页，上限 2 页"):
            read_bytes(path.read_bytes(), path.name, IngestLimits(max_ocr_pages=2))
        monkeypatch.setenv("RAG_MAX_OCR_PAGES", "2")  # the same limit from the environment, read at the call
        with pytest.raises(Unreadable, match="OCR 的页数过多（3 页，上限 2 页"):
            read_bytes(path.read_bytes(), path.name)
        monkeypatch.delenv("RAG_MAX_OCR_PAGES")


def _hold_reading(monkeypatch, source: str) -> tuple[threading.Event, threading.Event]:
    """Library.prepare holds a batch with `source` until `release` is set; `reading` tells it has begun."""
    release, reading = threading.Event(), threading.Event()
    original = Library.prepare

    def held_prepare(self, items):
        if any(info.source == source for _, info in items):
            reading.set()
            assert release.wait(120)
        return original(self, items)

    monkeypatch.setattr(Library, "prepare", held_prepare)
    return release, reading


def test_a_slow_upload_does_not_hold_up_small_ones_and_its_outcome_can_be_read_later(tmp_path, monkeypatch):
    """Reading a file happens outside the writer lock: while one upload is still being read, another
    commits; a client that gave up waiting sees the first one as processing, then its outcome."""
    index = fresh_index(tmp_path)
    release, reading = _hold_reading(monkeypatch, "big.txt")
    with serve(index) as s:
        slow: dict = {}

        def upload_big():
            with httpx.Client(base_url=s.api, timeout=120) as c:
                slow["response"] = c.post("/documents", files=[("files", ("big.txt", _doc(40), "text/plain"))])

        worker = threading.Thread(target=upload_big)
        worker.start()
        try:
            assert reading.wait(60)
            with httpx.Client(base_url=s.api, timeout=60) as c:
                assert c.get("/documents/big.txt").json()["upload"]["state"] == "processing"
                small = c.post("/documents", files=[("files", ("small.txt", _doc(41), "text/plain"))]).json()
                assert small["changes"][0]["status"] == "added"  # committed while big.txt is still being read
                assert "small.txt" in _names_api(c) and "big.txt" not in _names_api(c)
        finally:
            release.set()
            worker.join(120)
        assert slow["response"].json()["changes"][0]["status"] == "added"
        with httpx.Client(base_url=s.api, timeout=60) as c:
            status = c.get("/documents/big.txt").json()
            assert status["document"]["status"] == "ok" and status["upload"]["state"] == "added"
            assert c.get("/documents/never-uploaded.txt").status_code == 404


# --- 4. names ---------------------------------------------------------------------------------------------


def test_names_are_bounded_by_bytes_and_a_multi_file_upload_reports_per_file(tmp_path):
    index = fresh_index(tmp_path)
    emoji, cjk = "😀" * 70 + ".txt", "周" * 100 + ".txt"
    with serve(index) as s, httpx.Client(base_url=s.api, timeout=60) as c:
        files = [("files", ("a.txt", _doc(1), "text/plain")), ("files", (emoji, _doc(2), "text/plain")),
                 ("files", ("c.txt", _doc(3), "text/plain")), ("files", (cjk, _doc(4), "text/plain")),
                 ("files", ("line\r\nbreak.txt", _doc(5), "text/plain")), ("files", ("..", _doc(6), "text/plain"))]
        r = c.post("/documents", files=files)
        assert r.status_code == 200
        changes = r.json()["changes"]
        assert [ch["status"] for ch in changes] == ["added"] * 5 + ["refused"]
        names = [ch["name"] for ch in changes[:5]]
        assert names[0] == "a.txt" and names[2] == "c.txt"
        assert all(len(n.encode("utf-8")) <= 200 for n in names) and names[1].endswith(".txt")
        assert "\r" not in names[4] and "\n" not in names[4]
        for n in names:
            got = c.get("/documents/" + urllib.parse.quote(n, safe="") + "/articles").json()
            assert got.get("count") == 1, (n, got)
    assert all(len(p.name.encode()) <= 255 for p in (index.folder / "files").iterdir())


def test_different_names_never_silently_replace_each_other(tmp_path):
    index = fresh_index(tmp_path)
    long_a, long_b = "甲" * 90 + "一.txt", "甲" * 90 + "二.txt"  # share their first 90 characters
    nfc = unicodedata.normalize("NFC", "café.txt")
    nfd = unicodedata.normalize("NFD", nfc)
    with serve(index) as s, httpx.Client(base_url=s.api, timeout=60) as c:
        def up(name, n):
            return c.post("/documents", files=[("files", (name, _doc(n), "text/plain"))]).json()["changes"][0]

        assert up("x.txt", 1)["status"] == "added"
        clash = up("../x.txt", 2)
        assert clash["status"] == "refused" and "重名" in clash["message"]
        assert up("../x.txt", 1)["status"] == "unchanged"  # the same content is no clash
        assert up("x.txt", 3)["status"] == "replaced"  # the same name, new content: a replace, as before

        a, b = up(long_a, 4), up(long_b, 5)
        assert a["status"] == b["status"] == "added" and a["name"] != b["name"]
        assert up(long_a, 6)["status"] == "replaced" and up(long_a, 6)["name"] == a["name"]

        assert up(nfc, 7)["status"] == "added"
        assert up(nfd, 8)["status"] == "refused"
        together = c.post("/documents", files=[("files", ("y.txt", _doc(9), "text/plain")),
                                               ("files", ("sub/y.txt", _doc(10), "text/plain"))]).json()["changes"]
        assert [ch["status"] for ch in together] == ["added", "refused"]

        bidi = up("news\u202efdp.txt", 11)
        assert bidi["status"] == "added" and bidi["name"] == "newsfdp.txt"
        invisible = up("x.txt\u200b", 12)  # looks like x.txt: the same name, so a clash, not a second x.txt
        assert invisible["status"] == "refused" and "重名" in invisible["message"]
        names = _names_api(c)
        assert not any("\u202e" in n or "\u200b" in n for n in names)
    assert safe_name("a\u2066b\u2069.txt") == "ab.txt"
    assert safe_name("\ufeffx\u200b\u200d.txt") == "x.txt"


# --- 5. a bad reader never stops a start or a sync ---------------------------------------------------------


def test_a_reader_that_fails_is_skipped_at_start_and_in_sync(tmp_path, monkeypatch):
    """An ImportError inside the HTML reader (a broken install) skips that file with its reason."""
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "seeds", docs)
    (docs / "page.html").write_text("<html><body><h1>标题</h1><p>本报讯（记者 甲）网页正文。</p></body></html>",
                                    encoding="utf-8")
    monkeypatch.setitem(sys.modules, "trafilatura", None)  # `import trafilatura` now raises ImportError
    settings = Settings().with_(docs_dir=docs, index_dir=tmp_path / "index", model="none", watch_seconds=0)
    index = open_index(settings, progress=False)  # what `python app.py` does first; it used to exit with code 1
    skipped = {d.source: d for d in index.documents()}["page.html"]
    assert skipped.status == "skipped" and "ModuleNotFoundError" in skipped.reason
    (docs / "more.html").write_text("<html><body><p>另一页</p></body></html>", encoding="utf-8")
    (docs / "new.txt").write_bytes(_doc(50))
    changes = {c.source: c for c in index.sync()}
    assert changes["more.html"].status == "skipped" and changes["new.txt"].status == "added"
    assert "new.txt" in index.sources()
    with serve(index) as s, httpx.Client(base_url=s.api, timeout=60) as c:
        r = c.post("/documents", files=[("files", ("up.html", b"<html><body><p>x</p></body></html>", "text/html"))])
        assert r.status_code == 200 and r.json()["changes"][0]["status"] == "refused"
        assert "ModuleNotFoundError" in r.json()["changes"][0]["message"]


# --- 6. login throttling -------------------------------------------------------------------------------------


def test_wrong_passwords_are_throttled_per_client(lexical_index):
    with serve(lexical_index, auth=[(USER, PASSWORD)]) as s, httpx.Client(base_url=s.url.rstrip("/"), timeout=30) as c:
        codes = [c.get("/api/v1/info", auth=(USER, f"wrong{i}")).status_code for i in range(40)]
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
        spoofed = [c.get("/api/v1/info", auth=(USER, "wrong"), headers={"X-Forwarded-For": f"10.0.{i}.1"}).status_code
                   for i in range(5)]  # a header the client writes itself names no other client
        assert set(spoofed) == {429}
        r = c.get("/api/v1/info", auth=(USER, PASSWORD))  # during the back-off even the right one waits
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "too_many_attempts"
        logins = [c.post("/login", data={"username": USER, "password": "nope"}).status_code for _ in range(5)]
        assert set(logins) == {429}
        time.sleep(int(r.headers["retry-after"]) + 0.2)
        assert c.get("/api/v1/info", auth=(USER, PASSWORD)).status_code == 200  # and a success starts over
        again = [c.post("/login", data={"username": USER, "password": "nope"}).status_code for _ in range(12)]
        assert again[:5] == [400] * 5 and 429 in again[5:]  # the UI's login form counts the same way


# --- leftovers --------------------------------------------------------------------------------------------------


def test_originals_of_a_killed_upload_are_collected_when_the_app_starts(tmp_path):
    index = fresh_index(tmp_path)
    files = index.folder / "files"
    files.mkdir(exist_ok=True)
    orphan = files / ("0" * 16 + "-killed.txt")
    orphan.write_bytes(_doc(60))
    (files / ".half-written.txt.123.tmp").write_bytes(b"x")
    kept = index.add([("kept.txt", _doc(61))])
    assert kept[0].status == "added"
    orphan.write_bytes(_doc(60))  # the commit above collected it already; leave one for the start
    with serve(index) as s:
        deadline = time.monotonic() + 30
        while orphan.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not orphan.exists()
        assert [p.name for p in files.iterdir()] == [d.stored for d in index.documents() if d.origin == "stored"]
        assert s.index.sources()


def test_a_slow_file_of_the_docs_folder_does_not_hold_up_uploads(tmp_path, monkeypatch):
    """The folder watch reads a changed file outside the writer lock too; it commits once it is read."""
    index = fresh_index(tmp_path)
    release, reading = _hold_reading(monkeypatch, "slow.txt")
    (index.settings.docs_dir / "slow.txt").write_bytes(_doc(70))
    with serve(index) as s:
        synced: dict = {}
        worker = threading.Thread(target=lambda: synced.setdefault("changes", index.sync()))
        worker.start()
        try:
            assert reading.wait(60)
            with httpx.Client(base_url=s.api, timeout=60) as c:
                small = c.post("/documents", files=[("files", ("small.txt", _doc(71), "text/plain"))]).json()
                assert small["changes"][0]["status"] == "added"  # committed while slow.txt is still being read
        finally:
            release.set()
            worker.join(120)
        assert [(ch.source, ch.status) for ch in synced["changes"]] == [("slow.txt", "added")]
        assert {"slow.txt", "small.txt"} <= set(index.sources())
