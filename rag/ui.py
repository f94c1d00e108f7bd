"""Answers -> UI: the Gradio page (问答 chat and 资料库 library tabs).

Nothing about the archive is put into the page's config: the config (and Gradio's API info) can be
read before login, so sources, counts and documents are fetched per request, on page load and after
each change. The index moves to newer generations by itself, which is another reason not to cache.
All archive text is untrusted and escaped before rendering (see rag/chat_view.py).
"""

from __future__ import annotations

import atexit
import enum
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Final, Literal, TypedDict

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home; must precede `import gradio`
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

from . import progress  # noqa: E402
from .answer import answer  # noqa: E402
from .chat_view import (  # noqa: E402,F401  (escape/highlight are part of this module's API for tests)
    MAX_TURNS,
    Trace,
    answer_markdown,
    article_html,
    build_turn,
    empty_article_html,
    escape,
    highlight,
    how_found_markdown,
    how_found_title,
)
from .errors import describe  # noqa: E402
from .guard import UploadLedger  # noqa: E402
from .index import MAX_QUERY_CHARS, Index  # noqa: E402
from .lang import PAGE, detect_language, engine_label, page_language, page_texts, texts  # noqa: E402
from .library_view import (  # noqa: E402
    CHANGE_HEADERS,
    CHANGE_HEADERS_BY,
    DOC_HEADERS,
    HEADERS,
    ORIGIN_COLUMN,
    UPLOADED,
    change_row,
    document_rows,
    preview_html,
    shared_articles,
    status_row,
    summary_markdown,
)
from .results import IndexInfo  # noqa: E402
from .settings import Settings  # noqa: E402
from .uploads import Refusal, UploadLog, UploadRules  # noqa: E402

log = logging.getLogger(__name__)

MODES = {"混合": "hybrid", "关键词": "lexical", "语义": "dense"}  # labels -> values (older clients send labels)
PROGRESS_EVERY_S = 0.5  # how often an upload's row shows the stage it is in


def mode_choices(dense_on: bool, lang: str = "zh") -> list[tuple[str, str]]:
    w = page_texts(lang)
    names = w["modes"]
    return [(names["hybrid"], "hybrid"), (names["lexical"], "lexical"),
            (names["dense"] if dense_on else w["dense_off_choice"], "dense")]


def request_language(request: gr.Request | None) -> str:
    """The page's language: the browser's (Accept-Language), as gr.I18n picks it for the furniture."""
    headers = getattr(request, "headers", None) or {}
    return page_language(headers.get("accept-language"))


def page_i18n(settings: Settings) -> gr.I18n:
    """The furniture's words in both languages; the browser's locale picks one (other locales get English)."""
    from .ingest import SUFFIXES

    sizes = {"suffixes": "、".join(SUFFIXES), "files": settings.max_uploads, "mb": settings.max_upload_mb}
    words = {lang: {k: v.format(**sizes) if k == "lib_intro" else v for k, v in page.items()} for lang, page in PAGE.items()}
    return gr.I18n(**words)


def step_text(step: progress.Step | None, started: float, lang: str) -> str:
    """An upload's progress in words: the stage and its count, time spent and the stage's estimate."""
    w = page_texts(lang)
    if step is None:
        return w["stages"]["read"]
    # OCR names the page being read (2/3 while the second is); the other counts say how many are done
    done = min(step.done + 1, step.total) if step.stage is progress.Stage.OCR else step.done
    parts = [w["stages"][step.stage.value].format(done=done, total=step.total)]
    parts.append(w["elapsed"].format(time.monotonic() - started))
    if step.eta_s is not None and step.eta_s >= 1:
        parts.append(w["eta"].format(step.eta_s))
    return " · ".join(parts)
EXAMPLES = [
    "智慧岛核心区签约入驻了多少家企业？",
    "许寨社区有多少名党员？",
    "文昌办事处发放了多少份宣传单？",
    "开发区排查了多少户自建房？",
]
# Shown only when the dense leg is on: without it an English question cannot match Chinese text.
ENGLISH_EXAMPLE = "How many enterprises signed up in the Smart Island core area?"
UPLOADS_AT_ONCE = 2
HISTORY_KEEP = 6  # questions a follow-up may lean on (answer() reads the last few)


