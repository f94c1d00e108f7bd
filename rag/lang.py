"""Which language the app speaks: around an answer, the question's own (the quoted evidence stays Chinese);
on the page's furniture, the browser's.

`detect_language` is deliberately simple: any CJK character means Chinese; otherwise a question
made mostly of Latin letters is English. `TEXTS` holds every phrase the answer view needs in both.
`page_language` reads a browser's Accept-Language: Chinese first or no preference -> Chinese, else English.
"""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_LETTER = re.compile(r"[^\W\d_]")


def detect_language(text: str) -> str:
    """"zh" or "en": English only when the text has no CJK character and its letters are mostly Latin."""
    text = text or ""
    if _CJK.search(text):
        return "zh"
    letters = len(_LETTER.findall(text))
    latin = len(_LATIN.findall(text))
    return "en" if latin and latin >= 0.6 * letters else "zh"


def page_language(accept_language: str | None) -> str:
    """"zh" or "en" for a browser's Accept-Language header: its most wanted language decides; none -> Chinese."""
    best, best_q = "", -1.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag and tag != "*" and q > best_q:
            best, best_q = tag.lower(), q
    return "zh" if not best or best.startswith("zh") else "en"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


TEXTS = {
    "zh": {
        "found_in": lambda n: f"在 {n} 篇文章中找到",
        "sources": "来源",
        "page": lambda p: f"第 {p} 版",
        "not_found": "资料中没有找到相关内容。",
        "maybe_related": "可能相关：",
        "no_overlap": "资料中没有与问题共有的关键词，请换个说法试试。",
        "english_hint": "",
        "copy": "复制答案",
        "searched": "追问按上文一起检索",
        "open_hint": "点击 [n] 或来源查看整篇原文",
        "how_found": "检索过程",
        "passages": lambda n: f"{n} 个段落",
        "ms": lambda ms: f"{ms:.0f} 毫秒",
        "mode": {"hybrid": "混合（关键词 + 语义）", "lexical": "关键词（jieba + BM25）", "dense": "语义"},
        "mode_label": "检索模式",
        "engine": "语义引擎",
        "engine_off": "未使用",
        "elapsed": "检索用时",
        "columns": ["#", "文章 · 来源", "关键词名次", "语义名次", "得分"],
        "rank_none": "—",
        "article_title": "原文",
        "article_empty": "点击回答中的 [1] 或来源，在这里查看整篇原文，引用的句子会高亮显示。",
        "article_gone": "这篇文章的原文已不在当前索引中（资料库已更新），下面只显示当时引用的段落。",
        "article_expired": "该回答的原文已不在本次会话中，请重新提问。",
        "byline": "署名",
        "also_in": "同见于",
        "error": "抱歉，检索时出现了问题，请稍后再试。（错误已记录）",
        "empty": "请输入您的问题，例如：智慧岛核心区签约入驻了多少家企业？",
        "untitled": "（无标题）",
    },
    "en": {
        "found_in": lambda n: f"Found in {plural(n, 'article')}",
        "sources": "Sources",
        "page": lambda p: f"page {p}",
        "not_found": "Nothing in the archive answers this question.",
        "maybe_related": "Possibly related:",
        "no_overlap": "No passage shares a keyword with the question; try other words.",
        "english_hint": "The archive is in Chinese and semantic search is off, so only exact words can match: "
                        "try asking in Chinese, e.g. 智慧岛核心区签约入驻了多少家企业？",
        "copy": "Copy answer",
        "searched": "Follow-up searched with the previous turn",
        "open_hint": "click [n] or a source to read the whole article",
        "how_found": "How this was found",
        "passages": lambda n: plural(n, "passage"),
        "ms": lambda ms: f"{ms:.0f} ms",
        "mode": {"hybrid": "hybrid (keywords + semantic)", "lexical": "keywords (jieba + BM25)", "dense": "semantic"},
        "mode_label": "Mode",
        "engine": "Semantic engine",
        "engine_off": "not used",
        "elapsed": "Retrieval time",
        "columns": ["#", "Article · source", "Keyword rank", "Semantic rank", "Score"],
        "rank_none": "—",
        "article_title": "Article",
        "article_empty": "Click [1] or a source in an answer to read the whole article here, with the quoted sentences highlighted.",
        "article_gone": "This article is no longer in the index (the library changed); only the quoted passages are shown.",
        "article_expired": "This answer's articles are no longer in this session; please ask again.",
        "byline": "Byline",
        "also_in": "Also in",
        "error": "Sorry, something went wrong while searching; please try again. (The error was logged.)",
        "empty": "Please type a question, e.g. How many enterprises signed up in the Smart Island core area?",
        "untitled": "(untitled)",
    },
}


