"""Answers -> UI: the Gradio page (问答 chat and 资料库 library tabs).

Nothing about the archive is put into the page's config: the config (and Gradio's API info) can be
read before login, so sources, counts and documents are fetched per request, on page load and after
each change. The index moves to newer generations by itself, which is another reason not to cache.
All archive text is untrusted and escaped before rendering (see rag/chat_view.py).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home; must precede `import gradio`
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

from .answer import answer  # noqa: E402
from .chat_view import (  # noqa: E402,F401  (escape/highlight are part of this module's API for tests)
    MAX_TURNS, Trace, answer_markdown, article_html, build_turn, empty_article_html, escape, highlight,
    how_found_markdown, how_found_title,
)
from .index import MAX_QUERY_CHARS, BackendUnavailable, Index, IndexCorrupt, IndexLocked, LexicalUnavailable  # noqa: E402
from .lang import detect_language, texts  # noqa: E402
from .library import LibraryError  # noqa: E402
from .library_view import (  # noqa: E402
    CHANGE_HEADERS, DOC_HEADERS, ORIGINS, change_row, document_rows, preview_html, status_row, summary_markdown,
)
from .results import IndexInfo  # noqa: E402
from .settings import Settings  # noqa: E402

log = logging.getLogger(__name__)

MODES = {"混合": "hybrid", "关键词": "lexical", "语义": "dense"}  # labels -> values (older clients send labels)
DENSE_OFF_LABEL = "语义（不可用）"


def mode_choices(dense_on: bool) -> list[tuple[str, str]]:
    return [("混合", "hybrid"), ("关键词", "lexical"), ("语义" if dense_on else DENSE_OFF_LABEL, "dense")]
EMPTY_PROMPT = texts("zh")["empty"]
APOLOGY = texts("zh")["error"]
EXAMPLES = [
    "智慧岛核心区签约入驻了多少家企业？",
    "许寨社区有多少名党员？",
    "文昌办事处发放了多少份宣传单？",
    "开发区排查了多少户自建房？",
]
# Shown only when the dense leg is on: without it an English question cannot match Chinese text.
ENGLISH_EXAMPLE = "How many enterprises signed up in the Smart Island core area?"
READ_ONLY_TEXT = "🔒 只读模式：可以浏览和预览资料库，不能上传或删除文档。"
HISTORY_KEEP = 6  # questions a follow-up may lean on (answer() reads the last few)

CSS = """
#mode-radio.dense-off label:has(input[value="dense"]) { opacity: .45; pointer-events: none; }
#qa-chat mark, #article-view mark { background: #ffe58a; padding: 0 1px; border-radius: 2px; color: inherit; }
#qa-chat a.cite { font-weight: 600; color: #b45309; text-decoration: none; margin: 0 1px; }
#qa-chat a.src { color: inherit; text-decoration: none; border-bottom: 1px dotted #b45309; }
#qa-chat a.cite:hover, #qa-chat a.src:hover { background: #fff3c4; }
#qa-chat small.hint { color: #6b7280; font-weight: normal; }
#qa-chat em.notice { color: #92400e; }
#qa-chat a.copy-answer { font-size: .85em; color: #6b7280; text-decoration: none; border: 1px solid #d1d5db;
  border-radius: 6px; padding: 1px 8px; }
