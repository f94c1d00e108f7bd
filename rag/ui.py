"""Answers -> UI: the Gradio chat assistant. All passage text is untrusted and escaped before rendering."""

from __future__ import annotations

import logging
import os
import re

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home; must precede `import gradio`
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

from .answer import NOT_FOUND, answer  # noqa: E402
from .index import Index  # noqa: E402
from .results import Answer, Passage  # noqa: E402

log = logging.getLogger(__name__)

MODES = {"混合": "hybrid", "关键词": "lexical", "语义": "dense"}
DENSE_OFF_LABEL = "语义（不可用）"
EMPTY_PROMPT = "请输入您的问题，例如：智慧岛核心区签约入驻了多少家企业？"
APOLOGY = "抱歉，检索时出现了问题，请稍后再试。（错误已记录）"
EXAMPLES = [
    "智慧岛核心区签约入驻了多少家企业？",
    "许寨社区有多少名党员？",
    "文昌办事处发放了多少份宣传单？",
    "开发区排查了多少户自建房？",
    "国家安全宣传活动发放了多少份宣传手册？",
]
# One pass, so entities are never re-escaped: HTML specials plus the characters markdown acts on.
_INERT = str.maketrans({c: f"&#{ord(c)};" for c in "&<>\"'\\`*_[]#|~"})
CSS = """
#mode-radio label:has(input[value="语义（不可用）"]) { opacity: .45; pointer-events: none; }
mark { background: #ffe58a; padding: 0 1px; border-radius: 2px; }
.cite { font-weight: 600; color: #b45309; }
"""


def escape(text: str) -> str:
    """Untrusted text -> inert markdown: HTML and markdown syntax become character entities."""
    return text.translate(_INERT)


def highlight(text: str, terms: list[str]) -> str:
    """Escape `text` and wrap the question's key terms in <mark>; matching runs on the raw text, so marks never split an entity."""
    wanted = sorted({t for t in terms if len(t) > 1}, key=len, reverse=True)
    if not wanted:
        return escape(text)
    pattern = re.compile("|".join(re.escape(t) for t in wanted), re.IGNORECASE)
    out, pos = [], 0
    for m in pattern.finditer(text):
        out.append(escape(text[pos : m.start()]))
        out.append(f"<mark>{escape(m.group(0))}</mark>")
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def _source_line(n: int | None, p: Passage) -> str:
    head = f"**[{n}]** " if n is not None else "- "
    byline = f" · {escape(p.byline)}" if p.byline else ""
    return f"{head}{escape(p.display_title)} — {escape(p.source)}{byline}"


def _passage_body(p: Passage, terms: list[str], cited: list[str]) -> str:
    """The passage with cited sentences in bold and key terms marked."""
    out, pos = [], 0
    spans = sorted((p.text.find(s), s) for s in cited if p.text.find(s) >= 0)
    for start, sentence in spans:
        if start < pos:
            continue
        out.append(highlight(p.text[pos:start], terms))
        out.append(f"<strong>{highlight(sentence, terms)}</strong>")  # ** fails next to CJK punctuation
        pos = start + len(sentence)
    out.append(highlight(p.text[pos:], terms))
    return "".join(out).replace("\n", "\n\n")


def render(result: Answer) -> list[gr.ChatMessage]:
    """One bubble with the answer and its source list, then one collapsible panel per source."""
    if not result.found:
        lines = [f"**{NOT_FOUND}**"]
        if result.passages:
            lines += ["", "可能相关："] + [_source_line(None, p) for p in result.passages[:3]]
        else:
            lines += ["", "资料中没有与问题共有的关键词，请换个说法试试。"]
        messages = [gr.ChatMessage(role="assistant", content="\n".join(lines))]
        for p in result.passages[:3]:
            messages.append(_panel(f"可能相关 · {p.display_title} · {p.source}", _passage_body(p, result.terms, [])))
        return messages

    answer_md = "".join(f"{highlight(c.sentence, result.terms)}<span class='cite'>[{c.number}]</span>" for c in result.citations)
    sources: dict[int, dict[int, tuple[Passage, list[str]]]] = {}  # [n] -> passages of that article -> cited sentences
    for c in result.citations:
        sources.setdefault(c.number, {}).setdefault(c.passage.chunk_id, (c.passage, []))[1].append(c.sentence)
    lines = [answer_md, "**来源**"]
    lines += [_source_line(n, next(iter(group.values()))[0]) for n, group in sorted(sources.items())]
    if result.notice:
        lines.append(f"_{escape(result.notice)}_")
    messages = [gr.ChatMessage(role="assistant", content="\n\n".join(lines))]
    for n, group in sorted(sources.items()):
        parts = sorted(group.values(), key=lambda pc: pc[0].start)
        first = parts[0][0]
        body = "\n\n……\n\n".join(_passage_body(p, result.terms, cited) for p, cited in parts)
        messages.append(_panel(f"[{n}] {first.display_title} · {first.source}", body))
    return messages


