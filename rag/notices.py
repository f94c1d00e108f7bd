"""Notices: what the core has to tell the reader beside an answer, as a code and its parameters.

The core never writes a sentence for the view to parse back: it says `Notice(SHORTENED, n=2000)`,
and the view (chat bubble, API, CLI) renders it in the reader's language with `Notice.text(lang)`.
Parameters that are themselves archive text or an operator's message (why the dense leg is off)
are shown as they are in Chinese, and summarised in English.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class NoticeCode(str, Enum):
    SHORTENED = "shortened"  # n: the question was cut to its first n characters
    DENSE_OFF = "dense_off"  # reason: hybrid asked, the dense leg cannot run, keywords only
    DENSE_FILLING = "dense_filling"  # percent, minutes (or None): the dense leg is still being filled in
    LEXICAL_OFF = "lexical_off"  # reason: the storage cannot run the lexical leg, dense only
    SELF_TEST = "self_test"  # percent: the model failed the archive's self-test, keywords only
    UNSURE = "unsure"  # confidence: an answer the answerability model only just let through (answerability.UNSURE_BELOW)


# Notices about how the search was served (shown under "how this was found", not in the answer bubble).
SEARCH_MODE = frozenset({NoticeCode.DENSE_OFF, NoticeCode.DENSE_FILLING, NoticeCode.LEXICAL_OFF, NoticeCode.SELF_TEST})

_TEXT = {
    "zh": {
        NoticeCode.SHORTENED: lambda p: f"问题过长，只使用了前 {p['n']} 个字。",
        NoticeCode.DENSE_OFF: lambda p: f"语义检索未开启（{p['reason']}），本次仅使用关键词检索。",
        NoticeCode.DENSE_FILLING: lambda p: (f"语义检索未开启（语义索引 {p['percent']}%"
                                             + (f"（约 {p['minutes']} 分钟）" if p.get("minutes") else "")
                                             + "，完成后开启），本次仅使用关键词检索。"),
        NoticeCode.LEXICAL_OFF: lambda p: f"关键词检索不可用（{p['reason']}），本次仅使用语义检索。",
        NoticeCode.SELF_TEST: lambda p: (f"语义模型在本资料库的自检中只为 {p['percent']}% 的句子找回其所属文章（读不懂这种语言？），"
                                         "混合检索本次仅使用关键词检索。"),
        NoticeCode.UNSURE: lambda p: "把握不大：引用的句子可能没有直接回答这个问题，请打开原文核对。",
    },
    "en": {
        NoticeCode.SHORTENED: lambda p: f"The question was too long; only its first {p['n']} characters were used.",
        NoticeCode.DENSE_OFF: lambda p: "Semantic search is off for this index; only keyword search was used.",
        NoticeCode.DENSE_FILLING: lambda p: (f"Semantic index {p['percent']}%"
                                             + (f" (about {p['minutes']} min)" if p.get("minutes") else "")
                                             + "; until it is complete only keyword search is used."),
        NoticeCode.LEXICAL_OFF: lambda p: "Keyword search is unavailable on this storage; only semantic search was used.",
        NoticeCode.SELF_TEST: lambda p: (f"The semantic model found the right article for only {p['percent']}% of this "
                                         "archive's sentences in its self-test; hybrid search used keywords only."),
        NoticeCode.UNSURE: lambda p: "Low confidence: the quoted sentences may not answer this question; open the source to check.",
    },
}


@dataclass(frozen=True)
class Notice:
    code: NoticeCode
    params: dict = field(default_factory=dict)

    def text(self, lang: str = "zh") -> str:
        return _TEXT.get(lang, _TEXT["zh"])[self.code](self.params)


def render(notices, lang: str = "zh") -> str:
    """Several notices as one line in `lang`."""
    return " ".join(n.text(lang) for n in notices)
