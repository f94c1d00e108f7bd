"""Passages -> answers: quote the 1-3 sentences that best answer the question, each with its [n] source.

Extractive on purpose: every word of an answer is a word of the archive. Whether anything relevant
was found is decided by query-term coverage: the share of the question's idf weight that the best
passage contains (terms the corpus has never seen count at full weight, so "火星" sinks a question).
"""

from __future__ import annotations

import math
import re

from .chunks import sentence_spans
from .index import MAX_QUERY_CHARS, Index
from .passages import term_weight
from .results import Answer, Citation, Passage

NOT_FOUND = "资料中没有找到相关内容。"
SHORTENED = "问题过长，只使用了前 {n} 个字。"
# Only the last turns of a conversation can carry its topic; each is cut like a question.
HISTORY_TURNS = 3
# Calibrated with `python -m rag calibrate`: dev questions (all answerable) vs out-of-domain questions.
FOUND_THRESHOLD = 0.3
MAX_SENTENCES = 3
MAX_ANSWER_CHARS = 360
# Questions about amounts or dates: sentences carrying a number are likelier to hold the answer.
_ASKS_NUMBER = re.compile(r"多少|几[个家次天年月日人项名处条场位所座批]|哪[天年月]|何时|什么时候|多久|多长|多大|多高|多远|多重")
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
    tokens = list(dict.fromkeys(index.tokenizer(query)))
    if not tokens or not texts:
        return 0.0
    known = index.term_weights(tokens)
    rare = math.log(1 + (max(index.n_chunks, 1) + 0.5) / 0.5)
    total = sum(known.get(t, rare) for t in tokens)
    return max(term_weight(text, known) for text in texts) / total


def pick_sentences(
    passages: list[Passage], weights: dict[str, float], extra: dict[str, float], wants_number: bool = False
) -> list[tuple[str, int]]:
    """The best sentences as (sentence, passage index), best first."""
    scored = []
    for rank, p in enumerate(passages[:3]):
        for s, e in sentence_spans(p.text):
            sentence = p.text[s:e].strip()
            if len(sentence) < 4:
                continue
            score = (term_weight(sentence, weights) + 0.5 * term_weight(sentence, extra)) * 0.85**rank
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
    found = coverage(index, query, [p.text for p in passages[:3]]) >= FOUND_THRESHOLD
    if not found:
        return Answer(question, NOT_FOUND, False, [], list(passages), query, notice, terms)

    picked = pick_sentences(list(passages), own, context, bool(_ASKS_NUMBER.search(question)))
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
    return Answer(question, text, True, citations, list(passages), query, notice, terms)