def _panel(title: str, body: str) -> gr.ChatMessage:
    # Panel titles are rendered as markdown too, so they are escaped like passages.
    return gr.ChatMessage(role="assistant", content=body, metadata={"title": escape(title[:120]), "status": "done"})


def status_markdown(index: Index) -> str:
    info = index.info()
    dense = (
        f"开启（模型 `{escape(info.model)}`，{info.dim} 维）"
        if info.dense
        else f"**关闭**：{escape(info.dense_reason)}。当前仅使用关键词检索（jieba + BM25）。"
    )
    return (
        f"**索引状态**　文档 {info.documents} 篇 · 文章 {info.articles} 篇 · 文本块 {info.chunks} 个\n\n"
        f"嵌入模型：`{escape(info.model)}`\n\n语义检索：{dense}"
    )


def build_demo(index: Index) -> gr.Blocks:
    dense_on = index.dense_enabled
    mode_choices = ["混合", "关键词", "语义" if dense_on else DENSE_OFF_LABEL]

    def respond(message, history, k, mode_label, sources):
        text = message if isinstance(message, str) else str((message or {}).get("text", ""))
        if not text.strip():
            return EMPTY_PROMPT
        mode = MODES.get(mode_label, "hybrid")
        if mode == "dense" and not index.dense_enabled:
            mode = "hybrid"
        try:
            result = answer(index, text, k=int(k or 5), history=history, mode=mode, sources=sources or None)
        except Exception:
            log.exception("检索失败：%r", text[:200])
            return APOLOGY
        return render(result)

    with gr.Blocks(title="周口新闻问答助手", fill_height=True) as demo:
        gr.Markdown("# 周口新闻问答助手\n用自然语言提问，回答摘自本地报纸原文，每句都标明出处。")
        if not dense_on:
            gr.Markdown(f"⚠ **语义检索未开启**：{escape(index.dense_reason)}。当前仅使用关键词检索。", elem_id="dense-warning")
        with gr.Tab("问答"):
            with gr.Row():
                with gr.Column(scale=4):
                    chat = gr.ChatInterface(
                        respond,
                        chatbot=gr.Chatbot(label="对话", elem_id="qa-chat", height=560, placeholder="向报纸提问吧，例如下方的示例问题。"),
                        textbox=gr.Textbox(placeholder="输入问题，按回车提交", elem_id="qa-input", submit_btn="提问"),
                        additional_inputs=[
                            gr.Slider(1, 10, value=5, step=1, label="段落数", render=False),
                            gr.Radio(mode_choices, value="混合", label="检索模式", elem_id="mode-radio", render=False,
                                     info=None if dense_on else f"语义不可用：{index.dense_reason}"),
                            gr.Dropdown(index.sources(), value=[], multiselect=True, label="按来源文件筛选（留空为全部）",
                                        render=False),
                        ],
                        additional_inputs_accordion=gr.Accordion("设置", open=False, render=False),
                        examples=[[q, 5, "混合", []] for q in EXAMPLES],
                        example_labels=EXAMPLES,
                        examples_label="示例问题",
                        run_examples_on_click=True,
                        cache_examples=False,
                        api_name="ask",
                        concurrency_limit="default",
                        fill_height=True,
                        autofocus=True,
                    )
                with gr.Column(scale=1, min_width=220):
                    gr.Markdown(status_markdown(index), elem_id="index-status")
        with gr.Tab("文档"):
            rows = [[a.title or "（无标题）", "、".join(a.sources), a.byline, a.chunks] for a in index.articles()]
            gr.Dataframe(rows, headers=["标题", "文件", "署名", "文本块数"], interactive=False, elem_id="doc-table",
                         wrap=True)
    demo.chat = chat
    return demo
