"""One search call a question on Milvus: python -m benchmarks.milvus_calls [--chunks N] [--queries N].

Builds an archive on Milvus Lite (the seeds, or a generated corpus of about N chunks with random
vectors standing in for the model), then asks the same questions through both paths of
`MilvusSnapshot.legs`, alternating per question on one open index:

- one call: words, bigrams, the article field and the dense leg in one hybrid search, scored here
  from the field vectors the server returns (layouts whose chunks carry their article's terms);
- field by field: the path such layouts replaced (and older layouts still take): each field's top
  hits, then the other fields' scores of those candidates by filtered searches, then the dense leg.

Reports search calls and p50 / p95 of `Index.retrieve` per mode and path, and the ratio of the p50s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.milvus_calls")
    parser.add_argument("--chunks", type=int, default=0, help="generated corpus size (0: the seeds)")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)

    from rag import build_index
    from rag.backends.base import Snapshot
    from rag.backends.milvus.snapshot import MilvusSnapshot
    from rag.settings import Settings

    from .corpus import SEEDS, generate
    from .random_embedder import RandomEmbedder
    from .worker import questions

    work = Path(tempfile.mkdtemp(prefix="rag-milvus-calls-"))
    docs = SEEDS
    if args.chunks:
        docs = work / "docs"
        generate(docs, args.chunks)
    settings = Settings(docs_dir=docs, index_dir=work / "index", backend=f"milvus://{work / 'lite.db'}",
                        sentence_vectors=False)
    started = time.perf_counter()
    index = build_index(settings=settings, progress=False, embedder=RandomEmbedder())
    build_s = time.perf_counter() - started
    backend = type(index.backend)
    calls: list[str] = []
    call = backend.call

    def counted(self, doing, fn, *a, **kw):
        calls.append(getattr(fn, "__name__", doing))
        return call(self, doing, fn, *a, **kw)

    backend.call = counted
    one_call = MilvusSnapshot.legs
    qs = questions(args.queries)
    for q in qs[:5]:  # Lite builds its indexes on first use
        index.retrieve(q, mode="hybrid")
    result: dict = {"chunks": index.info().chunks, "build_s": round(build_s, 1), "queries": len(qs)}
    for mode in ("lexical", "hybrid"):
        times: dict[str, list[float]] = {"one call": [], "field by field": []}
        searches: dict[str, list[int]] = {"one call": [], "field by field": []}
        for q in qs:
            for path, legs in (("one call", one_call), ("field by field", Snapshot.legs)):
                MilvusSnapshot.legs = legs  # type: ignore[method-assign]
                calls.clear()
                t = time.perf_counter()
                index.retrieve(q, mode=mode)
                times[path].append((time.perf_counter() - t) * 1000)
                searches[path].append(sum("search" in c for c in calls))
                MilvusSnapshot.legs = one_call  # type: ignore[method-assign]
        row = {}
        for path in times:
            ts = sorted(times[path])
            row[path] = {"search_calls": statistics.median(searches[path]), "p50_ms": round(statistics.median(ts), 1),
                         "p95_ms": round(ts[int(0.95 * (len(ts) - 1))], 1)}
        row["p50 ratio (one call / field by field)"] = round(row["one call"]["p50_ms"] / row["field by field"]["p50_ms"], 2)
        result[mode] = row
    index.close()
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
