"""One measurement per process, so peak RSS belongs to that measurement alone.

python -m benchmarks.worker build|serve|peer|quality ... prints `RESULT {json}` as its last line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"
DEV = EVAL / "dev_questions.jsonl"
CMRC = EVAL / "cmrc2018_trial.json"
EXTRA = ROOT / "eval" / "extra_questions.jsonl"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 2**20


def percentiles(samples: list[float]) -> dict:
    ms = sorted(s * 1000 for s in samples)
    return {"p50_ms": round(statistics.median(ms), 3), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 3), "n": len(ms)}


def questions(n: int) -> list[str]:
    """Real Chinese questions: the dev set and the CMRC trial questions."""
    qs = []
    if DEV.exists():
        qs += [json.loads(line)["question"] for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    if CMRC.exists():
        for art in json.loads(CMRC.read_text(encoding="utf-8"))["data"]:
            for para in art["paragraphs"]:
                qs += [qa["question"] for qa in para["qas"] if qa["question"].strip()]
    if not qs:
        qs = ["智慧岛核心区签约入驻了多少家企业？", "许寨社区有多少名党员？"]
    return [qs[i % len(qs)] for i in range(n)]


def _parts_mb(folder: Path) -> dict:
    """Disk use by kind of file, summed over segments."""
    parts: dict[str, float] = {}
    for p in Path(folder).rglob("*"):
        if p.is_file():
            kind = p.name.split(".")[0] if p.parent.parent.name == "segments" else p.name
            parts[kind] = parts.get(kind, 0.0) + p.stat().st_size / 2**20
    return {k: round(v, 1) for k, v in sorted(parts.items())}


def cmd_build(args) -> dict:
    from rag import build_index
    from rag.settings import Settings

    from .random_embedder import RandomEmbedder

    embedder = RandomEmbedder() if args.dense == "random" else None
    # Random vectors time the storage. Sentence vectors (about 5 per chunk, held in memory per batch
    # until the segment is written) are left out unless asked for (--sentences): they cost memory and disk.
    settings = Settings(model="none") if embedder is None else Settings(sentence_vectors=args.sentences)
    t0 = time.perf_counter()
    index = build_index(args.docs, args.index, settings=settings, progress=False, embedder=embedder)
    total = time.perf_counter() - t0
    # The vector graphs of parts above RAG_ANN_THRESHOLD (RAG_ANN_INDEX=hnsw): built after the commit,
    # while the index already serves (by IVF), so timed apart from the build.
    t1 = time.perf_counter()
    index.fill_dense()
    graph = time.perf_counter() - t1
    info = index.info()
    with index.backend.snapshot() as snap:  # the parts now served (a graph's swap left a new one)
        segments = [seg.path for seg in snap.gen.segments]
    return {
        "build_s": round(total, 2),
        "graph_s": round(graph, 2),
        "timings": index.manifest["timings"],
        "chunks": info.chunks,
        "articles": info.articles,
        "documents": info.documents,
        "index_mb": round(folder_mb(Path(args.index)), 1),
        "index_parts_mb": _parts_mb(Path(args.index)),
        "build_peak_rss_mb": round(peak_rss_mb(), 1),
        # The build's child processes (the bigrams field; jieba's tokenizer workers) are forked: much of
        # their RSS is the parent's pages, shared, not extra memory.
        "child_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0, 1),
        "dense": info.dense_label if info.dense else "off",
        "segment": str(segments[0]) if segments else "",
    }


def cmd_recall(args) -> dict:
    """The segment's ANN recall@10 (IVF, or its HNSW graph) against exact search over the very same stored vectors."""
    import faiss

    from rag.settings import AnnSettings

    ivf = faiss.read_index(str(Path(args.index_folder) / "vectors.faiss"))
    ann = AnnSettings()
    if hasattr(ivf, "nprobe"):
        ivf.nprobe = ann.nprobe  # what the app probes (RAG_ANN_NPROBE)
        ivf.make_direct_map()
        label = f"IVF{ivf.nlist},nprobe={ivf.nprobe}"
    elif hasattr(ivf, "hnsw"):
        ivf.hnsw.efSearch = ann.ef_search  # what the app searches with (RAG_ANN_EF_SEARCH)
        label = f"HNSW{ann.hnsw_m},efSearch={ann.ef_search}"
    else:
        return {"index": "exact (flat)", "recall_at_10": 1.0}
    vectors = ivf.reconstruct_n(0, ivf.ntotal)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    rng = np.random.default_rng(1)
    if args.queries_from == "stored":  # real-embedding case: held-in vectors plus noise look like queries
        queries = vectors[rng.choice(len(vectors), args.n, replace=False)] + rng.normal(0, 0.02, (args.n, vectors.shape[1])).astype(np.float32)
    else:
        queries = rng.standard_normal((args.n, vectors.shape[1])).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    _, truth = exact.search(queries, 10)
    _, approx = ivf.search(queries, 10)
    recall = float(np.mean([len(set(a) & set(t)) / 10 for a, t in zip(approx, truth)]))
    return {"index": label, "recall_at_10": round(recall, 4), "vectors": int(ivf.ntotal)}


