"""Where a lexical query's time goes, step by step: python -m benchmarks.lexical_profile INDEX [--queries N].

Replays `LocalSnapshot.lexical` (rag/backends/local/snapshot.py) on a local index with a timer around
each step: scoring the words and bigrams fields into one array as wide as the archive, picking the
chunks that scored (the candidates), the articles field, each candidate's article score, and the top
k. The questions are CMRC trial questions (benchmarks.worker.questions), as in the size sweep. Use
the index the sweep keeps (`python -m benchmarks --sizes 1M --keep`: /tmp/rag-bench/index-1M).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lexical_profile")
    parser.add_argument("index", help="a local index folder")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=50, help="candidates asked of the lexical leg (Settings.candidates)")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)

    from rag import load_index
    from rag.tokenizer import char_bigrams

    from .random_embedder import RandomEmbedder
    from .worker import questions

    index = load_index(args.index, embedder=RandomEmbedder())
    qs = questions(args.queries + 21)[21:]  # past the 21 dev questions: CMRC's
    steps: dict[str, list[float]] = {}
    candidates = []

    def timed(name: str, started: float) -> None:
        steps.setdefault(name, []).append((time.perf_counter() - started) * 1000)

    with index.backend.snapshot() as snap:
        gen = snap.gen
        for q in qs[:20]:  # warm the page cache
            snap.lexical(index.tokenizer.weighted(q), args.k, q)
        for q in qs:
            started = time.perf_counter()
            weights = index.tokenizer.weighted(q)
            timed("tokenize the question", started)
            bigrams: dict[str, float] = {}
            for b in char_bigrams(q):
                bigrams[b] = bigrams.get(b, 0.0) + 1.0
            size = int(gen.chunk_offsets[-1])
            started = time.perf_counter()
            combined = None
            for name, field_weights in (("words", weights), ("bigrams", bigrams)):
                scores = snap._field(name, field_weights, size)
                if scores is not None:
                    scores *= snap._weights.get(name, 1.0)
                    combined = scores if combined is None else np.add(combined, scores, out=combined)
            timed("words + bigrams into one archive-wide array", started)
            if combined is None:
                continue
            started = time.perf_counter()
            found = np.flatnonzero(combined)
            values = combined[found]
            timed("candidates: the chunks that scored", started)
            candidates.append(len(found))
            started = time.perf_counter()
            articles = snap._field("articles", weights, int(gen.article_offsets[-1]))
            timed("articles field", started)
            started = time.perf_counter()
            if articles is not None:
                values += snap._weights.get("articles", 0.5) * articles[gen.chunk_article[found]]
            timed("each candidate's article score", started)
            started = time.perf_counter()
            k = min(args.k, len(found))
            top = np.argpartition(-values, k - 1)[:k]
            top = top[np.argsort(-values[top], kind="stable")]
            timed(f"top {args.k}", started)
    index.close()

    def pct(v: list[float], q: float) -> float:
        return round(sorted(v)[max(0, int(q * len(v)) - 1)], 3)

    out = {"index": args.index, "chunks": size, "segments": len(gen.segments), "queries": len(qs),
           "candidates_p50": int(statistics.median(candidates)), "candidates_p95": int(pct(candidates, 0.95)),
           "steps_ms": {name: {"p50": round(statistics.median(v), 3), "p95": pct(v, 0.95)} for name, v in steps.items()}}
    text = json.dumps(out, ensure_ascii=False, indent=1)
    print(text)
    if args.json:
        from pathlib import Path

        Path(args.json).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
