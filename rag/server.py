"""One FastAPI app: the JSON API under /api, the Gradio UI at /, the same login for both, and upkeep.

Every request passes rag/guard.py's gate first: bounded bodies, login before the body, throttled passwords.

`create_app` is what `python app.py` serves with uvicorn and what the tests start on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import logging
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # must precede `import gradio`
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from starlette.routing import Mount  # noqa: E402

from . import __version__  # noqa: E402
from .api import add_api  # noqa: E402
from .auth import Accounts  # noqa: E402
from .guard import Gate, LoginThrottle, UploadLedger  # noqa: E402
from .index import Index  # noqa: E402
from .settings import Settings  # noqa: E402
from .ui import CSS, build_demo  # noqa: E402
from .uploads import UploadLog  # noqa: E402
from .watch import Upkeep  # noqa: E402

log = logging.getLogger(__name__)

APP_NAME = "周口新闻问答助手"
# How uvicorn serves the app (app.py and the tests). proxy_headers=False: a client's address is its socket's,
# never an X-Forwarded-For it sends itself (uvicorn trusts that header from 127.0.0.1 by default, which let a
# local client step out of the login back-off). Behind a reverse proxy, throttle at the proxy.
UVICORN_OPTIONS = {"proxy_headers": False, "log_level": "warning"}
# Shown above the login form (and so before any page config, which holds the title, can be read).
LOGIN_MESSAGE = (f"<p><strong>{APP_NAME}</strong></p>"
                 "<p>请登录后提问、浏览资料库。<br><span lang='en'>Zhoukou local-news QA: please sign in.</span></p>")


def warm_up(index: Index) -> None:
    """Load at start what the first follow-up would otherwise load (jieba's POS tagger, about 0.6 s)."""
    try:
        index.tokenizer.nouns("周口市民关心的新闻")
        index.tokenizer.names("记者张三报道")
    except Exception:  # only a speed-up: a failure here is the first question's to report
        log.exception("预热失败")


class PageTitle:
    """Gives Gradio's HTML page a <title> from the start: its login page has no config, so no title, and
    the page's own title arrives only with the config after login."""

    def __init__(self, app, title: str):
        self.app = app
        self.tag = f"<title>{title}</title>".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in ("/", ""):
            return await self.app(scope, receive, send)
        start: dict = {}
        body: list[bytes] = []

        async def capture(message):
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                return await send(message)
            headers = dict(start.get("headers") or [])
            if not headers.get(b"content-type", b"").startswith(b"text/html"):
                if start:
                    await send(start)
                    start.clear()
                return await send(message)
            body.append(message.get("body", b""))
            if message.get("more_body"):
                return
            page = b"".join(body)
            if b"<title>" not in page:
                page = page.replace(b"<head>", b"<head>" + self.tag, 1)
            start["headers"] = [(k, v) for k, v in start["headers"] if k != b"content-length"] + [
                (b"content-length", str(len(page)).encode())]
            await send(start)
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, capture)


def create_app(
    index: Index,
    settings: Settings | None = None,
    auth: list[tuple[str, str]] | None = None,
    concurrency: int = 4,
) -> FastAPI:
    """The whole app over one index. With `auth`, nothing but the login page and /api/v1/health is public."""
    settings = settings or index.settings
    accounts = Accounts(auth)
    upkeep = Upkeep(index, settings.watch_seconds, sync=not settings.read_only and index.writable)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        upkeep.start()
        try:
            yield
        finally:
            upkeep.stop()

    warm_up(index)
    app = FastAPI(title=APP_NAME, version=__version__, docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    uploads = UploadLog()  # shared by the API and the UI: GET /api/v1/documents/{name} shows either's outcome
    add_api(app, index, settings, accounts, uploads)

    ledger = UploadLedger()
    demo = build_demo(index, settings, on_change=upkeep.changed, ledger=ledger, uploads=uploads)
    demo.queue(default_concurrency_limit=max(1, concurrency))
    app = gr.mount_gradio_app(
        app, demo, path="/", auth=auth, auth_message=LOGIN_MESSAGE, ssr_mode=False, i18n=demo.i18n_instance, css=CSS, footer_links=[], run_history=False,
        max_file_size=f"{settings.max_upload_mb}mb", show_error=False, mcp_server=False,
    )
    # mount_gradio_app never marks the Blocks launched, and Gradio skips its own checks of file paths
    # in events (only files in its upload folder) until it is.
    demo.has_launched = True
    app.add_middleware(PageTitle, title=APP_NAME)
    app.add_middleware(Gate, accounts=accounts, settings=settings, ledger=ledger, throttle=LoginThrottle())
    accounts.gradio_app = next(r.app for r in app.routes if isinstance(r, Mount) and r.path in ("", "/"))
    app.state.gradio_app = accounts.gradio_app  # its stop_event ends the UI's heartbeat streams at shutdown
    app.state.demo = demo
    app.state.upkeep = upkeep
    app.state.ledger = ledger
    app.state.index = index
    return app