def texts(lang: str) -> dict:
    return TEXTS.get(lang, TEXTS["zh"])


# --- engine labels, rendered in the reader's language (notices render themselves: rag/notices.py) ---------

# Engine labels (rag/encoders): the Chinese parts of a label and their English
_ENGINE_WORDS = (("（内置 4-bit 版本）", " (bundled 4-bit copy)"), ("语义检索：", "semantic search: "))


def engine_label(label: str, lang: str) -> str:
    """A dense engine's label (e.g. multilingual-e5-small（内置 4-bit 版本）) in `lang`."""
    if lang == "zh" or not label:
        return label
    for zh, en in _ENGINE_WORDS:
        label = label.replace(zh, en)
    return label


def not_found(lang: str) -> str:
    """What an answer says when the archive does not answer the question (rag.answer.NOT_FOUND in Chinese)."""
    return texts(lang)["not_found"]


# --- the page's furniture, in the browser's language (gr.I18n keys; see rag/ui.py) ---------------------

PAGE = {
    "zh": {
        "intro": "# 周口新闻问答助手\n用自然语言提问（中文或英文都可以），回答摘自本地报纸原文，每句都标明出处；"
                 "点击 **[1]** 这样的引用，右侧显示整篇原文。",
        "tab_chat": "问答", "tab_library": "资料库",
        "chat_placeholder": "**向报纸提问吧**\n\n点击下方的示例问题，或直接输入。",
        "placeholder": "输入问题，按回车提交", "ask": "提问", "examples": "示例：", "new_chat": "新对话",
        "settings": "设置", "k": "段落数", "mode": "检索模式", "sources": "按来源文件筛选（留空为全部）",
        "article": "#### 原文",
        "lib_intro": "报纸版面文件（{suffixes}）组成资料库；上传后立刻可以提问，无需重启。"
                     "每次最多 {files} 个文件，每个不超过 {mb} MB；文件类型按内容检查。",
        "read_only": "🔒 只读模式：可以浏览和预览资料库，不能上传或删除文档。",
        "files": "选择文件（可多选）", "upload": "上传并加入资料库", "results": "上传结果", "refresh": "刷新",
        "docs": "文档（点击一行预览）", "preview_doc": "预览文档的文章", "delete_doc": "删除上传的文档",
        "delete": "删除…", "confirm": "确认删除", "cancel": "取消",
    },
    "en": {
        "intro": "# Zhoukou local-news QA\nAsk in plain language (Chinese or English). Answers are quoted from the local "
                 "newspaper, each sentence with its source; click a citation like **[1]** to read the whole article on the right.",
        "tab_chat": "Ask", "tab_library": "Library",
        "chat_placeholder": "**Ask the newspaper**\n\nClick an example below, or type a question.",
        "placeholder": "Type a question and press Enter", "ask": "Ask", "examples": "Examples:", "new_chat": "New chat",
        "settings": "Settings", "k": "Passages", "mode": "Search mode", "sources": "Only these source files (empty: all)",
        "article": "#### Article",
        "lib_intro": "The archive is made of newspaper files ({suffixes}); questions are answered from an upload at once, "
                     "without a restart. Up to {files} files at a time, {mb} MB each; a file's type is checked by its content.",
        "read_only": "🔒 Read-only: you can browse and preview the library, not upload or delete.",
        "files": "Choose files (several at once)", "upload": "Upload to the library", "results": "Upload results",
        "refresh": "Refresh", "docs": "Documents (click a row to preview)", "preview_doc": "Preview a document's articles",
        "delete_doc": "Delete an uploaded document", "delete": "Delete…", "confirm": "Delete it", "cancel": "Cancel",
    },
}

