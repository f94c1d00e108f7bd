"""python -m benchmarks.load: many chat users at once against the real app over HTTP.

Starts `python app.py` on a free port over a copy of the seeds, asks every question once alone (the
reference answers), then lets `--clients` threads send `--requests` questions through POST /api/v1/ask
at the same time. Reports p50/p95 latency and errors, and counts answers that differ from the
reference one: an answer mixed up between concurrent requests would show there. Optionally
`--long N` of the clients send 60,000-character questions all the while, to show that one huge
question does not hold up the others.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .startup import _free_port
from .worker import percentiles

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "eval" / "dev_questions.jsonl"


def _post(url: str, body: dict, timeout: float = 120) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def _questions() -> list[str]:
    qs = [json.loads(line)["question"] for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()] if DEV.exists() else []
    for name in ("extra_questions.jsonl", "english_questions.jsonl"):
        path = ROOT / "eval" / name
        if path.exists():
            qs += [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return qs


def run(clients: int, requests: int, model: str, long_clients: int, work: Path) -> dict:
    docs, index = work / "docs", work / "index"
    shutil.copytree(ROOT / "seeds", docs, dirs_exist_ok=True)
    port = _free_port()
    env = {**os.environ, "RAG_DOCS_DIR": str(docs), "RAG_INDEX_DIR": str(index), "RAG_MODEL": model,
           "RAG_WATCH_SECONDS": "0", "OMP_WAIT_POLICY": "passive"}
    log = open(work / "app.log", "w")
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--concurrency", str(clients)],
                           cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        deadline = time.monotonic() + 900
        while True:
            if app.poll() is not None:
                raise RuntimeError(f"app.py exited with {app.returncode}; see {work / 'app.log'}")
            try:
                urllib.request.urlopen(base + "/health", timeout=2).read()
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError("app.py did not answer /health in 15 minutes") from None
                time.sleep(0.5)
        qs = _questions()
        reference = {q: _post(base + "/ask", {"question": q})["answer"] for q in qs}
        stop = threading.Event()

        def long_asker():
            huge = "周口" * 30_000
            while not stop.is_set():
                try:
                    _post(base + "/ask", {"question": huge})
                except Exception:  # noqa: BLE001 - only the normal questions are measured
                    pass

        latencies, errors, mixed = [], [], 0
        lock = threading.Lock()

        def one(i: int):
            nonlocal mixed
            q = qs[i % len(qs)]
            t0 = time.perf_counter()
            try:
                got = _post(base + "/ask", {"question": q})
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                return
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                if got["question"] != q or got["answer"] != reference[q]:
                    mixed += 1

        longs = [threading.Thread(target=long_asker, daemon=True) for _ in range(long_clients)]
        for t in longs:
            t.start()
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(one, range(requests)))
        wall = time.perf_counter() - started
        stop.set()
        info = json.loads(urllib.request.urlopen(base + "/info", timeout=10).read())
        timing = percentiles(latencies) if latencies else {"p50_ms": 0.0, "p95_ms": 0.0}
        return {"clients": clients, "requests": requests, "long_question_clients": long_clients, "model": model,
                "engine": (info.get("dense") or {}).get("label", ""), "ok": len(latencies), "errors": len(errors),
                "error_samples": errors[:3], "answers_differing_from_serial": mixed,
                "p50_ms": timing["p50_ms"], "p95_ms": timing["p95_ms"],
                "max_ms": round(max(latencies, default=0.0) * 1000, 1), "requests_per_s": round(len(latencies) / wall, 1)}
    finally:
        app.terminate()
        try:
            app.wait(timeout=30)
        except subprocess.TimeoutExpired:
            app.kill()
        log.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--model", default="bundled", help="RAG_MODEL for the app (bundled, none, a model name)")
    p.add_argument("--long", type=int, default=0, help="extra clients sending 60,000-character questions meanwhile")
    p.add_argument("--work", help="folder for the docs copy, index and app log (default: a temp folder)")
    args = p.parse_args(argv)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rag-load-"))
    work.mkdir(parents=True, exist_ok=True)
    result = run(args.clients, args.requests, args.model, args.long, work)
    print(json.dumps(result, ensure_ascii=False, indent=1))
    return 0 if result["errors"] == 0 and result["answers_differing_from_serial"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
