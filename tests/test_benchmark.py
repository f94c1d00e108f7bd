"""The benchmark runs end to end at its smallest size (a smoke test; the figures are printed, not asserted)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_smallest_size(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--sizes", "1k", "--queries", "10", "--no-dense", "--work", str(tmp_path / "work"), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(proc.stdout)
    report = json.loads(next(out.glob("bench-*.json")).read_text())
    entry = report["sizes"]["1k"]
    assert 900 <= entry["build"]["chunks"] <= 1200
    assert entry["serve"]["lexical"]["n"] == 10 and entry["serve"]["dense"]["p50_ms"] > 0
    assert "random" in entry["build"]["dense"] and "random unit vectors" in report["dense_note"]
    timings = entry["build"]["timings"]  # each stage of the build timed, the near-duplicate check included
    assert all(timings[k] > 0 for k in ("read_s", "duplicates_s", "write_s"))
    assert sum(timings[k] for k in ("read_s", "embed_s", "duplicates_s", "write_s")) <= timings["total_s"] * 1.01
    if (ROOT.parent / "shared" / "eval" / "cmrc2018_trial.json").exists():
        assert report["quality"]["ours/cmrc"]["n"] > 900
    assert "hit@1" in proc.stdout and "p50" in proc.stdout


def test_load_benchmark_smoke(tmp_path):
    """The HTTP load benchmark against the real app: every request answered, none differing from its serial answer."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.load", "--clients", "4", "--requests", "12", "--long", "1", "--model", "none",
         "--work", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    result = json.loads(proc.stdout)
    assert result["ok"] == 12 and result["errors"] == 0 and result["answers_differing_from_serial"] == 0
    assert result["p50_ms"] > 0


def test_real_recall_smoke(tmp_path):
    """IVF recall on real vectors of the bundled model: probing every list finds what exact search finds."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.real_recall", "--n", "40", "--queries", "20", "--cache", str(tmp_path / "v.sqlite"),
         "--json", str(tmp_path / "r.json"), "--scale", "600", "--candidates"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["real_vectors"] >= 30 and result["embedded_now"] == result["real_vectors"] and result["vectors"] == 600
    sweep = list(result["recall_at_10"].values())
    assert sweep[-1]["share_of_lists"] == 1.0 and sweep[-1]["recall"] == 1.0
    assert all(a["recall"] <= b["recall"] + 1e-9 for a, b in zip(sweep, sweep[1:]))  # more lists never find less
    # the candidates: probing every 8-bit list, or a search list longer than the archive, finds nearly all
    assert list(result["ivf_sq8"]["recall_at_10"].values())[-1]["recall"] >= 0.95
    assert list(result["hnsw_m32"]["recall_at_10"].values())[-1]["recall"] >= 0.99


def test_lexical_profile_smoke(lexical_index, tmp_path):
    """The lexical leg's step-by-step profile runs on a real index and times every step it names."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.lexical_profile", str(lexical_index.folder), "--queries", "5",
         "--json", str(tmp_path / "p.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "p.json").read_text())
    assert result["chunks"] == lexical_index.info().chunks and result["candidates_p50"] > 0
    assert set(result["steps_ms"]) >= {"words + bigrams postings", "candidates: the chunks the postings name", "articles field", "top 50"}


def test_near_duplicates_benchmark_smoke():
    """Signing and recording at build scale runs, and both page caches record every article."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.near_duplicates", "--articles", "300"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["articles"] == 300 and result["ratio configured / default"] > 0


def test_benchmark_with_sentence_vectors_keeps_them_through_the_update(tmp_path):
    """The update step opens the index with the settings it was built with: opening one built with
    sentence vectors without them rebuilt it (at 1M, half an hour inside the 'add one page' step)."""
    work = tmp_path / "work"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--sizes", "1k", "--queries", "5", "--no-dense", "--no-quality", "--no-peer",
         "--sentence-vectors", "--keep", "--work", str(work), "--out", str(tmp_path / "results")],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    entry = json.loads(next((tmp_path / "results").glob("bench-*.json")).read_text())["sizes"]["1k"]
    assert entry["build"]["timings"]["sentences_embedded"] > entry["build"]["chunks"]
    assert list((work / "index-1k" / "segments").glob("*/sentence_vectors.npy")), "the update rebuilt without them"


def test_the_answer_replay_gives_rag_evals_figures(lexical_index):
    """`benchmarks.answer_replay` replays `compose` on kept searches: the figures `rag eval` gets by asking."""
    import pickle

    from benchmarks.answer_replay import replay, searches
    from rag.evaluate import evaluate_answers, load_questions

    questions = [q for p in ("../shared/eval/dev_questions.jsonl", "eval/unanswerable_questions.jsonl", "eval/english_questions.jsonl")
                 if (ROOT / p).exists() for q in load_questions(ROOT / p)]
    rows = pickle.loads(pickle.dumps(searches(lexical_index, questions, "lexical")))  # as `save` keeps them
    replayed, asked = replay(rows).as_dict(), evaluate_answers(lexical_index, questions, mode="lexical").as_dict()
    assert replayed == asked and asked["n"] == len(questions)
    assert 0 < asked["refused"] < 1 and asked["answerable"] > 0  # answers and refusals both compared
