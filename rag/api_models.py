"""The JSON API's request and response shapes (pydantic): what /api/v1 promises, and what /api/docs shows."""

from __future__ import annotations

from typing import Literal, cast

from pydantic import BaseModel, Field

from .library import Change
from .notices import Notice, NoticeCode
from .results import ArticleView, DocumentInfo, IndexInfo, Passage

Mode = Literal["hybrid", "lexical", "dense"]
Language = Literal["zh", "en"]
ChangeStatus = Literal["added", "replaced", "unchanged", "removed", "skipped", "refused"]
MAX_K = 50


class ErrorBody(BaseModel):
    code: str = Field(description="机器可读的错误代码，例如 empty_question、invalid_parameter、not_found、read_only")
    message: str = Field(description="错误说明，中文在前")
    field: str | None = Field(None, description="出错的参数（如有）")


class ErrorOut(BaseModel):
    error: ErrorBody


class Span(BaseModel):
    start: int = Field(description="段落在文章正文中的起始位置（字符）")
    end: int


class Ranks(BaseModel):
    lexical: int | None = Field(description="关键词检索（BM25）中的名次，1 起；未被该路检索到时为 null")
    dense: int | None = Field(description="语义检索中的名次；未被该路检索到或语义检索关闭时为 null")


class PassageOut(BaseModel):
    text: str
    score: float = Field(description="排序得分（混合模式为倒数排名融合得分）")
    source: str = Field(description="来源文件名")
    sources: list[str] = Field(description="包含这篇文章的所有文件（重复刊登的文章只存一份）")
    title: str = Field(description="文章标题")
    byline: str
    page: int | None = Field(description="版面页码（分页文档才有）")
    span: Span
    ranks: Ranks

    @classmethod
    def of(cls, p: Passage) -> PassageOut:
        return cls(text=p.text, score=round(p.score, 6), source=p.source, sources=list(p.sources or (p.source,)),
                   title=p.title, byline=p.byline, page=p.page, span=Span(start=p.start, end=p.end),
                   ranks=Ranks(lexical=p.lexical_rank, dense=p.dense_rank))


class NoticeOut(BaseModel):
    code: NoticeCode = Field(description="说明的代码：shortened（问题被截短）、dense_off、dense_filling、lexical_off、self_test、unsure（回答把握不大，参数 confidence）")
    params: dict = Field(description="代码的参数，例如 shortened 的 n、dense_filling 的 percent 和 minutes")

    @classmethod
    def of(cls, notice: Notice) -> NoticeOut:
        return cls(code=notice.code, params=dict(notice.params))


class RetrieveOut(BaseModel):
    query: str
    mode: Mode = Field(description="实际使用的检索模式（语义检索关闭时混合模式退为 lexical）")
    notice: str = Field(description="实际模式与请求不同等情况的说明（中文）；没有时为空字符串")
    notices: list[NoticeOut] = Field(default_factory=list, description="同样的说明，每条为代码加参数，供程序按自己的语言显示")
    engine: str = Field(description="本次使用的语义引擎；未使用语义检索时为空字符串")
    elapsed_ms: float
    passages: list[PassageOut]


class Turn(BaseModel):
    role: Literal["user", "assistant"] = "user"
    content: str


class AskIn(BaseModel):
    question: str = Field(description="问题（中文或英文）", examples=["智慧岛核心区签约入驻了多少家企业？"])
    history: list[Turn | str] = Field(default_factory=list, description="此前的对话（追问时用来补全指代），最近的在后")
    k: int = Field(5, ge=1, le=MAX_K, description="检索的段落数，1–50")
    mode: Mode = "hybrid"
    sources: list[str] | None = Field(None, description="只在这些文件中查找（留空为全部）")


class CitationOut(BaseModel):
    number: int = Field(description="回答中的 [n]")
    sentence: str = Field(description="被引用的原文句子")
    passage: int = Field(description="该句所在段落在 passages 列表中的下标（0 起）")
    answer_span: list[int] | None = Field(
        None, description="答案本身（如 359家、2月18日、人名）在 sentence 中的位置 [start, end)；问题不问数字、日期、人名或地点时为 null")


