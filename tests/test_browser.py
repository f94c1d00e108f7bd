"""A real headless Chromium (Debian's) driving the real app through Playwright; screenshots in tests/artifacts/."""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from urllib.parse import urlparse

import pytest

from rag import build_index

from . import pages
from .conftest import ARTIFACTS
from .serving import fresh_index, serve
from .test_app import MALICIOUS

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not shutil.which("chromium"), reason="Debian chromium is not installed")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
QUESTION = "智慧岛核心区签约入驻了多少家企业？"
ENGLISH = "How many enterprises signed up in the Smart Island core area?"


@pytest.fixture(scope="module")
def playwright():
    """One Playwright per module: a second one cannot start while the first runs (it owns the event loop)."""
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright):
    with tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=ARGS, headless=True, viewport={"width": 1280, "height": 900},
            locale="zh-CN",  # a Chinese reader's browser: Gradio's own labels (the upload area) follow it
        )
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        yield context
        context.close()


@pytest.fixture(scope="module")
def english_browser(playwright):
    """An English reader's browser (navigator.language and Accept-Language en-US)."""
    with tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=ARGS, headless=True, viewport={"width": 1280, "height": 900},
            locale="en-US",
        )
        yield context
        context.close()


def _foreign(urls: list[str]) -> list[str]:
    return [u for u in urls if not u.startswith("data:") and urlparse(u).hostname not in ("127.0.0.1", None)]


@pytest.fixture(scope="module")
def chat_server(lexical_index):
    with serve(lexical_index) as s:
        yield s


@pytest.fixture()
def page(browser):
    page = browser.new_page()
    yield page
    page.close()


