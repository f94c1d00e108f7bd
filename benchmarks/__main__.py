"""python -m benchmarks [--sizes 1k,10k,100k,1M]: one table of speed, memory and quality, plus the same as JSON.

Each size gets a corpus recombined from real Chinese sentences (seeds + CMRC trial), then separate
processes build it, load it cold and query it, so each peak RSS belongs to one step. The dense leg
uses random unit vectors for timing (no Chinese model can be downloaded here); quality figures come
from the lexical leg on the real seeds and CMRC, never from random vectors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from .corpus import generate

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000, "1M": 1_000_000}
TARGETS = {"lexical_p50_ms": 50, "dense_p50_ms": 5, "load_s": 3, "build_peak_rss_mb": 8192}


def parse_size(text: str) -> int:
    text = text.strip()
    if text in SIZES:
        return SIZES[text]
    mult = {"k": 1_000, "K": 1_000, "m": 1_000_000, "M": 1_000_000}.get(text[-1], 1)
    return int(float(text[:-1] if text[-1] in "kKmM" else text) * mult)


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def run_worker(*args: str, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.worker", *args]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(args[:1])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT ") :])
    result["wall_s"] = round(time.perf_counter() - started, 2)
    return result


def peer_available() -> bool:
    try:
        import langchain_classic  # noqa: F401
        import langchain_community  # noqa: F401
        import rank_bm25  # noqa: F401
    except ImportError:
        return False
    return True


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1k,10k,100k,1M", help="corpus sizes in chunks, e.g. 1k,10k (default 1k,10k,100k,1M)")
    parser.add_argument("--queries", type=int, default=200, help="queries per latency measurement")
    parser.add_argument("--work", default=os.environ.get("RAG_BENCH_DIR", "/tmp/rag-bench"), help="where corpora and indexes go")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for the JSON result")
    parser.add_argument("--peer-max", default="100k", help="largest size the LangChain peer runs at (it is slow)")
    parser.add_argument("--no-peer", action="store_true", help="skip the LangChain peer")
    parser.add_argument("--no-quality", action="store_true", help="skip hit@k on the dev and CMRC questions")
    parser.add_argument("--keep", action="store_true", help="keep generated corpora and indexes")
    parser.add_argument("--render", metavar="JSON", help="only print the table of an earlier run")
    parser.add_argument("--no-dense", action="store_true", help="skip the real dense model on the seeds")
    parser.add_argument("--sentence-vectors", action="store_true",
                        help="build with (random) sentence vectors too: their build time, memory and disk")
    parser.add_argument("--busy", type=int, default=1, help="CPU-burning processes during the busy latency run")
    args = parser.parse_args(argv)
    if args.render:
        print(render(json.loads(Path(args.render).read_text())))
        return 0

    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    peer = not args.no_peer and peer_available()
    if not args.no_peer and not peer:
        log("LangChain peer not installed (pip install -e '.[bench]'); running without it")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    report = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "dense_note": "the size sweep times the dense leg with random unit vectors (embedding 1M chunks with a real "
        "model takes days on 2 cores); the real bundled model is measured on the seeds (dense section) and in quality",
        "sizes": {},
    }
    timeout = 3 * 3600
    for n in sizes:
        name = label(n)
        corpus = work / f"corpus-{name}"
        if not (corpus / "DONE").exists():
            shutil.rmtree(corpus, ignore_errors=True)
            log(f"{name}: generating corpus")
            stats = generate(corpus, n)
            (corpus / "DONE").write_text(json.dumps(stats))
        entry: dict = {"corpus": json.loads((corpus / "DONE").read_text())}
        index_dir = work / f"index-{name}"
        shutil.rmtree(index_dir, ignore_errors=True)
        log(f"{name}: building")
        entry["build"] = run_worker("build", "--docs", str(corpus), "--index", str(index_dir),
                                    *(["--sentences"] if args.sentence_vectors else []), timeout=timeout)
        log(f"{name}: built in {entry['build']['build_s']} s; measuring ANN recall and serving")
        entry["recall"] = run_worker("recall", "--index-folder", entry["build"]["segment"], timeout=timeout)
        entry["serve"] = run_worker("serve", "--index", str(index_dir), "--queries", str(args.queries), timeout=timeout)
        log(f"{name}: adding and removing one page on the live index")
        entry["update"] = run_worker("update", "--docs", str(corpus), "--index", str(index_dir), "--work", str(work),
                                     "--repeat", "1" if n < 10_000 else "3",
                                     *(["--sentences"] if args.sentence_vectors else []), timeout=timeout)
        if peer and n <= parse_size(args.peer_max):
            log(f"{name}: LangChain peer")
            entry["peer"] = run_worker("peer", "--docs", str(corpus), "--queries", str(min(args.queries, 100)), timeout=timeout)
        report["sizes"][name] = entry
        if not args.keep:
            shutil.rmtree(index_dir, ignore_errors=True)
    if not args.no_dense:
        log("dense: the bundled multilingual-e5-small on the seeds (cold build, one-page change, latency idle and busy)")
        report["dense"] = run_worker("dense", "--work", str(work), "--queries", str(min(args.queries, 100)),
                                     "--busy", str(args.busy), timeout=timeout)
    try:
        from .startup import measure as measure_startup

        log("startup: python app.py with an existing seeds index, to its first answer")
        report["startup"] = measure_startup(work / "index-seeds")
    except ImportError:
        log("gradio_client missing: startup time not measured")
    if not args.no_quality:
        log("quality: dev, extra and CMRC questions")
        report["quality"] = run_worker("quality", *(["--peer"] if peer else []), timeout=timeout)
    report["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    out_file = out_dir / f"bench-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out_file.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    print(render(report))
    print(f"\nJSON: {out_file}")
    return 0


def _ratio(ours, theirs) -> str:
    return f"{ours / theirs:.2f}x" if ours and theirs else "-"


def render(report: dict) -> str:
    lines = [f"dense: {report['dense_note']}", ""]
    head = (f"{'size':>5} {'chunks':>8} {'build s':>8} {'read s':>6} {'embed s':>7} {'dup s':>6} {'write s':>7} {'graph s':>7} {'disk MB':>8} "
            f"{'build RSS':>9} {'load s':>6} {'verify s':>8} {'serve RSS':>9} {'lex p50':>8} {'lex p95':>8} "
            f"{'dense p50':>9} {'dense p95':>9} {'hyb p50':>8} {'hyb p95':>8} {'recall@10':>9}")
    lines.append(head)
    for name, e in report["sizes"].items():
        b, s, r = e["build"], e["serve"], e.get("recall", {})
        t = b["timings"]
        lines.append(
            f"{name:>5} {b['chunks']:>8} {b['build_s']:>8.1f} {t.get('read_s', 0):>6.1f} {t.get('embed_s', 0):>7.1f} "
            f"{t.get('duplicates_s', 0):>6.1f} {t.get('write_s', 0):>7.1f} {b.get('graph_s', 0):>7.1f} {b['index_mb']:>8.1f} {b['build_peak_rss_mb']:>9.0f} {s['load_s']:>6.2f} "
            f"{s['verify_s']:>8.2f} {s['serve_peak_rss_mb']:>9.0f} "
            f"{s['lexical']['p50_ms']:>8.2f} {s['lexical']['p95_ms']:>8.2f} "
            f"{(s['dense'] or {}).get('p50_ms', float('nan')):>9.3f} {(s['dense'] or {}).get('p95_ms', float('nan')):>9.3f} "
            f"{s['hybrid_retrieve']['p50_ms']:>8.2f} {s['hybrid_retrieve']['p95_ms']:>8.2f} "
            f"{str(r.get('recall_at_10', '-')):>9}"
        )
    lines += ["", "incremental updates (one page added, then removed, on the live index; another process queries all along):"]
    lines.append(f"{'size':>5} {'page chunks':>11} {'add s':>7} {'remove s':>8} {'full build s':>12} {'add/build':>9} "
                 f"{'merge s':>7} {'query p50 idle':>14} {'p50 during':>10} {'p95 during':>10}")
    for name, e in report["sizes"].items():
        u = e.get("update")
        if not u:
            continue
        idle, during = u.get("query_idle") or {}, u.get("query_during_update") or {}
        lines.append(
            f"{name:>5} {u['page_chunks']:>11} {u['add_s']:>7.2f} {u['remove_s']:>8.2f} {e['build']['build_s']:>12.1f} "
            f"{u['add_s'] / e['build']['build_s']:>9.1%} {u['merge_s']:>7.2f} {idle.get('p50_ms', float('nan')):>14.2f} "
            f"{during.get('p50_ms', float('nan')):>10.2f} {during.get('p95_ms', float('nan')):>10.2f}"
        )
    peers = {name: e for name, e in report["sizes"].items() if "peer" in e}
    if peers:
        lines += ["", "LangChain peer (EnsembleRetriever: BM25Retriever+jieba, FAISS with fake embeddings); ours/peer ratios:"]
        lines.append(f"{'size':>5} {'peer chunks':>11} {'peer build s':>12} {'peer lex p50':>12} {'peer hyb p50':>12} "
                     f"{'peer RSS':>8} {'build ratio':>11} {'lex p50 ratio':>13} {'hyb p50 ratio':>13}")
        for name, e in peers.items():
            p, b, s = e["peer"], e["build"], e["serve"]
            lines.append(
                f"{name:>5} {p['chunks']:>11} {p['build_s']:>12.1f} {p['lexical']['p50_ms']:>12.2f} {p['hybrid_retrieve']['p50_ms']:>12.2f} "
                f"{p['peak_rss_mb']:>8.0f} {_ratio(b['build_s'], p['build_s']):>11} "
                f"{_ratio(s['lexical']['p50_ms'], p['lexical']['p50_ms']):>13} {_ratio(s['hybrid_retrieve']['p50_ms'], p['hybrid_retrieve']['p50_ms']):>13}"
            )
    d = report.get("dense")
    if d:
        lines += ["", f"real dense leg on the seeds ({d['engine']}, {d['chunks']} chunks):",
                  f"  cold build {d['cold_build_s']} s (embedding {d['embed_s']} s for {d['chunks']} chunks and {d['sentences']} sentences, {d['texts_per_s']} texts/s); "
                  f"after a one-page change {d['one_page_change_s']} s ({d['one_page_change_embedded']} chunks and {d['one_page_change_sentences']} sentences embedded)"]
        for label in ("idle", "busy"):
            r = d[label]
            lines.append(f"  {label} ({r['burners']} busy processes beside it): query embedding p50 {r['query_embedding']['p50_ms']} ms "
                         f"/ p95 {r['query_embedding']['p95_ms']} ms; hybrid retrieve() p50 {r['hybrid_retrieve']['p50_ms']} ms "
                         f"/ p95 {r['hybrid_retrieve']['p95_ms']} ms")
    if report.get("startup"):
        st = report["startup"]
        lines += ["", f"python app.py (seeds, existing index): port open after {st['port_open_s']} s, "
                      f"first answer after {st['first_answer_s']} s (answered: {st['answered']})"]
    quality = report.get("quality")
    if quality:
        lines += ["", "quality (lexical leg; hit = passage from the right file containing the answer):"]
        lines.append(f"{'system/set':<16} {'n':>5} {'hit@1':>7} {'hit@3':>7} {'hit@5':>7} {'MRR@10':>7}")
        for key, q in quality.items():
            if not isinstance(q, dict):
                continue
            lines.append(f"{key:<16} {q['n']:>5} {q['hit@1']:>7.3f} {q['hit@3']:>7.3f} {q['hit@5']:>7.3f} {q['mrr@10']:>7.3f}")
        for set_name in ("dev", "extra", "cmrc"):
            ours, theirs = quality.get(f"ours/{set_name}"), quality.get(f"peer/{set_name}")
            if ours and theirs:
                lines.append(f"ours/peer {set_name}: hit@1 {_ratio(ours['hit@1'], theirs['hit@1'])}, hit@5 {_ratio(ours['hit@5'], theirs['hit@5'])}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
