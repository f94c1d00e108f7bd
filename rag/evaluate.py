"""Evaluation on question files (see ../shared/eval/README.md): retrieval and answers.

Retrieval: hit@1/3/5 and MRR@10. A passage is a hit when it comes from the question's source file
and contains every answer string (for CMRC: any one of the annotators' answers), whitespace and
character width ignored.

Answers (`rag.ask` in the same mode): for answerable questions, the share whose answer strings are
in the quoted sentences (answer-correct) and in the first quoted sentence (first-correct); for every
set, the share refused ("not found"), the share answered wrongly with no notice that the answer may not
answer (confidently wrong: an unanswerable question answered, or quoted sentences without the answer
strings, and no NoticeCode.UNSURE), and the median length of the answers given. A question of kind
`unanswerable` has no answer strings: the archive does not hold its answer, and refusing is right.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .answer import answer
from .index import Index
from .notices import NoticeCode
from .repair import normalize_width
from .results import Answer

_ASCII_PUNCT = str.maketrans({",": "，", ";": "；", ":": "：", "(": "（", ")": "）", "!": "！", "?": "？"})
KS = (1, 3, 5)
UNANSWERABLE = "unanswerable"
MRR_AT = 10


def normalize(text: str) -> str:
    return re.sub(r"\s+", "", normalize_width(text)).translate(_ASCII_PUNCT)


@dataclass
class Question:
    id: str
    question: str
    source: str
    answers: list[str]
    kind: str = "all"
    match_any: bool = False

    @property
    def answerable(self) -> bool:
        return bool(self.answers)

    def in_text(self, text: str) -> bool:
        text = normalize(text)
        found = [normalize(a) in text for a in self.answers]
        return any(found) if self.match_any else all(found)

    def is_hit(self, passage) -> bool:
        return passage.source == self.source and self.in_text(passage.text)


@dataclass
class Report:
    n: int
    hits: dict[int, float]
    mrr: float
    by_kind: dict[str, Report] = field(default_factory=dict)
    misses: list[tuple[str, str, int | None]] = field(default_factory=list)  # (id, question, rank or None)

    def table(self, name: str = "") -> str:
        rows = [("overall" if not name else name, self)] + sorted(self.by_kind.items())
        head = f"{'subset':<14}{'n':>6}" + "".join(f"{'hit@' + str(k):>9}" for k in KS) + f"{'MRR@10':>9}"
        lines = [head]
        for label, r in rows:
            lines.append(f"{label:<14}{r.n:>6}" + "".join(f"{r.hits[k]:>9.3f}" for k in KS) + f"{r.mrr:>9.3f}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "n": self.n,
            **{f"hit@{k}": round(v, 4) for k, v in self.hits.items()},
            f"mrr@{MRR_AT}": round(self.mrr, 4),
            "by_kind": {kind: r.as_dict() for kind, r in self.by_kind.items()},
        }


def load_questions(path: Path) -> list[Question]:
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                answers = list(d.get("answers") or [])
                kind = d.get("kind", "all")
                if not answers and kind != UNANSWERABLE:
                    raise KeyError("answers")
                out.append(Question(d["id"], d["question"], d.get("source", ""), answers, kind))
            except (ValueError, KeyError) as exc:
                raise ValueError(f"{path} 第 {n} 行格式错误：{exc}") from exc
    return out


def write_cmrc_docs(path: Path, docs_dir: Path, without_answers: bool = False) -> list[Question]:
    """One document per CMRC paragraph (title as first line); questions point to that document.

    `without_answers`: every sentence that holds an answer is left out of its paragraph, and the questions
    are those whose answer the rest no longer holds, as unanswerable ones: near-domain questions by the
    hundred (the subject and its other facts are in the archive, the fact asked is not)."""
    from .chunks import sentence_spans

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    docs_dir.mkdir(parents=True, exist_ok=True)
    questions = []
    for article in data["data"]:
        for para in article["paragraphs"]:
            name, context = f"{para['id']}.txt", para["context"]
            qas = [(qa, sorted({a["text"] for a in qa["answers"] if a["text"].strip()})) for qa in para["qas"] if qa["question"].strip()]
            if without_answers:
                held = [_answer_range(context, a) for qa, _ in qas for a in qa["answers"] if a["text"].strip()]
                context = "".join(context[s:e] for s, e in sentence_spans(context)
                                  if not any(a < e and b > s for a, b in held if a >= 0))
            (docs_dir / name).write_text(f"{article['title']}\n{context}\n", encoding="utf-8")
            for qa, answers in qas:
                if not answers:
                    continue
                if not without_answers:
                    questions.append(Question(qa["id"], qa["question"], name, answers, "cmrc", match_any=True))
                elif not any(normalize(a) in normalize(context) for a in answers):
                    questions.append(Question(qa["id"], qa["question"], name, [], UNANSWERABLE))
    return questions


def cmrc_sets(root: Path, unanswerable: bool = True) -> list[tuple[str, Path, bool]]:
    """(set name, its folder under `root`, without_answers) of the CMRC sets `rag eval` builds: CMRC, and CMRC
    without its answers; each folder holds `docs/` and `index/`."""
    return [("cmrc", root, False)] + ([("cmrc_unanswerable", root / "unanswerable", True)] if unanswerable else [])


def _answer_range(context: str, answer: dict) -> tuple[int, int]:
    """[start, end) of a SQuAD answer in its context: its answer_start where that is right, else where
    its text first occurs (-1, -1 when nowhere)."""
    text, start = answer["text"], answer.get("answer_start", -1)
    if not (isinstance(start, int) and 0 <= start and context[start : start + len(text)] == text):
        start = context.find(text)
    return (start, start + len(text)) if start >= 0 else (-1, -1)


def _summarise(ranks: list[int | None]) -> tuple[dict[int, float], float]:
    n = max(len(ranks), 1)
    hits = {k: sum(1 for r in ranks if r is not None and r <= k) / n for k in KS}
    mrr = sum(1.0 / r for r in ranks if r is not None and r <= MRR_AT) / n
    return hits, mrr


def evaluate(index: Index, questions: list[Question], mode: str = "hybrid") -> Report:
    ranks: list[int | None] = []
    kinds: dict[str, list[int | None]] = defaultdict(list)
    misses = []
    for q in questions:
        passages = index.retrieve(q.question, k=MRR_AT, mode=mode)
        rank = next((i for i, p in enumerate(passages, 1) if q.is_hit(p)), None)
        ranks.append(rank)
        kinds[q.kind].append(rank)
        if rank != 1:
            misses.append((q.id, q.question, rank))
    hits, mrr = _summarise(ranks)
    by_kind = {}
    if len(kinds) > 1:
        for kind, rs in kinds.items():
            h, m = _summarise(rs)
            by_kind[kind] = Report(len(rs), h, m)
    return Report(len(questions), hits, mrr, by_kind, misses)


@dataclass
class AnswerReport:
    """Answer-level figures of one set in one mode (rates over the set's questions)."""

    n: int
    answerable: int
    correct: float  # answer strings in the quoted sentences (share of answerable questions)
    first_correct: float  # ... in the first quoted sentence
    refused: float  # "not found" (share of all questions; right for unanswerable ones)
    median_chars: float  # median length of the answers given (quoted sentences, without [n])
    sure_wrong: float = 0.0  # answered wrongly without the unsure notice (share of all questions)
    by_kind: dict[str, AnswerReport] = field(default_factory=dict)
    misses: list[tuple[str, str, str]] = field(default_factory=list)  # (id, question, what was answered)

    HEAD = f"{'subset':<14}{'n':>6}{'correct':>9}{'first':>9}{'refused':>9}{'median':>9}{'sure-wrong':>11}"

    def row(self, label: str) -> str:
        rate = (lambda v: f"{v:>9.3f}") if self.answerable else (lambda v: f"{'—':>9}")
        return (f"{label:<14}{self.n:>6}{rate(self.correct)}{rate(self.first_correct)}{self.refused:>9.3f}"
                f"{self.median_chars:>9.0f}{self.sure_wrong:>11.3f}")

    def table(self, name: str = "") -> str:
        rows = [("overall" if not name else name, self)] + sorted(self.by_kind.items())
        return "\n".join([self.HEAD] + [r.row(label) for label, r in rows])

    def as_dict(self) -> dict:
        return {
            "n": self.n, "answerable": self.answerable, "answer_correct": round(self.correct, 4),
            "first_sentence_correct": round(self.first_correct, 4), "refused": round(self.refused, 4),
            "median_chars": self.median_chars, "sure_wrong": round(self.sure_wrong, 4),
            "by_kind": {kind: r.as_dict() for kind, r in self.by_kind.items()},
        }


@dataclass
class Outcome:
    question: Question
    found: bool
    correct: bool
    first: bool
    chars: int
    text: str
    unsure: bool = False  # given with NoticeCode.UNSURE


def _answer_report(outcomes: list[Outcome]) -> AnswerReport:
    n = len(outcomes)
    answerable = [o for o in outcomes if o.question.answerable]
    lengths = sorted(o.chars for o in outcomes if o.found)
    median = float(statistics.median(lengths)) if lengths else 0.0
    share = (lambda xs: sum(xs) / len(answerable)) if answerable else (lambda xs: 0.0)
    return AnswerReport(
        n, len(answerable), share(o.correct for o in answerable), share(o.first for o in answerable),
        sum(not o.found for o in outcomes) / max(n, 1), median,
        sum(o.found and not o.correct and not o.unsure for o in outcomes) / max(n, 1),
    )


def outcome(q: Question, a: Answer) -> Outcome:
    """What counts of one answer to `q` (see the module docstring)."""
    quoted = "".join(c.sentence for c in a.citations) if a.found else ""
    first = a.citations[0].sentence if a.found and a.citations else ""
    correct = a.found and q.answerable and q.in_text(quoted)
    return Outcome(q, a.found, correct, a.found and q.answerable and q.in_text(first), len(quoted),
                    quoted if a.found else "", any(n.code == NoticeCode.UNSURE for n in a.notices))


def evaluate_answers(index: Index, questions: list[Question], mode: str = "hybrid") -> AnswerReport:
    """`rag.ask` on every question; see the module docstring for what counts."""
    return answer_report([outcome(q, answer(index, q.question, mode=mode)) for q in questions])


def answer_report(outcomes: list[Outcome]) -> AnswerReport:
    """The figures of a set's answers, overall and by kind, with the misses listed."""
    report = _answer_report(outcomes)
    kinds: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        kinds[o.question.kind].append(o)
    if len(kinds) > 1:
        report.by_kind = {kind: _answer_report(os_) for kind, os_ in kinds.items()}
    report.misses = [(o.question.id, o.question.question, o.text[:80] or "（未找到）") for o in outcomes
                     if (o.question.answerable and not o.first) or (not o.question.answerable and o.found)]
    return report
