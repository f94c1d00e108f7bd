"""Test files made on the spot: newspaper-like PDF pages, scans of them, .docx and HTML.

The articles are real ones, taken from the seed pages (headline, byline, cleaned body), and are
laid out the way a newspaper prints them: columns, a headline spanning several columns, an
article beside another, a photo with a caption in the middle of a column, a second page.
`Article`s come back with the file so a test knows exactly what was printed.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

FONT_FILE = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
FONT = "WQYZenHei"
SEEDS = Path(__file__).resolve().parent.parent / "seeds"

PAGE_W, PAGE_H = 595.0, 842.0  # A4 in points
MARGIN = 36.0
GUTTER = 12.0
COLUMNS = 4
COL_W = (PAGE_W - 2 * MARGIN - (COLUMNS - 1) * GUTTER) / COLUMNS
BODY_SIZE, LEADING = 9.0, 13.0
CAPTION_SIZE = 7.5


@dataclass
class Printed:
    """One article as printed: what a reader of the PDF must get back."""

    title: str
    byline: str
    paragraphs: list[str]
    page: int
    caption: str = ""
    lines: list[str] = field(default_factory=list)  # the printed lines in reading order (for OCR accuracy)


def _register_font() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, FONT_FILE, subfontIndex=0))


def seed_article(seed: str, title: str) -> tuple[str, str, list[str]]:
    """(title, byline, paragraphs) of an article of a seed page, as the splitter reads it."""
    from rag.articles import split_articles
    from rag.ingest import read_file

    for article in split_articles(read_file(SEEDS / seed)):
        if article.title == title:
            return article.title, article.byline, [p for p in article.body.split("\n") if p not in article.captions]
    raise KeyError(title)


def wrap(text: str, width: float, size: float, indent: float = 0.0) -> list[tuple[str, float]]:
    """Break `text` into lines no wider than `width` (character by character, as CJK is set)."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines, line, used, offset = [], "", indent, indent
    for ch in text:
        w = stringWidth(ch, FONT, size)
        if line and used + w > width:
            lines.append((line, offset))
            line, used, offset = "", 0.0, 0.0
        line += ch
        used += w
    if line:
        lines.append((line, offset))
    return lines


