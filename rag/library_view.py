"""The library as people see it: document rows, upload outcomes and an article preview.

Pure functions shared by the 资料库 tab and its tests; archive strings are escaped for HTML here,
and table cells are plain text (the table component renders them as text).
"""

from __future__ import annotations

import html
from datetime import datetime

from .library import Change
from .results import ArticleView, DocumentInfo

DOC_HEADERS = ["名称", "类型", "页数", "文章", "文本块", "添加时间", "来源", "状态"]
CHANGE_HEADERS = ["文件", "结果", "说明"]
KINDS = {"text": "文本", "markdown": "Markdown", "pdf": "PDF", "scan": "扫描件", "image": "图片", "docx": "Word",
         "html": "网页", "unknown": "未知"}
# Plain symbols only: they exist in every common font (emoji do not, on servers and in screenshots).
STATUS = {"added": "✓ 已添加", "replaced": "↻ 已更新", "unchanged": "= 未改动", "removed": "− 已删除",
          "skipped": "⚠ 已跳过", "refused": "✗ 已拒绝", "pending": "… 处理中", "waiting": "· 排队中"}
ORIGINS = {"folder": "文档目录", "stored": "上传"}
PREVIEW_LIMIT = 200  # articles shown in one preview


def _when(stamp: str) -> str:
    """ISO time (UTC) -> the server's local time, to the minute."""
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return stamp or ""


def document_rows(docs: list[DocumentInfo]) -> list[list]:
    rows = []
    for d in sorted(docs, key=lambda d: d.source):
        status = "正常" if d.status == "ok" else f"已跳过：{d.reason}"
        if d.duplicates:
            status += f"（{d.duplicates} 篇与已有文章相同）"
        rows.append([d.source, KINDS.get(d.kind, d.kind), d.pages or "", d.articles, d.chunks, _when(d.added_at),
                     ORIGINS.get(d.origin, d.origin), status])
    return rows


def change_row(c: Change) -> list:
    return [c.source, STATUS.get(c.status, c.status), c.message]


def status_row(name: str, status: str, message: str = "") -> list:
    return [name, STATUS[status], message]


def summary_markdown(docs: list[DocumentInfo]) -> str:
    ok = [d for d in docs if d.status == "ok"]
    skipped = len(docs) - len(ok)
    line = f"共 {len(ok)} 篇文档、{sum(d.articles for d in ok)} 篇文章、{sum(d.chunks for d in ok)} 个文本块"
    return line + (f"；{skipped} 个文件无法读取（见状态列）" if skipped else "")


def preview_html(source: str, articles: list[ArticleView]) -> str:
    """One document's parsed articles: headline, byline, page and body, each folded but the first."""
    if not articles:
        return f'<div class="lib-preview-empty">{html.escape(source)}：没有解析出文章（可能已被删除或无法读取）。</div>'
    head = f'<div class="lib-preview-head">{html.escape(source)} · 共 {len(articles)} 篇文章</div>'
    parts = [head]
    for i, a in enumerate(articles[:PREVIEW_LIMIT]):
        meta = [html.escape(a.byline)] if a.byline else []
        if a.page:
            meta.append(f"第 {a.page} 版")
        meta.append(f"{a.chunks} 个文本块")
        kicker = f'<span class="lib-kicker">{html.escape(a.kicker)}</span> ' if a.kicker else ""
        body = "".join(f"<p>{html.escape(line)}</p>" for line in a.body.split("\n") if line.strip())
        parts.append(
            f'<details class="lib-article"{" open" if i == 0 else ""}><summary>{kicker}'
            f'<strong>{html.escape(a.title or "（无标题）")}</strong>'
            f' <span class="lib-meta">{" · ".join(meta)}</span></summary>'
            f'<div class="lib-body">{body}</div></details>'
        )
    if len(articles) > PREVIEW_LIMIT:
        parts.append(f'<div class="lib-more">只显示前 {PREVIEW_LIMIT} 篇。</div>')
    return "".join(parts)
