"""python -m benchmarks.tokenizer: the search-mode cut on jieba and on rjieba, speed and agreement.

Speed is measured on the seeds and the CMRC trial paragraphs (real Chinese news and encyclopedia text),
each engine with the project's user dictionary and stopwords, one process, one core. Agreement is the
share of texts whose token lists are identical, per text set: the seeds' sentences, every eval question
set, the CMRC paragraphs and questions; for the search-mode cut (documents and queries) and for the
default cut that `Tokenizer.weighted` splits a query with (which stays on jieba where they differ).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rag.articles import split_articles
from rag.chunks import sentence_spans
from rag.evaluate import load_questions
from rag.ingest import read_documents
from rag.tokenizer import Engine, Tokenizer

ROOT = Path(__file__).resolve().parent.parent
CMRC = ROOT.parent / "shared" / "eval" / "cmrc2018_trial.json"
QUESTION_SETS = ("../shared/eval/dev_questions.jsonl", "eval/extra_questions.jsonl", "eval/paraphrase_questions.jsonl",
                 "eval/english_questions.jsonl", "eval/unanswerable_questions.jsonl", "eval/holdout_questions.jsonl",
                 "eval/unanswerable_holdout.jsonl")


def text_sets() -> dict[str, list[str]]:
    sets: dict[str, list[str]] = {"seeds": []}
    for doc in read_documents(ROOT / "seeds"):
        for a in split_articles(doc):
            sets["seeds"].append(a.title)
            sets["seeds"] += [a.body[s:e] for s, e in sentence_spans(a.body)]
    for name in QUESTION_SETS:
        path = ROOT / name
        if path.is_file():
            sets[path.stem] = [q.question for q in load_questions(path)]
    if CMRC.is_file():
        data = json.loads(CMRC.read_text(encoding="utf-8"))["data"]
        sets["cmrc-paragraphs"] = [p["context"] for art in data for p in art["paragraphs"]]
        sets["cmrc-questions"] = [q["question"] for art in data for p in art["paragraphs"] for q in p["qas"]]
    return sets


def speed(tk: Tokenizer, texts: list[str], min_seconds: float) -> dict:
    tk(texts[0])  # load the dictionary outside the timing
    chars = tokens = rounds = 0
    started = time.perf_counter()
    while True:
        for t in texts:
            tokens += len(tk(t))
            chars += len(t)
        rounds += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return {"chars_per_s": chars / elapsed, "tokens_per_s": tokens / elapsed, "rounds": rounds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=5.0, help="least time per engine")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    sets = text_sets()
    old, new = Tokenizer(engine=Engine.JIEBA), Tokenizer(engine=Engine.RJIEBA)
    report: dict = {"agreement": {}, "speed": {}}
    print(f"{'set':28} {'texts':>6} {'same tokens':>12} {'same cut':>9}")
    jieba_cut, rjieba_cut = old._jieba.cut, new._rjieba.cut
    for name, texts in sets.items():
        same = sum(old(t) == new(t) for t in texts)
        same_cut = sum(list(jieba_cut(t.lower())) == rjieba_cut(t.lower()) for t in texts)
        report["agreement"][name] = {"texts": len(texts), "same_tokens": same / len(texts), "same_cut": same_cut / len(texts)}
        print(f"{name:28} {len(texts):6d} {same / len(texts):12.1%} {same_cut / len(texts):9.1%}")
    corpus = sets["seeds"] + sets.get("cmrc-paragraphs", [])
    print(f"\nspeed on {sum(map(len, corpus)):,} characters (seeds + CMRC paragraphs), one core:")
    for tk in (old, new):
        r = speed(tk, corpus, args.seconds)
        report["speed"][tk.engine.value] = r
        print(f"  {tk.engine.value:7} {r['chars_per_s'] / 1e6:6.3f} M chars/s  {r['tokens_per_s'] / 1e3:8.1f} k tokens/s")
    ratio = report["speed"]["rjieba"]["chars_per_s"] / report["speed"]["jieba"]["chars_per_s"]
    report["speedup"] = ratio
    print(f"  rjieba / jieba: {ratio:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
