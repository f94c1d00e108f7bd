"""Held-out check: a 3-column page and its scan, questions whose answers are only on that page.

Six Wikipedia paragraphs of the CMRC 2018 trial set (read from ../shared/eval, never copied into the
project) are set as articles of one newspaper page: headlines that wrap onto two lines, a photo
with a two-sentence caption, the page number in the running head, no bylines. The page is indexed
as a PDF, as its scan (OCR), and both together. Every CMRC question of those paragraphs whose answer
is short is asked; a question counts when the first passage stands under the right headline and
holds the answer string (spaces ignored). Issue 14 asks for 95 %.
"""

from __future__ import annotations

import json
import re

import pytest

from rag import build_index
from rag.ingest import ocr

from . import pages
from .conftest import SHARED_EVAL

CMRC = SHARED_EVAL / "cmrc2018_trial.json"
TARGET = 0.95

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CMRC.exists(), reason=f"CMRC 2018 trial set not found at {CMRC}"),
    pytest.mark.skipif(not ocr.available(), reason='OCR 未安装（pip install -e ".[ocr]"）'),
]


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def held_out_page():
    """(pdf bytes, [(headline, question, answer)]) for six CMRC paragraphs set as one page."""
    data = json.loads(CMRC.read_text(encoding="utf-8"))["data"]
    chosen = []
    for article in data:
        para = article["paragraphs"][0]
        context = para["context"]
        qas = [(q["question"], q["answers"][0]["text"]) for q in para["qas"] if len(q["answers"][0]["text"]) <= 25]
        if 200 <= len(context) <= 330 and len(qas) >= 3 and "-{" not in context and "formula" not in context:
            chosen.append((article["title"], context, qas))
        if len(chosen) == 6:
            break
    stories = []
    for n, (title, context, _) in enumerate(chosen):
        caption = [f"图为{title}。", "记者 周晓明 摄"] if n == 1 else []
        stories.append(pages.Story(f"{title}：一段介绍", [context], caption=caption))
    placed = [(stories[0], 0, 1), (stories[1], 1, 2), (stories[2], 0, 1), (stories[3], 1, 1), (stories[4], 2, 1),
              (stories[5], 0, 3)]
    pdf, _ = pages.column_page(placed, folio="第5版")
    questions = [(f"{title}：一段介绍", q, a) for title, _, qas in chosen for q, a in qas]
    return pdf, questions


def _rate(index, questions) -> tuple[float, list]:
    misses = []
    for headline, question, answer in questions:
        passages = index.retrieve(question, k=5)
        top = passages[0] if passages else None
        ok = top is not None and _squash(top.title) == _squash(headline) and _squash(answer) in _squash(top.text)
        if not ok:
            misses.append((question, answer, top.title if top else None, top.text[:60] if top else None))
    return 1 - len(misses) / len(questions), misses


@pytest.fixture(scope="module")
def page_files(tmp_path_factory):
    pdf, questions = held_out_page()
    scan = pages.scanned_pdf([pages.render_png(pdf, 0, dpi=200)])
    folder = tmp_path_factory.mktemp("held-out")
    return folder, pdf, scan, questions


@pytest.mark.parametrize("files", [("pdf",), ("scan",), ("pdf", "scan")])
def test_answers_at_rank_1_under_their_headline(page_files, files):
    folder, pdf, scan, questions = page_files
    docs = folder / "-".join(files)
    docs.mkdir()
    if "pdf" in files:
        (docs / "page-5.pdf").write_bytes(pdf)
    if "scan" in files:
        (docs / "page-5-scan.pdf").write_bytes(scan)
    index = build_index(docs, folder / f"index-{'-'.join(files)}", model="none", progress=False)
    try:
        rate, misses = _rate(index, questions)
        print(f"\n{'+'.join(files)}: {len(questions) - len(misses)}/{len(questions)} = {rate:.1%} at rank 1 under the right headline")
        for miss in misses:
            print("  miss:", miss)
        assert rate >= TARGET, misses
        info = index.info()
        assert info.articles == 6, "the page and its scan are one set of articles"
        if len(files) == 2:
            scanned = next(d for d in index.documents() if d.source == "page-5-scan.pdf")
            assert scanned.duplicates == 6
            top = index.retrieve(questions[0][1], k=5)
            assert set(top[0].sources) == {"page-5.pdf", "page-5-scan.pdf"}
            assert all(p.page == 5 for p in top)
    finally:
        index.close()
