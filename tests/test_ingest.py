"""Readers on real files made here: newspaper PDFs, their scans, Word files, saved web pages, broken files."""

from __future__ import annotations

import difflib
import io
import logging
import re

import pytest

from rag.articles import split_articles
from rag.ingest import READERS, Unreadable, detect, ocr, read_bytes, read_documents
from rag.ingest.layout import Run, page_text, xy_cut

from . import pages

SENTENCE = re.compile(r"[^。！？；]+[。！？；]”?")


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _sentences(paragraphs: list[str]) -> list[str]:
    return [s for p in paragraphs for s in SENTENCE.findall(p)]


def _by_title(articles):
    return {_squash(a.title): a for a in articles}


@pytest.fixture(scope="module")
def locked() -> bytes:
    return pages.newspaper_pdf(encrypt="secret")[0]


@pytest.fixture(scope="module")
def newspaper():
    pdf, printed = pages.newspaper_pdf()
    return pdf, printed, read_bytes(pdf, "zkrb-2023-03-01.pdf")


# --- PDF with a text layer -------------------------------------------------------------


def test_pdf_articles_headlines_bylines_and_pages(newspaper):
    _, printed, doc = newspaper
    assert doc.kind == "pdf" and doc.pages == 2 and doc.text.count("\f") == 1
    articles = [a for a in split_articles(doc) if a.byline]
    assert [_squash(a.title) for a in articles] == [_squash(p.title) for p in printed]
    assert [_squash(a.byline) for a in articles] == [_squash(p.byline) for p in printed]
    assert [a.page for a in articles] == [p.page for p in printed] == [1, 1, 1, 2, 2, 2]
    assert articles[4].title == "起好步开好局 作风建设不停歇"  # a headline set on two lines


def test_pdf_columns_are_not_interleaved(newspaper):
    """Every sentence printed comes back whole, in the right article, in the printed order."""
    _, printed, doc = newspaper
    articles = _by_title(split_articles(doc))
    for p in printed:
        body = articles[_squash(p.title)].body
        flat = body.replace("\n", "")
        at = 0
        for sentence in _sentences(p.paragraphs):
            found = flat.find(sentence, at)
            assert found >= 0, (p.title, sentence)
            at = found + len(sentence)
        for other in printed:  # nothing of another article leaks in
            if other is not p:
                assert _sentences(other.paragraphs)[0] not in flat


def test_pdf_caption_is_lifted_out_of_the_sentence_around_the_photo(newspaper):
    _, printed, doc = newspaper
    first = _by_title(split_articles(doc))[_squash(printed[0].title)]
    assert first.captions == ["正在建设中的领尚科技现代化厂房"]
    assert "王文峰表示，项目建设是实现产业崛起的必由路径，是拉动区域经济高质量发展的重要引擎" in first.body


def test_pdf_running_head_is_dropped_and_numbers_wrapped_across_lines_join(newspaper):
    _, _, doc = newspaper
    assert "第2版 开发区新闻" not in doc.text
    body = _by_title(split_articles(doc))["起好步开好局作风建设不停歇"].body
    assert "值班值守到岗率100%" in body


def test_pdf_set_with_scaled_fonts_and_fake_bold():
    title, byline, paragraphs = pages.seed_article("000_511f53cd465d0282.txt", "精准监督守护就业“铁饭碗”")
    doc = read_bytes(pages.typeset_pdf(title, byline, paragraphs), "typeset.pdf")
    [article] = [a for a in split_articles(doc) if a.byline]
    assert (article.title, _squash(article.byline)) == (title, _squash(byline))
    for sentence in _sentences(paragraphs):
        assert sentence in article.body