class AskOut(BaseModel):
    question: str
    answer: str = Field(description="纯文本回答：摘自原文的句子，每句后带 [n]；没找到时为说明文字（英文问题为英文）")
    found: bool
    confidence: float | None = Field(None, description="“找到了答案”模型的概率 0–1（低于 0.5 的回答带 unsure 说明）；"
                                                      "调用方可按更严的阈值自行拒答。问题在进入模型前就被拒时为 null")
    citations: list[CitationOut]
    passages: list[PassageOut]
    notice: str = Field(description="说明（问题被截短、语义检索未开启、回答把握不大等），用问题的语言；没有时为空字符串")
    notices: list[NoticeOut] = Field(default_factory=list, description="同样的说明，每条为代码加参数")
    query: str = Field(description="实际检索的文本（追问时带上前文的主题词）")
    mode: Mode
    engine: str = Field(description="本次使用的语义引擎（按问题的语言）；未使用语义检索时为空字符串")
    language: Language = Field("zh", description="问题的语言：answer、notice 用这种语言；引用的原文句子保持原样")
    elapsed_ms: float


class DenseOut(BaseModel):
    enabled: bool
    engine: str
    label: str
    dim: int | None
    reason: str = Field(description="语义检索关闭的原因")
    note: str
    progress: float | None = Field(None, description="语义向量补全的进度 0–1；null 表示已完成或未启用")
    eta_s: float | None = Field(None, description="补全约还需多少秒（尚未测出速度时为 null）")
    progress_text: str = Field("", description="如“语义索引 12%（约 3 分钟）”")
    progress_text_en: str = Field("", description="e.g. “Semantic index 12% (about 3 min)”")


class InfoOut(BaseModel):
    status: Literal["ok"] = "ok"
    documents: int
    articles: int
    chunks: int
    skipped: int = Field(description="无法读取而跳过的文件数")
    model: str
    dense: DenseOut
    generation: int
    built_at: str
    read_only: bool

    @classmethod
    def of(cls, info: IndexInfo, read_only: bool) -> InfoOut:
        return cls(documents=info.documents, articles=info.articles, chunks=info.chunks, skipped=info.skipped,
                   model=info.model, generation=info.generation, built_at=info.built_at, read_only=read_only,
                   dense=DenseOut(enabled=info.dense, engine=info.engine, label=info.dense_label, dim=info.dim,
                                  reason=info.dense_reason, note=info.dense_note, **_progress(info)))


def _progress(info: IndexInfo) -> dict:
    p = info.dense_progress
    if p is None:
        return {}
    return {"progress": round(p.fraction, 4), "eta_s": None if p.eta_s is None else round(p.eta_s, 1),
            "progress_text": p.text("zh"), "progress_text_en": p.text("en")}


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


class DocumentOut(BaseModel):
    name: str
    type: str = Field(description="text、markdown、pdf、scan（经 OCR 识别的 PDF）、image（经 OCR 识别）、docx、html；无法读取时为 unknown")
    pages: int
    articles: int
    chunks: int
    added_at: str
    status: Literal["ok", "skipped"]
    reason: str = Field(description="跳过的原因")
    origin: Literal["folder", "stored"] = Field(description="folder：来自文档目录；stored：上传的文件")
    size: int
    duplicates: int

    @classmethod
    def of(cls, d: DocumentInfo) -> DocumentOut:
        return cls(name=d.source, type=d.kind, pages=d.pages, articles=d.articles, chunks=d.chunks, added_at=d.added_at,
                   status="ok" if d.status == "ok" else "skipped", reason=d.reason,
                   origin="stored" if d.origin == "stored" else "folder", size=d.size, duplicates=d.duplicates)


class DocumentsOut(BaseModel):
    count: int
    documents: list[DocumentOut]


class ArticleOut(BaseModel):
    headline: str
    byline: str
    kicker: str
    page: int | None
    body: str
    chunks: int
    sources: list[str]

    @classmethod
    def of(cls, a: ArticleView) -> ArticleOut:
        return cls(headline=a.title, byline=a.byline, kicker=a.kicker, page=a.page, body=a.body, chunks=a.chunks,
                   sources=list(a.sources))


class ArticlesOut(BaseModel):
    document: str
    count: int
    articles: list[ArticleOut]


class ChangeOut(BaseModel):
    name: str
    status: ChangeStatus
    message: str
    articles: int
    chunks: int

    @classmethod
    def of(cls, c: Change) -> ChangeOut:
        # Change.status is a plain str in the core; pydantic still checks the value.
        return cls(name=c.source, status=cast(ChangeStatus, c.status), message=c.message, articles=c.articles, chunks=c.chunks)


class ChangesOut(BaseModel):
    changes: list[ChangeOut]


class UploadStateOut(BaseModel):
    state: str = Field(description="processing（仍在处理），或最近一次上传的结果：added、replaced、unchanged、refused、skipped")
    message: str


class DocumentStatusOut(BaseModel):
    name: str
    document: DocumentOut | None = Field(description="资料库中的这篇文档；尚未加入时为 null")
    upload: UploadStateOut | None = Field(description="本进程最近一次上传这个名字的状态；没有时为 null")