#qa-chat a.copy-answer.copied::after { content: " ✓"; color: #059669; }
#qa-chat .copy-text { display: none; }
#examples { gap: 6px; flex-wrap: wrap; align-items: center; }
#examples .chip { flex: 0 0 auto !important; min-width: 0 !important; border-radius: 999px; font-weight: normal; }
#examples-label { flex: 0 0 auto !important; min-width: 0 !important; color: #6b7280; }
#article-view { border: 1px solid var(--border-color-primary); border-radius: 8px; }
#article-view .article-ref { color: #6b7280; font-size: .85em; }
#article-view .article-headline { margin: 4px 0 2px; font-size: 1.15em; }
#article-view .article-byline { color: #4b5563; font-size: .9em; margin-bottom: 8px; }
#article-view .article-body p { margin: 0 0 .6em; line-height: 1.7; }
#article-view mark.cited { background: #ffd666; font-weight: 600; }
#article-view mark.passage { background: #fff5cc; }
#qa-chat table { font-size: .85em; }
#qa-chat table td, #qa-chat table th { padding: 4px 6px; }
#qa-chat table b.cited { color: #b45309; }
#article-view .article-empty, #article-view .article-note { color: #6b7280; }
#article-view .article-also { color: #6b7280; font-size: .85em; margin-top: 8px; }
#index-status { color: #4b5563; font-size: .9em; }
#lib-preview details { border-bottom: 1px solid var(--border-color-primary); padding: 6px 0; }
#lib-preview summary { cursor: pointer; }
#lib-preview .lib-meta, #lib-preview .lib-kicker { color: #6b7280; font-size: .9em; }
#lib-preview .lib-body p { margin: 0 0 .5em; line-height: 1.7; }
#lib-preview .lib-preview-head { font-weight: 600; margin-bottom: 6px; }
"""

# Citations and the copy link are plain fragment links inside the (sanitised) chat markdown; this
# turns their clicks into a `click` event of the hidden bridge, whose value says which one.
BRIDGE_JS = """
window.__ragOpen = (key) => { props.value = key + '@' + Date.now(); trigger('click'); };
if (!window.__ragLinks) {
  window.__ragLinks = true;
  const fallback = (text) => {
    const area = document.createElement('textarea');
    area.value = text; area.style.position = 'fixed'; area.style.opacity = '0';
    document.body.appendChild(area); area.select();
    let ok = false; try { ok = document.execCommand('copy'); } catch (err) {}
    area.remove(); return ok;
  };
  document.addEventListener('click', (event) => {
    const link = event.target.closest ? event.target.closest('a[href^="#cite-"], a[href^="#copy-"]') : null;
    if (!link) return;
    event.preventDefault(); event.stopPropagation();
    const href = link.getAttribute('href');
    if (href.startsWith('#cite-')) { window.__ragOpen(href.slice(6)); return; }
    const holder = link.parentElement;
    const source = holder ? holder.querySelector('.copy-text') : null;
    const text = source ? source.textContent : '';
    const done = () => { link.classList.add('copied'); setTimeout(() => link.classList.remove('copied'), 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => { if (fallback(text)) done(); });
    } else if (fallback(text)) { done(); }
  }, true);
}
"""
ARTICLE_JS = """
watch('value', () => {
  const mark = element.querySelector('mark.cited, mark.passage');
  if (mark) mark.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
});
"""


def status_markdown(index: Index, info: IndexInfo | None = None) -> str:
    info = info or index.info()
    dense = (f"开启（{escape(info.dense_label or info.model)}，{info.dim} 维）" if info.dense
             else "关闭，仅使用关键词检索")
    if info.dense_progress is not None:  # serve first, embed after (rag/dense_fill.py)
        dense = f"{info.dense_progress.text()}，完成前{'只检索已向量化的部分' if info.dense else '仅使用关键词检索'}"
    lexical = f"关闭（{escape(info.lexical_reason)}）" if info.lexical_reason else "开启"
    return (f"资料库：文档 {info.documents} 篇 · 文章 {info.articles} 篇 · 文本块 {info.chunks} 个 · "
            f"关键词检索：{lexical} · 语义检索：{dense}")


def dense_warning(index: Index, info: IndexInfo | None = None) -> str:
    info = info or index.info()
    return "" if info.dense else f"⚠ **语义检索未开启**：{escape(info.dense_reason)}。当前仅使用关键词检索。"


def _question_text(message) -> str:
    if isinstance(message, str):
        return message
    if isinstance(message, dict):
        return str(message.get("text", ""))
    return str(message or "")


def _new_session() -> dict:
    return {"messages": [], "questions": [], "turns": {}, "count": 0}


class ChatHandlers:
    """The chat tab's event handlers over one index; the session state holds everything per user."""

    def __init__(self, index: Index):
        self.index = index

    def ask(self, message, k, mode_label, sources, session):
        """Show the question at once, then the answer bubble and its folded "how this was found" view."""
        session = {**_new_session(), **(session or {})}
        messages = list(session["messages"])
        text = _question_text(message).strip()
        lang = detect_language(text)
        t = texts(lang)
        if not text:
            messages.append({"role": "assistant", "content": t["empty"]})
            yield messages, {**session, "messages": messages}, gr.Textbox(value="", interactive=True)
            return
        messages.append({"role": "user", "content": escape(text[:MAX_QUERY_CHARS + 200])})
        yield messages, {**session, "messages": messages}, gr.Textbox(value="", interactive=False)

        mode = MODES.get(mode_label, mode_label if mode_label in MODES.values() else "hybrid")
        dense_on = self.index.dense_enabled
        if mode == "dense" and not dense_on:
            mode = "hybrid"
        history = [{"role": "user", "content": q} for q in session["questions"]]
        started = time.perf_counter()
        try:
            result = answer(self.index, text, k=int(k or 5), history=history, mode=mode, sources=sources or None)
        except (IndexLocked, IndexCorrupt, BackendUnavailable, LexicalUnavailable) as exc:
            log.error("索引暂不可用：%s", exc)
            reply = str(exc) if isinstance(exc, LexicalUnavailable) else t["busy"]  # the reason says which mode works
            messages.append({"role": "assistant", "content": reply})
            yield messages, {**session, "messages": messages}, gr.Textbox(interactive=True)
            return
        except Exception:
            log.exception("检索失败：%r", text[:200])
            messages.append({"role": "assistant", "content": t["error"]})
            yield messages, {**session, "messages": messages}, gr.Textbox(interactive=True)
            return
        elapsed = (time.perf_counter() - started) * 1000

        number = session["count"]
        turn = build_turn(result, lang, result.bodies.get)  # bodies from the answer's own snapshot
        turns = {**session["turns"], str(number): turn.to_state()}
        for old in sorted(turns, key=int)[:-MAX_TURNS]:
            turns.pop(old)
        messages.append({"role": "assistant", "content": answer_markdown(result, number, lang, dense_on)})
        if result.passages:
            trace = Trace(result.mode, result.engine, elapsed)
            messages.append({
                "role": "assistant",
                "content": how_found_markdown(result, trace, number, lang),
                "metadata": {"title": escape(how_found_title(result, trace, lang)), "status": "done"},
            })
        session = {
            "messages": messages,
            "questions": (session["questions"] + [text[:MAX_QUERY_CHARS]])[-HISTORY_KEEP:],
            "turns": turns,
            "count": number + 1,
        }
        yield messages, session, gr.Textbox(interactive=True)

    def open_article(self, key, session):
        """A click on [n] or a source: the whole article, kept in the session since the answer."""
        ref = str(key or "").split("@")[0]
        number, _, name = ref.partition("-")
        turn = ((session or {}).get("turns") or {}).get(number)
        if turn is None:
            return article_html(None, "", "zh")
        lang = turn["lang"]
        card = turn["articles"].get(turn["refs"].get(name, ""))
        if name.isdigit():
            label = f"[{name}]"
        else:
            label = ("段落 " if lang == "zh" else "passage ") + str(int(name[1:] or 0) + 1)
        return article_html(card, label, lang)

    @staticmethod
    def reset():
        return [], _new_session(), empty_article_html()


