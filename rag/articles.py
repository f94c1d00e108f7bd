"""Documents -> articles: find each article's headline, byline and body on a newspaper page.

An article starts at a byline (`本报讯（…）`, a `记者 … 通讯员 …` line, or a lone author name
under a commentary title) or, after an editor code such as `②7`, at the next headline-like line.
The headline is the short unpunctuated line (or two adjacent lines) just above that start;
a very short line above the headline is a kicker (column or section name), never the headline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import xxhash

from .ingest import PAGE_BREAK, Document
from .ingest.layout import CAPTION_MARK, HEADLINE_MARK
from .repair import clean_inline, ends_sentence, has_editor_code, normalize_width, undouble, unwrap, visible_len

_NAME = r"[\u4e00-\u9fff]{2,4}"
_REPORTER_LINE = re.compile(rf"^(?:本报)?记者(?:\s+{_NAME})+(?:\s+通讯员(?:\s+{_NAME})+)?(?:\s+文/图)?$")
_BENBAO = re.compile(r"^\s*本报讯")
_BENBAO_BYLINE = re.compile(r"^\s*本报讯\s*[（(]([^）)]{0,80})[）)]")
_CREDIT = re.compile(r"^(?:本报)?(?:记者|通讯员|摄影)[\s\S]{0,30}\s摄$")
_LONE_NAME = re.compile(rf"^{_NAME}$")
_FIGURE = re.compile(r"^图[一二三四五六七八九十0-9]+$")
KICKER_MAX = 10
# Kinds whose text comes from a page layout (rag/ingest/layout.py): headlines and captions are marked.
LAID_OUT = ("pdf", "scan", "image")


@dataclass
class Article:
    source: str
    title: str
    byline: str
    body: str  # cleaned paragraphs joined by "\n"
    kicker: str = ""
    captions: list[str] = field(default_factory=list)
    position: int = 0  # order in the document
    page: int | None = None  # the page it starts on (printed number, else 1-based position); None without pages
    same_as: int | None = None  # the key of a stored article this one nearly duplicates (near_duplicates.py)


def article_key(body: str) -> int:
    """Identity of an article's text: a reprint in another edition, or a second upload, has the same key."""
    # str.split drops the characters that re's \s matches (every code point checked), six times as fast.
    return xxhash.xxh3_64_intdigest("".join(body.split()).encode("utf-8"))


def stored_key(article: Article, live) -> int:
    """The key a backend stores `article` under: its own, or, when that is not stored yet and the
    library found it nearly duplicates a stored article, that article's (`live`: keys stored so far)."""
    key = article_key(article.body)
    if key not in live and article.same_as is not None and article.same_as in live:
        return article.same_as
    return key


@dataclass
class _Start:
    first: int  # first line of the article (kicker or headline)
    body: int  # first body line
    title: list[int]
    kicker: list[int]
    byline: str = ""


def _text(line: str, markdown: bool) -> str:
    s = line.strip()
    return s.lstrip("#").strip() if markdown and s.startswith("#") else s


def is_byline_line(line: str) -> bool:
    s = clean_inline(line)
    return bool(_BENBAO.match(s) or (_REPORTER_LINE.match(s) and not s.endswith("摄")))


def is_headline_like(line: str, markdown: bool = False) -> bool:
    s = line.strip()
    if markdown:
        if not s.startswith("#"):
            return False
        s = s.lstrip("#").strip()
    n = visible_len(s)
    return (
        2 <= n <= 40
        and not s.startswith("|")  # a table row
        and not ends_sentence(s)
        and not re.search(r"[，、：,:]$", s)
        and "。" not in s
        and not is_byline_line(s)
        and not _CREDIT.match(s)
        and not _FIGURE.match(s)
        and not s.endswith("摄")
    )


def _find_starts(lines: list[str], markdown: bool, heads: frozenset[int] = frozenset()) -> list[_Start]:
    """Where articles start. `heads` are lines the page layout marked as headlines (by type size):
    each starts an article, bylines or not."""
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    prev_of = {i: (nonblank[k - 1] if k else None) for k, i in enumerate(nonblank)}
    next_of = {i: (nonblank[k + 1] if k + 1 < len(nonblank) else None) for k, i in enumerate(nonblank)}
    starts: list[_Start] = []
    taken = -1  # lines up to here already belong to a found start

    def headline_above(i: int) -> tuple[list[int], list[int]]:
        j = prev_of[i]
        if j is None or j <= taken or not is_headline_like(lines[j], markdown):
            return [], []
        title = [j]
        # A two-line headline: two adjacent headline-like lines after a paragraph end.
        if not markdown and j - 1 > taken and lines[j - 1].strip() and is_headline_like(lines[j - 1]):
            before = prev_of[j - 1]
            if before is None or ends_sentence(lines[before]) or not lines[j - 2].strip():
                title = [j - 1, j]
        kicker = []
        k = prev_of[title[0]]
        if k is not None and k > taken and is_headline_like(lines[k], markdown):
            if visible_len(_text(lines[k], markdown)) <= KICKER_MAX:
                kicker = [k]
            elif len(title) == 1 and visible_len(_text(lines[j], markdown)) <= KICKER_MAX:
                title, kicker = [k], [j]  # a section tag printed under the headline
        return title, kicker

    def marked_start(i: int) -> _Start:
        title, kicker = [i], []
        nxt = next_of[i]
        if nxt is not None and nxt in heads:  # kicker + headline, or headline + subtitle
            if visible_len(lines[i]) <= KICKER_MAX:
                title, kicker = [nxt], [i]
            else:
                title = [i, nxt]
        after = next_of[title[-1]]
        if after is not None and _REPORTER_LINE.match(clean_inline(lines[after])) and not lines[after].strip().endswith("摄"):
            return _Start(i, after + 1, title, kicker, byline=clean_inline(lines[after]))
        return _Start(i, title[-1] + 1, title, kicker)

    for i in nonblank:
        if i <= taken:
            continue
        line = clean_inline(lines[i])
        prev, nxt = prev_of[i], next_of[i]
        start = None
        if i in heads:
            start = marked_start(i)
        elif heads and prev is not None and starts and prev in starts[-1].title:
            pass  # the byline under a marked headline: that article's (本报讯 stays in its body)
        elif _BENBAO.match(line):
            title, kicker = headline_above(i)
            start = _Start((kicker or title or [i])[0], i, title, kicker)
        elif _REPORTER_LINE.match(line) and not line.endswith("摄"):
            title, kicker = headline_above(i)
            start = _Start((kicker or title or [i])[0], i + 1, title, kicker, byline=line)
        elif (
            not markdown
            and _LONE_NAME.match(line)
            and not _FIGURE.match(line)
            and prev is not None
            and is_headline_like(lines[prev])
            and visible_len(lines[prev]) >= 4
            and nxt is not None
            and visible_len(lines[nxt]) >= 8
        ):
            title, kicker = headline_above(i)
            if title:
                start = _Start((kicker or title)[0], i + 1, title, kicker, byline=line)
        elif (
            prev is not None
            and has_editor_code(lines[prev])
            and is_headline_like(lines[i], markdown)
            and nxt is not None
            and not is_byline_line(lines[nxt])
        ):
            start = _Start(i, i + 1, [i], [])
        if start is not None:
            starts.append(start)
            taken = start.body - 1
    return starts


