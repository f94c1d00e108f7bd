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

A caption (smaller type) is moved to the end of its article, just before the next headline,
so it does not break the sentence that flows around its photo; running heads and page numbers
in the page's margins are dropped, so they do not end up in the last article of the previous page.
"""

from __future__ import annotations

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
CAPTION_MAX_CHARS = 60
MARGIN_BAND = 0.06  # top and bottom share of the page where running heads and folios sit
# Above a headline this short, a caption would be taken for the headline (and the headline for a
# section tag printed under it, see articles.py): the caption waits for the next headline.
SHORT_HEADLINE = 10


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
    """Typical white space between two lines of a column, in ems."""
    gaps = []
    by_x = sorted(runs, key=lambda r: (round(r.x0), r.y0))
    for a, b in zip(by_x, by_x[1:]):
        if abs(a.x0 - b.x0) < a.size and 0 <= b.y0 - a.y1 < 2 * a.size:
            gaps.append((b.y0 - a.y1) / a.size)
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


def block_lines(block: list[Run]) -> list[str]:
    """The lines of one block: runs that share a baseline band, left to right."""
    lines: list[list[Run]] = []
    for run in sorted(block, key=lambda r: (r.y0 + r.y1) / 2):
        mid = (run.y0 + run.y1) / 2
        if lines and lines[-1][-1].y0 <= mid <= lines[-1][-1].y1:
            lines[-1].append(run)
        else:
            lines.append([run])
    out = []
    for line in lines:
        line.sort(key=lambda r: r.x0)
        text = line[0].text
        for a, b in zip(line, line[1:]):
            text += (" " if b.x0 - a.x1 > SPACE_EM * a.size else "") + b.text
        if text.strip():
            out.append(text.strip())
    return out


def page_text(runs: list[Run], page_height: float) -> str:
    """One page's text: blocks in reading order separated by blank lines, one line per printed line."""
    runs = [r for r in runs if r.text.strip() and r.x1 > r.x0 and r.y1 > r.y0]
    if not runs:
        return ""
    body = _em(runs)
    parts: list[str] = []
    captions: list[str] = []
    for block in xy_cut(runs):
        lines = block_lines(block)
        if not lines:
            continue
        size = _em(block)
        top, bottom = min(r.y0 for r in block), max(r.y1 for r in block)
        chars = sum(r.chars for r in block)
        in_margin = bottom < MARGIN_BAND * page_height or top > (1 - MARGIN_BAND) * page_height
        if len(lines) == 1 and size <= body and in_margin:
            continue  # running head, folio
        if size <= CAPTION_RATIO * body and len(lines) <= 2 and chars <= CAPTION_MAX_CHARS:
            captions.append("".join(lines))
            continue
        if size >= HEADLINE_RATIO * body and captions and sum(map(len, lines)) > SHORT_HEADLINE:
            parts += captions
            captions = []
        parts.append("\n".join(lines))
    parts += captions
    return "\n\n".join(parts) + "\n"