class LibraryHandlers:
    """The 资料库 tab's handlers. Read-only mode is enforced here, not only by hiding the controls."""

    def __init__(self, index: Index, settings: Settings, on_change=None):
        self.index = index
        self.settings = settings
        self.on_change = on_change or (lambda: None)

    def refused(self) -> str:
        return "只读模式：不能上传或删除文档（RAG_READ_ONLY / --read-only）。"

    def tables(self):
        docs = self.index.documents()
        names = sorted(d.source for d in docs)
        stored = sorted(d.source for d in docs if d.origin == "stored")
        return (
            document_rows(docs),
            summary_markdown(docs),
            gr.Dropdown(choices=names),
            gr.Dropdown(choices=stored),
        )

    def upload(self, paths):
        """Add files one by one, so the results table fills in as each is done."""
        paths = [p for p in (paths or []) if p]
        if self.settings.read_only:
            for path in paths:
                _discard(path)
            yield [status_row("—", "refused", self.refused())], *self.tables(), None
            return
        if not paths:
            yield [status_row("—", "refused", "请先选择要上传的文件。")], *self.tables(), None
            return
        limit_n = self.settings.max_uploads
        rows = [status_row(_upload_name(p), "waiting") for p in paths[:limit_n]]
        rows += [status_row(_upload_name(p), "refused", f"一次最多上传 {limit_n} 个文件") for p in paths[limit_n:]]
        for path in paths[limit_n:]:
            _discard(path)
        unchanged = (gr.skip(),) * 5
        changed = False
        for i, path in enumerate(paths[:limit_n]):
            rows[i] = status_row(rows[i][0], "pending")
            yield [list(r) for r in rows], *unchanged
            status, rows[i] = self._add_one(path)
            changed = changed or status in ("added", "replaced", "skipped")
            yield [list(r) for r in rows], *unchanged
        if changed:
            self.on_change()
        yield [list(r) for r in rows], *self.tables(), None

    def _add_one(self, path) -> tuple[str, list]:
        name = _upload_name(path)
        limit_mb = self.settings.max_upload_mb
        try:
            size = Path(path).stat().st_size
            if size > limit_mb * 2**20:
                return "refused", status_row(name, "refused", f"文件过大（{size / 2**20:.1f} MB，上限 {limit_mb} MB）")
            data = Path(path).read_bytes()
        except OSError as exc:
            return "refused", status_row(name, "refused", f"无法读取上传的文件：{exc.strerror or exc}")
        finally:
            _discard(path)
        try:
            changes = self.index.add([(name, data)])
        except IndexLocked as exc:
            return "refused", status_row(name, "refused", f"资料库正由其他进程更新，请稍后再试（{exc}）")
        except (LibraryError, IndexCorrupt) as exc:
            return "refused", status_row(name, "refused", str(exc))
        except Exception:
            log.exception("上传失败：%s", name)
            return "refused", status_row(name, "refused", "处理时出错（已记录）")
        if not changes:
            return "unchanged", status_row(name, "unchanged")
        return changes[0].status, change_row(changes[0])

    def confirm(self, name):
        if self.settings.read_only:
            return gr.Row(visible=False), self.refused()
        if not name:
            return gr.Row(visible=False), "请先选择要删除的文档。"
        return gr.Row(visible=True), f"确定从资料库删除 **{escape(name)}** 吗？删除后它的文章不再出现在回答中。"

    def delete(self, name):
        """Delete one uploaded document (documents of the docs folder are removed by deleting the file)."""
        if self.settings.read_only:
            return gr.Row(visible=False), self.refused(), *self.tables()
        if not name:
            return gr.Row(visible=False), "请先选择要删除的文档。", *self.tables()
        try:
            changes = self.index.remove(name)
            message = "；".join(f"{escape(c.source)}：{escape(c.message)}" for c in changes) or "没有改动"
            self.on_change()
        except IndexLocked as exc:
            message = f"资料库正由其他进程更新，请稍后再试（{escape(str(exc))}）"
        except LibraryError as exc:
            message = f"无法删除：{escape(str(exc))}"
        return gr.Row(visible=False), message, *self.tables()

    def preview(self, name):
        if not name:
            return ""
        return preview_html(name, self.index.articles(name))


