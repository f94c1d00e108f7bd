"""Retrieval evaluation: hit@1/3/5 and MRR@10 on question files (see ../shared/eval/README.md).

A passage is a hit when it comes from the question's source file and contains every answer
string (for CMRC: any one of the annotators' answers), whitespace and character width ignored.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .index import Index
from .repair import normalize_width

_ASCII_PUNCT = str.maketrans({",": "，", ";": "；", ":": "：", "(": "（", ")": "）", "!": "！", "?": "？"})
KS = (1, 3, 5)
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

    def is_hit(self, passage) -> bool:
        if passage.source != self.source:
            return False
        text = normalize(passage.text)
        found = [normalize(a) in text for a in self.answers]
        return any(found) if self.match_any else all(found)


@dataclass
class Report:
    n: int
    hits: dict[int, float]
    mrr: float
    by_kind: dict[str, "Report"] = field(default_factory=dict)
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
                out.append(Question(d["id"], d["question"], d["source"], list(d["answers"]), d.get("kind", "all")))
            except (ValueError, KeyError) as exc:
                raise ValueError(f"{path} 第 {n} 行格式错误：{exc}") from exc
    return out


def write_cmrc_docs(path: Path, docs_dir: Path) -> list[Question]:
    """One document per CMRC paragraph (title as first line); questions point to that document."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    docs_dir.mkdir(parents=True, exist_ok=True)
    questions = []
    for article in data["data"]:
        for para in article["paragraphs"]:
            name = f"{para['id']}.txt"
            (docs_dir / name).write_text(f"{article['title']}\n{para['context']}\n", encoding="utf-8")
            for qa in para["qas"]:
                if not qa["question"].strip():
                    continue
                answers = sorted({a["text"] for a in qa["answers"] if a["text"].strip()})
                if answers:
                    questions.append(Question(qa["id"], qa["question"], name, answers, "cmrc", match_any=True))
    return questions


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
