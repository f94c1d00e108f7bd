"""Retrieval -> answers: quote the sentence that answers the question, with its [n] source, or say
that the archive does not hold the answer.

Extractive on purpose: every word of an answer is a word of the archive. `answer` searches once
(`Index.search`, one snapshot) and hands the `Retrieval` to `compose`, which is pure:

1. the question's intent (rag/answerability.py): its answer type (a number with its unit, a person,
   a place, a date), and its own focus terms (for a follow-up, not the carried-over topic);
2. every sentence of the top 3 passages is scored by focus-term weight, similarity to the question
   (dense leg on), whether it holds the answer type and the word asked about (由谁主持 -> 主持), and
   whether it (with its neighbours and headline) names the places and bodies the question names;
   captions, datelines and truncated sentences count half. The best one is quoted first (with the dense
   leg on, a typed question's best sentence that holds no answer of its type yields to one that does and
   scores nearly as well);
3. a question about a specific place or body (one that few chunks name: 周口会展中心) is quoted only
   from sentences that name it or stand under a headline that does;
4. the answerability model decides from that sentence's signals whether it answers at all (an answer it
   only just lets through carries a notice that it may not answer the question: UNSURE_BELOW);
5. a second or third sentence is added only when it adds what the first lacks (the typed answer, or
   focus terms), or, for a question without an answer type (什么 / 哪些), when it scores nearly as well.

Each citation marks the answer span in its sentence (359家, 2月18日) where the question has a type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import answerability as ans
from .answerability import AnswerType
from .chunks import sentence_spans
from .index import MAX_QUERY_CHARS, Index
from .notices import Notice, NoticeCode
from .passages import coverage, term_weight
from .results import Answer, Citation, Passage
from .retrieval import Retrieval
from .tokenizer import Tokenizer

NOT_FOUND = "资料中没有找到相关内容。"
# Only the last turns of a conversation can carry its topic; each is cut like a question.
HISTORY_TURNS = 3
# Weight of a sentence's similarity to the question beside its focus-term weight (both scaled to 0-1 over the candidates).
SIMILARITY_WEIGHT = 1.5
# Added to a sentence that holds the asked answer type (a number, a name, a place, a date), and more with the asked unit.
TYPE_BONUS = 0.8
UNIT_BONUS = 0.4
# Added to a sentence that holds the word the question asks about (由谁主持 -> 主持, 哪一年成立 -> 成立).
# On CMRC the first sentence was right for 0.80 of answered questions with that word and 0.54 without;
# 0.6 moved CMRC first-sentence-correct 0.618 -> 0.652 (hybrid) and left the tuned seed sets as they were.
ASKED_BONUS = 0.6
# Added, in proportion, for the question's places, bodies and names (Intent.entities) in the sentence,
# its neighbours or its headline: 0.5 moved CMRC answer-correct 0.721 -> 0.731 (hybrid) and 0.711 ->
# 0.722 (lexical; first-sentence 0.664 -> 0.673) and left every seed set's figures as they were.
ENTITY_BONUS = 0.5
# A typed question's best sentence without an answer of its type yields to a typed one scoring this share of it,
# where sentence similarities back the scores (the dense leg on). Hybrid: CMRC first-sentence 0.653 -> 0.657,
# dev 0.762 -> 0.810, English 0.618 -> 0.647, held-out sets unchanged; lexical scores (terms alone) lost CMRC
# 0.675 -> 0.662 with it.
TYPED_FIRST = 0.8
# Captions, datelines and cut-off sentences are quoted only when nothing else answers.
WEAK_SENTENCE = 0.5
RANK_DECAY = 0.85
# Sentences come from this many top passages (Index.search embeds/looks up their similarities).
CANDIDATE_PASSAGES = 3
# A runner-up sentence scoring at least this share of the best is quoted too (the choice was close).
CLOSE_CALL = 0.8
MAX_SENTENCES = 3
MAX_ANSWER_CHARS = 360
_ANAPHORA = re.compile(r"^(那|那么|还有|另外|此外|并且|而且)|[它其该此]|这(个|些|里|项|次)|那(个|些|里|项|次)|他们|她们|呢[？?]?$")
_WORD = re.compile(r"[^\W_]")


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


@dataclass(frozen=True)
class Candidate:
    sentence: str
    rank: int  # its passage's rank (0 = best)
    offset: int  # start within the passage text
    context: str  # the article's headline, then the sentence with its neighbours in the passage
    span: tuple[int, int] | None  # the typed answer inside the sentence
    unit: bool  # that answer carries the unit asked for
    counted: bool  # the noun the question counts sits by that number
    focus: float  # share of the question's focus weight in the sentence
    weak: bool  # caption, dateline or cut off
    headline: str = ""  # its article's headline


def candidates(passages: list[Passage], intent: ans.Intent, weights: dict[str, float], rare: float,
               tokenizer: Tokenizer, question: str = "") -> list[Candidate]:
    """The top 3 passages' sentences worth quoting, with what the scoring needs."""
    out = []
    for rank, p in enumerate(passages[:CANDIDATE_PASSAGES]):
        spans = sentence_spans(p.text)
        texts = [p.text[s:e].strip() for s, e in spans]
        for i, (s, _) in enumerate(spans):
            sentence = texts[i]
            if len(sentence) < 4:
                continue
            names = (tokenizer.names(sentence) if intent.type == AnswerType.PERSON
                     else tokenizer.places(sentence) if intent.type == AnswerType.PLACE else ())
            span = ans.type_span(sentence, intent.type, intent.unit, names, intent.counted, question, intent.office)
            # The headline scopes every sentence (an article names its subject once: 盾柱木 … 花瓣黄色).
            context = p.title + "".join(texts[max(0, i - 1) : i + 2])
            out.append(Candidate(sentence, rank, s, context, span, ans.unit_matches(sentence, span, intent.unit),
                                 ans.near(sentence, span, intent.counted),
                                 ans.focus_share(sentence, intent.focus, weights, rare),
                                 ans.is_caption(sentence) or ans.is_truncated(sentence), p.title))
    return out


