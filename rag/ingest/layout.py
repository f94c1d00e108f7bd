"""Reading order of a printed page: text boxes with coordinates -> lines, column by column.

Both the PDF text layer and OCR give pieces of text lines with their boxes. A newspaper page
sets 3-6 columns side by side, so sorting the boxes by height would interleave the columns
line by line. A recursive XY-cut finds the order instead: the page is cut at its widest band
of white space, across (between a headline and its columns, between stacked articles) or down
(between columns, between articles side by side), and each part is cut again until only single
column blocks are left, read top to bottom. Cuts must be wider than the normal leading and
than the spaces inside a line; comparing the widest cut of each direction makes a gutter win
over the narrow strip that can line up across two articles set side by side, and the space
between two stacked articles win over gutters that happen to line up through both.

Headlines (larger type) and captions (smaller type) are marked where they stand, so the article
splitter knows where an article starts and lifts a caption out of the sentence that flows around
its photo, keeping it in its own article; running heads and page numbers in the page's margins are
dropped (the number is read by `printed_page`), so they do not end up in the last article of the
previous page.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

# A gap is a cut when wider than the page's typical leading (between lines) plus this (in ems).
CUT_EXTRA_EM = 0.4
# Columns: a vertical white strip at least this wide (in ems) separates two blocks.
GUTTER_EM = 0.6
# Inside a line, a gap wider than this (in ems) is written as a space.
SPACE_EM = 0.25
HEADLINE_RATIO = 1.2  # type this much larger than the body's is a headline
CAPTION_RATIO = 0.92  # and this much smaller, a caption
CAPTION_MAX_CHARS = 90
CAPTION_MAX_LINES = 3
MARGIN_BAND = 0.06  # top and bottom share of the page where running heads and folios sit
FOLIO_BAND = 0.12  # where the printed page number is looked for (the masthead's `第1版` included)
# Marks put at the start of a line for the article splitter (kinds pdf and image only).
HEADLINE_MARK = "# "
CAPTION_MARK = "> "


@dataclass
class Run:
    """A piece of one text line: its box (y grows downwards), its text and its type size."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    size: float

    @property
    def chars(self) -> int:
        return len(self.text.strip())


def _gaps(intervals: list[tuple[float, float]], min_gap: float) -> list[tuple[float, float]]:
    """White bands at least `min_gap` wide between the union of the intervals, as (width, cut position)."""
    out = []
    intervals = sorted(intervals)
    end = intervals[0][1]
    for a, b in intervals[1:]:
        if a - end >= min_gap:
            out.append((a - end, (a + end) / 2))
        end = max(end, b)
    return out


def _em(runs: list[Run]) -> float:
    """The type size most of the text is set in (weighted by characters)."""
    sizes = sorted((r.size, r.chars) for r in runs)
    total = sum(n for _, n in sizes)
    seen = 0
    for size, n in sizes:
        seen += n
        if seen * 2 >= total:
            return size
    return sizes[-1][0]


def _leading(runs: list[Run]) -> float:
    """Typical white space between two lines of a column, in ems: from each run to the nearest run
    below it that overlaps it horizontally (sorting by x first would pair lines out of order when
    OCR boxes start a pixel or two apart)."""
    gaps = []
    ordered = sorted(runs, key=lambda r: r.y0)
    for i, a in enumerate(ordered):
        mid = (a.y0 + a.y1) / 2
        for b in ordered[i + 1:]:
            if b.y0 - a.y1 >= 2 * a.size:
                break
            if b.y0 > mid and min(a.x1, b.x1) - max(a.x0, b.x0) > a.size:
                gaps.append(max(0.0, b.y0 - a.y1) / a.size)
                break
    return statistics.median(gaps) if gaps else 0.3


def xy_cut(runs: list[Run]) -> list[list[Run]]:
    """Blocks of runs in reading order; each block is one column piece (or one headline)."""
    if not runs:
        return []
    leading = _leading(runs)
    out: list[list[Run]] = []
    stack = [runs]
    while stack:
        node = stack.pop()
        em = _em(node)
        rows = _gaps([(r.y0, r.y1) for r in node], (leading + CUT_EXTRA_EM) * em)
        cols = _gaps([(r.x0, r.x1) for r in node], GUTTER_EM * em)
        if not rows and not cols:
            out.append(node)
            continue
        across = max(rows, default=(0.0, 0.0))
        down = max(cols, default=(0.0, 0.0))
        if across[0] >= down[0]:
            first = [r for r in node if (r.y0 + r.y1) / 2 < across[1]]
            second = [r for r in node if (r.y0 + r.y1) / 2 >= across[1]]
        else:
            first = [r for r in node if (r.x0 + r.x1) / 2 < down[1]]
            second = [r for r in node if (r.x0 + r.x1) / 2 >= down[1]]
        stack += [second, first]  # first is popped next
    return out


@dataclass
class Line:
    """One printed line of a block: its text, type size and horizontal extent."""

    text: str
    size: float
    x0: float
    x1: float


