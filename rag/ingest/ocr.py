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
import os
import threading

from .layout import Run, page_text

log = logging.getLogger(__name__)

INSTALL_HINT = '请安装 OCR 扩展：pip install -e ".[ocr]"'
# A piece of a line ends where the gap to the next character is wider than this (in ems): a gutter.
GAP_EM = 0.8
# Pages one file may send to OCR (seconds each): a thick special issue has 32-48 pages.
MAX_PAGES = int(os.environ.get("RAG_MAX_OCR_PAGES", "48"))
_lock = threading.Lock()
_run_lock = threading.Lock()
_engine = None


def available() -> bool:
    """True when OCR can run: RapidOCR and onnxruntime are installed and RAG_OCR is not off."""
    if os.environ.get("RAG_OCR", "").strip().lower() in {"0", "off", "no", "false", "none"}:
        return False
    return importlib.util.find_spec("rapidocr") is not None and importlib.util.find_spec("onnxruntime") is not None


def check_pages(count: int) -> None:
    """Unreadable before any OCR when a file has more pages to OCR than RAG_MAX_OCR_PAGES."""
    if count > MAX_PAGES:
        from .base import Unreadable

        raise Unreadable(f"需要 OCR 的页数过多（{count} 页，上限 {MAX_PAGES} 页，可用 RAG_MAX_OCR_PAGES 调整）")


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


def line_runs(words: list[tuple[str, list]], line_box: list) -> list[Run]:
    """One detected line (its recognised pieces with their boxes) -> pieces split at gutters.

    The type size is estimated from the character pitch, not the box height: detection boxes
    are padded unevenly, while CJK characters are each one em wide.
    """
    pieces = []
    for text, box in words:
        xs = [float(p[0]) for p in box]
        ys = [float(p[1]) for p in box]
        pieces.append((text, min(xs), min(ys), max(xs), max(ys)))
    if not pieces:
        return []
    pieces.sort(key=lambda p: p[1])
    y0 = min(float(p[1]) for p in line_box)
    y1 = max(float(p[1]) for p in line_box)
    groups: list[list[tuple]] = [[pieces[0]]]
    for piece in pieces[1:]:
        prev = groups[-1][-1]
        em = (prev[3] - prev[1]) / _em_width(prev[0])
        if piece[1] - prev[3] > GAP_EM * max(em, 1.0):
            groups.append([piece])
        else:
            groups[-1].append(piece)
    runs = []
    for group in groups:
        text = group[0][0]
        for a, b in zip(group, group[1:]):  # Latin words keep their spaces
            latin = a[0][-1:].isascii() and a[0][-1:].isalnum() and b[0][:1].isascii() and b[0][:1].isalnum()
            text += (" " if latin and b[1] - a[3] > 0.2 * (a[4] - a[2]) else "") + b[0]
        x0, x1 = group[0][1], max(p[3] for p in group)
        size = (x1 - x0) / _em_width(text) if len(text) > 1 else (y1 - y0)
        runs.append(Run(x0, y0, x1, y1, text, size))
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
        runs += line_runs(parts, box)
    return runs


def image_text(image) -> str:
    """A page image's text in reading order, one line per printed line (see layout.py)."""
    return page_text(image_runs(image), image.height)