def score_candidates(cands: list[Candidate], context_terms: dict[str, float], similarity: dict[str, float],
                     typed: bool, asked: str = "", entities: tuple[str, ...] = ()) -> list[tuple[float, Candidate]]:
    """Best first: (focus + 0.5 × carried-over topic, scaled to the best) + SIMILARITY_WEIGHT × similarity
    (scaled over the candidates) + the type, asked-word and entity bonuses; halved for weak sentences;
    decayed by passage rank."""
    terms = {c.sentence: c.focus + 0.5 * term_weight(c.sentence, context_terms) for c in cands}
    top = max(terms.values(), default=0.0)
    sims = {c.sentence: similarity[c.sentence] for c in cands if c.sentence in similarity}
    low, high = min(sims.values(), default=0.0), max(sims.values(), default=0.0)
    scored = []
    for c in cands:
        score = terms[c.sentence] / top if top > 0 else 0.0
        if c.sentence in sims and high > low:
            score += SIMILARITY_WEIGHT * (sims[c.sentence] - low) / (high - low)
        if typed and c.span is not None:
            score += TYPE_BONUS + (UNIT_BONUS if c.unit or c.counted else 0.0)
        if asked and asked in c.sentence:
            score += ASKED_BONUS
        if entities:
            score += ENTITY_BONUS * sum(e in c.context for e in entities) / len(entities)
        if c.weak:
            score *= WEAK_SENTENCE
        score *= RANK_DECAY**c.rank
        scored.append((score, c))
    scored.sort(key=lambda sc: (-sc[0], sc[1].rank, sc[1].offset))
    return scored