def cmd_serve(args) -> dict:
    from rag import load_index
    from rag.backends.local import segment as seg

    from .random_embedder import RandomEmbedder

    embedder = RandomEmbedder() if args.dense == "random" else None
    t0 = time.perf_counter()
    index = load_index(args.index, embedder=embedder)
    load_s = time.perf_counter() - t0
    rss_after_load = rss_mb()
    # What checking every file's checksum costs (done at load up to RAG_VERIFY_SYNC_MB, else in the background).
    t0 = time.perf_counter()
    verified_mb = 0.0
    for folder in sorted((Path(args.index) / "segments").iterdir()):
        s = seg.Segment(folder, verify=False)
        verified_mb += sum(f.size for f in s.manifest.files.values()) / 2**20
        assert not s._verify()
        s.close()
    verify_s = time.perf_counter() - t0
    qs = questions(args.queries)
    for q in qs[:5]:
        index.retrieve(q, k=5)  # warm caches (jieba, page cache)
    lexical, dense, hybrid = [], [], []
    for q in qs:
        with index.backend.snapshot() as snap:
            t = time.perf_counter()
            snap.lexical(index.tokenizer.weighted(q), 50, q)
            lexical.append(time.perf_counter() - t)
            if embedder is not None:
                v = embedder.encode_query(q)
                t = time.perf_counter()
                snap.dense(v, 50)
                dense.append(time.perf_counter() - t)
        t = time.perf_counter()
        index.retrieve(q, k=5, mode="hybrid")
        hybrid.append(time.perf_counter() - t)
    return {
        "load_s": round(load_s, 3),
        "verify_s": round(verify_s, 3),
        "verified_mb": round(verified_mb, 1),
        "rss_after_load_mb": round(rss_after_load, 1),
        "serve_peak_rss_mb": round(peak_rss_mb(), 1),
        "lexical": percentiles(lexical),
        "dense": percentiles(dense) if dense else None,
        "hybrid_retrieve": percentiles(hybrid),
    }