class _Keep(enum.Enum):
    """A sentinel type of one value, so that `preview is KEEP` narrows the type."""

    KEEP = "keep"


KEEP: Final = _Keep.KEEP  # a dropdown's choice left as the page has it

# The page's stylesheet and the two components' scripts live in rag/ui_assets/ (shipped as package data).
# Citations and the copy link are plain fragment links inside the (sanitised) chat markdown; bridge.js
# turns their clicks into a `click` event of the hidden bridge, whose value says which one. article.js
# scrolls the article view to its first highlight.
ASSETS = Path(__file__).resolve().parent / "ui_assets"


def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


CSS = _asset("chat.css")
BRIDGE_JS = _asset("bridge.js")
ARTICLE_JS = _asset("article.js")


def status_markdown(index: Index, info: IndexInfo | None = None, lang: str = "zh") -> str:
    info = info or index.info()
    w = page_texts(lang)
    dense = (w["dense_on"].format(label=escape(engine_label(info.dense_label or info.model, lang)), dim=info.dim)
             if info.dense else w["dense_off"])
    if info.dense_progress is not None:  # serve first, embed after (rag/dense_fill.py)
        until = (("完成前只检索已向量化的部分" if info.dense else "完成前仅使用关键词检索") if lang == "zh"
                 else ("until done, only what is embedded is searched" if info.dense else "until done, keyword search only"))
        dense = f"{info.dense_progress.text(lang)}{'，' if lang == 'zh' else '; '}{until}"
    lexical = w["off_reason"].format(escape(info.lexical_reason)) if info.lexical_reason else w["on"]
    return w["status"].format(docs=info.documents, articles=info.articles, chunks=info.chunks, lexical=lexical, dense=dense)


def dense_warning(index: Index, info: IndexInfo | None = None, lang: str = "zh") -> str:
    info = info or index.info()
    return "" if info.dense else page_texts(lang)["dense_warning"].format(escape(info.dense_reason))


def _question_text(message) -> str:
    if isinstance(message, str):
        return message
    if isinstance(message, dict):
        return str(message.get("text", ""))
    return str(message or "")


def _new_session() -> dict:
    return {"messages": [], "questions": [], "turns": {}, "count": 0}


def failure_text(exc: Exception, lang: str, fallback: str, context: str, *args) -> str:
    """What the page says about a failure (rag.errors.describe, in `lang`); an unexpected one is logged and
    answered with `fallback`."""
    failure = describe(exc, lang)
    if not failure.known:
        log.exception(context, *args, exc_info=exc)
        return fallback
    log.warning(context + "（%s）", *args, exc)
    return failure.message