class Layout:
    """A reportlab canvas with a cursor: columns are filled top to bottom, then left to right."""

    def __init__(self, buf: io.BytesIO, **canvas_args):
        from reportlab.pdfgen import canvas

        _register_font()
        self.c = canvas.Canvas(buf, pagesize=(PAGE_W, PAGE_H), **canvas_args)
        self.page = 1
        self.printed: list[Printed] = []

    def col_x(self, col: int) -> float:
        return MARGIN + col * (COL_W + GUTTER)

    def span_w(self, ncols: int) -> float:
        return ncols * COL_W + (ncols - 1) * GUTTER

    def masthead(self, top: float, full: bool) -> float:
        c = self.c
        if full:
            c.setFont(FONT, 30)
            c.drawString(MARGIN, top - 30, "周口日报")
            c.setFont(FONT, 14)
            c.drawString(MARGIN + 140, top - 26, "开发区新闻")
            c.setFont(FONT, 8)
            c.drawRightString(PAGE_W - MARGIN, top - 26, f"2023年3月1日 星期三 第{self.page}版")
            y = top - 40
        else:
            c.setFont(FONT, 8)
            c.drawString(MARGIN, top - 8, f"第{self.page}版 开发区新闻")
            c.drawRightString(PAGE_W - MARGIN, top - 8, "周口日报 2023年3月1日")
            y = top - 14
        c.setLineWidth(1.5)
        c.line(MARGIN, y, PAGE_W - MARGIN, y)
        return y - 14

    def article(self, top: float, col: int, ncols: int, title: str, byline: str, paragraphs: list[str],
                title_size: float = 18.0, title_lines: list[str] | None = None,
                photo_col: int | None = None, photo_lines: int = 0, caption: str = "") -> float:
        """Print one article in columns col..col+ncols-1 starting at `top`; returns the y below it."""
        c = self.c
        width = self.span_w(ncols)
        y = top
        for part in title_lines or [title]:
            c.setFont(FONT, title_size)
            y -= title_size
            c.drawCentredString(self.col_x(col) + width / 2, y, part)
            y -= title_size * 0.3
        y -= BODY_SIZE * 1.2
        lines: list[tuple[str, float]] = []
        for n, para in enumerate(paragraphs):
            text = (byline + para) if n == 0 and byline.startswith("本报讯") else para
            lines += wrap(text, COL_W, BODY_SIZE, indent=2 * BODY_SIZE)
        if byline and not byline.startswith("本报讯"):
            lines.insert(0, (byline, 0.0))
        photo = photo_lines + 2 if photo_col is not None else 0  # the photo, its caption and a blank slot
        per_col = math.ceil((len(lines) + photo) / ncols)
        order: list[str] = []
        k = 0
        bottom = y
        for i in range(ncols):
            slot = 0
            while slot < per_col and (k < len(lines) or (i == photo_col and slot < 2 + photo)):
                yy = y - (slot + 1) * LEADING
                if i == photo_col and slot == 2:  # the photo sits below two lines of text
                    h = photo_lines * LEADING
                    c.setFillGray(0.8)
                    c.rect(self.col_x(col + i), yy + LEADING - h, COL_W, h - 2, stroke=0, fill=1)
                    c.setFillGray(0)
                    c.setFont(FONT, CAPTION_SIZE)
                    cy = yy + LEADING - h - LEADING + 2
                    c.drawCentredString(self.col_x(col + i) + COL_W / 2, cy, caption)
                    slot += photo
                    continue
                if k >= len(lines):
                    break
                text, indent = lines[k]
                c.setFont(FONT, BODY_SIZE)
                c.drawString(self.col_x(col + i) + indent, yy, text)
                order.append(text)
                k += 1
                slot += 1
            bottom = min(bottom, y - slot * LEADING)
        assert k == len(lines), "article does not fit its columns"
        self.printed.append(Printed(title, byline, paragraphs, self.page, caption, [*(title_lines or [title]), *order]))
        return bottom - 2 * BODY_SIZE

    def rule(self, y: float, x0: float = MARGIN, x1: float = PAGE_W - MARGIN) -> None:
        self.c.setLineWidth(0.5)
        self.c.line(x0, y, x1, y)

    def next_page(self) -> None:
        self.c.showPage()
        self.page += 1


def newspaper_pdf(**canvas_args) -> tuple[bytes, list[Printed]]:
    """Two newspaper pages built from seed articles; `canvas_args` go to reportlab (e.g. encrypt=...)."""
    buf = io.BytesIO()
    lay = Layout(buf, **canvas_args)

    # Page 1: a masthead; a 3-column article with a photo beside a 1-column one; a 4-column article.
    y = lay.masthead(PAGE_H - MARGIN, full=True)
    t, b, p = seed_article("000_511f53cd465d0282.txt", "全力以赴确保项目早日投产达效")
    left = lay.article(y, 0, 3, t, b, p, title_size=20, photo_col=1, photo_lines=7, caption="正在建设中的领尚科技现代化厂房")
    t, b, p = seed_article("003_dbd476b8f86f7364.txt", "王文峰带队督导背街小巷整治工作")
    right = lay.article(y, 3, 1, t, b, p, title_size=12, title_lines=["王文峰带队督导", "背街小巷整治工作"])
    lay.c.setLineWidth(0.5)
    lay.c.line(lay.col_x(3) - GUTTER / 2, y, lay.col_x(3) - GUTTER / 2, min(left, right) + BODY_SIZE)
    y = min(left, right)
    lay.rule(y + BODY_SIZE)
    t, b, p = seed_article("000_511f53cd465d0282.txt", "社区秧歌队为居民幸福“加码”")
    lay.article(y - 4, 0, 4, t, b, p, title_size=18)
    lay.next_page()

    # Page 2: a running head; a 4-column article; two 2-column articles side by side, one with a two-line headline.
    y = lay.masthead(PAGE_H - MARGIN, full=False)
    t, b, p = seed_article("003_dbd476b8f86f7364.txt", "开发区召开“卫生家庭”“‘创卫’示范街”评选工作会议")
    y = lay.article(y, 0, 4, t, b, p, title_size=18)
    lay.rule(y + BODY_SIZE)
    y -= 4
    t, b, p = seed_article("000_511f53cd465d0282.txt", "起好步开好局 作风建设不停歇")
    left = lay.article(y, 0, 2, t, b, p, title_size=16, title_lines=["起好步开好局", "作风建设不停歇"])
    t, b, p = seed_article("000_511f53cd465d0282.txt", "太昊路办事处开展“创文”“创卫”挑战赛")
    right = lay.article(y, 2, 2, t, b, p, title_size=14)
    lay.c.line(lay.col_x(2) - GUTTER / 2, y, lay.col_x(2) - GUTTER / 2, min(left, right) + BODY_SIZE)
    lay.c.save()
    return buf.getvalue(), lay.printed


