"""Passages -> answers: quote the 1-3 sentences that best answer the question, each with its [n] source.

Extractive on purpose: every word of an answer is a word of the archive. Two signals decide, so that a
question in any language can be answered:

- query-term coverage: the share of the question's idf weight that the best passage contains (terms the
  corpus has never seen count at full weight, so "火星" sinks a question);
- with the dense leg on, embedding similarity: a sentence's cosine with the question (from the sentence
  vectors stored at build time), and the dense leg's best score (chunk and best-sentence cosine averaged).

An English question shares no term with the Chinese pages, so its coverage is 0; it is answered when
the dense score clears the threshold for its language (cross-lingual cosines sit lower than Chinese ones).
Sentences are picked by term weight plus similarity, each scaled to the best candidate.
"""

from __future__ import annotations

import re

from .chunks import sentence_spans
from .fusion import query_language
from .index import MAX_QUERY_CHARS, Index
from .passages import term_weight
from .results import Answer, Citation, Passage, Passages

NOT_FOUND = "资料中没有找到相关内容。"
SHORTENED = "问题过长，只使用了前 {n} 个字。"
# Only the last turns of a conversation can carry its topic; each is cut like a question.
HISTORY_TURNS = 3
# Calibrated with `python -m rag calibrate`: dev questions (all answerable) vs out-of-domain questions.
FOUND_THRESHOLD = 0.3
# The dense leg's best score (mean of chunk and best-sentence cosine) that counts as found, by query
# language (rag.fusion.query_language). Calibrated for multilingual-e5-small (bundled 4-bit) with
# `python -m rag calibrate`; another model needs its own values (its cosines sit elsewhere).
DENSE_FOUND = {"zh": 0.865, "other": 0.75}
# Weight of a sentence's similarity to the question beside its query-term weight (both scaled to 0-1):
# answer correctness was flat from 2 to 5 on the seed question sets; similarity alone lost a lexical question.
SIMILARITY_WEIGHT = 2.0
# Without stored sentence vectors, at most this many sentences are embedded per question.
MAX_EMBEDDED_SENTENCES = 12
MAX_SENTENCES = 3
MAX_ANSWER_CHARS = 360
# Questions about amounts or dates: sentences carrying a number are likelier to hold the answer.
_ASKS_NUMBER = re.compile(
    r"多少|几[个家次天年月日人项名处条场位所座批]|哪[天年月]|何时|什么时候|多久|多长|多大|多高|多远|多重"
    r"|\bhow (?:many|much|long|often|far|tall|big|large|old)\b|\bwhen\b|\bwhat (?:date|day|year|time)\b"
    r"|\b(?:which|what) (?:date|day|month|year)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"[0-9]|[一二三四五六七八九十百千万两]+[个家次天年月日人项名处条场位所座批亿元]")
NUMBER_BONUS = 1.5
_ANAPHORA = re.compile(r"^(那|那么|还有|另外|此外|并且|而且)|[它其该此]|这(个|些|里|项|次)|那(个|些|里|项|次)|他们|她们|呢[？?]?$")


def history_questions(history) -> list[str]:
    """User turns from a chat history: messages dicts (content as str or list of parts), pairs, or strings."""
    out = []
    for item in history or []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            if item.get("role") == "user":
                out.append(_content_text(item.get("content")))
        elif isinstance(item, (list, tuple)) and item:
            out.append(_content_text(item[0]))
        elif hasattr(item, "role") and item.role == "user":
            out.append(_content_text(getattr(item, "content", "")))
    return [q for q in out if q.strip()]


def _content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, (list, tuple)):
        return " ".join(_content_text(c) for c in content)
    return ""


def is_follow_up(question: str) -> bool:
    """Pronouns (它, 该, 这个…), a leading 那/还有, or a trailing 呢 mark a question that leans on the last turn."""
    return bool(_ANAPHORA.search(question.strip()))


def contextualize(index: Index, question: str, history) -> str:
    """A follow-up such as 那它的总投资是多少？ is searched together with the previous turns' subject."""
    previous = [q[:MAX_QUERY_CHARS] for q in history_questions(history)[-HISTORY_TURNS:]]
    if not previous or not is_follow_up(question):
        return question
    subject: list[str] = []
    for turn in reversed(previous):
        for noun in index.tokenizer.nouns(turn):
            if noun not in subject:
                subject.append(noun)
        if not is_follow_up(turn):
            break  # this turn names the topic itself; older turns are not needed
    return f"{' '.join(subject)} {question}" if subject else question


def coverage(index: Index, query: str, texts: list[str]) -> float:
    """Best share, over `texts`, of the query's idf weight a text contains; unknown terms weigh as the rarest."""
    return index.coverage(query, texts)


def candidate_sentences(passages: list[Passage]) -> list[tuple[str, int, int]]:
    """(sentence, passage index, offset) of the top 3 passages' sentences worth quoting."""
    out = []
    for rank, p in enumerate(passages[:3]):
        for s, e in sentence_spans(p.text):
            sentence = p.text[s:e].strip()
            if len(sentence) >= 4:
                out.append((sentence, rank, s))
    return out