def test_pdf_words_set_without_space_characters_keep_their_spaces():
    """TeX and many typesetters print no space glyph: the gap between words is the space."""
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfgen import canvas

    pages._register_font()
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    x = 72.0
    for word in "Zhoukou Daily reports the new port. 周口港 年吞吐量 创新高。".split():
        font = "Helvetica" if word.isascii() else pages.FONT
        c.setFont(font, 11)
        c.drawString(x, 700, word)
        x += stringWidth(word, font, 11) + 3.0
    c.save()
    text = read_bytes(buf.getvalue(), "words.pdf").text
    assert "Zhoukou Daily reports the new port." in text
    assert "周口港" in text and "创新高。" in text


def test_content_decides_the_kind_not_the_name(newspaper):
    pdf, _, _ = newspaper
    assert read_bytes(pdf, "page.txt").kind == "pdf"
    with pytest.raises(Unreadable, match="内容却是文本"):
        read_bytes("这是一段文字，不是 PDF。\n".encode(), "fake.pdf")


def test_pdf_with_only_an_owner_password_is_read():
    from reportlab.lib.pdfencrypt import StandardEncryption

    pdf, printed = pages.newspaper_pdf(encrypt=StandardEncryption("", ownerPassword="owner", canCopy=0))
    assert printed[0].title in read_bytes(pdf, "x.pdf").text


def test_xy_cut_side_by_side_and_stacked_articles():
    """Synthetic runs: two articles side by side whose headline/body gaps line up."""
    em = 9.0

    def column(x, y, n, tag):
        return [Run(x, y + i * 13, x + 120, y + i * 13 + em, f"{tag}{i}", em) for i in range(n)]

    runs = [Run(0, 0, 250, 18, "左边标题", 18), Run(270, 0, 390, 14, "右边标题", 14)]
    runs += column(0, 30, 6, "左一") + column(132, 30, 6, "左二") + column(270, 30, 6, "右")
    order = [r.text for block in xy_cut(runs) for r in sorted(block, key=lambda r: r.y0)]
    assert order == ["左边标题", *[f"左一{i}" for i in range(6)], *[f"左二{i}" for i in range(6)],
                     "右边标题", *[f"右{i}" for i in range(6)]]
    # Two stacked articles whose gutters line up are read one after the other.
    runs = column(0, 0, 5, "上一") + column(132, 0, 5, "上二") + column(0, 100, 5, "下一") + column(132, 100, 5, "下二")
    text = page_text(runs, 842)
    assert [line[:2] for line in text.split() if line] == ["上一"] * 5 + ["上二"] * 5 + ["下一"] * 5 + ["下二"] * 5


def test_ocr_line_is_split_at_a_gutter_and_keeps_latin_spaces():
    """The detector may join lines of two columns into one box: character boxes show the gutter."""
    from rag.ingest.ocr import line_runs

    def box(x0, x1):
        return [[x0, 0], [x1, 0], [x1, 20], [x0, 20]]

    chars = [(ch, box(i * 21, i * 21 + 20)) for i, ch in enumerate("乐时刻。希望")]
    chars += [(ch, box(160 + i * 21, 180 + i * 21)) for i, ch in enumerate("活动由")]
    chars += [("Zhoukou", box(226, 286)), ("Daily", box(292, 336))]
    runs = line_runs(chars, box(0, 336))
    assert [r.text for r in runs] == ["乐时刻。希望", "活动由Zhoukou Daily"]
    assert abs(runs[0].size - 21) < 1  # type size from the character pitch


# --- Broken and hostile files ------------------------------------------------------------


def test_encrypted_pdf_is_skipped_with_the_reason(locked):
    with pytest.raises(Unreadable, match="^PDF 已加密"):
        read_bytes(locked, "locked.pdf")