class ChatHandlers:
    """The chat tab's event handlers over one index; the session state holds everything per user."""

    def __init__(self, index: Index):
        self.index = index

    def ask(self, message, k, mode_label, sources, session, request: gr.Request | None = None):
        """Show the question at once, then the answer bubble and its folded "how this was found" view.

        The answer speaks the question's language; an empty question is answered in the page's."""
        session = {**_new_session(), **(session or {})}
        messages = list(session["messages"])
        text = _question_text(message).strip()
        lang = detect_language(text) if text else request_language(request)
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
        except Exception as exc:  # noqa: BLE001 - said in the question's language, logged when unexpected
            reply = failure_text(exc, lang, t["error"], "检索失败：%r", text[:200])
            messages.append({"role": "assistant", "content": escape(reply)})
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
    """The 资料库 tab's handlers. Read-only mode is enforced here, not only by hiding the controls.

    Every handler speaks the page's language (the request's Accept-Language); the core's own reasons stay Chinese.
    """

    def __init__(self, index: Index, settings: Settings, on_change=None, ledger: UploadLedger | None = None,
                 uploads: UploadLog | None = None):
        self.index = index
        self.uploads = uploads or UploadLog()
        self.settings = settings
        self.rules = UploadRules(settings)  # read-only, files per upload, size per file: the API's rules too
        self.on_change = on_change or (lambda: None)
        self.ledger = ledger  # the gate's record of who uploaded which file; None: no upload is taken

    def refused(self, lang: str = "zh") -> str:
        return self.refusal_text(Refusal("read_only"), lang)

    @staticmethod
    def refusal_text(refusal: Refusal, lang: str = "zh") -> str:
        """An UploadRules refusal in the page's language."""
        w = page_texts(lang)
        if refusal.reason == "read_only":
            return w["read_only"]
        if refusal.reason == "too_many_files":
            return w["too_many"].format(refusal.limit)
        return w["too_large"].format(size=(refusal.size or 0) / 2**20, limit=refusal.limit)

    def tables(self, lang: str = "zh", preview: str | None | _Keep = KEEP, remove: str | None = None):
        """The documents table, the library's counts, both dropdowns and the page's status line.

        The counts and the status line come from one info(), so they always agree; a dropdown keeps its
        choice only while that document is still there (KEEP: the preview's choice is left as it is).
        """
        info = self.index.info()
        docs = self.index.documents()
        names = sorted(d.source for d in docs)
        stored = sorted(d.source for d in docs if d.origin == "stored")
        # Shared articles counted now (a duplicate's original may have been deleted since it was added).
        shared = {d.source: shared_articles(d.source, self.index.articles(d.source)) for d in docs if d.duplicates}
        return (
            _frame(document_rows(docs, lang, shared), HEADERS[lang]),
            summary_markdown(info, lang),
            gr.Dropdown(choices=names) if preview is KEEP else gr.Dropdown(choices=names, value=preview if preview in names else None),
            gr.Dropdown(choices=stored, value=remove if remove in stored else None),
            status_markdown(self.index, info, lang),
        )

    def refresh(self, preview, remove, request: gr.Request):
        return self.tables(request_language(request), preview, remove)

    def upload(self, paths, request: gr.Request):
        """Add files one by one, so the results table fills in as each is done, with the stage it is in.

        Only files this user uploaded through the page count (`received`): a path named by the client
        (a raw queue call with {"path": "/etc/passwd"}) is refused, and is never read or deleted.
        """
        lang = request_language(request)
        w = page_texts(lang)
        user = getattr(request, "username", None) or ""
        given = [p for p in (paths or []) if p]
        headers = CHANGE_HEADERS_BY[lang]

        def table(rows):
            return _frame(rows, headers)

        read_only = self.rules.change("upload")
        if read_only is not None:
            yield table([status_row("—", "refused", self.refusal_text(read_only, lang), lang)]), *self.tables(lang), None
            return
        if not given:
            yield table([status_row("—", "refused", w["pick_files"], lang)]), *self.tables(lang), None
            return
        files = [self.received(p, user) for p in given]
        rows = []
        todo: list[tuple[int, Path]] = []
        for i, (path, real) in enumerate(zip(given, files)):
            over = self.rules.over(i)
            if real is None:
                rows.append(status_row(_upload_name(path), "refused", w["not_received"], lang))
            elif over is not None:
                rows.append(status_row(_upload_name(path), "refused", self.refusal_text(over, lang), lang))
            else:
                rows.append(status_row(_upload_name(path), "waiting", "", lang))
                todo.append((i, real))
        for i, real in enumerate(files):
            if self.ledger is not None and real is not None:
                self.ledger.forget(str(given[i]))  # taken once: a replay of the same path finds nothing
            if real is not None and self.rules.over(i) is not None:
                self._discard(real)
        unchanged = (gr.skip(),) * 6
        changed = False
        for i, real in todo:
            name = rows[i][0]
            started = time.monotonic()
            rows[i] = status_row(name, "pending", step_text(None, started, lang), lang)
            yield table(rows), *unchanged
            latest: list[progress.Step | None] = [None]
            outcome: list = []

            def work(real=real, name=name, latest=latest, outcome=outcome):
                with progress.watching(lambda step: latest.__setitem__(0, step)):
                    outcome.append(self._add_one(real, name, lang))

            worker = threading.Thread(target=work, name=f"upload-{name[:20]}", daemon=True)
            worker.start()
            shown = rows[i][2]
            while worker.is_alive():
                worker.join(PROGRESS_EVERY_S)
                text = step_text(latest[0], started, lang)
                if worker.is_alive() and text != shown:
                    shown = text
                    rows[i] = status_row(name, "pending", text, lang)
                    yield table(rows), *unchanged
            status, rows[i] = outcome[0] if outcome else ("refused", status_row(name, "refused", w["failed"], lang))
            changed = changed or status in ("added", "replaced", "skipped")
            yield table(rows), *unchanged
        if changed:
            self.on_change()
        yield table(rows), *self.tables(lang), None

    def received(self, path, user: str) -> Path | None:
        """The file Gradio's upload route stored for this user, or None for any other path.

        It must be recorded by the gate as uploaded by this user, be a regular file (not a link)
        and lie inside the upload folder.
        """
        text = str(path)
        if self.ledger is None or not self.ledger.owned(text, user):
            return None
        candidate = Path(text)
        try:
            if candidate.is_symlink() or not candidate.is_file():
                return None
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        return real if real.is_relative_to(upload_folder()) else None

    def _discard(self, real: Path) -> None:
        """The library keeps its own copy; drop Gradio's (only ever a file `received` accepted)."""
        try:
            if real.is_relative_to(upload_folder()):
                real.unlink(missing_ok=True)
        except OSError:
            pass

    def _add_one(self, real: Path, name: str, lang: str = "zh") -> tuple[str, list]:
        w = page_texts(lang)
        try:
            data = self.rules.read_file(real)
            if isinstance(data, Refusal):
                return "refused", status_row(name, "refused", self.refusal_text(data, lang), lang)
        except OSError as exc:
            return "refused", status_row(name, "refused", w["unreadable"].format(exc.strerror or exc), lang)
        finally:
            self._discard(real)
        try:
            with self.uploads.working([name]):
                changes = self.index.add([(name, data)])
            self.uploads.finished(changes)
        except Exception as exc:  # noqa: BLE001 - this file is refused with the reason
            return "refused", status_row(name, "refused", failure_text(exc, lang, w["failed"], "上传失败：%s", name), lang)
        if not changes:
            return "unchanged", status_row(name, "unchanged", "", lang)
        return changes[0].status, change_row(changes[0], lang)

    def _deletable(self, name: str, lang: str) -> str | None:
        """Why `name` cannot be deleted from the page now (gone, or a docs-folder file); None when it can."""
        w = page_texts(lang)
        doc = next((d for d in self.index.documents() if d.source == name), None)
        if doc is None:
            return w["gone"].format(escape(name))
        if doc.origin != "stored":
            return w["not_uploaded"].format(escape(name))
        return None

    def confirm(self, name, request: gr.Request | None = None):
        lang = request_language(request)
        w = page_texts(lang)
        read_only = self.rules.change("delete")
        if read_only is not None:
            return gr.Row(visible=False), self.refusal_text(read_only, lang)
        if not name:
            return gr.Row(visible=False), w["pick_delete"]
        why = self._deletable(name, lang)
        if why:
            return gr.Row(visible=False), why
        return gr.Row(visible=True), w["confirm"].format(escape(name))

    def delete(self, name, request: gr.Request | None = None):
        """Delete one uploaded document (documents of the docs folder are removed by deleting the file)."""
        lang = request_language(request)
        w = page_texts(lang)
        read_only = self.rules.change("delete")
        if read_only is not None:
            return gr.Row(visible=False), self.refusal_text(read_only, lang), *self.tables(lang)
        if not name:
            return gr.Row(visible=False), w["pick_delete"], *self.tables(lang)
        why = self._deletable(name, lang)
        if why:
            return gr.Row(visible=False), why, *self.tables(lang)
        try:
            changes = self.index.remove(name)
            message = "；".join(f"{escape(c.source)}：{escape(c.message)}" for c in changes) or w["no_change"]
            self.on_change()
        except Exception as exc:  # noqa: BLE001 - the status line says why
            message = w["cannot_delete"].format(escape(failure_text(exc, lang, w["failed"], "删除失败：%s", name)))
        return gr.Row(visible=False), message, *self.tables(lang)

    def preview(self, name, request: gr.Request | None = None):
        if not name:
            return ""
        return preview_html(name, self.index.articles(name), request_language(request))