def pick_sentences(
    passages: list[Passage], weights: dict[str, float], extra: dict[str, float], wants_number: bool = False,
    similarity: dict[str, float] | None = None,
) -> list[tuple[str, int]]:
    """The best sentences as (sentence, passage index), best first.

    score = (term weight / best term weight + SIMILARITY_WEIGHT * similarity scaled to 0-1 over the
    candidates) * 0.85 ** passage rank, * NUMBER_BONUS for a number when the question asks for one.
    """
    candidates = candidate_sentences(passages)
    terms = {sentence: term_weight(sentence, weights) + 0.5 * term_weight(sentence, extra) for sentence, _, _ in candidates}
    top_term = max(terms.values(), default=0.0)
    sims = {sentence: similarity[sentence] for sentence, _, _ in candidates if similarity and sentence in similarity}
    low, high = min(sims.values(), default=0.0), max(sims.values(), default=0.0)
    scored = []
    for sentence, rank, s in candidates:
        score = terms[sentence] / top_term if top_term > 0 else 0.0
        if sentence in sims and high > low:
            score += SIMILARITY_WEIGHT * (sims[sentence] - low) / (high - low)
        score *= 0.85**rank
        if wants_number and _NUMBER.search(sentence):
            score *= NUMBER_BONUS
        if score > 0:
            scored.append((score, -rank, -s, sentence, rank))
    scored.sort(reverse=True)
    if not scored:
        return []
    best = scored[0][0]
    chosen, seen, length = [], set(), 0
    for score, _, _, sentence, rank in scored:
        if score < 0.7 * best or len(chosen) == MAX_SENTENCES:
            break
        if sentence in seen or (chosen and length + len(sentence) > MAX_ANSWER_CHARS):
            continue
        seen.add(sentence)
        chosen.append((sentence, rank))
        length += len(sentence)
    return chosen


def dense_found(query: str, dense_top: float | None, thresholds: dict[str, float] = DENSE_FOUND) -> bool:
    """The dense leg's best score clears the threshold for the query's language."""
    return dense_top is not None and dense_top >= thresholds.get(query_language(query) or "other", 1.0)


def found_by(query: str, covered: float, dense_top: float | None,
             coverage_min: float = FOUND_THRESHOLD, thresholds: dict[str, float] = DENSE_FOUND) -> bool:
    """The "found" rule on its two signals (`python -m rag calibrate` sweeps the thresholds).

    `dense_top` is None when the dense leg did not run."""
    return covered >= coverage_min or dense_found(query, dense_top, thresholds)


def is_found(index: Index, query: str, passages: Passages) -> bool:
    """Found when the best passages cover enough of the question's terms, or the dense leg is confident."""
    if not passages:
        return False
    dense_top = passages.dense_top if passages.mode != "lexical" else None
    return found_by(query, coverage(index, query, [p.text for p in passages[:3]]), dense_top)


def answer(index: Index, question: str, k: int = 5, history=None, mode: str = "hybrid", sources=None) -> Answer:
    if not isinstance(question, str) or not question.strip():
        raise ValueError("问题不能为空（question must be a non-empty string）")
    question = question.strip()
    notices = []
    if len(question) > MAX_QUERY_CHARS:  # every step below is bounded by this: no request can hold up the others
        question = question[:MAX_QUERY_CHARS]
        notices.append(SHORTENED.format(n=MAX_QUERY_CHARS))
    query = contextualize(index, question, history)
    passages = index.retrieve(query, k=k, mode=mode, sources=sources)
    if passages.notice:
        notices.append(passages.notice)
    notice = " ".join(notices)
    asked = set(index.tokenizer(question))
    weights = index.term_weights(index.tokenizer(query))
    own = {t: w for t, w in weights.items() if t in asked}
    context = {t: w for t, w in weights.items() if t not in asked}  # the carried-over subject of a follow-up
    terms = sorted(weights, key=len, reverse=True)
    if not is_found(index, query, passages):
        return Answer(question, NOT_FOUND, False, [], list(passages), query, notice, terms, passages.mode, passages.engine)

    similarity = index.sentence_similarity(query, list(passages[:3]), MAX_EMBEDDED_SENTENCES) if passages.mode != "lexical" else {}
    picked = pick_sentences(list(passages), own, context, bool(_ASKS_NUMBER.search(question)), similarity)
    numbers: dict[tuple[str, int], int] = {}  # one [n] per article, even if two of its passages are quoted
    citations = []
    for sentence, rank in picked:
        p = passages[rank]
        number = numbers.setdefault((p.source, p.article_id), len(numbers) + 1)
        citations.append(Citation(number, sentence, p))
    if not citations:  # matched only through the dense leg: quote the best passage's opening sentence
        s, e = (sentence_spans(passages[0].text) or [(0, len(passages[0].text))])[0]
        citations.append(Citation(1, passages[0].text[s:e].strip(), passages[0]))
    text = "".join(f"{c.sentence}[{c.number}]" for c in citations)
    return Answer(question, text, True, citations, list(passages), query, notice, terms, passages.mode, passages.engine)
