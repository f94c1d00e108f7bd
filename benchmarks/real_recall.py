"""IVF recall@10 against exact search on real e5 vectors: python -m benchmarks.real_recall [--n 4000].

The vectors are the project's own: chunks of the generated corpus (real seed and CMRC sentences
recombined into pages, benchmarks/corpus.py), embedded by the encoder `RAG_MODEL` chooses (the bundled
4-bit multilingual-e5-small here) exactly as an index embeds them, and real questions (the dev set and
the CMRC trial questions) embedded as queries. Vectors are cached in benchmarks/results/ (by model and
text), so a second run, or a larger --n after a smaller one, embeds only what is new; stop it at any
time and nothing embedded is lost.

The index is the one a segment above RAG_ANN_THRESHOLD gets (VectorIndex.build: about 2·sqrt(n)
lists); recall is printed for a sweep of nprobe, with the share of lists each probes, because that
share, not nprobe itself, is what carries over to a larger archive (1M chunks: 2,000 lists).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_recall")
    parser.add_argument("--n", type=int, default=4000, help="chunks to embed (cached between runs)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument("--cache", default=str(RESULTS / "recall_vectors.sqlite"), help="the vector cache (kept between runs)")
    args = parser.parse_args(argv)

    import faiss

    from rag.articles import split_articles
    from rag.backends.local.vectors import VectorIndex
    from rag.chunks import chunk_article
    from rag.encoders import load_encoder
    from rag.encoders.cache import EmbeddingCache
    from rag.ingest import read_documents
    from rag.settings import AnnSettings, Settings

    from .corpus import generate
    from .worker import questions

    encoder, note = load_encoder(Settings().model)
    if encoder is None:
        raise SystemExit(f"no semantic model: {note}")
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), args.n)
        texts = [c.embed_text for d in read_documents(Path(tmp)) for i, a in enumerate(split_articles(d))
                 for c in chunk_article(a, i)][: args.n]
    Path(args.cache).parent.mkdir(parents=True, exist_ok=True)
    cache = EmbeddingCache(Path(args.cache))
    t0 = time.perf_counter()
    vectors, embedded = cache.encode(encoder, texts, progress=True, desc="向量化", unit="块")
    embed_s = time.perf_counter() - t0
    cache.close()
    qs = list(dict.fromkeys(questions(args.queries)))
    queries = np.stack([encoder.encode_query(q) for q in qs]).astype(np.float32)

    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    ivf = VectorIndex.build(vectors, AnnSettings(threshold=0)).index  # the IVF a large segment gets, forced at this size
    out = {"vectors": len(vectors), "queries": len(qs), "model": encoder.label, "embedded_now": embedded,
           "embed_s": round(embed_s, 1), "nlist": int(ivf.nlist), "recall_at_10": {}}
    for nprobe in sorted({p for p in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) if p < ivf.nlist} | {int(ivf.nlist)}):
        ivf.nprobe = nprobe  # the last probes every list: exact search, the harness's own check
        started = time.perf_counter()
        _, approx = ivf.search(queries, 10)
        ms = (time.perf_counter() - started) * 1000 / len(qs)
        recall = float(np.mean([len(set(a) & set(t)) / 10 for a, t in zip(approx, truth)]))
        out["recall_at_10"][f"nprobe={nprobe}"] = {"share_of_lists": round(nprobe / ivf.nlist, 4),
                                                   "recall": round(recall, 4), "ms_per_query": round(ms, 3)}
    text = json.dumps(out, ensure_ascii=False, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
