"""Answers -> what the chat page shows: the answer bubble, the folded "how this was found" view,
the whole-article panel and the plain text the copy button copies.

Everything taken from the archive is untrusted: it goes through `escape` (markdown) or
`html.escape` (HTML) before it is shown. Links inside answers are only ever fragment links
(`#cite-<turn>-<key>`, `#copy-<turn>`) that the page's script turns into events.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from .lang import engine_label, texts
from .notices import SEARCH_MODE, NoticeCode, render
from .results import Answer, Passage

# One pass, so entities are never re-escaped: HTML specials, the characters markdown acts on, and ":" and
# "@", without which the chat's markdown turns a URL or an address in the archive into a clickable link.
_INERT = str.maketrans({c: f"&#{ord(c)};" for c in "&<>\"'\\`*_[]#|~:@"})
_WWW = re.compile(r"(?i)(www)\.")
MAX_TURNS = 20  # articles kept per session: the last answers only


def escape(text: str) -> str:
    """Untrusted text -> inert markdown: HTML and markdown syntax (links too) become character entities."""
    return _WWW.sub(r"\1&#46;", text.translate(_INERT))


def highlight(text: str, terms: list[str]) -> str:
    """Escape `text` and wrap the question's key terms in <mark>; matching runs on the raw text, so marks never split an entity."""
    wanted = sorted({t for t in terms if len(t) > 1}, key=len, reverse=True)
    if not wanted:
        return escape(text)
    pattern = re.compile("|".join(re.escape(t) for t in wanted), re.IGNORECASE)
    out, pos = [], 0
    for m in pattern.finditer(text):
        out.append(escape(text[pos : m.start()]))
        out.append(f"<mark>{escape(m.group(0))}</mark>")
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def quoted(citation, terms: list[str]) -> str:
    """A quoted sentence with its key terms marked and the answer itself (359家) in bold."""
    sentence, span = citation.sentence, citation.answer_span
    if not span:
        return highlight(sentence, terms)
    s, e = span
    return (f"{highlight(sentence[:s], terms)}<strong class='answer-span'>{escape(sentence[s:e])}</strong>"
            f"{highlight(sentence[e:], terms)}")


# --- notices ---------------------------------------------------------------------------------------


def split_notice(result: Answer, lang: str) -> tuple[str, str]:
    """(what the answer bubble says, how the search was served): the page's banner already says the
    latter, so it goes to the folded "how this was found" view instead of repeating in every answer."""
    return (render([n for n in result.notices if n.code not in SEARCH_MODE], lang),
            render([n for n in result.notices if n.code in SEARCH_MODE], lang))


# --- one answered turn, as kept in the session -------------------------------------------------------


@dataclass
class Turn:
    """What one answer needs later: its articles (fetched at answer time) and the keys that open them.

    Article ids are only valid within one index generation, so the text is fetched once, right after
    the answer, and kept here; `refs` maps a citation number ("1") or a passage ("p0") to an article.
    """

    lang: str
    articles: dict[str, dict] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)

    def to_state(self) -> dict:
        return {"lang": self.lang, "articles": self.articles, "refs": self.refs}


def article_card(p: Passage, body: str | None) -> dict:
    """A passage's whole article; `body` None (or not matching the passage) keeps only the passage."""
    whole = body is not None and body[p.start : p.end] == p.text
    return {
        "title": p.title, "byline": p.byline, "page": p.page, "source": p.source,
        "sources": list(p.sources or (p.source,)), "body": body if whole else None,
        "passages": [[p.start, p.end, p.text]], "cited": [],
    }


def build_turn(result: Answer, lang: str, fetch) -> Turn:
    """Collect the articles of an answer's citations and passages; `fetch(article_id)` returns the body."""
    turn = Turn(lang)
    bodies: dict[int, str | None] = {}

    def card_for(p: Passage) -> str:
        key = f"a{p.article_id}" if p.article_id >= 0 else f"c{p.chunk_id}"
        if p.article_id not in bodies and p.article_id >= 0:
            try:
                bodies[p.article_id] = fetch(p.article_id) or None
            except Exception:  # the panel then shows the passage alone
                bodies[p.article_id] = None
        card = turn.articles.get(key)
        if card is None:
            turn.articles[key] = article_card(p, bodies.get(p.article_id))
        elif [p.start, p.end, p.text] not in card["passages"]:
            card["passages"].append([p.start, p.end, p.text])
        return key

    for i, p in enumerate(result.passages):
        turn.refs[f"p{i}"] = card_for(p)
    for c in result.citations:
        key = card_for(c.passage)
        turn.refs.setdefault(str(c.number), key)
        card = turn.articles[key]
        span = _locate(card, c.passage, c.sentence)
        if span is not None and span not in card["cited"]:
            card["cited"].append(span)
        card["cited_text"] = card.get("cited_text", []) + [c.sentence]
    return turn


