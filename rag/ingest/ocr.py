"""Chinese OCR for scanned pages and photos: RapidOCR (PP-OCR models on onnxruntime), optional.

Chosen by measurement on rendered newspaper pages (README): RapidOCR reads the characters
almost perfectly; Tesseract's chi_sim model misreads far more and its own line finder runs
across narrow column gutters. It is an extra (`pip install -e ".[ocr]"`, ~130 MB with
onnxruntime and OpenCV); without it scans are skipped with a reason naming the extra.
OCR gives a box per character: they are grouped into line pieces that stop at a gutter and
ordered column by column by layout.py, exactly like the PDF text layer.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading

from .. import progress
from .layout import Run, page_text, printed_page

log = logging.getLogger(__name__)

INSTALL_HINT = '请安装 OCR 扩展：pip install -e ".[ocr]"'
# A piece of a line ends where the gap to the next character is wider than this (in ems): a gutter.
GAP_EM = 0.8
# Pages one file may send to OCR (seconds each): IngestLimits.max_ocr_pages (RAG_MAX_OCR_PAGES, 48).
# Between two digits, white space narrower than this (in ems) is the recogniser's, not the page's.
NUMBER_GAP_EM = 0.45
_lock = threading.Lock()
_run_lock = threading.Lock()
_engine = None


def available(limits=None) -> bool:
    """True when OCR can run: RapidOCR and onnxruntime are installed and `limits.ocr` (RAG_OCR) is not
    off; `limits` default to IngestLimits() (the environment now)."""
    from ..settings import IngestLimits

    if not (limits or IngestLimits()).ocr:
        return False
    return importlib.util.find_spec("rapidocr") is not None and importlib.util.find_spec("onnxruntime") is not None


def check_pages(count: int, limit: int) -> None:
    """Unreadable before any OCR when a file has more pages to OCR than `limit` (RAG_MAX_OCR_PAGES)."""
    if count > limit:
        from .base import Unreadable

        raise Unreadable(f"需要 OCR 的页数过多（{count} 页，上限 {limit} 页，可用 RAG_MAX_OCR_PAGES 调整）")
    progress.begin(progress.Stage.OCR, count)  # every reader checks its page count right before OCR


def engine():
    global _engine
    with _lock:
        if _engine is None:
            from rapidocr import RapidOCR

            # Pages are upright: no angle classifier (faster). Character boxes find the gutters.
            _engine = RapidOCR(params={"Global.use_cls": False, "Global.log_level": "warning",
                                       "Global.return_word_box": True})
            logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        return _engine


def _em_width(text: str) -> float:
    """Width of `text` in ems: CJK characters and full-width punctuation are one em, the rest half."""
    return sum(1.0 if ord(ch) >= 0x2E80 else 0.5 for ch in text) or 1.0


def _spaces_before(texts: list[str], line_text: str) -> list[bool] | None:
    """Whether the recogniser put a space before each piece of its line text; None when they do not align."""
    out, at = [], 0
    for text in texts:
        spaced = False
        while at < len(line_text) and line_text[at].isspace():
            spaced, at = True, at + 1
        if not line_text.startswith(text, at):
            return None
        out.append(spaced)
        at += len(text)
    return out


_FULL_WIDTH = {"(": "（", ")": "）", ",": "，", ":": "：", ";": "；", "?": "？", "!": "！"}
_CJK_OR_FULL = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")
_HALF_PUNCT = re.compile(r"[(),:;?!]")


def full_width_punctuation(text: str) -> str:
    """The recogniser reads CJK punctuation set beside CJK text as ASCII (`(1575年)`): what touches a CJK
    character is written full-width again, as printed. `2,800` and Latin text keep theirs."""

    def fix(m: re.Match) -> str:
        ch, i = m.group(0), m.start()
        before, after = text[i - 1 : i], text[i + 1 : i + 2]
        if ch in ",:" and before.isdigit() and after.isdigit():
            return ch
        return _FULL_WIDTH[ch] if _CJK_OR_FULL.match(before) or _CJK_OR_FULL.match(after) else ch

    return _HALF_PUNCT.sub(fix, text)


def _latin(ch: str) -> bool:
    return ch.isascii() and ch.isalpha()


def line_runs(words: list[tuple[str, list]], line_box: list, line_text: str = "") -> list[Run]:
    """One detected line (its recognised pieces with their boxes) -> pieces split at gutters.

    The type size is estimated from the character pitch, not the box height: detection boxes
    are padded unevenly, while CJK characters are each one em wide. Word spaces come from the
    recogniser's `line_text` (its character boxes have none) and are kept only between Latin words;
    between two digits only a gap of NUMBER_GAP_EM is a space, so `198 9年` is read as `1989年`.
    """
    pieces = []
    for text, box in words:
        xs = [float(p[0]) for p in box]
        ys = [float(p[1]) for p in box]
        pieces.append((text, min(xs), min(ys), max(xs), max(ys)))
    if not pieces:
        return []
    spaces = _spaces_before([p[0] for p in pieces], line_text) if line_text else None
    order = sorted(range(len(pieces)), key=lambda i: pieces[i][1])
    if spaces is not None and order != sorted(order):
        spaces = None  # the pieces are not in reading order: the text cannot be aligned with them
    pieces = [pieces[i] for i in order]
    y0 = min(float(p[1]) for p in line_box)
    y1 = max(float(p[1]) for p in line_box)
    line_em = (pieces[-1][1] - pieces[0][1]) / _em_width("".join(p[0] for p in pieces[:-1])) if len(pieces) > 1 else 0.0
    groups: list[list[int]] = [[0]]
    for i in range(1, len(pieces)):
        prev, piece = pieces[groups[-1][-1]], pieces[i]
        em = max((prev[3] - prev[1]) / _em_width(prev[0]), line_em)
        if piece[1] - prev[3] > GAP_EM * max(em, 1.0):
            groups.append([i])
        else:
            groups[-1].append(i)
    runs = []
    for group in groups:
        first, last = pieces[group[0]], pieces[group[-1]]
        head = "".join(pieces[i][0] for i in group[:-1])
        # The pitch from the first character's start to the last one's: the ink of a trailing 。 or ,
        # fills a fraction of its em, so the right edge would make the type look smaller than it is.
        if len(group) > 1 and last[1] > first[1]:
            size = (last[1] - first[1]) / _em_width(head)
        else:
            size = (last[3] - first[1]) / _em_width(first[0]) if len(first[0]) > 1 else (y1 - y0)
        text = first[0]
        for i, j in zip(group, group[1:]):
            a, b = pieces[i], pieces[j]
            gap = b[1] - a[3]
            if a[0][-1:].isdigit() and b[0][:1].isdigit():
                space = gap > NUMBER_GAP_EM * size
            elif _latin(a[0][-1:]) and (_latin(b[0][:1]) or b[0][:1].isdigit()) or a[0][-1:].isdigit() and _latin(b[0][:1]):
                space = spaces[j] if spaces is not None else gap > 0.2 * (a[4] - a[2])
            else:
                space = False
            text += (" " if space else "") + b[0]
        runs.append(Run(first[1], y0, last[3], y1, full_width_punctuation(text), size))
    return runs


def image_runs(image) -> list[Run]:
    """OCR one page image (PIL) -> line pieces with boxes in pixels."""
    import numpy as np

    rgb = np.asarray(image.convert("RGB"))
    ocr = engine()
    with _run_lock:  # one page at a time: onnxruntime already uses every core
        result = ocr(rgb)
    runs: list[Run] = []
    if result is None or result.boxes is None:
        return runs
    words = result.word_results or [()] * len(result.txts)
    for box, text, pieces in zip(result.boxes, result.txts, words):
        parts = [(w[0], w[2]) for w in pieces if w and w[0]]
        if not parts:  # no character boxes: the whole line as one piece
            parts = [(text, box)]
        runs += line_runs(parts, box, text)
    return runs


def image_page(image) -> tuple[str, int | None]:
    """A page image's text in reading order, one line per printed line (see layout.py), and the page
    number printed on it."""
    runs = image_runs(image)
    progress.advance(progress.Stage.OCR)
    return page_text(runs, image.height), printed_page(runs, image.height)


def image_text(image) -> str:
    return image_page(image)[0]