# What the page says in its handlers (status line, library messages, upload progress), per page language.
PAGE_TEXTS = {
    "zh": {
        "modes": {"hybrid": "混合", "lexical": "关键词", "dense": "语义"}, "dense_off_choice": "语义（不可用）",
        "dense_off_info": "语义不可用：{}",
        "status": "资料库：文档 {docs} 篇 · 文章 {articles} 篇 · 文本块 {chunks} 个 · 关键词检索：{lexical} · 语义检索：{dense}",
        "on": "开启", "off_reason": "关闭（{}）", "dense_on": "开启（{label}，{dim} 维）", "dense_off": "关闭，仅使用关键词检索",
        "dense_warning": "⚠ **语义检索未开启**：{}。当前仅使用关键词检索。",
        "read_only": "只读模式：不能上传或删除文档（RAG_READ_ONLY / --read-only）。",
        "pick_files": "请先选择要上传的文件。", "too_many": "一次最多上传 {} 个文件",
        "not_received": "不是通过本页上传的文件，已拒绝",
        "too_large": "文件过大（{size:.1f} MB，上限 {limit} MB）", "unreadable": "无法读取上传的文件：{}",
        "failed": "处理时出错（已记录）",
        "pick_delete": "请先选择要删除的文档。", "gone": "资料库中已经没有 **{}**（可能刚被删除），请重新选择。",
        "not_uploaded": "**{}** 来自文档目录：从该目录删除文件即可，资料库会随之更新。",
        "confirm": "确定从资料库删除 **{}** 吗？删除后它的文章不再出现在回答中。", "no_change": "没有改动",
        "cannot_delete": "无法删除：{}",
        "stages": {"read": "读取", "ocr": "OCR 第 {done}/{total} 页", "split": "切分文章", "embed": "向量化 {done}/{total}",
                   "sentences": "句子向量 {done}/{total}", "save": "写入索引"},
        "elapsed": "已用 {:.0f} 秒", "eta": "还需约 {:.0f} 秒",
    },
    "en": {
        "modes": {"hybrid": "hybrid", "lexical": "keywords", "dense": "semantic"},
        "dense_off_choice": "semantic (unavailable)", "dense_off_info": "Semantic search is unavailable: {}",
        "status": "Library: {docs} documents · {articles} articles · {chunks} chunks · keyword search: {lexical} · "
                  "semantic search: {dense}",
        "on": "on", "off_reason": "off ({})", "dense_on": "on ({label}, {dim} dimensions)", "dense_off": "off, keywords only",
        "dense_warning": "⚠ **Semantic search is off**: {}. Only keyword search is used.",
        "read_only": "Read-only: documents cannot be uploaded or deleted (RAG_READ_ONLY / --read-only).",
        "pick_files": "Choose the files to upload first.", "too_many": "At most {} files per upload",
        "not_received": "Refused: not a file uploaded through this page",
        "too_large": "Too large ({size:.1f} MB; the limit is {limit} MB)", "unreadable": "The uploaded file cannot be read: {}",
        "failed": "Processing failed (logged)",
        "pick_delete": "Choose the document to delete first.",
        "gone": "**{}** is no longer in the library (it was probably just deleted); choose again.",
        "not_uploaded": "**{}** comes from the docs folder: delete the file there and the library follows.",
        "confirm": "Delete **{}** from the library? Its articles will no longer appear in answers.", "no_change": "no change",
        "cannot_delete": "Cannot delete: {}",
        "stages": {"read": "reading", "ocr": "OCR page {done}/{total}", "split": "splitting into articles",
                   "embed": "embedding {done}/{total}", "sentences": "sentence vectors {done}/{total}", "save": "saving"},
        "elapsed": "{:.0f} s so far", "eta": "about {:.0f} s left",
    },
}


def page_texts(lang: str) -> dict:
    return PAGE_TEXTS.get(lang, PAGE_TEXTS["zh"])