def _extract_benbao(body_lines: list[str]) -> tuple[str, list[str]]:
    """Pull `本报讯（记者 …）` off the body, even when the parenthesis wraps across lines."""
    raw = "\n".join(body_lines)
    m = _BENBAO_BYLINE.match(raw)
    if not m:
        return "", body_lines
    inner = re.sub(r"\s*\n\s*", "", m.group(1))
    inner = re.sub(r"\s+", " ", inner).strip()
    return f"本报讯（{inner}）", raw[m.end() :].split("\n")


def _build(source: str, lines: list[str], start: _Start, end: int, markdown: bool, position: int, page: int | None,
           marked: frozenset[int] = frozenset()) -> Article | None:
    """One article from its lines; `marked` are caption lines the page layout found (kept, each a sentence)."""
    marked_captions = [clean_inline(lines[i]) for i in range(start.body, end) if i in marked]
    body_lines = [ln for i, ln in enumerate(lines[start.body : end], start.body)
                  if i not in marked and not (_CREDIT.match(ln.strip()) or _FIGURE.match(ln.strip()))]
    byline = start.byline
    if not byline:
        byline, body_lines = _extract_benbao(body_lines)
    paragraphs, captions = unwrap(body_lines)
    captions = captions + [c for c in marked_captions if c]
    if not paragraphs and not captions:
        return None
    title = " ".join(_text(lines[i], markdown) for i in start.title)
    kicker = " ".join(_text(lines[i], markdown) for i in start.kicker)
    body = "\n".join(paragraphs + captions)
    return Article(source, clean_inline(title), byline, body, clean_inline(kicker), captions, position, page)


def _page_lines(text: str) -> tuple[list[str], list[int]]:
    """Lines of `text` and the 1-based page of each; a page break itself reads as a blank line."""
    lines, pages, page = [], [], 1
    for line in text.split("\n"):
        breaks = line.count(PAGE_BREAK)
        if breaks:
            head, _, tail = line.partition(PAGE_BREAK)
            if head.strip():
                lines.append(head)
                pages.append(page)
            page += breaks
            line = tail.replace(PAGE_BREAK, "")
        lines.append(line)
        pages.append(page)
    return lines, pages


def _marks(lines: list[str]) -> tuple[frozenset[int], frozenset[int]]:
    """Strip the layout's headline and caption marks off `lines` (in place); their line numbers."""
    heads: set[int] = set()
    captions: set[int] = set()
    for i, line in enumerate(lines):
        for mark, found in ((HEADLINE_MARK, heads), (CAPTION_MARK, captions)):
            if line.startswith(mark):
                lines[i] = line[len(mark):]
                found.add(i)
    return frozenset(heads), frozenset(captions)


def page_label(doc: Document, page: int) -> int | None:
    """The page a citation shows for the `page`-th page (1-based) of `doc`: the number printed on it
    (第3版), else its position in the file; None for a document without pages."""
    if not (doc.pages > 1 or doc.kind in LAID_OUT):
        return None
    printed = doc.printed[page - 1] if page - 1 < len(doc.printed) else None
    return printed if printed is not None else page


def split_articles(doc: Document) -> list[Article]:
    raw, pages = _page_lines(normalize_width(doc.text))
    lines = [undouble(line) for line in raw]
    markdown = doc.is_markdown
    heads, marked = _marks(lines) if doc.kind in LAID_OUT else (frozenset(), frozenset())
    starts = _find_starts(lines, markdown, heads)
    first_line = next((i for i, line in enumerate(lines) if line.strip()), 0)
    if not starts or starts[0].first > first_line:
        # Text before the first byline (or a page without any): one article, titled by its first line if it looks like one.
        title = [first_line] if is_headline_like(lines[first_line], markdown) else []
        lead = _Start(first_line, first_line + len(title), title, [])
        starts.insert(0, lead)
    articles: list[Article] = []
    for n, start in enumerate(starts):
        end = starts[n + 1].first if n + 1 < len(starts) else len(lines)
        article = _build(doc.source, lines, start, end, markdown, len(articles), page_label(doc, pages[start.first]), marked)
        if article is not None:
            articles.append(article)
    return articles