def cmd_update(args) -> dict:
    """Add one page to a live index and remove it again, while another process keeps querying it."""
    import subprocess

    from rag import open_index
    from rag.settings import Settings

    from .corpus import page
    from .random_embedder import RandomEmbedder

    new_page = Path(args.work) / "new_page.txt"
    page_chunks = page(new_page, seed=1)
    # The settings the index was built with: other ones (sentence vectors on or off) would rebuild it first.
    index = open_index(Settings(docs_dir=args.docs, index_dir=args.index, sentence_vectors=args.sentences), progress=False,
                       embedder=RandomEmbedder())
    loop = subprocess.Popen([sys.executable, "-m", "benchmarks.worker", "queryloop", "--index", args.index],
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert loop.stdout.readline().strip() == "READY"
    time.sleep(2.0)  # some queries before any update, as the idle baseline
    adds, removes, windows = [], [], []
    for _ in range(args.repeat):
        for action, arg, out in ((index.add, [new_page], adds), (index.remove, new_page.name, removes)):
            t0 = time.time()
            changes = action(arg)
            t1 = time.time()
            assert changes and changes[0].status in ("added", "removed"), changes
            out.append(t1 - t0)
            windows.append((t0, t1))
            time.sleep(0.5)
    t0 = time.perf_counter()
    index.maintain()
    merge_s = time.perf_counter() - t0
    loop.stdin.close()
    samples = json.loads(next(line for line in loop.stdout if line.startswith("RESULT "))[len("RESULT "):])
    loop.wait(timeout=60)
    during = [lat for start, lat in samples if any(a <= start <= b for a, b in windows)]
    idle = [lat for start, lat in samples if start < windows[0][0]]
    return {
        "page_chunks": page_chunks,
        "add_s": round(statistics.median(adds), 3),
        "remove_s": round(statistics.median(removes), 3),
        "merge_s": round(merge_s, 3),
        "query_during_update": percentiles(during) if during else None,
        "query_idle": percentiles(idle) if idle else None,
        "queries": len(samples),
    }


def cmd_queryloop(args) -> dict:
    """Query until stdin closes; report (start time, latency) of every query (for `update`)."""
    import select

    from rag import load_index

    from .random_embedder import RandomEmbedder

    index = load_index(args.index, embedder=RandomEmbedder())
    qs = questions(500)
    index.retrieve(qs[0], k=5)
    print("READY", flush=True)
    samples, i = [], 0
    while not select.select([sys.stdin], [], [], 0)[0]:
        t0 = time.time()
        index.retrieve(qs[i % len(qs)], k=5)
        samples.append((t0, time.time() - t0))
        i += 1
    return samples


def _burners(n: int):
    """`n` processes spinning on the CPU: the "busy machine" the latency targets are stated for."""
    import subprocess

    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def cmd_dense(args) -> dict:
    """The real dense leg on the seeds (the bundled 4-bit multilingual-e5-small): embedding rate, build
    times cold and after a one-page change, query-embedding and hybrid retrieve() latency idle and busy."""
    import shutil

    from rag import build_index, open_index
    from rag.settings import Settings

    work = Path(args.work)
    docs, folder = work / "dense-docs", work / "dense-index"
    shutil.rmtree(docs, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(ROOT / "seeds", docs)
    t0 = time.perf_counter()
    index = build_index(docs, folder, model=args.model, progress=False)
    cold = time.perf_counter() - t0
    t = index.manifest["timings"]
    out = {"engine": index.info().dense_label, "chunks": index.info().chunks, "cold_build_s": round(cold, 2),
           "embed_s": t["embed_s"], "sentences": t.get("sentences_embedded", 0),
           # embed_s covers chunks and sentence vectors (RAG_SENTENCE_VECTORS): texts per second
           "texts_per_s": round((t["embedded"] + t.get("sentences_embedded", 0)) / t["embed_s"], 2) if t["embed_s"] else None}
    page = docs / "003_dbd476b8f86f7364.txt"
    page.write_text(page.read_text(encoding="utf-8") + "\n周口新建天文馆\n本报讯（记者 宋风）周口天文馆今日开馆，馆内有球幕影院。\n", encoding="utf-8")
    index.close()
    t0 = time.perf_counter()
    index = open_index(Settings(docs_dir=docs, index_dir=folder, model=args.model), progress=False)
    out["one_page_change_s"] = round(time.perf_counter() - t0, 2)
    out["one_page_change_embedded"] = index.manifest["timings"]["embedded"]
    out["one_page_change_sentences"] = index.manifest["timings"].get("sentences_embedded", 0)
    qs = [q for q in questions(10_000) if q][: args.queries]
    english = ROOT / "eval" / "english_questions.jsonl"
    if english.exists():
        qs = qs[: args.queries // 2] + [json.loads(line)["question"] for line in english.read_text(encoding="utf-8").splitlines() if line.strip()][: args.queries // 2]
    for q in qs[:5]:
        index.retrieve(q, k=5)
    for label, busy in (("idle", 0), ("busy", args.busy)):
        procs = _burners(busy)
        try:
            time.sleep(0.5 if busy else 0)
            embed, hybrid = [], []
            for q in qs:
                t = time.perf_counter()
                index.encoder.encode_query(q)
                embed.append(time.perf_counter() - t)
                t = time.perf_counter()
                index.retrieve(q, k=5)
                hybrid.append(time.perf_counter() - t)
        finally:
            for p in procs:
                p.kill()
                p.wait()
        out[label] = {"burners": busy, "query_embedding": percentiles(embed), "hybrid_retrieve": percentiles(hybrid)}
    return out


def _peer_pieces():
    import jieba
    from langchain_classic.retrievers import EnsembleRetriever
    from langchain_community.embeddings import DeterministicFakeEmbedding
    from langchain_community.retrievers import BM25Retriever
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    jieba.setLogLevel(logging.WARNING)

    def preprocess(text: str) -> list[str]:
        return [t for t in jieba.lcut_for_search(text) if t.strip() and any(ch.isalnum() for ch in t)]

    return EnsembleRetriever, DeterministicFakeEmbedding, BM25Retriever, FAISS, Document, RecursiveCharacterTextSplitter, preprocess


def _peer_chunks(docs_dir: Path):
    """What a LangChain user would do: load the files, split recursively at ~400 characters."""
    *_, Document, Splitter, _ = _peer_pieces()
    from rag.ingest import read_documents

    docs = [Document(page_content=d.text, metadata={"source": d.source}) for d in read_documents(docs_dir)]
    splitter = Splitter(chunk_size=400, chunk_overlap=50, separators=["\n\n", "\n", "。", "！", "？", "；", "，", ""])
    return splitter.split_documents(docs)


def cmd_peer(args) -> dict:
    Ensemble, FakeEmbedding, BM25Retriever, FAISS, _, _, preprocess = _peer_pieces()
    t0 = time.perf_counter()
    chunks = _peer_chunks(Path(args.docs))
    t1 = time.perf_counter()
    bm25 = BM25Retriever.from_documents(chunks, preprocess_func=preprocess, k=5)
    t2 = time.perf_counter()
    store = FAISS.from_documents(chunks, FakeEmbedding(size=384))
    t3 = time.perf_counter()
    ensemble = Ensemble(retrievers=[bm25, store.as_retriever(search_kwargs={"k": 5})], weights=[0.5, 0.5])
    qs = questions(args.queries)
    lexical, hybrid = [], []
    for q in qs:
        t = time.perf_counter()
        bm25.invoke(q)
        lexical.append(time.perf_counter() - t)
        t = time.perf_counter()
        ensemble.invoke(q)
        hybrid.append(time.perf_counter() - t)
    return {
        "chunks": len(chunks),
        "build_s": round(t3 - t0, 2),
        "timings": {"split": round(t1 - t0, 3), "lexical": round(t2 - t1, 3), "dense_fake_embeddings": round(t3 - t2, 3)},
        "lexical": percentiles(lexical),
        "hybrid_retrieve": percentiles(hybrid),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def cmd_quality(args) -> dict:
    """hit@1/3/5 and MRR@10 for us (lexical leg: random vectors never give quality figures) and the peer's BM25."""
    from rag import build_index
    from rag.evaluate import evaluate, load_questions, write_cmrc_docs

    out: dict = {}
    tmp = Path(tempfile.mkdtemp(prefix="rag-bench-quality-"))
    sets = []
    if DEV.exists():
        sets.append(("dev", ROOT / "seeds", load_questions(DEV)))
    if EXTRA.exists():
        sets.append(("extra", ROOT / "seeds", load_questions(EXTRA)))
    if CMRC.exists():
        sets.append(("cmrc", tmp / "cmrc-docs", write_cmrc_docs(CMRC, tmp / "cmrc-docs")))
    indexes = {}
    for name, docs, qs in sets:
        if docs not in indexes:
            indexes[docs] = build_index(docs, tmp / f"index-{name}", model="none", progress=False)
        out[f"ours/{name}"] = evaluate(indexes[docs], qs, mode="lexical").as_dict()
        if args.peer:
            out[f"peer/{name}"] = _peer_quality(docs, qs)
    return out


def _peer_quality(docs: Path, qs) -> dict:
    from rag.evaluate import Report, _summarise
    from rag.results import Passage

    _, _, BM25Retriever, _, _, _, preprocess = _peer_pieces()
    retriever = BM25Retriever.from_documents(_peer_chunks(docs), preprocess_func=preprocess, k=10)
    ranks = []
    for q in qs:
        hits = retriever.invoke(q.question)
        as_passages = [Passage(d.page_content, 0.0, d.metadata["source"], "", "", i, 0, 0, None, None) for i, d in enumerate(hits)]
        ranks.append(next((i for i, p in enumerate(as_passages, 1) if q.is_hit(p)), None))
    hits, mrr = _summarise(ranks)
    return Report(len(qs), hits, mrr).as_dict()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("build")
    p.add_argument("--docs", required=True)
    p.add_argument("--index", required=True)
    p.add_argument("--dense", choices=("random", "off"), default="random")
    p.add_argument("--sentences", action="store_true", help="also embed and store (random) sentence vectors")
    p = sub.add_parser("recall")
    p.add_argument("--index-folder", required=True)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--queries-from", choices=("random", "stored"), default="random")
    p = sub.add_parser("serve")
    p.add_argument("--index", required=True)
    p.add_argument("--dense", choices=("random", "off"), default="random")
    p.add_argument("--queries", type=int, default=200)
    p = sub.add_parser("update")
    p.add_argument("--docs", required=True)
    p.add_argument("--index", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--sentences", action="store_true", help="the index was built with --sentences (else opening it rebuilds it)")
    p = sub.add_parser("dense")
    p.add_argument("--work", required=True)
    p.add_argument("--model", default="bundled")
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--busy", type=int, default=1, help="CPU-burning processes beside the queries")
    p = sub.add_parser("queryloop")
    p.add_argument("--index", required=True)
    p = sub.add_parser("peer")
    p.add_argument("--docs", required=True)
    p.add_argument("--queries", type=int, default=100)
    p = sub.add_parser("quality")
    p.add_argument("--peer", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    commands = {"build": cmd_build, "recall": cmd_recall, "serve": cmd_serve, "update": cmd_update, "queryloop": cmd_queryloop,
                "dense": cmd_dense,
                "peer": cmd_peer, "quality": cmd_quality}
    result = commands[args.cmd](args)
    print("RESULT " + json.dumps(result, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