def _locate(card: dict, p: Passage, sentence: str) -> list[int] | None:
    if card["body"] is None:
        return None
    at = card["body"].find(sentence, p.start)
    if at < 0:
        at = card["body"].find(sentence)
    return [at, at + len(sentence)] if at >= 0 else None


# --- the answer bubble ------------------------------------------------------------------------------


def _link(turn: int, key: str, inner: str, cls: str) -> str:
    return f'<a href="#cite-{turn}-{key}" class="{cls}">{inner}</a>'


def source_line(p: Passage, lang: str) -> str:
    """headline — source · byline · page, escaped (markdown-inert)."""
    t = texts(lang)
    parts = [f"{escape(p.display_title)} — {escape(p.source)}"]
    if p.byline:
        parts.append(escape(p.byline))
    if p.page:
        parts.append(escape(t["page"](p.page)))
    others = _other_sources(p)
    if others:
        parts.append(escape(_also_in(others, lang)))
    return " · ".join(parts)


def _also_in(others: list[str], lang: str) -> str:
    t = texts(lang)
    return f"{t['also_in']}：{'、'.join(others)}" if lang == "zh" else f"{t['also_in']}: {', '.join(others)}"


def _other_sources(p: Passage) -> list[str]:
    """The other files that hold the cited article (a reprint, a scan of the same page): stored once, listed here."""
    return [s for s in p.sources if s != p.source]


def _plain_source(p: Passage, lang: str) -> str:
    t = texts(lang)
    parts = [f"{p.display_title} — {p.source}"] + ([p.byline] if p.byline else []) + ([t["page"](p.page)] if p.page else [])
    others = _other_sources(p)
    return " · ".join(parts + ([_also_in(others, lang)] if others else []))


def _one_per_article(passages: list[Passage]) -> list[tuple[int, Passage]]:
    seen, out = set(), []
    for i, p in enumerate(passages):
        if (p.source, p.article_id, p.title) not in seen:
            seen.add((p.source, p.article_id, p.title))
            out.append((i, p))
    return out


def cited_sources(result: Answer) -> list[tuple[int, Passage]]:
    """[n] -> the first passage cited under it, in number order."""
    out: dict[int, Passage] = {}
    for c in result.citations:
        out.setdefault(c.number, c.passage)
    return sorted(out.items())


def plain_text(result: Answer, lang: str, notice: str = "") -> str:
    """The answer as the copy button copies it: plain text with its sources."""
    t = texts(lang)
    if not result.found:
        return t["not_found"]
    lines = [result.text, "", f"{t['sources']}:"]
    lines += [f"[{n}] {_plain_source(p, lang)}" for n, p in cited_sources(result)]
    if notice:
        lines += ["", notice]
    return "\n".join(lines)


def _copy(turn: int, result: Answer, lang: str, notice: str) -> str:
    # Markdown-inert too: the hidden span is still parsed as markdown (a link or an image there would load)
    text = escape(plain_text(result, lang, notice)).replace("\n", "&#10;")
    return (f'<a href="#copy-{turn}" class="copy-answer">{texts(lang)["copy"]}</a>'
            f'<span class="copy-text" hidden>{text}</span>')


def answer_markdown(result: Answer, turn: int, lang: str, dense_on: bool) -> str:
    """The answer bubble: quoted sentences with [n] links, the source list, the notice, a copy link."""
    t = texts(lang)
    notice, _ = split_notice(result, lang)
    if not result.found:
        lines = [f"**{t['not_found']}**"]
        if lang == "en" and not dense_on:
            lines.append(t["english_hint"])
        if result.passages:
            lines.append(t["maybe_related"])
            lines.append("<br>".join(_link(turn, f"p{i}", "· " + source_line(p, lang), "src")
                                     for i, p in _one_per_article(result.passages)[:3]))
        else:
            lines.append(t["no_overlap"])
        if notice:
            lines.append(f"<em class='notice'>{escape(notice)}</em>")
        return "\n\n".join(lines)

    body = "".join(f"{quoted(c, result.terms)}{_link(turn, str(c.number), f'[{c.number}]', 'cite')}"
                   for c in result.citations)
    sources = cited_sources(result)
    head = f"**{t['found_in'](len(sources))} · {t['sources']}**　<small class='hint'>{t['open_hint']}</small>"
    links = "<br>".join(_link(turn, str(n), f"[{n}] {source_line(p, lang)}", "src") for n, p in sources)
    # An answer the model only just let through says so before it is read, not after its sources.
    unsure = [n for n in result.notices if n.code == NoticeCode.UNSURE]
    lines = ([f"<em class='notice unsure'>{escape(render(unsure, lang))}</em>"] if unsure else []) + [body, head, links]
    rest = render([n for n in result.notices if n.code not in SEARCH_MODE and n.code != NoticeCode.UNSURE], lang)
    if rest:
        lines.append(f"<em class='notice'>{escape(rest)}</em>")
    lines.append(_copy(turn, result, lang, notice))
    return "\n\n".join(lines)


