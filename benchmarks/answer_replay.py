"""The answer layer replayed on kept searches: measure a change to sentence choice or answerability in seconds.

    python -m benchmarks.answer_replay save /tmp/searches.pkl [--mode hybrid] [--cmrc-index /tmp/cmrc-idx]
    python -m benchmarks.answer_replay report /tmp/searches.pkl

`save` runs one `Index.search` per question of every set `rag eval` reads (the seeds' index from the
settings; with `--cmrc-index`, also CMRC and CMRC without its answers, from the folders `rag eval
--cmrc-index` keeps) and pickles the `Retrieval`s. `report` replays `answer.compose` on each, which is
pure, and prints the answer figures `rag eval` prints (correct, first, refused, median, sure-wrong):
the same numbers, in about 30 s for every set and CMRC against 20 minutes for `rag eval`. To measure a
variant, patch the answer layer in a script and call `report(path)`. The pickle belongs to the index,
model and code that made it: `save` again after a change to retrieval.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def question_sets(cmrc_root: Path | None) -> list[tuple[str, Path, Path, list]]:
    """(set name, docs folder, index folder, questions) of every set `rag eval` reads by default."""
    from rag.__main__ import DEFAULT_QUESTION_SETS, HOLDOUT_SETS
    from rag.evaluate import cmrc_sets, load_questions, write_cmrc_docs
    from rag.settings import Settings

    settings = Settings()
    sets = [(Path(p).stem, Path(settings.docs_dir), Path(settings.index_dir), load_questions(ROOT / p))
            for p in DEFAULT_QUESTION_SETS + HOLDOUT_SETS if (ROOT / p).exists()]
    cmrc = ROOT.parent / "shared" / "eval" / "cmrc2018_trial.json"
    if cmrc_root is not None and cmrc.exists():
        for name, folder, without in cmrc_sets(cmrc_root):
            if (folder / "index").is_dir():  # built by `rag eval --cmrc-index`
                sets.append((name, folder / "docs", folder / "index",
                             write_cmrc_docs(cmrc, folder / "docs", without_answers=without)))
    return sets


def searches(index, questions, mode: str = "hybrid") -> list:
    """(question, its Retrieval) for each question: what `compose` reads, from one search each."""
    from rag.answer import CANDIDATE_PASSAGES

    return [(q, index.search(q.question, k=5, mode=mode, sentences_from=CANDIDATE_PASSAGES)) for q in questions]


def replay(rows):
    """`compose` on each kept search: the set's AnswerReport, as `rag eval` computes it."""
    from rag.answer import compose
    from rag.evaluate import answer_report, outcome
    from rag.tokenizer import default_tokenizer

    tokenizer = default_tokenizer()
    return answer_report([outcome(q, compose(q.question, retrieval, tokenizer)) for q, retrieval in rows])


def save(path: Path, mode: str = "hybrid", cmrc_root: Path | None = None) -> int:
    """Search every question of every set once and pickle the searches; returns how many were kept."""
    from rag.index import open_index
    from rag.settings import Settings

    kept: dict[str, list] = {}
    for name, docs, index_dir, questions in question_sets(cmrc_root):
        index = open_index(Settings().with_(docs_dir=docs, index_dir=index_dir), progress=False)
        try:
            kept[name] = searches(index, questions, mode)
        finally:
            index.close()
        print(f"{name}: {len(questions)}", file=sys.stderr)
    with open(path, "wb") as f:
        pickle.dump({"mode": mode, "sets": kept}, f)
    return sum(len(v) for v in kept.values())


def report(path: Path) -> dict:
    """Each kept set's AnswerReport."""
    with open(path, "rb") as f:
        kept = pickle.load(f)
    return {name: replay(rows) for name, rows in kept["sets"].items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.answer_replay")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("save", help="search every question once and pickle the searches")
    p.add_argument("path")
    p.add_argument("--mode", choices=("hybrid", "lexical", "dense"), default="hybrid")
    p.add_argument("--cmrc-index", help="the folder `rag eval --cmrc-index` keeps: CMRC and CMRC without its answers too")
    p = sub.add_parser("report", help="replay the answer layer on the kept searches")
    p.add_argument("path")
    args = parser.parse_args(argv)
    if args.command == "save":
        n = save(Path(args.path), args.mode, Path(args.cmrc_index) if args.cmrc_index else None)
        print(f"{n} searches kept in {args.path}")
        return 0
    from rag.evaluate import AnswerReport

    print(AnswerReport.HEAD.replace("subset", "set   "))
    for name, result in report(Path(args.path)).items():
        print(result.row(name.replace("_questions", "").replace("unanswerable", "unans")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