def _frame(rows: list[list], headers: list[str]) -> dict:
    """A table's value with its headers (in the page's language): Gradio's {"headers", "data"} form."""
    return {"headers": list(headers), "data": [[str(c) for c in r] for r in rows]}


def _upload_name(path) -> str:
    return Path(str(path)).name


def upload_folder() -> Path:
    """Where Gradio keeps the UI's uploads: GRADIO_TEMP_DIR, else a folder of this process's own.

    Set before the UI is mounted (Gradio reads it then); the upload handler reads and deletes only
    files inside it.
    """
    global _OWN_UPLOADS
    if not os.environ.get("GRADIO_TEMP_DIR"):
        _OWN_UPLOADS = tempfile.mkdtemp(prefix="rag-uploads-")
        os.environ["GRADIO_TEMP_DIR"] = _OWN_UPLOADS
        atexit.register(shutil.rmtree, _OWN_UPLOADS, True)
    return Path(os.environ["GRADIO_TEMP_DIR"]).resolve()


_OWN_UPLOADS: str | None = None


def build_demo(index: Index, settings: Settings | None = None, on_change=None,
               ledger: UploadLedger | None = None, uploads: UploadLog | None = None) -> gr.Blocks:
    """The page; `on_change` runs after an upload or a delete changed the library (housekeeping).

    `ledger` holds the uploads the gate saw (rag/guard.py); without it the upload event takes no file.
    The furniture is in the browser's language (gr.I18n, `demo.i18n_instance`: pass it to launch/mount);
    what handlers write follows the request's Accept-Language, and every answer its question's language.
    """
    settings = settings or index.settings
    upload_folder()
    chat = ChatHandlers(index)
    library = LibraryHandlers(index, settings, on_change, ledger, uploads)
    i18n = page_i18n(settings)

    with gr.Blocks(title="周口新闻问答助手", fill_height=True, delete_cache=(3600, 3600)) as demo:
        session = gr.State(_new_session())
        gr.Markdown(i18n("intro"), elem_id="intro")
        status = gr.Markdown("", elem_id="index-status")
        warning = gr.Markdown("", elem_id="dense-warning")
        with gr.Tabs():
            with gr.Tab(i18n("tab_chat"), id="chat", elem_id="tab-chat") as chat_tab:
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=420):
                        chatbot = gr.Chatbot(
                            label="对话", show_label=False, elem_id="qa-chat", height=560, buttons=[], feedback_options=None,
                            # gradio's hints say str; an I18nData is translated in the browser
                            placeholder=i18n("chat_placeholder"),  # type: ignore[arg-type]
                        )
                        box = gr.Textbox(show_label=False, placeholder=i18n("placeholder"), elem_id="qa-input",
                                         submit_btn=i18n("ask"),  # type: ignore[arg-type]  # I18nData, as above
                                         autofocus=True, lines=1, max_lines=4)
                        with gr.Row(elem_id="examples"):
                            gr.Markdown(i18n("examples"), elem_id="examples-label")
                            chips = [gr.Button(q, size="sm", elem_classes=["chip"]) for q in EXAMPLES]
                            english_chip = gr.Button(ENGLISH_EXAMPLE, size="sm", elem_classes=["chip"], visible=False,
                                                     elem_id="english-chip")
                        with gr.Row():
                            new_chat = gr.Button(i18n("new_chat"), size="sm", elem_id="new-chat", scale=0, min_width=90)
                        with gr.Accordion(i18n("settings"), open=False, elem_id="settings"):
                            k = gr.Slider(1, 10, value=5, step=1, label=i18n("k"), elem_id="k-slider")
                            mode = gr.Radio(mode_choices(True), value="hybrid", label=i18n("mode"), elem_id="mode-radio")
                            sources = gr.Dropdown([], value=[], multiselect=True, label=i18n("sources"),
                                                  elem_id="source-filter", allow_custom_value=True)
                    with gr.Column(scale=2, min_width=320):
                        gr.Markdown(i18n("article"), elem_id="article-title")
                        article = gr.HTML(empty_article_html(), elem_id="article-view", js_on_load=ARTICLE_JS, max_height=640,
                                          padding=True)
                bridge = gr.HTML("", visible="hidden", elem_id="cite-bridge", js_on_load=BRIDGE_JS)

            with gr.Tab(i18n("tab_library"), id="library", elem_id="tab-library") as library_tab:
                lib = _library_tab(settings, i18n)

        # --- events: chat ---------------------------------------------------------------------------
        outputs = [chatbot, session, box]
        # Questions typed or clicked share one limit (queue(default_concurrency_limit=...)).
        box.submit(chat.ask, [box, k, mode, sources, session], outputs, api_name="ask", concurrency_limit="default",
                   concurrency_id="answer")
        for chip in chips + [english_chip]:
            chip.click(_asker(chat, chip.value), [k, mode, sources, session], outputs, api_visibility="private",
                       concurrency_limit="default", concurrency_id="answer")
        bridge.click(chat.open_article, [bridge, session], [article], api_visibility="private", queue=False)

        def reset(request: gr.Request):
            return [], _new_session(), empty_article_html(request_language(request))

        new_chat.click(reset, None, [chatbot, session, article], api_visibility="private", queue=False)
        chatbot.clear(reset, None, [chatbot, session, article], api_visibility="private", queue=False)

        # --- events: per-request archive data ---------------------------------------------------------
        table_outputs = [lib["docs"], lib["summary"], lib["preview_doc"], lib["delete_doc"], status]

        def on_load(request: gr.Request):
            lang = request_language(request)
            w = page_texts(lang)
            docs, summary, preview_doc, delete_doc, status_line = library.tables(lang)  # one info() for both counts
            info = index.info()
            return (
                status_line, dense_warning(index, info, lang),
                gr.Radio(choices=mode_choices(info.dense, lang), elem_classes=[] if info.dense else ["dense-off"],
                         info=None if info.dense else w["dense_off_info"].format(info.dense_reason)),
                gr.Dropdown(choices=index.sources()),
                gr.Button(visible=info.dense),
                empty_article_html(lang),
                _frame([], CHANGE_HEADERS_BY[lang]),
                docs, summary, preview_doc, delete_doc,
            )

        load_outputs = [status, warning, mode, sources, english_chip, article, lib["results"], lib["docs"], lib["summary"],
                        lib["preview_doc"], lib["delete_doc"]]
        demo.load(on_load, None, load_outputs, **QUICK)

        def chat_status(request: gr.Request):
            return status_markdown(index, None, request_language(request)), gr.Dropdown(choices=index.sources())

        chat_tab.select(chat_status, None, [status, sources], **QUICK)
        library_tab.select(library.refresh, [lib["preview_doc"], lib["delete_doc"]], table_outputs, **QUICK)
        lib["refresh"].click(library.refresh, [lib["preview_doc"], lib["delete_doc"]], table_outputs, **QUICK)
        # While the dense leg is being filled in, the status follows its progress; the timer then stops.
        dense_timer = gr.Timer(5, active=False)

        def on_dense_tick(request: gr.Request):
            lang = request_language(request)
            w = page_texts(lang)
            info = index.info()
            return (status_markdown(index, info, lang), dense_warning(index, info, lang),
                    gr.Radio(choices=mode_choices(info.dense, lang), elem_classes=[] if info.dense else ["dense-off"],
                             info=None if info.dense else w["dense_off_info"].format(info.dense_reason)),
                    gr.Button(visible=info.dense), gr.Timer(active=info.dense_progress is not None))

        dense_outputs = [status, warning, mode, english_chip, dense_timer]
        demo.load(on_dense_tick, None, dense_outputs, **QUICK)
        dense_timer.tick(on_dense_tick, None, dense_outputs, **QUICK)

        # --- events: library -------------------------------------------------------------------------
        lib["preview_doc"].change(library.preview, [lib["preview_doc"]], [lib["preview"]], **QUICK)
        # The clicked row comes with the event: the table is not sent back (the request body stays small).
        lib["docs"].select(_pick_document, None, [lib["preview_doc"], lib["delete_doc"]], **QUICK)
        lib["upload"].click(
            library.upload, [lib["files"]], [lib["results"], *table_outputs, lib["files"]],
            # Files are read and embedded outside the index's writer lock: a large one does not hold up the others.
            api_name="upload", api_visibility="undocumented", concurrency_limit=UPLOADS_AT_ONCE, concurrency_id="library-upload",
        ).then(lambda: gr.Dropdown(choices=index.sources()), None, [sources], **QUICK)
        lib["delete"].click(library.confirm, [lib["delete_doc"]], [lib["confirm_row"], lib["delete_message"]], **QUICK)
        lib["cancel"].click(lambda: (gr.Row(visible=False), ""), None, [lib["confirm_row"], lib["delete_message"]], **QUICK)
        lib["confirm"].click(
            library.delete, [lib["delete_doc"]], [lib["confirm_row"], lib["delete_message"], *table_outputs],
            api_name="delete_document", api_visibility="undocumented", concurrency_limit=1, concurrency_id="library-write",
        ).then(
            library.refresh, [lib["preview_doc"], lib["delete_doc"]], table_outputs, **QUICK,
        ).then(lambda: gr.Dropdown(choices=index.sources()), None, [sources], **QUICK)
    demo.chat_handlers = chat
    demo.library_handlers = library
    demo.i18n_instance = i18n
    return demo