def _open(page, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.locator("#qa-input textarea").wait_for(state="visible", timeout=60_000)
    expect(page.locator("#index-status")).to_contain_text("文本块", timeout=30_000)  # archive data, loaded per request


def _bot(page):
    return page.locator('#qa-chat [data-testid="bot"]')


def _wait_answer(page, before: int) -> None:
    """Until the answer's bubbles are there and the textbox takes input again."""
    expect(_bot(page)).not_to_have_count(before, timeout=90_000)
    expect(page.locator("#qa-input textarea")).to_be_editable(timeout=30_000)
    page.wait_for_timeout(300)


def _ask(page, question: str) -> None:
    before = _bot(page).count()
    box = page.locator("#qa-input textarea")
    box.fill(question)
    box.press("Enter")
    _wait_answer(page, before)


def _shot(page, name: str) -> None:
    page.wait_for_timeout(400)  # panel animations
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_example_chip_answers_and_cite_opens_the_article(page, chat_server):
    _open(page, chat_server.url)
    chips = page.locator("#examples button.chip")
    expect(chips.first).to_have_text(QUESTION)
    expect(page.locator("#english-chip")).to_be_hidden()  # the dense leg is off: no English example
    before = _bot(page).count()
    chips.first.click()
    _wait_answer(page, before)
    chat = page.locator("#qa-chat")
    expect(chat.get_by_text("359家企业签约入驻", exact=False).first).to_be_visible()
    expect(chat.get_by_text("在 1 篇文章中找到", exact=False).first).to_be_visible()
    expect(chat.locator("a.src").first).to_contain_text("示范区:真抓实干求突破 全力以赴谋发展")
    expect(chat.locator("a.src").first).to_contain_text("002_d930b353b5af356e.txt")

    chat.locator("a.cite", has_text="[1]").first.click()  # [1] opens the whole article beside the chat
    view = page.locator("#article-view")
    expect(view.locator(".article-headline")).to_have_text("示范区:真抓实干求突破 全力以赴谋发展", timeout=15_000)
    expect(view.locator(".article-byline")).to_contain_text("记者 姬慧洋")
    expect(view.locator("mark.cited").filter(has_text="359家企业签约入驻").first).to_be_visible()
    assert len(view.inner_text()) > 1500  # the whole article, not only the passage

    page.locator(".thought-group .title", has_text="检索过程").first.click()  # folded by default
    table = chat.locator("table").first
    expect(table).to_contain_text("关键词名次")
    expect(chat.get_by_text("关键词（jieba + BM25）", exact=False).first).to_be_visible()

    chat.locator("a.copy-answer").first.click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("截至目前") or "359" in copied.split("\n")[0]
    assert "来源:\n[1] 示范区:真抓实干求突破 全力以赴谋发展 — 002_d930b353b5af356e.txt" in copied
    assert "<" not in copied and "&#" not in copied
    _shot(page, "answer.png")


def test_follow_up_and_the_source_line_opens_its_article(page, chat_server):
    _open(page, chat_server.url)
    _ask(page, "黄淮市场和麒麟建材城是怎么治理的？")
    _ask(page, "那里新建了多少个停车位？")
    chat = page.locator("#qa-chat")
    expect(chat.get_by_text("停车位325个", exact=False).first).to_be_visible()
    chat.locator('a.src[href^="#cite-1-"]').first.click()  # the second answer's source line
    view = page.locator("#article-view")
    expect(view.locator("mark.cited").first).to_be_visible(timeout=15_000)
    expect(view.locator("mark.cited").filter(has_text="325").first).to_be_visible()
    _shot(page, "follow-up.png")


def test_english_question_without_dense_gets_english_ui_text(page, chat_server):
    _open(page, chat_server.url)
    _ask(page, ENGLISH)
    chat = page.locator("#qa-chat")
    expect(chat.get_by_text("Nothing in the archive answers this question.").first).to_be_visible()
    expect(chat.get_by_text("try asking in Chinese", exact=False).first).to_be_visible()
    assert "资料中没有找到" not in chat.inner_text()


@pytest.fixture(scope="module")
def dense_server(bundled_index):
    with serve(bundled_index) as s:
        yield s


def test_hybrid_answer_shows_both_legs_ranks_and_opens_the_article(page, dense_server):
    _open(page, dense_server.url)
    _ask(page, QUESTION)
    chat = page.locator("#qa-chat")
    expect(chat.get_by_text("在 1 篇文章中找到", exact=False).first).to_be_visible()
    expect(chat.get_by_text("359家", exact=False).first).to_be_visible()
    page.locator(".thought-group .title", has_text="检索过程").first.click()
    expect(chat.get_by_text("混合（关键词 + 语义）", exact=False).first).to_be_visible()
    cited_row = chat.locator("table").first.locator("tr", has=page.locator("b.cited")).first
    keyword_rank, semantic_rank = (cited_row.locator("td").nth(i).inner_text() for i in (2, 3))
    assert keyword_rank.isdigit() and semantic_rank.isdigit(), (keyword_rank, semantic_rank)  # found by both legs
    chat.locator("a.cite", has_text="[1]").first.click()
    view = page.locator("#article-view")
    expect(view.locator(".article-headline")).to_have_text("示范区:真抓实干求突破 全力以赴谋发展", timeout=15_000)
    expect(view.locator("mark.cited").filter(has_text="359家").first).to_be_visible()
    _shot(page, "hybrid.png")


def _ask_english_on_dense(page, server) -> None:
    _open(page, server.url)
    chip = page.locator("#english-chip")
    expect(chip).to_be_visible()  # the dense leg is on: the English example is offered
    before = _bot(page).count()
    chip.click()
    _wait_answer(page, before)


def test_english_question_gets_english_ui_text(page, dense_server):
    _ask_english_on_dense(page, dense_server)
    chat = page.locator("#qa-chat")
    text = chat.inner_text()
    assert ("Found in" in text and "Sources" in text) or ("Nothing in the archive" in text and "Possibly related" in text)
    expect(page.locator(".thought-group .title", has_text="How this was found").first).to_be_visible()
    for chinese_ui in ("在 1 篇文章中找到", "来源", "资料中没有找到", "可能相关", "检索过程", "复制答案"):
        assert chinese_ui not in text, chinese_ui
    page.locator(".thought-group .title", has_text="How this was found").first.click()
    expect(chat.get_by_text("hybrid (keywords + semantic)", exact=False).first).to_be_visible()
    expect(chat.get_by_text("multilingual-e5-small", exact=False).first).to_be_visible()
    expect(chat.locator("table").first).to_contain_text("Semantic rank")
    row = chat.locator("table").first.locator("tr").nth(1)  # the best passage: found by the semantic leg first
    expect(row).to_contain_text("示范区")
    expect(row.locator("td").nth(3)).to_have_text("1")
    chat.locator("a.src").first.click()  # a source opens its article, labelled in English
    view = page.locator("#article-view")
    expect(view.locator(".article-card[data-lang='en']")).to_be_visible(timeout=15_000)
    # what the semantic leg found, highlighted in the whole article: the 359 enterprises
    expect(view.locator("mark").filter(has_text="359家").first).to_be_visible()
    _shot(page, "english.png")


def test_english_question_cites_the_smart_island_sentence(page, dense_server):
    _ask_english_on_dense(page, dense_server)
    chat = page.locator("#qa-chat")
    expect(chat.get_by_text("Found in 1 article", exact=False).first).to_be_visible(timeout=5_000)
    expect(chat.get_by_text("359家企业签约入驻", exact=False).first).to_be_visible(timeout=5_000)


@pytest.mark.slow
def test_english_browser_gets_english_furniture_and_the_chinese_evidence_quoted(english_browser, dense_server):
    page = english_browser.new_page()
    try:
        page.goto(dense_server.url, wait_until="domcontentloaded")
        page.locator("#qa-input textarea").wait_for(state="visible", timeout=60_000)
        expect(page.locator("#index-status")).to_contain_text("Library:", timeout=30_000)
        expect(page.locator("#index-status")).to_contain_text("bundled 4-bit copy")
        expect(page.locator("#intro")).to_contain_text("Zhoukou local-news QA")
        expect(page.get_by_role("tab", name="Ask")).to_be_visible()
        expect(page.get_by_role("tab", name="Library")).to_be_visible()
        expect(page.locator("#qa-input textarea")).to_have_attribute("placeholder", "Type a question and press Enter")
        expect(page.locator("#qa-input button", has_text="Ask")).to_be_visible()
        expect(page.locator("#examples-label")).to_have_text("Examples:")
        expect(page.locator("#new-chat")).to_have_text("New chat")
        expect(page.locator("#settings")).to_contain_text("Settings")
        before = _bot(page).count()
        page.locator("#english-chip").click()
        _wait_answer(page, before)
        chat = page.locator("#qa-chat")
        expect(chat.get_by_text("Found in 1 article", exact=False).first).to_be_visible()
        expect(chat.get_by_text("359家企业签约入驻", exact=False).first).to_be_visible()  # the evidence, as printed
        page.locator(".thought-group .title", has_text="How this was found").first.click()
        expect(chat.get_by_text("multilingual-e5-small (bundled 4-bit copy)", exact=False).first).to_be_visible()
        _shot(page, "english-browser.png")
        furniture = page.locator("body").inner_text()
        for chinese in ("提问", "示例", "新对话", "设置", "资料库", "输入问题", "文本块", "检索过程", "语义引擎"):
            assert chinese not in furniture, chinese
        page.get_by_role("tab", name="Library").click()
        docs = page.locator("#lib-docs")
        expect(docs).to_contain_text("002_d930b353b5af356e.txt")
        for header in ("Name", "Type", "Articles", "Origin", "Status"):
            expect(docs.locator("th", has_text=header).first).to_be_visible()
        expect(docs).to_contain_text("docs folder")
        expect(page.locator("#lib-upload-btn")).to_have_text("Upload to the library")
        expect(page.locator("#lib-summary")).to_contain_text("5 documents")
        assert "名称" not in docs.inner_text() and "文档目录" not in docs.inner_text()
    finally:
        page.close()


@pytest.mark.slow
def test_api_docs_render_with_no_outside_request(page, chat_server):
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(chat_server.url + "api/docs", wait_until="domcontentloaded")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("周口新闻问答助手 API", timeout=30_000)
    expect(page.locator(".swagger-ui .opblock-summary-path", has_text="/api/v1/ask").first).to_be_visible()
    page.locator(".swagger-ui .opblock-summary-path", has_text="/api/v1/ask").first.click()  # an operation opens
    expect(page.locator(".swagger-ui .opblock-body").first).to_be_visible()
    _shot(page, "api-docs.png")
    assert any(u.endswith("/api/docs/static/swagger-ui-bundle.js") for u in requests), requests
    assert _foreign(requests) == [], _foreign(requests)


# --- the library tab ------------------------------------------------------------------------------------

NEW_DOC = """口袋公园扮靓川汇区
本报讯（记者 张三 通讯员 李四）川汇区今年新建了12座口袋公园，总面积达到3.6万平方米。口袋公园里种植了银杏和月季，市民纷纷前往游玩。
"""
NEW_QUESTION = "川汇区今年新建了多少座口袋公园？"


def _sample_file(kind: str, folder) -> tuple:
    """A file of `kind` holding NEW_DOC: plain text, or a typeset three-column PDF page with a text layer."""
    path = folder / f"口袋公园.{kind}"
    if kind == "txt":
        path.write_text(NEW_DOC, encoding="utf-8")
    elif kind == "pdf":
        title, byline_and_body = NEW_DOC.strip().split("\n")
        byline, body = byline_and_body.split("）", 1)
        path.write_bytes(pages.typeset_pdf(title, byline + "）", [body]))
    else:
        raise ValueError(kind)
    return path, "12座口袋公园"


@pytest.fixture(scope="module")
def library_server(tmp_path_factory):
    with serve(fresh_index(tmp_path_factory.mktemp("browser-library"))) as s:
        yield s


@pytest.mark.parametrize("kind", ["txt", "pdf"])
def test_upload_ask_delete(page, library_server, tmp_path, kind):
    path, evidence = _sample_file(kind, tmp_path)
    junk = tmp_path / "tool.exe"  # a program: no reader takes it
    junk.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(64))
    _open(page, library_server.url)
    page.get_by_role("tab", name="资料库").click()
    docs = page.locator("#lib-docs")
    expect(docs).to_contain_text("002_d930b353b5af356e.txt")
    page.locator("#lib-files input[type=file]").set_input_files([str(path), str(junk)])
    # Gradio shows the stem and the extension in separate elements ("口袋公园 .pdf"): wait for the stem
    expect(page.locator("#lib-files")).to_contain_text(path.stem, timeout=30_000)
    page.locator("#lib-upload-btn").click()
    results = page.locator("#lib-results")
    expect(results).to_contain_text("已添加", timeout=90_000)
    expect(results).to_contain_text("已拒绝")
    expect(results).to_contain_text("不支持的文件类型")
    expect(docs).to_contain_text(path.name, timeout=30_000)

    page.locator("#lib-docs").get_by_text(path.name).first.click()  # a row opens its preview
    preview = page.locator("#lib-preview")
    expect(preview).to_contain_text("口袋公园扮靓川汇区", timeout=15_000)
    expect(preview).to_contain_text("记者 张三")
    _shot(page, "library.png")

    page.get_by_role("tab", name="问答").click()
    _ask(page, NEW_QUESTION)
    chat = page.locator("#qa-chat")
    expect(chat.get_by_text(evidence, exact=False).first).to_be_visible()
    expect(chat.locator("a.src").first).to_contain_text(path.name)

    page.get_by_role("tab", name="资料库").click()
    delete = page.locator("#lib-delete-doc input")
    delete.fill(path.name)
    delete.press("Enter")
    page.locator("#lib-delete-btn").click()
    expect(page.locator("#lib-delete-message")).to_contain_text("确定从资料库删除")
    page.locator("#lib-delete-confirm").click()
    expect(page.locator("#lib-delete-message")).to_contain_text("已删除", timeout=60_000)
    expect(docs).not_to_contain_text(path.name, timeout=30_000)
    # The dropdowns forget the deleted document: a second 删除… asks for a choice, not to confirm a ghost.
    expect(page.locator("#lib-delete-doc input")).to_have_value("", timeout=15_000)
    page.locator("#lib-delete-btn").click()
    expect(page.locator("#lib-delete-message")).to_contain_text("请先选择要删除的文档")
    expect(page.locator("#lib-confirm-row")).to_be_hidden()
    assert "python -m rag" not in page.locator("#lib-delete-message").inner_text()
    # the header line and the library line count the same snapshot
    status, summary = page.locator("#index-status").inner_text(), page.locator("#lib-summary").inner_text()
    assert re.search(r"文章 (\d+) 篇", status).group(1) == re.search(r"(\d+) 篇文章", summary).group(1)
    assert re.search(r"文本块 (\d+) 个", status).group(1) == re.search(r"(\d+) 个文本块", summary).group(1)

    page.get_by_role("tab", name="问答").click()
    _ask(page, NEW_QUESTION)
    last = _bot(page).nth(_bot(page).count() - 2)  # the answer bubble before its folded panel
    assert evidence not in last.inner_text() and path.name not in last.inner_text()