def typed_first(scored: list[tuple[float, Candidate]], intent: ans.Intent) -> list[tuple[float, Candidate]]:
    """A typed question's best sentence that holds no answer of its type gives way to the best one that does,
    when that one scores nearly as well (TYPED_FIRST of it)."""
    if intent.type == AnswerType.OTHER or not scored or scored[0][1].span is not None:
        return scored
    at = next((i for i, (_, c) in enumerate(scored) if c.span is not None), None)
    if at is None or scored[at][0] < TYPED_FIRST * scored[0][0]:
        return scored
    return [scored[at]] + scored[:at] + scored[at + 1 :]


def signals(retrieval: Retrieval, intent: ans.Intent, first: Candidate, cands: list[Candidate]) -> ans.Signals:
    """The answerability model's inputs for quoting `first` (see rag/answerability.py)."""
    texts = [p.text for p in retrieval.passages[:3]]
    covered = coverage(list(retrieval.terms), retrieval.weights, retrieval.rare_weight, texts)
    typed = intent.type != AnswerType.OTHER
    base = ans.SIMILARITY_BASE.get(intent.lang, ans.SIMILARITY_BASE["other"])
    sim = margin = dense_top = 0.0
    if retrieval.dense:
        own = retrieval.similarity.get(first.sentence)
        others = [retrieval.similarity[c.sentence] for c in cands if c.sentence != first.sentence and c.sentence in retrieval.similarity]
        if own is not None:
            sim = own - base
            margin = own - max(others) if others else 0.0
        if retrieval.passages.dense_top is not None:
            dense_top = float(retrieval.passages.dense_top) - base
    return ans.Signals(
        coverage=covered,
        focus=ans.focus_share(first.context, intent.focus, retrieval.weights, retrieval.rare_weight),
        own_focus=first.focus,
        missing_top=ans.missing_top(first.context, intent.focus, retrieval.weights, retrieval.rare_weight),
        unseen=ans.unseen_share(intent.focus, retrieval.weights, retrieval.rare_weight),
        typed=(1.0 if first.span is not None else -1.0) if typed else 0.0,
        unit=1.0 if first.unit else -1.0 if intent.unit else 0.0,
        counted=1.0 if first.counted else -1.0 if intent.counted else 0.0,
        entity=ans.entity_share(first.context, intent.entities),
        similarity=sim, margin=margin, dense_top=dense_top,
        english=0.0 if intent.lang == "zh" else 1.0,
        asked=(1.0 if intent.asked in first.context else -1.0) if intent.asked else 0.0,
    )


def choose(scored: list[tuple[float, Candidate]], intent: ans.Intent) -> list[Candidate]:
    """The first sentence, then others only where they add a needed fact (see the module docstring)."""
    first = scored[0][1]
    chosen, length = [first], len(first.sentence)
    typed = intent.type != AnswerType.OTHER
    best = scored[0][0]
    for score, c in scored[1:]:
        if len(chosen) == MAX_SENTENCES or length + len(c.sentence) > MAX_ANSWER_CHARS:
            break
        if c.sentence in {x.sentence for x in chosen} or c.weak or score < 0.6 * best:
            continue
        has_type = any(x.span is not None for x in chosen)
        adds_type = typed and not has_type and c.span is not None
        adds_focus = max(x.focus for x in chosen) < 0.5 and c.focus >= 0.3 and not any(c.focus <= x.focus for x in chosen)
        similar = not typed and score >= 0.85 * best
        close = len(chosen) == 1 and score >= CLOSE_CALL * best
        if adds_type or adds_focus or similar or close:
            chosen.append(c)
            length += len(c.sentence)
    return chosen


