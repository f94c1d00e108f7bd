"""python -m benchmarks.late_chunking: sentence vectors pooled from their chunk's pass against their own pass.

Issue 19 asks whether a sentence's vector can come from the forward pass of the chunk that holds it
("late chunking": the mean of its tokens' final states) instead of a second pass over the sentence.
Both kinds are made for every sentence of the seeds with the torch runner of the bundled e5; then,
for every question of `eval/` and the dev set, the seeds' sentences are ranked by cosine with the
question, and it counts how often a sentence holding the answer string comes first (and in the top 3):
what the answer layer's sentence similarity leans on. Also a third kind, the mean of the two. Prints
the seconds each kind cost. Not wired into the index: this measures whether it should be.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rag.articles import split_articles
from rag.chunks import chunk_article
from rag.encoders.bundled import BundledEncoder, Runner
from rag.evaluate import Question, load_questions, normalize
from rag.ingest import read_documents
from rag.library import body_sentence_table
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def question_sets() -> dict[str, list[Question]]:
    dev = ROOT.parent / "shared" / "eval" / "dev_questions.jsonl"
    files = ([dev] if dev.exists() else []) + sorted((ROOT / "eval").glob("*_questions.jsonl"))
    return {f.stem: rows for f in files if (rows := [q for q in load_questions(f) if q.answers])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)
    hard_max = Settings().chunk_hard_max
    encoder = BundledEncoder("cpu", Runner.TORCH)
    runner = encoder._torch_runner()
    assert runner is not None
    articles = [a for d in read_documents(ROOT / "seeds") for a in split_articles(d)]
    table, sentences = body_sentence_table([a.body for a in articles], hard_max)
    spans = [(int(a), int(s), int(e)) for a, s, e in table]  # (article, start, end) in the body
    chunks = [c for i, a in enumerate(articles) for c in chunk_article(a, i, hard_max=hard_max)]

    started = time.perf_counter()
    chunk_states = runner.states([c.embed_text for c in chunks])
    chunk_seconds = time.perf_counter() - started
    started = time.perf_counter()
    own = _unit(encoder.encode_passages(sentences, encoder.batch_size))
    own_seconds = time.perf_counter() - started

    started = time.perf_counter()
    sums = np.zeros_like(own)
    counts = np.zeros(len(sentences))
    by_article: dict[int, list[int]] = {}
    for j, (a, _, _) in enumerate(spans):
        by_article.setdefault(a, []).append(j)
    for chunk, (states, where) in zip(chunks, chunk_states):
        shift = len(chunk.title) + 1 if chunk.title else 0  # the body text follows "title\n" in embed_text
        starts = np.array([s for s, _ in where]) - shift + chunk.start
        ends = np.array([e for _, e in where]) - shift + chunk.start
        body_tokens = (starts >= chunk.start) & (ends <= chunk.end)
        for j in by_article.get(chunk.article, []):
            _, s, e = spans[j]
            hit = body_tokens & (starts < e) & (ends > s)
            if hit.any():
                sums[j] += states[hit].sum(0)
                counts[j] += hit.sum()
    late = _unit(sums / np.maximum(counts, 1)[:, None])
    pool_seconds = time.perf_counter() - started
    kinds = {"own pass": own, "late (chunk pass)": late, "mean of both": _unit(own + late)}

    result: dict = {"sentences": len(sentences), "chunks": len(chunks), "chunk_pass_s": round(chunk_seconds, 1),
                    "sentence_pass_s": round(own_seconds, 1), "late_pooling_s": round(pool_seconds, 2),
                    "unpooled": int((counts == 0).sum()), "sets": {}}
    normalised = [normalize(s) for s in sentences]
    for name, rows in question_sets().items():
        queries = _unit(np.stack([encoder.encode_query(r.question) for r in rows]))
        result["sets"][name] = {"n": len(rows)}
        for kind, vectors in kinds.items():
            order = np.argsort(-(queries @ vectors.T), axis=1)
            first = top3 = 0
            for r, ranked in zip(rows, order):
                good = [any(normalize(ans) in normalised[j] for ans in r.answers) for j in ranked[:3]]
                first += good[0]
                top3 += any(good)
            result["sets"][name][kind] = (round(first / len(rows), 3), round(top3 / len(rows), 3))
    print(f"{len(sentences)} sentences in {len(chunks)} chunks; chunk pass {result['chunk_pass_s']} s, sentence pass "
          f"{result['sentence_pass_s']} s, late pooling {result['late_pooling_s']} s, sentences no token covered: {result['unpooled']}")
    print(f"{'set':28} {'n':>4}  " + "  ".join(f"{k:>20}" for k in kinds))
    for name, row in result["sets"].items():
        print(f"{name:28} {row['n']:4d}  " + "  ".join(f"{row[k][0]:>9.3f} / {row[k][1]:.3f}" for k in kinds))
    print("(answer-bearing sentence ranked first / in the top 3 among all the seeds' sentences)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
