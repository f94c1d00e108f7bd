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
        "shortened": lambda n: f"问题过长，只使用了前 {n} 个字。",
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
        "busy": "资料库正在更新，请稍后再试。",
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
        "shortened": lambda n: f"The question was too long; only its first {n} characters were used.",
        "copy": "Copy answer",
        "searched": "Follow-up searched with the previous turn",
        "dense_off_short": "Semantic search is off for this index; only keyword search was used.",
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
        "busy": "The library is being updated; please try again in a moment.",
        "untitled": "(untitled)",
    },
}


def texts(lang: str) -> dict:
    return TEXTS.get(lang, TEXTS["zh"])


# --- what the core writes in Chinese, rendered in the reader's language ---------------------------------

_SHORTENED = re.compile(r"问题过长，只使用了前 (\d+) 个字。")
_DENSE_OFF = re.compile(r"语义检索未开启（.*?），本次仅使用关键词检索。")
# Engine labels (rag/encoders): the Chinese parts of a label and their English
_ENGINE_WORDS = (("（内置 4-bit 版本）", " (bundled 4-bit copy)"), ("语义检索：", "semantic search: "))


def localize_notice(notice: str, lang: str) -> str:
    """An answer's notice in the question's language (the core writes it in Chinese)."""
    if lang == "zh" or not notice:
        return notice
    t = texts(lang)
    notice = _SHORTENED.sub(lambda m: t["shortened"](int(m.group(1))) + " ", notice)
    notice = _DENSE_OFF.sub(lambda m: t["dense_off_short"] + " ", notice)
    return notice.strip()


def dense_off_notices(notice: str) -> tuple[str, str]:
    """(the notice without its "semantic search is off" part, that part)."""
    dense = " ".join(m.group(0) for m in _DENSE_OFF.finditer(notice or ""))
    return _DENSE_OFF.sub("", notice or "").strip(), dense


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
