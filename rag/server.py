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

    app = FastAPI(title="周口新闻问答助手", version=__version__, docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    uploads = UploadLog()  # shared by the API and the UI: GET /api/v1/documents/{name} shows either's outcome
    add_api(app, index, settings, accounts, uploads)

    ledger = UploadLedger()
    demo = build_demo(index, settings, on_change=upkeep.changed, ledger=ledger, uploads=uploads)
    demo.queue(default_concurrency_limit=max(1, concurrency))
    app = gr.mount_gradio_app(
        app, demo, path="/", auth=auth, ssr_mode=False, css=CSS, footer_links=[], run_history=False,
        max_file_size=f"{settings.max_upload_mb}mb", show_error=False, mcp_server=False,
    )
    # mount_gradio_app never marks the Blocks launched, and Gradio skips its own checks of file paths
    # in events (only files in its upload folder) until it is.
    demo.has_launched = True
    app.add_middleware(Gate, accounts=accounts, settings=settings, ledger=ledger, throttle=LoginThrottle())
    accounts.gradio_app = next(r.app for r in app.routes if isinstance(r, Mount) and r.path in ("", "/"))
    app.state.gradio_app = accounts.gradio_app  # its stop_event ends the UI's heartbeat streams at shutdown
    app.state.demo = demo
    app.state.upkeep = upkeep
    app.state.ledger = ledger
    app.state.index = index
    return app
