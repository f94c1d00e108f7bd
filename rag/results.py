"""Typed results of the public API."""

from __future__ import annotations

from dataclasses import dataclass, field

from .notices import Notice, render


@dataclass(frozen=True)
class Passage:
    text: str
    score: float
    source: str
    title: str
    byline: str
    chunk_id: int
    start: int
    end: int
    lexical_rank: int | None  # 1-based rank in the lexical leg, None if that leg did not return it
    dense_rank: int | None
    article_id: int = -1  # valid within the snapshot that answered
    page: int | None = None  # page of a paged document (PDF), else None
    sources: tuple[str, ...] = ()  # every document holding this article (a reprint is stored once)

    @property
    def display_title(self) -> str:
        return self.title or "（无标题）"


class Passages(list):
    """A list of `Passage`, best first, that also says how it was retrieved.

    `mode` is the mode actually used; `notices` say why when it differs from the one asked for
    (for example hybrid served by the lexical leg alone because no dense model could be loaded).
    """

    def __init__(self, items=(), mode: str = "lexical", notices: tuple[Notice, ...] = (), engine: str = "",
                 elapsed_ms: float = 0.0, dense_top: float | None = None):
        super().__init__(items)
        self.mode = mode
        self.notices = tuple(notices)
        self.engine = engine  # the dense engine that served this result ("" when the dense leg did not run)
        self.elapsed_ms = elapsed_ms
        # The dense leg's best score (chunk and best-sentence cosine averaged; None when it did not run):
        # with query-term coverage, what decides whether an answer was found.
        self.dense_top = dense_top

    @property
    def notice(self) -> str:
        """The notices in Chinese (the CLI's and the archive's language); views render `notices` themselves."""
        return render(self.notices)


@dataclass(frozen=True)
class DocumentInfo:
    """A document of the library, readable or skipped."""

    source: str  # its name: a path relative to the docs folder, or an upload's file name
    sha256: str
    kind: str  # text, markdown, pdf, scan, image, docx, html; "unknown" for a skipped file
    pages: int = 0
    articles: int = 0
    chunks: int = 0
    added_at: str = ""
    status: str = "ok"  # "ok", or "skipped" with `reason`
    reason: str = ""
    origin: str = "folder"  # "folder": read from the docs folder; "stored": a copy kept in the index folder
    stored: str = ""  # that copy's file name, for stored documents
    size: int = 0
    mtime_ns: int = 0
    duplicates: int = 0  # articles it shares with documents added before it (stored once)


@dataclass(frozen=True)
class ArticleView:
    """One parsed article, as the library preview shows it."""

    id: int
    sources: tuple[str, ...]
    title: str
    byline: str
    kicker: str
    page: int | None
    body: str
    chunks: int


@dataclass(frozen=True)
class DenseProgress:
    """How far the dense leg has been filled in after a serve-first commit (rag/dense_fill.py)."""

    fraction: float  # 0..1 of the texts to embed (chunks, then their sentences)
    eta_s: float | None = None  # None until a rate has been measured in this process

    @property
    def percent(self) -> int:
        return min(99, int(100 * self.fraction))

    @property
    def minutes(self) -> int | None:
        return None if self.eta_s is None else max(1, round(self.eta_s / 60))

    def text(self, lang: str = "zh") -> str:
        """语义索引 12%（约 3 分钟） / Semantic index 12% (about 3 min)."""
        pct, minutes = self.percent, self.minutes
        if lang == "en":
            return f"Semantic index {pct}%" + (f" (about {minutes} min)" if minutes else "")
        return f"语义索引 {pct}%" + (f"（约 {minutes} 分钟）" if minutes else "")


@dataclass(frozen=True)
class IndexInfo:
    index_dir: str
    documents: int
    articles: int
    chunks: int
    model: str  # the model asked for
    dense: bool
    dense_reason: str  # why dense is off; empty when on
    dim: int | None
    built_at: str  # last commit
    engine: str = ""  # the dense engine serving: "sentence-transformers", "bundled"
    dense_label: str = ""  # its display name
    dense_note: str = ""  # how it came to serve (a fallback and why)
    skipped: int = 0  # files that could not be read
    generation: int = 0
    lexical_reason: str = ""  # why the storage cannot run the lexical leg; empty when it can
    dense_progress: DenseProgress | None = None  # set while the dense leg is being filled in

    def summary(self) -> str:
        dense = (f"语义检索：{self.dense_label}（{self.dim} 维）" if self.dense
                 else f"语义检索：关闭（{self.dense_reason}）")
        if self.dense and self.dense_progress is not None:
            dense += f"，{self.dense_progress.text()}，完成前只检索已向量化的部分"
        lexical = f"关闭（{self.lexical_reason}）" if self.lexical_reason else "开启"
        return (
            f"文档 {self.documents} 篇，文章 {self.articles} 篇，文本块 {self.chunks} 个；"
            f"关键词检索（jieba + BM25）：{lexical}；{dense}"
        )


@dataclass(frozen=True)
class Citation:
    number: int  # the n in [n]
    sentence: str  # the quoted sentence
    passage: Passage
    # the answer itself inside `sentence` (359家, 2月18日, a name), as [start, end); None when the
    # question asks for no typed answer (什么 / 哪些) or this sentence only adds context
    answer_span: tuple[int, int] | None = None


@dataclass(frozen=True)
class Answer:
    question: str
    text: str  # plain text with [n] markers; nothing but sentences quoted from the passages
    found: bool
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    query: str = ""  # what was actually searched (with a follow-up's context)
    notices: tuple[Notice, ...] = ()  # rendered by the view in the reader's language (rag/notices.py)
    terms: list[str] = field(default_factory=list)  # the question's key terms, for highlighting
    mode: str = "lexical"  # the retrieval mode actually used (Passages.mode)
    engine: str = ""  # the dense engine that served it, "" when the dense leg did not run
    confidence: float | None = None  # the answerability model's probability (rag/answerability.py)
    signals: object = None  # its inputs (answerability.Signals), for calibration and the "how found" view
    # article id -> body for the passages' articles, read in the same snapshot as the passages
    bodies: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def notice(self) -> str:
        return render(self.notices)
