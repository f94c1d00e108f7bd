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

`--scale N` measures at archive scale without embedding N chunks (2 cores embed about 6 a second):
the real vectors are joined by N - n synthetic ones, each a random convex mixture of two real chunk
vectors plus a little noise, renormalised, so they lie in the same narrow cone as real e5 vectors
(IVF at nprobe 16 finds 0.60 of the top 10 both on the 12k real vectors and on 1M of these). The
real questions stay the queries. With `--candidates`, the same sweep for the dense indexes one
might switch to: IVF with 8-bit scalar-quantised lists and HNSW (M 32, or each `--hnsw-m`; efConstruction 40), each
with its build time and its single-query latency on one thread (what a request costs).
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
    parser.add_argument("--scale", type=int, default=0, help="add synthetic vectors up to this many (see the docstring)")
    parser.add_argument("--candidates", action="store_true", help="also sweep IVF-SQ8 and HNSW")
    parser.add_argument("--hnsw-m", type=int, nargs="+", default=[32],
                        help="with --candidates: the HNSW graph degrees to build (each with efConstruction 40)")
    parser.add_argument("--ef-search", type=int, nargs="+", default=[64, 128, 256, 512, 768, 1024],
                        help="with --candidates: the efSearch values each HNSW graph is searched with")
    parser.add_argument("--no-ivf", action="store_true", help="with --candidates: only the HNSW graphs")
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

    if args.scale > len(vectors):
        vectors = np.concatenate([vectors, mixtures(vectors, args.scale - len(vectors), np.random.default_rng(0))])
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    out = {"vectors": len(vectors), "real_vectors": len(texts), "queries": len(qs), "model": encoder.label,
           "embedded_now": embedded, "embed_s": round(embed_s, 1), "exact_single_ms": single_query_ms(exact, queries)}
    del exact
    d = vectors.shape[1]
    if not args.no_ivf:
        started = time.perf_counter()
        ivf = VectorIndex.build(vectors, AnnSettings(threshold=0)).index  # the IVF a large segment gets, forced at this size
        out.update(nlist=int(ivf.nlist), ivf_build_s=round(time.perf_counter() - started, 1))
        probes = sorted({p for p in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) if p < ivf.nlist} | {int(ivf.nlist)})
        # the last probes every list: exact search, the harness's own check
        out["recall_at_10"] = sweep(ivf, "nprobe", probes, queries, truth)
        del ivf
    if args.candidates and not args.no_ivf:
        nlist = out["nlist"]
        started = time.perf_counter()
        sq8 = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(d), d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                            faiss.METRIC_INNER_PRODUCT)
        sq8.cp.niter = 10
        sq8.train(vectors[np.sort(np.random.default_rng(1).choice(len(vectors), min(len(vectors), nlist * 50), replace=False))])
        sq8.add(vectors)
        out["ivf_sq8"] = {"build_s": round(time.perf_counter() - started, 1),
                          "recall_at_10": sweep(sq8, "nprobe", [p for p in probes if p >= 16], queries, truth)}
        del sq8
    for m in args.hnsw_m if args.candidates else ():
        started = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 40
        hnsw.add(vectors)
        out[f"hnsw_m{m}"] = {"build_s": round(time.perf_counter() - started, 1),
                             "recall_at_10": sweep(hnsw, "efSearch", args.ef_search, queries, truth)}
        del hnsw
    text = json.dumps(out, ensure_ascii=False, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text, encoding="utf-8")
    return 0


def mixtures(real: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` unit vectors, each a random convex mixture of two of `real` plus a little noise."""
    out = np.empty((n, real.shape[1]), np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        i, j = rng.integers(0, len(real), m), rng.integers(0, len(real), m)
        w = rng.random((m, 1), dtype=np.float32)
        v = w * real[i] + (1 - w) * real[j] + 0.02 * rng.standard_normal((m, real.shape[1]), dtype=np.float32)
        out[start : start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def single_query_ms(index, queries: np.ndarray, n: int = 200) -> float:
    """Milliseconds per query asked one at a time on one thread, as a request asks it."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        started = time.perf_counter()
        for q in queries[:n]:
            index.search(q.reshape(1, -1), 10)
        return round((time.perf_counter() - started) * 1000 / min(n, len(queries)), 3)
    finally:
        faiss.omp_set_num_threads(threads)


def sweep(index, knob: str, values: list[int], queries: np.ndarray, truth: np.ndarray) -> dict:
    """recall@10 against `truth` and single-query latency for each value of `knob` (nprobe or efSearch)."""
    out = {}
    for value in values:
        setattr(index.hnsw if knob == "efSearch" else index, knob, value)
        _, approx = index.search(queries, 10)
        recall = float(np.mean([len(set(a) & set(t)) / 10 for a, t in zip(approx, truth)]))
        row = {"recall": round(recall, 4), "ms_per_query": single_query_ms(index, queries)}
        if knob == "nprobe":
            row = {"share_of_lists": round(value / index.nlist, 4), **row}
        out[f"{knob}={value}"] = row
    return out


if __name__ == "__main__":
    raise SystemExit(main())
