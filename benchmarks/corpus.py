"""Large corpora from real Chinese text: seed and CMRC sentences recombined into newspaper pages."""

from __future__ import annotations

import json
import random
from pathlib import Path

from rag.articles import split_articles
from rag.chunks import chunk_spans, sentence_spans
from rag.ingest import read_documents

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
CMRC = ROOT.parent / "shared" / "eval" / "cmrc2018_trial.json"
REPORTERS = ["王晨", "姬慧洋", "宋风", "王泉林", "李清华", "张越", "曹文娟", "刘航"]
ARTICLES_PER_PAGE = 50


def sentence_pool() -> tuple[list[str], list[str]]:
    """(sentences, headlines) from the seeds and, when present, the CMRC trial paragraphs."""
    sentences, titles = [], []
    for doc in read_documents(SEEDS):
        for a in split_articles(doc):
            titles.append(a.title or "本地新闻")
            sentences += [a.body[s:e].replace("\n", "") for s, e in sentence_spans(a.body)]
    if CMRC.exists():
        for art in json.loads(CMRC.read_text(encoding="utf-8"))["data"]:
            titles.append(art["title"])
            for para in art["paragraphs"]:
                text = para["context"]
                sentences += [text[s:e] for s, e in sentence_spans(text)]
    return [s for s in sentences if len(s) >= 8], titles


def _article(rng: random.Random, sentences: list[str], titles: list[str], n: int) -> tuple[str, str]:
    body = "".join(rng.choice(sentences) for _ in range(rng.randint(4, 14)))
    title = f"{rng.choice(titles)}（{n % 997}）"
    return f"{title}\n本报讯（记者 {rng.choice(REPORTERS)}）{body}\n", body


def page(path: Path, seed: int) -> int:
    """One more newspaper page of ARTICLES_PER_PAGE articles (for timing an add); returns its chunk estimate."""
    rng = random.Random(10_000 + seed)
    sentences, titles = sentence_pool()
    texts, chunks = [], 0
    for n in range(ARTICLES_PER_PAGE):
        text, body = _article(rng, sentences, titles, n)
        texts.append(text)
        chunks += len(chunk_spans(body))
    path.write_text("\n".join(texts), encoding="utf-8")
    return chunks


def generate(folder: Path, n_chunks: int, seed: int = 0) -> dict:
    """Write pages under `folder` until the articles hold at least `n_chunks` chunks."""
    rng = random.Random(seed)
    sentences, titles = sentence_pool()
    folder.mkdir(parents=True, exist_ok=True)
    chunks = articles = pages = chars = 0
    page: list[str] = []
    while chunks < n_chunks:
        text, body = _article(rng, sentences, titles, articles)
        page.append(text)
        chunks += len(chunk_spans(body))
        articles += 1
        chars += len(body)
        if len(page) == ARTICLES_PER_PAGE:
            (folder / f"page_{pages:06d}.txt").write_text("\n".join(page), encoding="utf-8")
            pages, page = pages + 1, []
    if page:
        (folder / f"page_{pages:06d}.txt").write_text("\n".join(page), encoding="utf-8")
        pages += 1
    return {"chunks_estimated": chunks, "articles": articles, "pages": pages, "chars": chars}