def compose(question: str, retrieval: Retrieval, tokenizer: Tokenizer, notices: tuple[Notice, ...] = (),
            model: ans.Model | None = None) -> Answer:
    """The answer to `question` from one search's `Retrieval` (pure: reads nothing else). `model`: the
    answerability model (None: the fitted one for the mode and language; calibration quotes always)."""
    passages = retrieval.passages
    own = tokenizer.weighted(question) if retrieval.query != question else retrieval.terms
    intent = ans.intent(question, own, tokenizer.tagged(question) if _WORD.search(question) else ())
    context_terms = {t: w for t, w in retrieval.weights.items() if t not in own}  # a follow-up's carried topic
    terms = sorted(retrieval.terms, key=len, reverse=True)
    refused = Answer(question, NOT_FOUND, False, [], list(passages), retrieval.query, notices, terms, passages.mode,
                     passages.engine, bodies=retrieval.bodies)
    if not passages or not _WORD.search(question) or (not intent.focus and intent.type == AnswerType.OTHER):
        return refused  # punctuation, emoji, or nothing asked about
    if intent.lang != "zh" and not any(t in retrieval.weights for t in intent.focus):
        return refused  # another language, and not one word the archive uses or a dictionary names (asdfghjkl qwerty)
    cands = candidates(list(passages), intent, retrieval.weights, retrieval.rare_weight, tokenizer, question)
    if ans.needs_evidence(intent):  # a phone number, an area or a name no sentence holds is not there to quote
        cands = [c for c in cands if c.span is not None and (c.unit or intent.type != AnswerType.NUMBER)]
    if not cands:
        return refused
    scored = score_candidates(cands, context_terms, retrieval.similarity, intent.type != AnswerType.OTHER, intent.asked,
                              intent.entities)
    # A question about a specific place or body (周口会展中心) is answered by a sentence that names it, not by
    # the same kind of fact about another one (智慧岛's 建筑面积). Scored among all candidates, quoted only from these.
    names = intent.proper
    if retrieval.query != question and retrieval.query.endswith(question):  # a follow-up: and its carried topic's
        names += ans.proper_names(tokenizer.tagged(retrieval.query[: -len(question)]))
    for name in ans.specific_entities(names, retrieval.weights, retrieval.n_chunks):
        scored = [(s, c) for s, c in scored if ans.names(c.headline + c.sentence, name)]
    if not scored:
        return refused
    if retrieval.similarity:  # see TYPED_FIRST
        scored = typed_first(scored, intent)
    first = scored[0][1]
    sig = signals(retrieval, intent, first, cands)
    model = model or ans.model_for(retrieval.dense, intent.lang)
    confidence = model.probability(sig)
    if confidence < model.threshold:
        return Answer(question, NOT_FOUND, False, [], list(passages), retrieval.query, notices, terms, passages.mode,
                      passages.engine, confidence, sig, retrieval.bodies)
    numbers: dict[tuple[str, int], int] = {}  # one [n] per article, even if two of its passages are quoted
    citations = []
    for c in choose(scored, intent):
        p = passages[c.rank]
        number = numbers.setdefault((p.source, p.article_id), len(numbers) + 1)
        citations.append(Citation(number, c.sentence, p, c.span))
    text = "".join(f"{c.sentence}[{c.number}]" for c in citations)
    if confidence < ans.UNSURE_BELOW:
        notices += (Notice(NoticeCode.UNSURE, {"confidence": round(confidence, 2)}),)
    return Answer(question, text, True, citations, list(passages), retrieval.query, notices, terms, passages.mode,
                  passages.engine, confidence, sig, retrieval.bodies)


def answer(index: Index, question: str, k: int = 5, history=None, mode: str = "hybrid", sources=None,
           model: ans.Model | None = None) -> Answer:
    """Search once (one snapshot) and compose the answer."""
    if not isinstance(question, str) or not question.strip():
        raise ValueError("问题不能为空（question must be a non-empty string）")
    question = question.strip()
    notices: tuple[Notice, ...] = ()
    if len(question) > MAX_QUERY_CHARS:  # every step below is bounded by this: no request can hold up the others
        question = question[:MAX_QUERY_CHARS]
        notices = (Notice(NoticeCode.SHORTENED, {"n": MAX_QUERY_CHARS}),)
    query = contextualize(index, question, history)
    retrieval = index.search(query, k=k, mode=mode, sources=sources, sentences_from=CANDIDATE_PASSAGES)
    return compose(question, retrieval, index.tokenizer, notices + retrieval.passages.notices, model)