def _upload_name(path) -> str:
    return Path(str(path)).name


def _discard(path) -> None:
    """Gradio keeps uploads in its cache folder; the library keeps its own copy, so drop this one."""
    try:
        Path(str(path)).unlink(missing_ok=True)
    except OSError:
        pass


def build_demo(index: Index, settings: Settings | None = None, on_change=None) -> gr.Blocks:
    """The page; `on_change` runs after an upload or a delete changed the library (housekeeping)."""
    settings = settings or index.settings
    chat = ChatHandlers(index)
    library = LibraryHandlers(index, settings, on_change)

    with gr.Blocks(title="周口新闻问答助手", fill_height=True, delete_cache=(3600, 3600)) as demo:
        session = gr.State(_new_session())
        gr.Markdown("# 周口新闻问答助手\n用自然语言提问（中文或英文都可以），回答摘自本地报纸原文，每句都标明出处；"
                    "点击 **[1]** 这样的引用，右侧显示整篇原文。", elem_id="intro")
        status = gr.Markdown("", elem_id="index-status")
        warning = gr.Markdown("", elem_id="dense-warning")
        with gr.Tabs():
            with gr.Tab("问答", id="chat") as chat_tab:
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=420):
                        chatbot = gr.Chatbot(
                            label="对话", show_label=False, elem_id="qa-chat", height=560, buttons=[], feedback_options=None,
                            placeholder="**向报纸提问吧**\n\n点击下方的示例问题，或直接输入。",
                        )
                        box = gr.Textbox(show_label=False, placeholder="输入问题，按回车提交", elem_id="qa-input",
                                         submit_btn="提问", autofocus=True, lines=1, max_lines=4)
                        with gr.Row(elem_id="examples"):
                            gr.Markdown("示例：", elem_id="examples-label")
                            chips = [gr.Button(q, size="sm", elem_classes=["chip"]) for q in EXAMPLES]
                            english_chip = gr.Button(ENGLISH_EXAMPLE, size="sm", elem_classes=["chip"], visible=False,
                                                     elem_id="english-chip")
                        with gr.Row():
                            new_chat = gr.Button("新对话", size="sm", elem_id="new-chat", scale=0, min_width=90)
                        with gr.Accordion("设置", open=False, elem_id="settings"):
                            k = gr.Slider(1, 10, value=5, step=1, label="段落数", elem_id="k-slider")
                            mode = gr.Radio(mode_choices(True), value="hybrid", label="检索模式", elem_id="mode-radio")
                            sources = gr.Dropdown([], value=[], multiselect=True, label="按来源文件筛选（留空为全部）",
                                                  elem_id="source-filter", allow_custom_value=True)
                    with gr.Column(scale=2, min_width=320):
                        gr.Markdown("#### 原文", elem_id="article-title")
                        article = gr.HTML(empty_article_html(), elem_id="article-view", js_on_load=ARTICLE_JS, max_height=640,
                                          padding=True)
                bridge = gr.HTML("", visible="hidden", elem_id="cite-bridge", js_on_load=BRIDGE_JS)

            with gr.Tab("资料库", id="library") as library_tab:
                lib = _library_tab(settings)

        # --- events: chat ---------------------------------------------------------------------------
        outputs = [chatbot, session, box]
        # Questions typed or clicked share one limit (queue(default_concurrency_limit=...)).
        box.submit(chat.ask, [box, k, mode, sources, session], outputs, api_name="ask", concurrency_limit="default",
                   concurrency_id="answer")
        for chip in chips + [english_chip]:
            chip.click(_asker(chat, chip.value), [k, mode, sources, session], outputs, api_visibility="private",
                       concurrency_limit="default", concurrency_id="answer")
        bridge.click(chat.open_article, [bridge, session], [article], api_visibility="private", queue=False)
        new_chat.click(chat.reset, None, [chatbot, session, article], api_visibility="private", queue=False)
        chatbot.clear(chat.reset, None, [chatbot, session, article], api_visibility="private", queue=False)

        # --- events: per-request archive data ---------------------------------------------------------
        def on_load():
            info = index.info()
            return (
                status_markdown(index, info), dense_warning(index, info),
                gr.Radio(choices=mode_choices(info.dense), elem_classes=[] if info.dense else ["dense-off"],
                         info=None if info.dense else f"语义不可用：{info.dense_reason}"),
                gr.Dropdown(choices=index.sources()),
                gr.Button(visible=info.dense),
                *library.tables(),
            )

        load_outputs = [status, warning, mode, sources, english_chip, lib["docs"], lib["summary"], lib["preview_doc"],
                        lib["delete_doc"]]
        demo.load(on_load, None, load_outputs, api_visibility="private")

        # While the dense leg is being filled in, the status follows its progress; the timer then stops.
        dense_timer = gr.Timer(5, active=False)

        def on_dense_tick():
            info = index.info()
            return (status_markdown(index, info), dense_warning(index, info),
                    gr.Radio(choices=mode_choices(info.dense), elem_classes=[] if info.dense else ["dense-off"],
                             info=None if info.dense else f"语义不可用：{info.dense_reason}"),
                    gr.Button(visible=info.dense), gr.Timer(active=info.dense_progress is not None))

        dense_outputs = [status, warning, mode, english_chip, dense_timer]
        demo.load(on_dense_tick, None, dense_outputs, api_visibility="private")
        dense_timer.tick(on_dense_tick, None, dense_outputs, api_visibility="private")
        chat_tab.select(lambda: (status_markdown(index), gr.Dropdown(choices=index.sources())), None, [status, sources],
                        api_visibility="private")
        table_outputs = [lib["docs"], lib["summary"], lib["preview_doc"], lib["delete_doc"]]
        library_tab.select(library.tables, None, table_outputs, api_visibility="private")
        lib["refresh"].click(library.tables, None, table_outputs, api_visibility="private")

        # --- events: library -------------------------------------------------------------------------
        lib["preview_doc"].change(library.preview, [lib["preview_doc"]], [lib["preview"]], api_visibility="private")
        lib["docs"].select(_pick_document, [lib["docs"]], [lib["preview_doc"], lib["delete_doc"]], api_visibility="private")
        lib["upload"].click(
            library.upload, [lib["files"]], [lib["results"], *table_outputs, lib["files"]],
            api_name="upload", api_visibility="undocumented", concurrency_limit=1, concurrency_id="library-write",
        ).then(lambda: (status_markdown(index), gr.Dropdown(choices=index.sources())), None, [status, sources],
               api_visibility="private")
        lib["delete"].click(library.confirm, [lib["delete_doc"]], [lib["confirm_row"], lib["delete_message"]],
                            api_visibility="private")
        lib["cancel"].click(lambda: (gr.Row(visible=False), ""), None, [lib["confirm_row"], lib["delete_message"]],
                            api_visibility="private")
        lib["confirm"].click(
            library.delete, [lib["delete_doc"]], [lib["confirm_row"], lib["delete_message"], *table_outputs],
            api_name="delete_document", api_visibility="undocumented", concurrency_limit=1, concurrency_id="library-write",
        ).then(lambda: (status_markdown(index), gr.Dropdown(choices=index.sources()), ""), None,
               [status, sources, lib["preview"]], api_visibility="private")
    demo.chat_handlers = chat
    demo.library_handlers = library
    return demo


