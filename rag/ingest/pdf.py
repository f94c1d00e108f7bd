"""PDF: the text layer in reading order (pypdfium2), scanned pages through OCR.

pypdfium2 (PDFium, Apache-2.0/BSD) reads each character with its box and type size ~20x
faster than pdfminer-based pdfplumber; layout.py orders the lines column by column. A page
without a usable text layer (a scan, or glyphs without a Unicode map) is rendered and read by
OCR when it is installed. PDFium is not thread-safe, so every call goes through one lock.
"""

from __future__ import annotations

import ctypes
import logging
import math
import re
import threading

from ..settings import IngestLimits
from .base import PAGE_BREAK, Pages, Reader, Unreadable
from .layout import Run, page_text, printed_page

log = logging.getLogger(__name__)

PDFIUM_LOCK = threading.Lock()
# Pages one PDF may have: IngestLimits.max_pdf_pages (RAG_MAX_PDF_PAGES, 1000).
# A page with fewer printed characters than this has no real text layer (a scan with a stamp or a page number).
MIN_TEXT_CHARS = 20
# Inside a line, white space wider than this (in ems) between two glyphs is a space between words.
WORD_GAP_EM = 0.15
# Fake bold prints a glyph twice, offset by a fraction of a point: a second copy of the same glyph
# closer than this (in ems, and as a share of the glyph's width) is the same glyph, not a double letter.
OVERPRINT_EM = 0.15
OVERPRINT_WIDTH = 0.3
# Rendering for OCR: the resolution OCR reads best at, and a cap on the bitmap for huge pages.
OCR_DPI = 200
MAX_RENDER_PIXELS = 40_000_000
_EMPTY_PAGE_TREE = re.compile(rb"/Count\s+0\b")
_PAGE_OBJECT = re.compile(rb"/Type\s*/Page(?!s)")


def _is_garbled(ch: str) -> bool:
    """Glyphs without a Unicode map come out as private-use or replacement characters."""
    code = ord(ch)
    return 0xE000 <= code <= 0xF8FF or code == 0xFFFD or code < 0x20


def page_runs(textpage, page_height: float) -> tuple[list[Run], int]:
    """Runs of characters that touch on one line, in page coordinates with y downwards; and the garbled count."""
    import pypdfium2.raw as raw

    runs: list[Run] = []
    garbled = 0
    rect = raw.FS_RECTF()
    cur: Run | None = None
    last_x0 = last_mid = last_width = 0.0
    for i in range(raw.FPDFText_CountChars(textpage)):
        ch = chr(raw.FPDFText_GetUnicode(textpage, i))
        if ch in "\r\n":  # PDFium's line breaks
            continue
        if ch == "\x02":  # PDFium's mark for a hyphen at a line end
            ch = "-"
        if raw.FPDFText_IsGenerated(textpage, i):  # a space PDFium saw between two words (TeX prints none)
            if cur is not None and not cur.text.endswith(" "):
                cur.text += " "
            continue
        if _is_garbled(ch) and not ch.isspace():
            garbled += 1
        if not raw.FPDFText_GetLooseCharBox(textpage, i, ctypes.byref(rect)):
            continue
        x0, x1, y0, y1 = rect.left, rect.right, page_height - rect.top, page_height - rect.bottom  # flip: y grows downwards
        # The loose box is one line of the font at its printed size; FPDFText_GetFontSize is not
        # (it says 1.0 when the size is set by a scaled matrix, as many typesetters do).
        size = y1 - y0
        if size <= 0:
            size = raw.FPDFText_GetFontSize(textpage, i) or 1.0
            y0, y1 = y1 - size, y1
        if ch.isspace():
            if cur is not None and not cur.text.endswith(" "):
                cur.text += " "
            continue
        mid = (y0 + y1) / 2
        width = x1 - x0
        if (
            cur is not None
            and ch == cur.text[-1]
            and abs(x0 - last_x0) < min(OVERPRINT_EM * size, OVERPRINT_WIDTH * max(width, last_width))
            and abs(mid - last_mid) < OVERPRINT_EM * size
        ):
            # Fake bold: the same glyph printed again a fraction of its own width away. The next letter
            # of a double ("ll" in McClelland, "ff" in coffee) starts a whole advance further: kept.
            continue
        if (
            cur is not None
            and cur.y0 <= mid <= cur.y1
            and -0.5 * size <= x0 - cur.x1 <= 0.6 * size
            and 0.7 <= size / cur.size <= 1.4
        ):
            if x0 - cur.x1 > WORD_GAP_EM * size and not cur.text.endswith(" "):
                cur.text += " "
            cur.text += ch
            cur.x1 = max(cur.x1, x1)
            cur.y0, cur.y1 = min(cur.y0, y0), max(cur.y1, y1)
        else:
            if cur is not None:
                runs.append(cur)
            cur = Run(x0, y0, x1, y1, ch, size)
        last_x0, last_mid, last_width = x0, mid, width
    if cur is not None:
        runs.append(cur)
    seen: dict[str, list[Run]] = {}
    out = []
    for run in runs:
        run.text = run.text.rstrip()
        twins = seen.setdefault(run.text, [])
        if any(abs(run.x0 - t.x0) < 0.3 * t.size and abs(run.y0 - t.y0) < 0.3 * t.size for t in twins):
            continue  # fake bold or a shadow: the same line printed twice, slightly offset
        twins.append(run)
        out.append(run)
    return out, garbled