def render_png(pdf: bytes, page: int = 0, dpi: int = 200) -> bytes:
    """One page of a PDF as a grayscale PNG: what a scanner would produce."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf)
    try:
        image = doc[page].render(scale=dpi / 72, grayscale=True).to_pil()
    finally:
        doc.close()
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()


def scanned_pdf(pngs: list[bytes], dpi: int = 200) -> bytes:
    """Image-only PDF (no text layer) from page images, as a scanner writes it."""
    from PIL import Image

    images = [Image.open(io.BytesIO(png)).convert("L") for png in pngs]
    out = io.BytesIO()
    images[0].save(out, format="PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return out.getvalue()


def news_html(title: str, byline: str, paragraphs: list[str], encoding: str = "utf-8") -> bytes:
    """A saved news page: menus, breadcrumbs, a sidebar of links, a footer and scripts around one article."""
    nav = "".join(f'<li><a href="/{i}">{name}</a></li>' for i, name in enumerate(
        ["首页", "时政要闻", "周口新闻", "开发区", "图片新闻", "视频", "专题", "联系我们"]))
    side = "".join(f'<li><a href="/news/{i}.html">{t}</a></li>' for i, t in enumerate(
        ["川汇区召开安全生产工作会议", "周口港年吞吐量创新高", "淮阳区推进乡村振兴示范村建设",
         "市政府召开常务会议研究部署重点工作", "周口市举办春季招聘会"]))
    body = "".join(f"<p>{byline + p if n == 0 else p}</p>" for n, p in enumerate(paragraphs))
    page = f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="{encoding}"><title>{title} - 周口日报网</title>
<script>var _hmt = _hmt || []; window.dataLayer = [{{"page": "article"}}];</script>
<style>.nav li {{ display: inline; }} body {{ font-family: sans-serif; }}</style></head>
<body>
<div class="top-bar">欢迎访问周口日报网 | 登录 | 注册 | 设为首页</div>
<nav class="nav"><ul>{nav}</ul></nav>
<div class="breadcrumb">当前位置：<a href="/">首页</a> &gt; <a href="/kfq">开发区</a> &gt; 正文</div>
<div class="main">
<article class="content">
<h1>{title}</h1>
<div class="info">来源：周口日报 发布时间：2023-03-01 09:30 编辑：张三</div>
{body}
<div class="share">分享到：微信 微博 QQ空间</div>
</article>
<aside class="sidebar"><h3>热点新闻</h3><ul>{side}</ul></aside>
</div>
<footer><p>版权所有：周口日报社 豫ICP备12345678号 地址：周口市川汇区七一路 电话：0394-1234567</p>
<p>未经授权禁止转载、摘编、复制或建立镜像</p></footer>
<script>document.querySelectorAll('a').forEach(function (a) {{ a.target = '_blank'; }});</script>
</body></html>
"""
    return page.encode(encoding)


