"""python -m benchmarks.answers: how long one answer takes, against retrieval alone in the same run.

Builds (or reuses, with --index) the seeds with the bundled multilingual-e5-small, then asks every
question of the answerable and unanswerable sets `--rounds` times in the default hybrid mode, timing
`Index.retrieve` (the floor any answer pays) and `rag.ask` (retrieval, sentence choice, the
answerability decision) question by question, interleaved so both see the same machine load.
Prints p50 / p95 of each and the ratio ask / retrieve; `--json` writes them too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETS = ("../shared/eval/dev_questions.jsonl", "eval/extra_questions.jsonl", "eval/paraphrase_questions.jsonl",
        "eval/english_questions.jsonl", "eval/unanswerable_questions.jsonl")


def questions() -> list[str]:
    out = []
    for name in SETS:
        path = (ROOT / name).resolve()
        if path.is_file():
            out += [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run(index_dir: Path, rounds: int) -> dict:
    import rag

    index = rag.build_index(ROOT / "seeds", index_dir, model="bundled", progress=False) if not (index_dir / "CURRENT").exists() \
        else rag.load_index(index_dir)
    info = index.info()
    if not info.dense:  # hybrid would silently be served by the lexical leg alone
        raise SystemExit(f"{index_dir}: 没有语义向量（{info.dense_reason}）；用 --model bundled 构建，或去掉 --index")
    qs = questions()
    for q in qs[:5]:  # warm: tokenizer, POS tagger, query path
        rag.ask(q, index=index)
    retrieve_ms, ask_ms = [], []
    for _ in range(rounds):
        for q in qs:
            index._vectors.clear()  # each call embeds its own query: no reuse of the other's vector
            t0 = time.perf_counter()
            index.retrieve(q, k=5)
            t1 = time.perf_counter()
            index._vectors.clear()
            rag.ask(q, index=index)
            t2 = time.perf_counter()
            retrieve_ms.append((t1 - t0) * 1000)
            ask_ms.append((t2 - t1) * 1000)
    result = {
        "questions": len(qs), "rounds": rounds,
        "retrieve_p50_ms": round(statistics.median(retrieve_ms), 1), "retrieve_p95_ms": round(percentile(retrieve_ms, 0.95), 1),
        "ask_p50_ms": round(statistics.median(ask_ms), 1), "ask_p95_ms": round(percentile(ask_ms, 0.95), 1),
    }
    result["ask_over_retrieve_p50"] = round(result["ask_p50_ms"] / result["retrieve_p50_ms"], 2)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.answers", description=__doc__.splitlines()[0])
    parser.add_argument("--index", help="an index of the seeds built with --model bundled (built in a temp folder if absent)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rag-bench-answers-") as tmp:
        result = run(Path(args.index) if args.index else Path(tmp) / "index", args.rounds)
    print(f"{result['questions']} questions × {result['rounds']} rounds, hybrid, bundled e5")
    print(f"retrieve p50 / p95: {result['retrieve_p50_ms']} / {result['retrieve_p95_ms']} ms")
    print(f"ask      p50 / p95: {result['ask_p50_ms']} / {result['ask_p95_ms']} ms")
    print(f"ask / retrieve (p50): {result['ask_over_retrieve_p50']}×")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