def _open_error(exc: Exception, data: bytes) -> Unreadable:
    code = getattr(exc, "err_code", None)
    if code == 4 or "password" in str(exc).lower():
        return Unreadable("PDF 已加密，需要密码才能打开（请提供未加密的文件）")
    if code == 5:
        return Unreadable("PDF 使用了不支持的加密方式，无法打开")
    if _EMPTY_PAGE_TREE.search(data) and not _PAGE_OBJECT.search(data):
        # PDFium refuses a document whose page tree holds no page (its error code is then stale).
        return Unreadable("PDF 没有任何页面")
    return Unreadable("PDF 已损坏或不完整，无法解析（可能是下载中断或文件被截断）")


def _render(page, dpi: int = OCR_DPI):
    width, height = page.get_size()
    scale = dpi / 72
    if width * height * scale * scale > MAX_RENDER_PIXELS:
        scale = math.sqrt(MAX_RENDER_PIXELS / (width * height))
    return page.render(scale=scale, grayscale=True).to_pil()


class PdfReader(Reader):
    kind = "pdf"
    binary = True
    suffixes = (".pdf",)

    def sniff(self, head: bytes, suffix: str) -> bool:
        return b"%PDF-" in head[:1024]

    def read(self, data: bytes, name: str, limits: IngestLimits | None = None) -> Pages:
        limits = limits or IngestLimits()
        try:
            import pypdfium2 as pdfium
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise Unreadable("无法读取 PDF：未安装 pypdfium2") from exc
        from . import ocr

        with PDFIUM_LOCK:
            try:
                doc = pdfium.PdfDocument(data)
            except pdfium.PdfiumError as exc:
                raise _open_error(exc, data) from exc
        try:
            with PDFIUM_LOCK:
                n = len(doc)
                if n == 0:
                    raise Unreadable("PDF 没有任何页面")
                if n > limits.max_pdf_pages:
                    raise Unreadable(f"PDF 页数过多（{n} 页，上限 {limits.max_pdf_pages} 页，可用 RAG_MAX_PDF_PAGES 调整）")
                read = [self._page(doc, number) for number in range(n)]
            pages = [text for text, _, _ in read]
            printed = [folio for _, _, folio in read]
            scans = [number for number, (_, scanned, _) in enumerate(read) if scanned]
            if scans and not ocr.available(limits):
                if len(scans) == n:
                    raise Unreadable(f"扫描版 PDF（没有文字层），需要 OCR 才能读取：{ocr.INSTALL_HINT}")
                log.warning("%s：第 %s 页是扫描页，未安装 OCR，已跳过（%s）", name,
                            "、".join(str(i + 1) for i in scans), ocr.INSTALL_HINT)
                scans = []
            ocr.check_pages(len(scans), limits.max_ocr_pages)
            for number in scans:
                with PDFIUM_LOCK:  # rendering needs the lock, OCR (seconds per page) does not
                    page = doc[number]
                    image = _render(page)
                    page.close()
                pages[number], printed[number] = ocr.image_page(image)
        finally:
            with PDFIUM_LOCK:
                doc.close()
        return Pages(PAGE_BREAK.join(pages), n, tuple(printed), "scan" if len(scans) == n else None)

    @staticmethod
    def _page(doc, number: int) -> tuple[str, bool, int | None]:
        """(text of the page, whether it needs OCR instead, the page number printed on it)."""
        import pypdfium2.raw as pdfium_raw

        page = doc[number]
        try:
            _, height = page.get_size()
            textpage = page.get_textpage()
            try:
                runs, garbled = page_runs(textpage, height)
            finally:
                textpage.close()
            chars = sum(r.chars for r in runs)
            if chars and garbled > 0.3 * chars:
                return "", True, None  # glyphs without a Unicode map: only their pictures can be read
            if chars < MIN_TEXT_CHARS:
                # A scan when the page shows an image; a blank page is just blank.
                return "", next(page.get_objects(filter=[pdfium_raw.FPDF_PAGEOBJ_IMAGE]), None) is not None, None
            return page_text(runs, height), False, printed_page(runs, height)
        finally:
            page.close()