@pytest.mark.slow
def test_a_scan_upload_shows_its_stages_and_is_marked_as_read_by_ocr(page, library_server, tmp_path):
    first = pages.typeset_pdf("口袋公园扮靓川汇区", "本报讯（记者 张三）",
                              ["川汇区今年新建了12座口袋公园，总面积达到3.6万平方米。口袋公园里种植了银杏和月季。"])
    second = pages.typeset_pdf("淮阳区修缮古城墙", "本报讯（记者 李四）",
                               ["淮阳区今年修缮古城墙800米，新建步道2公里。市民可以沿城墙散步。"])
    scan = tmp_path / "扫描版.pdf"
    scan.write_bytes(pages.scanned_pdf([pages.render_png(first), pages.render_png(second)]))
    _open(page, library_server.url)
    page.get_by_role("tab", name="资料库").click()
    page.locator("#lib-files input[type=file]").set_input_files([str(scan)])
    expect(page.locator("#lib-files")).to_contain_text(scan.stem, timeout=30_000)  # stem and extension are two elements
    page.locator("#lib-upload-btn").click()
    results = page.locator("#lib-results")
    seen: list[str] = []
    shot = False
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        text = results.inner_text()
        if not seen or seen[-1] != text:
            seen.append(text)
        if not shot and "OCR 第 2/2 页" in text and "还需约" in text:
            _shot(page, "upload-progress.png")
            shot = True
        if "已添加" in text or "已拒绝" in text:
            break
        page.wait_for_timeout(200)
    shown = "\n".join(seen)
    assert "已添加" in seen[-1], seen[-1]
    assert "OCR 第 1/2 页" in shown and "OCR 第 2/2 页" in shown, shown  # page by page
    assert "已用" in shown, shown  # with the time spent
    docs = page.locator("#lib-docs")
    expect(docs).to_contain_text(scan.name, timeout=30_000)
    expect(docs).to_contain_text("PDF（OCR 识别）")  # the only scan of the library says it was read by OCR
    _shot(page, "upload-scan-done.png")