# --- how this was found --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    """How an answer was found, as the "how found" view shows it: mode and engine (from the answer) and the time taken."""

    mode: str  # the mode actually used
    engine: str  # the dense engine's label, "" when the dense leg did not run
    elapsed_ms: float


def how_found_title(result: Answer, trace: Trace, lang: str) -> str:
    t = texts(lang)
    return f"{t['how_found']} · {t['passages'](len(result.passages))} · {t['mode'][trace.mode].split('（')[0].split(' (')[0]} · {t['ms'](trace.elapsed_ms)}"


def how_found_markdown(result: Answer, trace: Trace, turn: int, lang: str) -> str:
    """Which leg found each passage and at what rank, the engine and the time: a compact table."""
    t = texts(lang)
    cited: dict[int, list[int]] = {}
    for c in result.citations:
        cited.setdefault(c.passage.chunk_id, [])
        if c.number not in cited[c.passage.chunk_id]:
            cited[c.passage.chunk_id].append(c.number)
    colon = "：" if lang == "zh" else ": "
    lines = [
        f"**{t['mode_label']}**{colon}{t['mode'][trace.mode]} · **{t['engine']}**{colon}"
        f"{escape(engine_label(trace.engine, lang)) or t['engine_off']} · **{t['elapsed']}**{colon}{t['ms'](trace.elapsed_ms)}",
    ]
    _, dense_off = split_notice(result, lang)
    if dense_off:
        lines.append(f"<em class='notice'>{escape(dense_off)}</em>")
    if result.query and result.query != result.question:
        lines.append(f"**{t['searched']}**{colon}{escape(result.query[:200])}")
    lines += [
        "",
        "| " + " | ".join(t["columns"]) + " |",
        "|" + "---|" * len(t["columns"]),
    ]
    none = t["rank_none"]
    for i, p in enumerate(result.passages):
        title = _link(turn, f"p{i}", escape(p.display_title[:30]), "src")
        refs = "".join(f" <b class='cited'>[{n}]</b>" for n in cited.get(p.chunk_id, []))
        lines.append(
            f"| {i + 1}{refs} | {title}<br><small>{escape(p.source)}</small> | {p.lexical_rank or none} "
            f"| {p.dense_rank or none} | {p.score:.4f} |"
        )
    return "\n".join(lines)


# --- the article panel ---------------------------------------------------------------------------------


def _marked(body: str, spans: list[tuple[int, int]], cls: str) -> str:
    """HTML-escaped `body` with the given spans wrapped in <mark>."""
    out, pos = [], 0
    for start, end in sorted(spans):
        if start < pos:
            start = pos
        if start >= end:
            continue
        out.append(html.escape(body[pos:start]))
        out.append(f'<mark class="{cls}">{html.escape(body[start:end])}</mark>')
        pos = end
    out.append(html.escape(body[pos:]))
    return "".join(out)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _paragraphs(marked: str) -> str:
    return "".join(f"<p>{line}</p>" for line in marked.split("\n") if line.strip())


def article_html(card: dict | None, label: str, lang: str) -> str:
    """The whole article with the cited sentences highlighted (HTML; every archive string escaped)."""
    t = texts(lang)
    if card is None:
        return f'<div class="article-empty">{html.escape(t["article_expired"])}</div>'
    meta = [html.escape(label), html.escape(card["source"])]
    if card.get("page"):
        meta.append(html.escape(t["page"](card["page"])))
    parts = [f'<div class="article-card" data-lang="{lang}">',
             f'<div class="article-ref">{" · ".join(meta)}</div>',
             f'<h3 class="article-headline">{html.escape(card["title"] or t["untitled"])}</h3>']
    if card.get("byline"):
        parts.append(f'<div class="article-byline">{html.escape(card["byline"])}</div>')
    if card["body"] is not None:
        spans, cls = [tuple(s) for s in card["cited"]], "cited"
        if not spans:  # opened from a passage that no sentence of the answer quotes: show where it was found
            spans, cls = [(start, end) for start, end, _ in card["passages"]], "passage"
        parts.append(f'<div class="article-body">{_paragraphs(_marked(card["body"], _merge(spans), cls))}</div>')
    else:
        parts.append(f'<div class="article-note">{html.escape(t["article_gone"])}</div>')
        cited = card.get("cited_text", [])
        for _, _, text in card["passages"]:
            spans = [(text.find(s), text.find(s) + len(s)) for s in cited if text.find(s) >= 0]
            parts.append(f'<div class="article-body">{_paragraphs(_marked(text, spans, "cited"))}</div>')
    others = [s for s in card.get("sources", []) if s != card["source"]]
    if others:
        parts.append(f'<div class="article-also">{html.escape(t["also_in"])}：{html.escape("、".join(others))}</div>')
    parts.append("</div>")
    return "".join(parts)


def empty_article_html(lang: str = "zh") -> str:
    return f'<div class="article-empty">{html.escape(texts(lang)["article_empty"])}</div>'
