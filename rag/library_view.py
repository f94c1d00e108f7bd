"""The library as people see it: document rows, upload outcomes and an article preview, in the page's
language ("zh" or "en"; the archive's own text and the core's reasons stay as they are).

Pure functions shared by the 资料库 tab and its tests; archive strings are escaped for HTML here,
and table cells are plain text (the table component renders them as text).
"""

from __future__ import annotations

import html
from datetime import datetime

from .library import Change
from .results import ArticleView, DocumentInfo, IndexInfo

HEADERS = {"zh": ["名称", "类型", "页数", "文章", "文本块", "添加时间", "来源", "状态"],
           "en": ["Name", "Type", "Pages", "Articles", "Chunks", "Added", "Origin", "Status"]}
CHANGE_HEADERS_BY = {"zh": ["文件", "结果", "说明"], "en": ["File", "Result", "Details"]}
DOC_HEADERS, CHANGE_HEADERS = HEADERS["zh"], CHANGE_HEADERS_BY["zh"]
ORIGIN_COLUMN = 6
# "scan": a PDF read by OCR (rag/library.py marks it); images are always read by OCR.
KINDS_BY = {
    "zh": {"text": "文本", "markdown": "Markdown", "pdf": "PDF", "scan": "PDF（OCR 识别）", "image": "图片（OCR 识别）",
           "docx": "Word", "html": "网页", "unknown": "未知"},
    "en": {"text": "text", "markdown": "Markdown", "pdf": "PDF", "scan": "PDF (read by OCR)", "image": "image (read by OCR)",
           "docx": "Word", "html": "web page", "unknown": "unknown"},
}
KINDS = KINDS_BY["zh"]
# Plain symbols only: they exist in every common font (emoji do not, on servers and in screenshots).
STATUS_BY = {
    "zh": {"added": "✓ 已添加", "replaced": "↻ 已更新", "unchanged": "= 未改动", "removed": "− 已删除",
           "skipped": "⚠ 已跳过", "refused": "✗ 已拒绝", "pending": "… 处理中", "waiting": "· 排队中"},
    "en": {"added": "✓ added", "replaced": "↻ updated", "unchanged": "= unchanged", "removed": "− deleted",
           "skipped": "⚠ skipped", "refused": "✗ refused", "pending": "… working", "waiting": "· waiting"},
}
STATUS = STATUS_BY["zh"]
ORIGINS_BY = {"zh": {"folder": "文档目录", "stored": "上传"}, "en": {"folder": "docs folder", "stored": "uploaded"}}
ORIGINS = ORIGINS_BY["zh"]
UPLOADED = {by["stored"] for by in ORIGINS_BY.values()}  # the origin cell of an uploaded document, in any language
WORDS = {
    "zh": {"ok": "正常", "skipped": "已跳过：{}", "shared": "（{} 篇也见于其他文档，只存一份）",
           "summary": "共 {} 篇文档、{} 篇文章、{} 个文本块", "unreadable": "；{} 个文件无法读取（见状态列）",
           "no_articles": "{}：没有解析出文章（可能已被删除或无法读取）。", "count": "{} · 共 {} 篇文章",
           "page": "第 {} 版", "chunks": "{} 个文本块", "untitled": "（无标题）", "more": "只显示前 {} 篇。"},
    "en": {"ok": "ok", "skipped": "skipped: {}", "shared": " ({} also in other documents, stored once)",
           "summary": "{} documents, {} articles, {} chunks", "unreadable": "; {} files could not be read (see Status)",
           "no_articles": "{}: no articles were found (deleted, or unreadable).", "count": "{} · {} articles",
           "page": "page {}", "chunks": "{} chunks", "untitled": "(untitled)", "more": "Only the first {} are shown."},
}
PREVIEW_LIMIT = 200  # articles shown in one preview


def _when(stamp: str) -> str:
    """ISO time (UTC) -> the server's local time, to the minute."""
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return stamp or ""


def document_rows(docs: list[DocumentInfo], lang: str = "zh", shared: dict[str, int] | None = None) -> list[list]:
    """One row per document. `shared`: source -> its articles that other documents hold too, counted now
    (a document's stored count dates from when it was added and goes stale when the other one is deleted)."""
    w, kinds, origins = WORDS[lang], KINDS_BY[lang], ORIGINS_BY[lang]
    rows = []
    for d in sorted(docs, key=lambda d: d.source):
        status = w["ok"] if d.status == "ok" else w["skipped"].format(d.reason)
        same = d.duplicates if shared is None else shared.get(d.source, 0)
        if same:
            status += w["shared"].format(same)
        rows.append([d.source, kinds.get(d.kind, d.kind), d.pages or "", d.articles, d.chunks, _when(d.added_at),
                     origins.get(d.origin, d.origin), status])
    return rows


def shared_articles(source: str, articles: list[ArticleView]) -> int:
    """How many of `source`'s articles another document of the library holds too (stored once)."""
    return sum(1 for a in articles if any(s != source for s in a.sources))


def change_row(c: Change, lang: str = "zh") -> list:
    return [c.source, STATUS_BY[lang].get(c.status, c.status), c.message]


def status_row(name: str, status: str, message: str = "", lang: str = "zh") -> list:
    return [name, STATUS_BY[lang][status], message]


def summary_markdown(info: IndexInfo, lang: str = "zh") -> str:
    """The library's counts, from the same info() as the page's status line (so the two always agree)."""
    w = WORDS[lang]
    line = w["summary"].format(info.documents, info.articles, info.chunks)
    return line + (w["unreadable"].format(info.skipped) if info.skipped else "")


def preview_html(source: str, articles: list[ArticleView], lang: str = "zh") -> str:
    """One document's parsed articles: headline, byline, page and body, each folded but the first."""
    w = WORDS[lang]
    if not articles:
        return f'<div class="lib-preview-empty">{html.escape(w["no_articles"].format(source))}</div>'
    head = f'<div class="lib-preview-head">{html.escape(w["count"].format(source, len(articles)))}</div>'
    parts = [head]
    for i, a in enumerate(articles[:PREVIEW_LIMIT]):
        meta = [html.escape(a.byline)] if a.byline else []
        if a.page:
            meta.append(w["page"].format(a.page))
        meta.append(w["chunks"].format(a.chunks))
        kicker = f'<span class="lib-kicker">{html.escape(a.kicker)}</span> ' if a.kicker else ""
        body = "".join(f"<p>{html.escape(line)}</p>" for line in a.body.split("\n") if line.strip())
        parts.append(
            f'<details class="lib-article"{" open" if i == 0 else ""}><summary>{kicker}'
            f'<strong>{html.escape(a.title or w["untitled"])}</strong>'
            f' <span class="lib-meta">{" · ".join(meta)}</span></summary>'
            f'<div class="lib-body">{body}</div></details>'
        )
    if len(articles) > PREVIEW_LIMIT:
        parts.append(f'<div class="lib-more">{w["more"].format(PREVIEW_LIMIT)}</div>')
    return "".join(parts)
