"""A real headless Chromium (Debian's) driving the real UI through Playwright."""

from __future__ import annotations

import shutil
import tempfile
from urllib.parse import urlparse

import pytest

from rag import build_index

from .conftest import ARTIFACTS
from .test_app import MALICIOUS, _serve

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not shutil.which("chromium"), reason="Debian chromium is not installed")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=ARGS, headless=True, viewport={"width": 1280, "height": 900}
        )
        yield context
        context.close()


def _ask(page, url: str, question: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    box = page.locator("#qa-input textarea")
    box.wait_for(state="visible", timeout=30_000)
    box.fill(question)
    box.press("Enter")
    page.locator("#qa-chat").get_by_text("来源", exact=False).or_(
        page.locator("#qa-chat").get_by_text("资料中没有找到相关内容")
    ).first.wait_for(timeout=60_000)
    sync_api.expect(box).to_be_editable(timeout=30_000)


def test_question_shows_cited_answer_with_headline_and_source(browser, lexical_index):
    demo = _serve(lexical_index)
    page = browser.new_page()
    try:
        _ask(page, demo.local_url, "智慧岛核心区签约入驻了多少家企业？")
        chat = page.locator("#qa-chat")
        sync_api.expect(chat.get_by_text("359家企业签约入驻", exact=False).first).to_be_visible()
        sync_api.expect(chat.get_by_text("示范区:真抓实干求突破 全力以赴谋发展", exact=False).first).to_be_visible()
        sync_api.expect(chat.get_by_text("002_d930b353b5af356e.txt", exact=False).first).to_be_visible()
        assert "[1]" in chat.inner_text()
        # Open the first source card: the passage with the cited sentence.
        chat.locator(".thought-group .title", has_text="[1] 示范区").first.click()
        sync_api.expect(chat.locator("strong", has_text="359家企业签约入驻").first).to_be_visible(timeout=10_000)
        assert page.locator("#index-status").get_by_text("文本块", exact=False).count() > 0
        page.wait_for_timeout(400)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "answer.png"), full_page=True)
    finally:
        page.close()
        demo.close()


def test_malicious_document_runs_nothing_and_loads_nothing(browser, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "evil.txt").write_text(MALICIOUS, encoding="utf-8")
    demo = _serve(build_index(docs, tmp_path / "index", model="none", progress=False))
    page = browser.new_page()
    requests, dialogs = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        _ask(page, demo.local_url, "智慧岛测试稿件里有什么？")
        chat = page.locator("#qa-chat")
        sync_api.expect(chat.get_by_text("<img src=x", exact=False).first).to_be_visible()
        chat.locator(".thought-group .title", has_text="[1] 恶意测试稿件").first.click()
        page.wait_for_timeout(800)
        assert page.evaluate("window.__xss") is None
        assert page.locator("#qa-chat img[src='x']").count() == 0
        assert page.locator("#qa-chat script").count() == 0
        assert dialogs == []
        foreign = [u for u in requests if urlparse(u).hostname not in ("127.0.0.1", "localhost", None) and not u.startswith("data:")]
        assert foreign == [], foreign
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "xss.png"), full_page=True)
    finally:
        page.close()
        demo.close()