def test_truncated_and_empty_pdfs(newspaper):
    pdf, _, _ = newspaper
    with pytest.raises(Unreadable, match="PDF 已损坏或不完整"):
        read_bytes(pdf[: len(pdf) // 2], "cut.pdf")
    with pytest.raises(Unreadable, match="PDF 没有任何页面"):
        read_bytes(pages.empty_pdf(), "empty.pdf")


def test_zip_bomb_docx_is_refused_before_inflating():
    bomb = pages.zip_bomb_docx(64)
    assert len(bomb) < 200_000
    with pytest.raises(Unreadable, match="压缩炸弹"):
        read_bytes(bomb, "bomb.docx")


def test_corrupt_docx():
    good = pages.news_docx([("标题", "", ["正文。"])])
    with pytest.raises(Unreadable, match="Word 文档已损坏"):
        read_bytes(good[: len(good) // 2], "cut.docx")
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/other.xml", "<x/>")
    with pytest.raises(Unreadable, match="Word 文档已损坏"):
        read_bytes(out.getvalue(), "nodoc.docx")


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (b"", "empty.pdf", "文件为空（0 字节）"),
        (bytes(range(256)) * 40, "noise.pdf", "文件内容不是 .pdf 格式"),
        (bytes(range(256)) * 40, "noise.bin", "不支持的文件类型"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "old.doc", "旧版 Office 文件"),
        (pages.png_header_only(30_000, 30_000), "bomb.png", "图片过大"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "broken.png", "图片"),
    ],
)
def test_bad_files_raise_unreadable_with_a_chinese_reason(data, name, reason, monkeypatch):
    monkeypatch.setattr(ocr, "available", lambda limits=None: True)  # the reason must not depend on OCR being installed
    with pytest.raises(Unreadable) as info:
        read_bytes(data, name)
    assert reason in str(info.value)
    assert re.match(r"[\u4e00-\u9fff]", str(info.value))


def test_a_folder_with_bad_files_still_builds(tmp_path, newspaper, locked, caplog):
    pdf, _, _ = newspaper
    (tmp_path / "good.pdf").write_bytes(pdf)
    (tmp_path / "locked.pdf").write_bytes(locked)
    (tmp_path / "bomb.docx").write_bytes(pages.zip_bomb_docx(8))
    (tmp_path / "empty.txt").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        documents = read_documents(tmp_path)
    assert [d.source for d in documents] == ["good.pdf"]
    for name in ("locked.pdf", "bomb.docx", "empty.txt"):
        assert name in caplog.text


# --- Word and HTML ------------------------------------------------------------------------

ARTICLES = [
    ("000_511f53cd465d0282.txt", "全力以赴确保项目早日投产达效"),
    ("000_511f53cd465d0282.txt", "社区秧歌队为居民幸福“加码”"),
]


@pytest.mark.parametrize("headings", [True, False])
def test_docx_articles(headings):
    printed = [pages.seed_article(seed, title) for seed, title in ARTICLES]
    doc = read_bytes(pages.news_docx(printed, headings=headings), "news.docx")
    assert doc.kind == "docx"
    articles = split_articles(doc)
    assert [a.title for a in articles] == [t for t, _, _ in printed]
    assert [a.byline for a in articles] == [b for _, b, _ in printed]
    for article, (_, _, paragraphs) in zip(articles, printed):
        for sentence in _sentences(paragraphs):
            assert sentence in article.body
    assert "| 项目 | 进度 |" in articles[0].body  # the table stays in its article, row by row


def test_docx_page_breaks_become_pages():
    import docx

    document = docx.Document()
    document.add_paragraph("第一页的内容。")
    document.add_page_break()
    document.add_paragraph("第二页的内容。")
    out = io.BytesIO()
    document.save(out)
    doc = read_bytes(out.getvalue(), "two.docx")
    assert doc.pages == 2 and doc.text.split("\f")[1].strip() == "第二页的内容。"


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_html_article_without_navigation(encoding):
    title, byline, paragraphs = pages.seed_article(*ARTICLES[0])
    doc = read_bytes(pages.news_html(title, byline, paragraphs, encoding), "article.html")
    assert doc.kind == "html"
    for noise in ("时政要闻", "联系我们", "热点新闻", "周口港年吞吐量创新高", "版权所有", "豫ICP备", "_hmt", "querySelectorAll", "登录"):
        assert noise not in doc.text
    [article] = [a for a in split_articles(doc) if a.byline]
    assert (article.title, article.byline) == (title, byline)
    for sentence in _sentences(paragraphs):
        assert sentence in article.body


def test_html_is_sniffed_before_plain_text():
    title, byline, paragraphs = pages.seed_article(*ARTICLES[1])
    html = pages.news_html(title, byline, paragraphs)
    assert read_bytes(html, "saved.txt").kind == "html"
    assert detect("价格 < 100 元的商品。<br> 不是网页\n".encode(), "note.txt").kind == "text"


def test_every_reader_sniffs_its_own_signature(newspaper):
    pdf, _, _ = newspaper
    heads = {
        "pdf": pdf[:64],
        "docx": pages.news_docx([("标题", "", ["正文。"])])[:8192],
        "image": b"\x89PNG\r\n\x1a\n" + bytes(32),
        "html": b"\xef\xbb\xbf<!DOCTYPE html><html><body>x</body></html>",
        "text": "纯文本。".encode(),
    }
    for kind, head in heads.items():
        assert detect(head, "no-suffix").kind == kind
    assert detect(b"\xff\xd8\xff\xe0" + bytes(32), "photo.jpg").kind == "image"
    assert [r.kind for r in READERS][-2:] == ["markdown", "text"]


# --- Scans: OCR ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scans(newspaper):
    pdf, printed, doc = newspaper
    page1 = pages.render_png(pdf, 0, dpi=200)
    page2 = pages.render_png(pdf, 1, dpi=200)
    from PIL import Image

    top = Image.open(io.BytesIO(page2))
    top = top.crop((0, 0, top.width, int(top.height * 0.22)))  # running head, headline, first lines
    out = io.BytesIO()
    top.save(out, format="PNG")
    return pages.scanned_pdf([page1]), out.getvalue(), printed, doc


def test_scans_without_ocr_are_skipped_naming_the_extra(scans, monkeypatch):
    scanned, png, _, _ = scans
    monkeypatch.setenv("RAG_OCR", "off")
    with pytest.raises(Unreadable, match=r"^扫描版 PDF.*\.\[ocr\]"):
        read_bytes(scanned, "scan.pdf")
    with pytest.raises(Unreadable, match=r"^图片中的文字需要 OCR.*\.\[ocr\]"):
        read_bytes(png, "photo.png")


needs_ocr = pytest.mark.skipif(not ocr.available(), reason='OCR 未安装（pip install -e ".[ocr]"）')


@pytest.fixture(scope="module")
def ocr_scan(scans):
    scanned, _, printed, doc = scans
    return read_bytes(scanned, "scan.pdf"), printed, doc


@needs_ocr
def test_scanned_pdf_is_read_by_ocr_in_column_order(ocr_scan):
    scan, printed, doc = ocr_scan
    assert scan.kind == "scan" and scan.pages == 1  # read wholly by OCR
    articles = [a for a in split_articles(scan) if a.byline]
    assert [_squash(a.title) for a in articles] == [_squash(p.title) for p in printed if p.page == 1]
    # Character accuracy against the text layer of the same page, reading order included.
    truth = _squash(doc.text.split("\f")[0])
    assert difflib.SequenceMatcher(None, _squash(scan.text), truth, autojunk=False).ratio() > 0.95


@needs_ocr
def test_png_headline_is_recovered(scans):
    _, png, printed, _ = scans
    doc = read_bytes(png, "page2-top.png")
    assert doc.kind == "image"
    title = _squash(printed[3].title)  # OCR may drop the small ‘ nested in “‘创卫’”: compare fuzzily
    best = max(difflib.SequenceMatcher(None, title, _squash(line)).ratio() for line in doc.text.splitlines())
    assert best > 0.9
    assert "本报讯" in doc.text and "5月20日，开发区召开" in _squash(doc.text)


def test_index_built_from_pdf_docx_and_html(tmp_path, newspaper):
    """The whole path: a folder of new formats -> articles -> an index that finds them."""
    from rag import build_index

    pdf, _, _ = newspaper
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "zkrb-2023-03-01.pdf").write_bytes(pdf)
    (docs / "news.docx").write_bytes(pages.news_docx([pages.seed_article(*ARTICLES[0])]))
    (docs / "page.html").write_bytes(pages.news_html(*pages.seed_article("000_511f53cd465d0282.txt", "国家安全宣传进社区")))
    index = build_index(docs, tmp_path / "index", model="none", progress=False)
    assert index.info().documents == 3
    top = index.retrieve("谷静对评选工作进行了详细部署", k=3)[0]
    assert (top.source, top.title) == ("zkrb-2023-03-01.pdf", "开发区召开“卫生家庭”“‘创卫’示范街”评选工作会议")
    printed = {_squash(p.title): p.page for p in newspaper[1]}
    assert top.page == printed[_squash(top.title)], "a citation can say which page"
    on_page_2 = next(p for p in newspaper[1] if p.page == 2)
    hit = index.retrieve(_sentences(on_page_2.paragraphs)[0], k=1)[0]
    assert (hit.source, hit.page) == ("zkrb-2023-03-01.pdf", 2)
    assert index.retrieve("宣传手册680余份", k=1)[0].page is None, "a document without pages has no page number"
    assert index.retrieve("宣传手册680余份", k=1)[0].source == "page.html"


# --- Exact text of a laid-out page: double letters, headlines, captions, page numbers -------------


def test_double_letters_survive_the_fake_bold_filter():
    """`ll`, `ff`: the second glyph starts a whole advance later; fake bold overprints a fraction of a point."""
    from reportlab.pdfgen import canvas

    pages._register_font()
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    words = "McClelland studied Intelligence over coffee, all afternoon, Mississippi bookkeeper."
    for y, font in ((700, "Helvetica"), (680, "Times-Roman"), (660, pages.FONT)):
        c.setFont(font, 10)
        c.drawString(72, y, words)
    for dx in (0.0, 0.3):  # a headline in fake bold: the line printed twice
        c.setFont("Helvetica-Bold", 18)
        c.drawString(72 + dx, 620, "Hello Ballet")
    x = 72.0  # and glyph by glyph: each letter printed twice before the next one
    for ch in "Williams":
        for dx in (0.0, 0.25):
            c.setFont("Helvetica-Bold", 14)
            c.drawString(x + dx, 590, ch)
        x += c.stringWidth(ch, "Helvetica-Bold", 14)
    c.save()
    lines = read_bytes(buf.getvalue(), "letters.pdf").text.splitlines()
    assert lines.count(words) == 3
    assert "# Hello Ballet Williams" in lines  # printed once each; the larger type is marked as a headline


@pytest.fixture(scope="module")
def column_page():
    pdf, printed = pages.column_page(pages.column_stories(), folio="第3版", latin_font="Helvetica")
    return pdf, printed, read_bytes(pdf, "zkrb-p3.pdf")


def _check_column_page(articles, printed, scanned: bool = False):
    by_title = _by_title(articles)
    assert [_squash(p.title) in by_title for p in printed] == [True] * 3
    church = by_title[_squash(printed[0].title)]
    assert church.title == "底特律第二浸信会教堂：一段介绍"
    assert printed[0].lines[:2] == ["底特律第二浸信会教堂", "：一段介绍"]  # set on two lines
    for sentence in ("1989年，教堂被列入国家史迹名录。", "每逢周日礼拜之后，教友们会在地下室喝coffee聊天。",
                     "研究者McClelland在其著作中称，该教堂在废奴运动中的作用可与Intelligence一词所代表的情报网络相比。"):
        assert sentence in church.body
    assert "Georg Marcgraf生于1610年" in by_title[_squash(printed[2].title)].body
    # The caption: in the article whose column holds the photo, each sentence a line of its own.
    project = by_title[_squash(printed[1].title)]
    assert [_squash(c) for c in project.captions] == ["图为领尚科技现代化厂房建设现场。", "记者周晓明摄"]
    lines = [_squash(line) for line in project.body.split("\n")]
    assert "图为领尚科技现代化厂房建设现场。" in lines and "记者周晓明摄" in lines
    assert "相关部门要各负其责、主动作为" in project.body  # the sentence around the photo is whole
    assert all("图为" not in a.body for a in articles if a is not project)
    assert {a.page for a in articles} == {3}  # the page number printed on the page (第3版)


def test_column_page_headlines_captions_latin_words_and_printed_page(column_page):
    _, printed, doc = column_page
    assert doc.printed == (3,)
    _check_column_page(split_articles(doc), printed)


@pytest.mark.parametrize("folio, page", [("3版", 3), ("A7", 7), ("", 1)])
def test_printed_page_forms_and_the_file_page_as_fallback(folio, page):
    pdf, _ = pages.column_page(pages.column_stories()[:1], folio=folio)
    assert {a.page for a in split_articles(read_bytes(pdf, "p.pdf"))} == {page}


def test_ocr_pieces_rejoin_numbers_and_keep_latin_word_spaces():
    """The recogniser's own spaces: kept between Latin words, dropped inside a number (`198 9年`)."""
    from rag.ingest.ocr import line_runs

    def box(x0, x1):
        return [[x0, 0], [x1, 0], [x1, 20], [x0, 20]]

    pieces, x = [], 0.0
    for ch, w in zip("Georg", (12, 10, 10, 7, 10)):
        pieces.append((ch, box(x, x + w)))
        x += w + 1
    x += 3  # a word space: narrower than the gaps uneven character boxes make inside a word
    for ch in "Marcgraf":
        pieces.append((ch, box(x, x + 9)))
        x += 10
    for ch in "生于198":
        pieces.append((ch, box(x, x + (19 if ord(ch) > 255 else 9))))
        x += 21 if ord(ch) > 255 else 11
    x += 4  # the recogniser's space inside the number
    for ch in "9年":
        pieces.append((ch, box(x, x + (19 if ord(ch) > 255 else 9))))
        x += 21 if ord(ch) > 255 else 11
    [run] = line_runs(pieces, box(0, x), "Georg Marcgraf生于198 9年")
    assert run.text == "Georg Marcgraf生于1989年"


@needs_ocr
@pytest.mark.slow
def test_scan_of_column_page_reads_the_same_articles(column_page):
    pdf, printed, _ = column_page
    scan = read_bytes(pages.scanned_pdf([pages.render_png(pdf, 0, dpi=200)]), "scan-p3.pdf")
    assert scan.printed == (3,)
    _check_column_page(split_articles(scan), printed, scanned=True)


def test_printed_page_is_read_from_the_head_or_foot_only():
    from rag.ingest.layout import printed_page

    def run(y, text, x=50.0):
        return Run(x, y, x + 9 * len(text), y + 9, text, 9.0)

    body = [run(300 + 13 * i, "正文第一行的内容讲述了一件事情。") for i in range(20)]
    assert printed_page(body + [run(20, "周口日报 2023年3月1日 星期三"), run(20, "A5", x=500)], 842) == 5
    assert printed_page(body + [run(810, "- 12 -", x=280)], 842) == 12
    assert printed_page(body + [run(60, "本版文章下转第3版"), run(80, "刊登在本报第3版，敬请关注。")], 842) is None
    assert printed_page(body + [run(400, "第7版")], 842) is None, "the middle of the page is not its head or foot"
