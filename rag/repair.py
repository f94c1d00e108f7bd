"""OCR/PDF-extraction repair: pure functions that turn extracted lines into clean prose.

The pages come from PDF columns: lines are cut mid-word, blank lines fall inside sentences,
spaces appear between characters, bold text is sometimes doubled, and editor codes such as
`②7` close articles.
"""

from __future__ import annotations

import re
import statistics

CJK = r"\u3400-\u9fff\uf900-\ufaff"
# CJK punctuation, full-width forms and general punctuation such as “ ” … —
CJK_PUNCT = r"\u2010-\u206f\u3000-\u303f\uff00-\uffef"
TERMINAL = "。！？；…!?;"
CLOSERS = "”’」』）)》〉】\""
EDITOR_CODE = re.compile(r"\s*[\u2460-\u2473\u2776-\u277f][0-9]{0,3}\s*$")
_EDITOR_MARKS = frozenset(map(chr, [*range(0x2460, 0x2474), *range(0x2776, 0x2780)]))
_TERMINAL_END = re.compile(rf"[{re.escape(TERMINAL)}][\s{re.escape(CLOSERS)}]*$")
_ANY_PUNCT = re.compile(rf"[{CJK_PUNCT}，。、；：！？,.;:!?()（）《》“”‘’\"'·/]")
_DOUBLED_PUNCT = re.compile(r"([，。、；：！？“”‘’])\1")
_SPACE_NEAR_CJK = re.compile(rf"[ \t]+(?=[{CJK}{CJK_PUNCT}])|(?<=[{CJK}{CJK_PUNCT}])[ \t]+")
_SPLIT_NUMBER = re.compile(r"\d+(?:[ \t]\d+)+")
_CJK_CHAR = re.compile(rf"[{CJK}{CJK_PUNCT}]")
# Column layouts are narrow; a typical line longer than this means one line per paragraph.
COLUMN_MAX_WIDTH = 40


# Full-width digits and Latin letters -> ASCII; the ideographic and other wide spaces -> " ".
_HALF_WIDTH = {code: code - 0xFEE0 for lo, hi in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
               for code in range(lo, hi + 1)} | {ord(ch): " " for ch in "\u3000\u00a0\u2002\u2003\u2009"}
_WIDE = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a\u3000\u00a0\u2002\u2003\u2009]+")


def normalize_width(text: str) -> str:
    """Full-width ASCII letters, digits and the ideographic space become half-width; CJK punctuation stays.
    (A character loop in Python cost about 0.2 µs a character: a minute of a 1M-chunk build.)"""
    if _WIDE.search(text):  # most text has none: a regex scan costs far less than translating every character
        text = _WIDE.sub(lambda m: m.group().translate(_HALF_WIDTH), text)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def undouble(line: str) -> str:
    """Bold text extracted twice shows as `88 月 2266日，，`: halve doubled punctuation and digit pairs.

    Only lines that carry doubled CJK punctuation, which real prose never does, are touched.
    """
    if not _DOUBLED_PUNCT.search(line):
        return line

    def halve_digits(m: re.Match) -> str:
        s = m.group(0)
        if len(s) % 2 == 0 and all(s[i] == s[i + 1] for i in range(0, len(s), 2)):
            return s[::2]
        return s

    line = re.sub(r"[0-9]+", halve_digits, line)
    return _DOUBLED_PUNCT.sub(r"\1", line)


def _join_number(m: re.Match) -> str:
    """`198 9` inside CJK text is one number split by OCR spacing; beside Latin words it may be two."""
    before, after = m.string[m.start() - 1 : m.start()], m.string[m.end() : m.end() + 1]
    return re.sub(r"[ \t]+", "", m.group(0)) if _CJK_CHAR.match(before) or _CJK_CHAR.match(after) else m.group(0)


