"""Seconds from `python app.py` (existing index over the seeds) to its first answered question."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "智慧岛核心区签约入驻了多少家企业？"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(index_dir: Path, timeout: float = 120.0) -> dict:
    env = {**os.environ, "RAG_MODEL": "none", "RAG_INDEX_DIR": str(index_dir), "HF_HUB_OFFLINE": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    # Build (or reuse) the index first: the target is a start with an existing index.
    subprocess.run([sys.executable, "-m", "rag", "-q", "build", "--model", "none", "--index", str(index_dir)],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    port = _free_port()
    from gradio_client import Client

    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < timeout:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        up = time.perf_counter() - started
        answer = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(QUESTION, api_name="/ask")
        first = time.perf_counter() - started
        text = str(answer)
        return {"port_open_s": round(up, 2), "first_answer_s": round(first, 2), "answered": "359" in text}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
