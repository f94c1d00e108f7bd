"""Saved web pages: the article's headline and paragraphs, without menus, sidebars, footers or scripts.

trafilatura (Apache-2.0 since 1.8, actively maintained) finds the main text by structure and
text density, keeps paragraph breaks, reads the page's charset (GBK pages included) and drops
share bars that readability-lxml keeps. When it finds nothing (a very short page), the body
text without scripts, navigation, headers, footers and sidebars is used instead. The
headline comes first and the `来源：… 发布时间：…` line is moved above it, so the article
splitter finds the headline right above the byline.
"""

from __future__ import annotations

import re

from .base import Reader, Unreadable
from .text import decode

_HTML_START = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)[\s>]", re.I | re.S)
_META_LINE = re.compile(r"^(?:来源|发布时间|发布日期|时间|日期|作者|编辑|责任编辑|责编|浏览|点击|字号)\s*[:：]")
_BOILERPLATE = ("script", "style", "noscript", "nav", "header", "footer", "aside", "form", "iframe", "template")


def _fallback(data: bytes) -> str:
    import lxml.html

    text = decode(data) or ""
    try:
        root = lxml.html.fromstring(text)
    except Exception:  # lxml's ParserError on an empty or broken document
        return ""
    for el in root.xpath("//" + " | //".join(_BOILERPLATE)):
        el.drop_tree()
    body = root.find("body")
    return (body if body is not None else root).text_content()


class HtmlReader(Reader):
    kind = "html"
    suffixes = (".html", ".htm")

    def sniff(self, head: bytes, suffix: str) -> bool:
        for bom in (b"\xef\xbb\xbf",):
            if head.startswith(bom):
                head = head[len(bom):]
        return bool(_HTML_START.match(head)) or (suffix in self.suffixes and head.lstrip().startswith(b"<"))

    def read(self, data: bytes, name: str, limits=None) -> tuple[str, int]:
        import trafilatura

        try:
            result = trafilatura.bare_extraction(data, include_comments=False, include_tables=True,
                                                 with_metadata=True, favor_precision=False)
        except Exception as exc:  # trafilatura raises assorted lxml/encoding errors on broken pages
            raise Unreadable(f"网页无法解析（{type(exc).__name__}）") from exc
        title = (getattr(result, "title", None) or "").strip() if result is not None else ""
        text = (getattr(result, "text", None) or "") if result is not None else ""
        if not text.strip():
            text = _fallback(data)
        lines = [re.sub(r"[ \t\u3000\xa0]+", " ", line).strip() for line in text.splitlines()]
        lines = [line for line in lines if line]
        meta = [line for line in lines[:5] if _META_LINE.match(line) and len(line) <= 120]
        lines = [line for line in lines if line not in meta]
        if title:
            # trafilatura's title may carry the site name (`标题 - 周口日报网`); the page's own <h1> line wins.
            if not any(line == title or (len(line) >= 4 and title.startswith(line)) for line in lines[:3]):
                lines.insert(0, re.split(r"\s+[-_|–—]\s+", title)[0])
        if not lines:
            raise Unreadable("网页中没有找到正文")
        # A blank line keeps the meta line from reading as the first half of a two-line headline.
        return "\n".join(meta + [""] * bool(meta) + lines) + "\n", 1
