"""Where a lexical query's time goes, step by step: python -m benchmarks.lexical_profile INDEX [--queries N].

Replays `LocalSnapshot.lexical` (rag/backends/local/snapshot.py) on a local index with a timer around
each step: the postings of the words and bigrams fields (document ids and term scores), the chunks
they name (the candidates; skipped when there are as many postings as chunks: the sums then run over
the whole archive), each candidate's summed and normalised score, the articles field, dropping the
candidates that even the best article score cannot lift into the top k, the article scores of the
rest, and the top k. The questions are CMRC trial questions (benchmarks.worker.questions), as in the
size sweep. Use the index the sweep keeps (`python -m benchmarks --sizes 1M --keep`:
/tmp/rag-bench/index-1M).
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
    archive_wide = []  # queries summed over the whole archive (postings >= chunks)
    remaining = []  # candidates left for the article score

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
            fields = [(name, found) for name, field_weights in (("words", weights), ("bigrams", bigrams))
                      if (found := snap._hits(name, field_weights)) is not None]
            timed("words + bigrams postings", started)
            if not fields:
                continue
            started = time.perf_counter()
            wide = sum(len(docs) for _, (docs, _) in fields) >= size  # as many postings as chunks
            found, slot = None, None
            if not wide:
                hit = np.zeros(size, dtype=bool)
                for _, (docs, _) in fields:
                    hit[docs] = True
                found = np.flatnonzero(hit)
                slot = np.empty(size, dtype=np.int32)
                slot[found] = np.arange(len(found), dtype=np.int32)
            timed("candidates: the chunks the postings name", started)
            started = time.perf_counter()
            values = None
            for name, (docs, contributions) in fields:
                sums = np.bincount(docs if slot is None else slot[docs], weights=contributions,
                                   minlength=size if slot is None else len(found))
                top = sums.max()
                if top > 0:
                    sums /= top
                    sums *= snap._weights.get(name, 1.0)
                    values = sums if values is None else np.add(values, sums, out=values)
            if values is None:
                continue
            if found is None:
                found = np.flatnonzero(values != 0)
                values = values[found]
            elif not (scored := values != 0).all():
                found, values = found[scored], values[scored]
            candidates.append(len(found))
            archive_wide.append(wide)
            timed("sum per candidate, normalise, weight", started)
            if not len(found):
                continue
            started = time.perf_counter()
            articles = snap._hits("articles", weights)
            if articles is not None:
                sums = np.bincount(articles[0], weights=articles[1], minlength=int(gen.article_offsets[-1]))
                top = sums.max()
            timed("articles field", started)
            near = len(found)
            if articles is not None and top > 0:
                weight = snap._weights.get("articles", 0.5)
                started = time.perf_counter()
                if weight > 0 and 0 < args.k < len(found):
                    kth = np.partition(values, len(found) - args.k)[len(found) - args.k]
                    keep = values + weight >= kth
                    found, values = found[keep], values[keep]
                timed("drop the chunks an article cannot lift into the top k", started)
                near = len(found)
                started = time.perf_counter()
                values += weight * (sums[gen.chunk_article[found]] / top)
                timed("each remaining candidate's article score", started)
            remaining.append(near)
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
           "remaining_p50": int(statistics.median(remaining)), "remaining_p95": int(pct(remaining, 0.95)),
           "archive_wide_share": round(sum(archive_wide) / max(1, len(archive_wide)), 3),
           "steps_ms": {name: {"p50": round(statistics.median(v), 3), "p95": pct(v, 0.95)} for name, v in steps.items()}}
    text = json.dumps(out, ensure_ascii=False, indent=1)
    print(text)
    if args.json:
        from pathlib import Path

        Path(args.json).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
