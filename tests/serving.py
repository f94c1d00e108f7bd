"""Test helpers for the UI and the API: the real app (create_app) on 127.0.0.1 in a thread, and
writable indexes of their own over a copy of the seeds (the dense one is conftest's `bundled_index`)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from rag import Index, build_index

from .conftest import SEEDS

USER, PASSWORD = "editor", "s3cret-密码"


@dataclass
class Server:
    url: str  # ends with "/"
    app: object
    index: Index

    @property
    def api(self) -> str:
        return self.url + "api/v1"


@contextlib.contextmanager
def serve(index: Index, settings=None, auth=None, concurrency: int = 4):
    """The whole app (UI + API + upkeep) on a free port of 127.0.0.1, stopped on exit."""
    from rag.server import UVICORN_OPTIONS, create_app

    settings = settings or index.settings.with_(watch_seconds=0)
    app = create_app(index, settings, auth=auth, concurrency=concurrency)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, timeout_graceful_shutdown=2, **UVICORN_OPTIONS))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the app did not start")
        time.sleep(0.05)
    try:
        yield Server(f"http://127.0.0.1:{port}/", app, index)
    finally:
        app.state.gradio_app.stop_event.set()  # end the UI's heartbeat streams, or shutdown waits for them
        server.should_exit = True
        thread.join(15)
        sock.close()


def fresh_index(folder: Path, docs: Path | None = None, model: str = "none") -> Index:
    """A writable index of its own (for tests that upload or delete), over a copy of the seeds."""
    if docs is None:
        docs = folder / "docs"
        shutil.copytree(SEEDS, docs)
    return build_index(docs, folder / "index", model=model, progress=False)