def _block_lines(block: list[Run]) -> list[Line]:
    """The lines of one block: runs that share a baseline band, left to right."""
    rows: list[list[Run]] = []
    for run in sorted(block, key=lambda r: (r.y0 + r.y1) / 2):
        mid = (run.y0 + run.y1) / 2
        if rows and rows[-1][-1].y0 <= mid <= rows[-1][-1].y1:
            rows[-1].append(run)
        else:
            rows.append([run])
    out = []
    for row in rows:
        row.sort(key=lambda r: r.x0)
        text = row[0].text
        for a, b in zip(row, row[1:]):
            text += (" " if b.x0 - a.x1 > SPACE_EM * a.size else "") + b.text
        if text.strip():
            out.append(Line(text.strip(), _em(row), row[0].x0, max(r.x1 for r in row)))
    return out


def block_lines(block: list[Run]) -> list[str]:
    """The lines of one block as text."""
    return [line.text for line in _block_lines(block)]


def _join_headline(lines: list[Line]) -> str:
    """A headline set on several lines is one headline. A line that fills the headline's width was
    wrapped (joined without a space between CJK characters); a shorter first line ends a deliberate
    part (`起好步开好局 / 作风建设不停歇`), kept apart by a space."""
    text = lines[0].text
    for a, b in zip(lines, lines[1:]):
        latin = a.text[-1:].isascii() and a.text[-1:].isalnum() and b.text[:1].isascii() and b.text[:1].isalnum()
        wrapped = (a.x1 - a.x0) >= 0.97 * (b.x1 - b.x0)
        text += (" " if latin or not wrapped else "") + b.text
    return text


def _captions(lines: list[Line]) -> list[str]:
    """A caption block -> its sentences: `图为…` starts one, a credit (`记者 … 摄`) is one of its own."""
    out: list[str] = []
    for line in lines:
        text = line.text
        starts = not out or text.startswith(("图为", "图片", "图:", "图：", "上图", "下图", "左图", "右图")) or (
            re.search(r"摄$", text) and len(text) <= 20) or re.search(r"[。！？]$|摄$", out[-1])
        if starts:
            out.append(text)
        else:
            out[-1] += (" " if out[-1][-1:].isascii() and text[:1].isascii() else "") + text
    return out


_FOLIO = (
    re.compile(r"(?<![转见接至])第\s*([0-9]{1,3})\s*版"),  # 第3版 (not 下转第3版)
    re.compile(r"(?<![0-9转见接至第年])([0-9]{1,3})\s*版(?![权本面])"),  # 3版, A3版
    re.compile(r"(?:^|\s)[A-H]\s?([0-9]{1,2})(?=\s|$)"),  # A3: a section letter and the page, a word of its own
    re.compile(r"^-?\s*([0-9]{1,3})\s*-?$"),  # a bare folio: 3, - 3 -
)


def printed_page(runs: list[Run], page_height: float) -> int | None:
    """The page number printed in the page's head or foot (第3版, 3版, A3, a bare folio), or None."""
    runs = [r for r in runs if r.text.strip()]
    if not runs:
        return None
    band = [r for r in runs if r.y1 < FOLIO_BAND * page_height or r.y0 > (1 - FOLIO_BAND) * page_height]
    lines = [line.text for line in _block_lines(band)] if band else []
    for n, pattern in enumerate(_FOLIO):
        for text in lines:
            m = pattern.search(text.replace(" ", "") if n < 2 else text)
            if m and 0 < int(m.group(1)) < 1000:
                return int(m.group(1))
    return None


def page_text(runs: list[Run], page_height: float) -> str:
    """One page's text: blocks in reading order separated by blank lines, one line per printed line.

    A headline (type HEADLINE_RATIO larger than the body, at the top of its block) is one line,
    however many lines it was set on, marked with HEADLINE_MARK; a caption block is marked line by
    sentence with CAPTION_MARK, in place (inside or under its article), for the article splitter.
    """
    runs = [r for r in runs if r.text.strip() and r.x1 > r.x0 and r.y1 > r.y0]
    if not runs:
        return ""
    body = _em(runs)
    parts: list[str] = []
    for block in xy_cut(runs):
        lines = _block_lines(block)
        if not lines:
            continue
        size = _em(block)
        top, bottom = min(r.y0 for r in block), max(r.y1 for r in block)
        chars = sum(r.chars for r in block)
        in_margin = bottom < MARGIN_BAND * page_height or top > (1 - MARGIN_BAND) * page_height
        if len(lines) == 1 and size <= body and in_margin:
            continue  # running head, folio
        if size <= CAPTION_RATIO * body and len(lines) <= CAPTION_MAX_LINES and chars <= CAPTION_MAX_CHARS:
            parts.append("\n".join(CAPTION_MARK + c for c in _captions(lines)))
            continue
        head = 0
        while head < len(lines) and lines[head].size >= HEADLINE_RATIO * body:
            head += 1
        out = [HEADLINE_MARK + _join_headline(lines[:head])] if head else []
        parts.append("\n".join(out + [line.text for line in lines[head:]]))
    return "\n\n".join(parts) + "\n"