# Quick reads and follow-ups run unqueued. A queued event that a client joins just as the session's last queued
# event ends can be lost: the server sends close_stream, the client closes the stream after it has already been
# told the new event is accepted, and the answer never arrives (seen with Gradio 6.31 in Chromium 156 whenever a
# tab switch, a row click's follow-up or an upload's .then() met the next event). Questions, uploads and deletes
# stay queued, for their concurrency limits.
class _Quick(TypedDict):
    api_visibility: Literal["private"]
    queue: bool


QUICK: _Quick = {"api_visibility": "private", "queue": False}


def _asker(chat: ChatHandlers, question: str):
    def ask_example(k, mode_label, sources, session):
        yield from chat.ask(question, k, mode_label, sources, session)

    return ask_example


def _pick_document(evt: gr.SelectData):
    """A click on a row of the documents table selects that document for preview (and, if uploaded, deletion)."""
    cells = list(evt.row_value or [])
    if len(cells) != len(DOC_HEADERS):
        return gr.skip(), gr.skip()
    name, origin = cells[0], cells[ORIGIN_COLUMN]
    return gr.Dropdown(value=name), (gr.Dropdown(value=name) if origin in UPLOADED else gr.skip())


def _library_tab(settings: Settings, i18n: gr.I18n) -> dict:
    """The 资料库 tab's components; upload and delete controls only exist when the library may change."""
    read_only = UploadRules(settings).read_only
    c: dict = {}
    gr.Markdown(i18n("lib_intro"), elem_id="lib-intro")
    if read_only:
        gr.Markdown(i18n("read_only"), elem_id="lib-readonly")
    with gr.Group(visible=not read_only, elem_id="lib-upload-group"):
        c["files"] = gr.File(label=i18n("files"), file_count="multiple", elem_id="lib-files", height=120)
        c["upload"] = gr.Button(i18n("upload"), variant="primary", elem_id="lib-upload-btn")
    c["results"] = gr.Dataframe(headers=CHANGE_HEADERS, value=[], label=i18n("results"), interactive=False, wrap=True,
                                elem_id="lib-results", visible=not read_only, datatype=["str", "str", "str"])
    with gr.Row():
        c["summary"] = gr.Markdown("", elem_id="lib-summary")
        c["refresh"] = gr.Button(i18n("refresh"), size="sm", scale=0, elem_id="lib-refresh")
    c["docs"] = gr.Dataframe(headers=DOC_HEADERS, value=[], label=i18n("docs"), interactive=False, wrap=True,
                             elem_id="lib-docs", datatype=["str"] * len(DOC_HEADERS), max_height=420)
    with gr.Row(equal_height=True):
        c["preview_doc"] = gr.Dropdown([], value=None, label=i18n("preview_doc"), elem_id="lib-preview-doc", scale=2,
                                        allow_custom_value=True)
        with gr.Column(scale=2, visible=not read_only, elem_id="lib-delete-group"):
            c["delete_doc"] = gr.Dropdown([], value=None, label=i18n("delete_doc"), elem_id="lib-delete-doc",
                                          allow_custom_value=True)
            c["delete"] = gr.Button(i18n("delete"), variant="stop", size="sm", elem_id="lib-delete-btn")
    with gr.Row(visible=False, elem_id="lib-confirm-row") as c["confirm_row"]:
        c["confirm"] = gr.Button(i18n("confirm"), variant="stop", elem_id="lib-delete-confirm", scale=0)
        c["cancel"] = gr.Button(i18n("cancel"), elem_id="lib-delete-cancel", scale=0)
    c["delete_message"] = gr.Markdown("", elem_id="lib-delete-message")
    c["preview"] = gr.HTML("", elem_id="lib-preview")
    return c