def squeeze_spaces(text: str) -> str:
    """Drop spaces next to CJK characters or punctuation (`2 月 20 日` -> `2月20日`) and inside a number set
    in CJK text (`198 9年` -> `1989年`); keep them between Latin words."""
    if " " not in text and "\t" not in text:  # most Chinese paragraphs: every rule below needs one
        return text.strip()
    text = _SPACE_NEAR_CJK.sub("", text)
    text = _SPLIT_NUMBER.sub(_join_number, text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def strip_editor_code(text: str) -> str:
    # The code is a circled number and at most three digits at the very end: the regex scan of the whole
    # paragraph runs only when its last characters hold one (a 1M-chunk build calls this some 2.3M times).
    if _EDITOR_MARKS.isdisjoint(text.rstrip()[-4:]):
        return text
    return EDITOR_CODE.sub("", text)


def has_editor_code(line: str) -> bool:
    return not _EDITOR_MARKS.isdisjoint(line.rstrip()[-4:]) and bool(EDITOR_CODE.search(line))


def ends_sentence(line: str) -> bool:
    return bool(_TERMINAL_END.search(strip_editor_code(line.rstrip())))


def has_punctuation(line: str) -> bool:
    return bool(_ANY_PUNCT.search(line))


def visible_len(line: str) -> int:
    return sum(map(len, line.split()))  # the characters that are not whitespace


def _local_widths(lengths: list[int], radius: int = 6) -> list[int]:
    """Typical line width around each line (75th percentile of its neighbours)."""
    widths = []
    for i in range(len(lengths)):
        window = sorted(lengths[max(0, i - radius) : i + radius + 1])
        widths.append(window[int(0.75 * (len(window) - 1))])
    return widths


def unwrap(lines: list[str]) -> tuple[list[str], list[str]]:
    """Join extracted lines into paragraphs; return (paragraphs, captions).

    A line ends a paragraph when it ends a sentence and, in a narrow column, is visibly shorter
    than its neighbours. A short unpunctuated line standing alone between blank lines is a photo
    caption: it is lifted out so the sentence it interrupts joins up again.
    """
    items = [(i, line.strip()) for i, line in enumerate(lines) if line.strip()]
    if not items:
        return [], []
    lengths = [visible_len(line) for _, line in items]
    widths = _local_widths(lengths)
    overall = statistics.median(lengths)
    paragraphs: list[str] = []
    captions: list[str] = []
    buf: list[str] = []
    for n, (i, line) in enumerate(items):
        if line.startswith(("#", "|")):  # a markdown sub-heading, a table row: a paragraph of its own
            if buf:
                paragraphs.append(_join(buf))
                buf = []
            paragraphs.append(clean_inline(line.lstrip("#")))
            continue
        width = widths[n]
        column = width <= COLUMN_MAX_WIDTH
        alone = (i == 0 or not lines[i - 1].strip()) and (i + 1 >= len(lines) or not lines[i + 1].strip())
        if alone and n > 0 and not has_punctuation(line) and (
            # In narrow columns a lone line is usually a wrapped paragraph start; only a trailing one is a caption.
            (column and n == len(items) - 1 and ends_sentence(items[n - 1][1]))
            or (not column and lengths[n] <= min(30, 0.5 * overall))
        ):
            captions.append(line)
            continue
        buf.append(line)
        if ends_sentence(line) and (not column or lengths[n] < 0.8 * width or has_editor_code(line)):
            paragraphs.append(_join(buf))
            buf = []
    if buf:
        paragraphs.append(_join(buf))
    return [p for p in paragraphs if p], captions


def _join(parts: list[str]) -> str:
    """Concatenate wrapped lines; a space is kept only between two Latin words.

    Numbers wrap anywhere in a CJK column (`到岗率10` / `0%`), so two digits are joined.
    """
    out = ""
    for part in parts:
        if out and re.match(r"[A-Za-z]", part) and re.search(r"[A-Za-z]$", out):
            out += " "
        out += part
    return squeeze_spaces(strip_editor_code(out))


def clean_inline(text: str) -> str:
    """Clean a single line such as a headline: collapse whitespace but keep the space between its halves."""
    return " ".join(text.split())