def _asker(chat: ChatHandlers, question: str):
    def ask_example(k, mode_label, sources, session):
        yield from chat.ask(question, k, mode_label, sources, session)

    return ask_example


def _pick_document(table, evt: gr.SelectData):
    """A click on a row of the documents table selects that document for preview (and, if uploaded, deletion)."""
    try:
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        cells = list(table.iloc[row]) if hasattr(table, "iloc") else list(table[row])
    except Exception:
        return gr.skip(), gr.skip()
    name, origin = cells[0], cells[DOC_HEADERS.index("来源")]
    return gr.Dropdown(value=name), (gr.Dropdown(value=name) if origin == ORIGINS["stored"] else gr.skip())


def _library_tab(settings: Settings) -> dict:
    """The 资料库 tab's components; upload and delete controls only exist when the library may change."""
    from .ingest import SUFFIXES

    read_only = settings.read_only
    c: dict = {}
    gr.Markdown(
        f"报纸版面文件（{'、'.join(SUFFIXES)}）组成资料库；上传后立刻可以提问，无需重启。"
        f"每次最多 {settings.max_uploads} 个文件，每个不超过 {settings.max_upload_mb} MB；文件类型按内容检查。",
        elem_id="lib-intro",
    )
    if read_only:
        gr.Markdown(READ_ONLY_TEXT, elem_id="lib-readonly")
    with gr.Group(visible=not read_only, elem_id="lib-upload-group"):
        c["files"] = gr.File(label="选择文件（可多选）", file_count="multiple", elem_id="lib-files", height=120)
        c["upload"] = gr.Button("上传并加入资料库", variant="primary", elem_id="lib-upload-btn")
    c["results"] = gr.Dataframe(headers=CHANGE_HEADERS, value=[], label="上传结果", interactive=False, wrap=True,
                                elem_id="lib-results", visible=not read_only, datatype=["str", "str", "str"])
    with gr.Row():
        c["summary"] = gr.Markdown("", elem_id="lib-summary")
        c["refresh"] = gr.Button("刷新", size="sm", scale=0, elem_id="lib-refresh")
    c["docs"] = gr.Dataframe(headers=DOC_HEADERS, value=[], label="文档（点击一行预览）", interactive=False, wrap=True,
                             elem_id="lib-docs", datatype=["str"] * len(DOC_HEADERS), max_height=420)
    with gr.Row(equal_height=True):
        c["preview_doc"] = gr.Dropdown([], value=None, label="预览文档的文章", elem_id="lib-preview-doc", scale=2,
                                        allow_custom_value=True)
        with gr.Column(scale=2, visible=not read_only, elem_id="lib-delete-group"):
            c["delete_doc"] = gr.Dropdown([], value=None, label="删除上传的文档", elem_id="lib-delete-doc",
                                          allow_custom_value=True)
            c["delete"] = gr.Button("删除…", variant="stop", size="sm", elem_id="lib-delete-btn")
    with gr.Row(visible=False, elem_id="lib-confirm-row") as c["confirm_row"]:
        c["confirm"] = gr.Button("确认删除", variant="stop", elem_id="lib-delete-confirm", scale=0)
        c["cancel"] = gr.Button("取消", elem_id="lib-delete-cancel", scale=0)
    c["delete_message"] = gr.Markdown("", elem_id="lib-delete-message")
    c["preview"] = gr.HTML("", elem_id="lib-preview")
    return c