def test_login_then_the_archive_appears(page, lexical_index):
    from .serving import PASSWORD, USER

    with serve(lexical_index, auth=[(USER, PASSWORD)]) as s:
        page.goto(s.url, wait_until="domcontentloaded")
        login = page.locator("input[type=password]")
        login.wait_for(timeout=60_000)
        assert "002_d930b353b5af356e.txt" not in page.content()
        assert page.title() == "周口新闻问答助手"  # the login page names the app, in its title and above the form
        expect(page.get_by_text("请登录后提问", exact=False)).to_be_visible()
        _shot(page, "login.png")
        page.locator("input[type=text]").first.fill(USER)
        login.fill(PASSWORD)
        login.press("Enter")
        page.locator("#qa-input textarea").wait_for(state="visible", timeout=60_000)
        expect(page.locator("#index-status")).to_contain_text("文档 5 篇", timeout=30_000)  # loaded after login
        _ask(page, QUESTION)
        expect(page.locator("#qa-chat").get_by_text("359家企业签约入驻", exact=False).first).to_be_visible()


def test_read_only_mode_hides_the_upload_and_delete_controls(page, lexical_index):
    with serve(lexical_index, lexical_index.settings.with_(read_only=True, watch_seconds=0)) as s:
        _open(page, s.url)
        page.get_by_role("tab", name="资料库").click()
        expect(page.locator("#lib-readonly")).to_contain_text("只读模式")
        expect(page.locator("#lib-docs")).to_contain_text("002_d930b353b5af356e.txt")
        for hidden in ("#lib-files", "#lib-upload-btn", "#lib-delete-btn", "#lib-delete-doc", "#lib-results"):
            expect(page.locator(hidden)).to_be_hidden()
        page.locator("#lib-preview-doc input").fill("002_d930b353b5af356e.txt")
        page.locator("#lib-preview-doc input").press("Enter")
        expect(page.locator("#lib-preview")).to_contain_text("示范区:真抓实干求突破 全力以赴谋发展", timeout=15_000)
        _shot(page, "read-only.png")