def news_docx(articles: list[tuple[str, str, list[str]]], headings: bool = True) -> bytes:
    """A Word file with several articles: headline (a Heading 1 paragraph, or plain), byline, paragraphs, a table."""
    import docx

    document = docx.Document()
    for n, (title, byline, paragraphs) in enumerate(articles):
        if headings:
            document.add_heading(title, level=1)
        else:
            document.add_paragraph(title)
        for i, para in enumerate(paragraphs):
            document.add_paragraph(byline + para if i == 0 else para)
        if n == 0:
            table = document.add_table(rows=2, cols=2)
            for r, row in enumerate([("项目", "进度"), ("领尚科技", "主体完工")]):
                for c, value in enumerate(row):
                    table.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_bomb_docx(inflated_mb: int = 64) -> bytes:
    """A .docx whose document.xml inflates from ~100 KB to `inflated_mb` MB of zeros."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        archive.writestr("word/document.xml", b"\0" * (inflated_mb * 2**20))
    return out.getvalue()


def empty_pdf() -> bytes:
    """A well-formed PDF with zero pages."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares `width`x`height` pixels in a few bytes: a decompression bomb's header."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def typeset_pdf(title: str, byline: str, paragraphs: list[str]) -> bytes:
    """A page set the way typesetting software writes it: every font at size 1 scaled by the matrix,
    the headline in fake bold (printed twice, offset a third of a point), three columns of body."""
    from reportlab.pdfgen import canvas

    _register_font()
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(PAGE_W, PAGE_H))

    def text(x: float, y: float, size: float, s: str) -> None:
        c.saveState()
        c.transform(size, 0, 0, size, x, y)
        c.setFont(FONT, 1)
        c.drawString(0, 0, s)
        c.restoreState()

    for dx in (0.0, 0.33):
        text(MARGIN + 40 + dx, PAGE_H - 80, 20, title)
    width = (PAGE_W - 2 * MARGIN - 2 * GUTTER) / 3
    lines = []
    for n, para in enumerate(paragraphs):
        lines += wrap(byline + para if n == 0 else para, width, BODY_SIZE, indent=2 * BODY_SIZE)
    per_col = math.ceil(len(lines) / 3)
    for k, (line, indent) in enumerate(lines):
        col, row = divmod(k, per_col)
        text(MARGIN + col * (width + GUTTER) + indent, PAGE_H - 120 - row * LEADING, BODY_SIZE, line)
    c.save()
    return buf.getvalue()


@dataclass
class Story:
    """An article for `column_page`: headline, paragraphs, and an optional photo with caption lines."""

    title: str
    paragraphs: list[str]
    caption: list[str] = field(default_factory=list)  # printed under the photo, one line each
    byline: str = ""


def column_page(stories: list[tuple[Story, int, int]], folio: str = "第3版", columns: int = 3,
                title_size: float = 16.0, latin_font: str | None = None) -> tuple[bytes, list[Printed]]:
    """One newspaper page of `columns` columns. `stories` are (story, first column, columns spanned),
    placed left to right, then below the lowest article when the row is full. Headlines are centred
    over their columns and wrap onto as many lines as they need; a story with a caption gets a photo
    (a grey box) in its last column after two lines of text, the caption lines centred under it.
    The page number `folio` is printed in the running head. `latin_font` sets Latin words in that font."""
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfgen import canvas

    _register_font()
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(PAGE_W, PAGE_H))
    col_w = (PAGE_W - 2 * MARGIN - (columns - 1) * GUTTER) / columns

    def x_of(col: int) -> float:
        return MARGIN + col * (col_w + GUTTER)

    def draw(x: float, y: float, text: str, size: float) -> None:
        """Draw `text`, Latin words in `latin_font` when given (their widths then differ from the CJK font's)."""
        if not latin_font:
            c.setFont(FONT, size)
            c.drawString(x, y, text)
            return
        import re as _re

        for part in _re.split(r"([A-Za-z]+)", text):
            if not part:
                continue
            font = latin_font if part.isascii() and part.isalpha() else FONT
            c.setFont(font, size)
            c.drawString(x, y, part)
            x += stringWidth(part, font, size)

    c.setFont(FONT, 8)
    c.drawString(MARGIN, PAGE_H - MARGIN - 8, "周口日报 2023年3月1日 星期三")
    c.drawRightString(PAGE_W - MARGIN, PAGE_H - MARGIN - 8, f"{folio} 综合新闻")
    c.setLineWidth(1.0)
    c.line(MARGIN, PAGE_H - MARGIN - 14, PAGE_W - MARGIN, PAGE_H - MARGIN - 14)
    row_top = PAGE_H - MARGIN - 28
    row_bottom = row_top
    printed: list[Printed] = []
    for story, col, span in stories:
        if col == 0 and printed:
            row_top = row_bottom - 6
            c.setLineWidth(0.5)
            c.line(MARGIN, row_top + 8, PAGE_W - MARGIN, row_top + 8)
        width = span * col_w + (span - 1) * GUTTER
        y = row_top
        heads = [line for line, _ in wrap(story.title, width - 4, title_size)]
        for part in heads:
            y -= title_size
            c.setFont(FONT, title_size)
            c.drawCentredString(x_of(col) + width / 2, y, part)
            y -= title_size * 0.25
        y -= BODY_SIZE * 1.2
        lines: list[tuple[str, float]] = []
        if story.byline:
            lines.append((story.byline, 0.0))
        for para in story.paragraphs:
            lines += wrap(para, col_w, BODY_SIZE, indent=2 * BODY_SIZE)
        photo = (8 + len(story.caption)) if story.caption else 0  # photo rows, caption rows, a blank row
        per_col = math.ceil((len(lines) + photo) / span)
        k = 0
        order: list[str] = []
        bottom = y
        for i in range(span):
            slot = 0
            while slot < per_col and (k < len(lines) or (story.caption and i == span - 1 and slot <= 2)):
                yy = y - (slot + 1) * LEADING
                if story.caption and i == span - 1 and slot == 2:
                    h = 6 * LEADING
                    c.setFillGray(0.8)
                    c.rect(x_of(col + i), yy + LEADING - h, col_w, h - 2, stroke=0, fill=1)
                    c.setFillGray(0)
                    for n, cap in enumerate(story.caption):
                        c.setFont(FONT, CAPTION_SIZE)
                        c.drawCentredString(x_of(col + i) + col_w / 2, yy + LEADING - h - (n + 1) * (CAPTION_SIZE + 3), cap)
                    slot += photo
                    continue
                text, indent = lines[k]
                draw(x_of(col + i) + indent, yy, text, BODY_SIZE)
                order.append(text)
                k += 1
                slot += 1
            bottom = min(bottom, y - slot * LEADING)
        assert k == len(lines), "story does not fit its columns"
        row_bottom = min(row_bottom, bottom - BODY_SIZE)
        printed.append(Printed(story.title, story.byline, story.paragraphs, 1, " ".join(story.caption), [*heads, *order]))
    assert row_bottom > MARGIN, "stories do not fit the page"
    c.save()
    return buf.getvalue(), printed


def column_stories() -> list[tuple[Story, int, int]]:
    """Three stories for `column_page`: a headline that wraps, Latin words with double letters, a
    year, a photo caption of two sentences."""
    t, _, p = seed_article("000_511f53cd465d0282.txt", "全力以赴确保项目早日投产达效")
    return [
        (Story("底特律第二浸信会教堂：一段介绍", [
            "底特律第二浸信会教堂位于美国密歇根州底特律市，建于1857年，是当地历史最悠久的非裔美国人教堂之一。"
            "教会曾是地下铁路的重要一站，帮助数千名逃亡者前往加拿大。",
            "1989年，教堂被列入国家史迹名录。研究者McClelland在其著作中称，该教堂在废奴运动中的作用可与"
            "Intelligence一词所代表的情报网络相比。每逢周日礼拜之后，教友们会在地下室喝coffee聊天。"]), 0, 1),
        (Story(t, p[:3], caption=["图为领尚科技现代化厂房建设现场。", "记者 周晓明 摄"]), 1, 2),
        (Story("荷兰博物学家马克格拉夫的巴西之行", [
            "Georg Marcgraf生于1610年，是德国博物学家和天文学家。1638年他随荷兰西印度公司前往巴西，"
            "在那里绘制地图、观测天象并记录动植物。",
            "他的著作《巴西自然史》出版于1648年，被认为是欧洲人研究南美洲自然的开山之作。"]), 0, 3),
    ]