def test_malicious_document_runs_nothing_and_loads_nothing(page, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "evil.txt").write_text(MALICIOUS, encoding="utf-8")
    requests, dialogs = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    with serve(build_index(docs, tmp_path / "index", model="none", progress=False)) as s:
        _open(page, s.url)
        _ask(page, "智慧岛测试稿件里有什么？")
        chat = page.locator("#qa-chat")
        expect(chat.get_by_text("<img src=x", exact=False).first).to_be_visible()
        chat.locator("a.cite", has_text="[1]").first.click()
        view = page.locator("#article-view")
        expect(view).to_contain_text("<script>window.__xss=1</script>", timeout=15_000)
        page.locator(".thought-group .title", has_text="检索过程").first.click()
        page.get_by_role("tab", name="资料库").click()
        page.locator("#lib-preview-doc input").fill("evil.txt")
        page.locator("#lib-preview-doc input").press("Enter")
        expect(page.locator("#lib-preview")).to_contain_text("<img src=x", timeout=15_000)
        page.wait_for_timeout(800)
        assert page.evaluate("window.__xss") is None
        for area in ("#qa-chat", "#article-view", "#lib-preview"):
            assert page.locator(f"{area} img[src='x']").count() == 0
            assert page.locator(f"{area} script").count() == 0
        assert dialogs == []
        hrefs = page.evaluate("Array.from(document.querySelectorAll('#qa-chat a')).map(a => a.getAttribute('href'))")
        assert hrefs and all(h.startswith("#") for h in hrefs), hrefs  # no archive text became a link
        foreign = [u for u in requests if urlparse(u).hostname not in ("127.0.0.1", "localhost", None) and not u.startswith("data:")]
        assert foreign == [], foreign
        page.get_by_role("tab", name="问答").click()
        _shot(page, "xss.png")
