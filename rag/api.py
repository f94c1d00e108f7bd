"""The versioned JSON API (/api/v1) beside the UI: retrieve, ask, info, health and the library.

Plain UTF-8 JSON, never HTML-escaped (escaping is the UI's job). Every failure is one shape,
`{"error": {"code", "message", "field"}}`, with a Chinese-first message and no stack trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path as FilePath
from typing import Annotated, Any, cast

import fastapi_offline
from fastapi import APIRouter, Depends, FastAPI, File, Path, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRoute
from starlette.types import Scope

from . import __version__
from .answer import answer
from .api_models import (
    MAX_K,
    ArticleOut,
    ArticlesOut,
    AskIn,
    AskOut,
    ChangeOut,
    ChangesOut,
    CitationOut,
    DocumentOut,
    DocumentsOut,
    DocumentStatusOut,
    ErrorOut,
    HealthOut,
    InfoOut,
    Language,
    Mode,
    NoticeOut,
    PassageOut,
    RetrieveOut,
    UploadStateOut,
)
from .auth import Accounts
from .errors import ApiError, RagError, Unauthorized, describe
from .index import Index
from .lang import detect_language, engine_label, not_found
from .library import Change
from .notices import render
from .settings import Settings
from .uploads import Refusal, UploadLog, UploadRules, library_name

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
DOCS_ASSETS = "/api/docs/static"


def error_response(status: int, code: str, message: str, field: str | None = None, headers=None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, **({"field": field} if field else {})}}
    return JSONResponse(body, status_code=status, headers=headers)


def _translate(exc: Exception) -> JSONResponse:
    """Any failure -> its JSON error (rag.errors.describe); an unexpected one is logged and answered with a plain 500."""
    if isinstance(exc, RequestValidationError):  # pydantic's reasons, worded per parameter
        return _validation(exc)
    failure = describe(exc)
    if failure.status >= 500 and not failure.known:
        log.exception("API 内部错误", exc_info=exc)
    return error_response(failure.status, failure.code, failure.message, failure.field, failure.headers)


_FIELD_MESSAGES = {
    "k": f"k 必须是 1 到 {MAX_K} 之间的整数（k must be an integer from 1 to {MAX_K}）",
    "mode": "未知检索模式，可选 hybrid、lexical、dense（mode must be hybrid, lexical or dense）",
}


# pydantic's error types -> (Chinese, English) for a parameter `{p}`
_KIND_MESSAGES = {
    "missing": ("缺少参数 {p}", "missing {p}"),
    "string_type": ("参数 {p} 必须是字符串", "{p} must be a string"),
    "int_type": ("参数 {p} 必须是整数", "{p} must be an integer"),
    "int_parsing": ("参数 {p} 必须是整数", "{p} must be an integer"),
    "list_type": ("参数 {p} 必须是列表", "{p} must be a list"),
    "literal_error": ("参数 {p} 的取值无效", "{p} has an invalid value"),
    "extra_forbidden": ("不认识的参数 {p}", "unknown parameter {p}"),
}
NOT_JSON_OBJECT = ('请求体必须是 JSON 对象，Content-Type 为 application/json，例如 {"question": "…"}'
                   "（the body must be a JSON object sent as application/json）")


def _validation(exc: RequestValidationError) -> JSONResponse:
    """One clear message per failure; pydantic's own English wording never reaches the Chinese text."""
    first = exc.errors()[0] if exc.errors() else {}
    place = [part for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    kind = first.get("type", "")
    if kind == "json_invalid":  # its location is a character offset into the body, not a field
        at = place[0] if place and isinstance(place[0], int) else None
        where = f"（第 {at + 1} 个字符附近）" if at is not None else ""
        where_en = f", near character {at + 1}" if at is not None else ""
        return error_response(422, "invalid_parameter", f"请求体不是有效的 JSON{where}（request body is not valid JSON{where_en}）",
                              "body")
    loc = [str(part) for part in place]
    field = loc[0] if loc else None
    name = ".".join(loc)
    if not loc and kind in ("model_attributes_type", "dict_type", "model_type", "missing"):
        message = NOT_JSON_OBJECT  # a form-encoded, empty or non-object body
        field = "body"
    elif field in _FIELD_MESSAGES and kind != "missing":
        message = _FIELD_MESSAGES[field]
    elif kind in _KIND_MESSAGES:
        zh, en = _KIND_MESSAGES[kind]
        message = f"{zh.format(p=name)}（{en.format(p=name)}）"
    else:
        message = f"参数 {name or '请求体'} 无效（invalid {name or 'body'}: {first.get('msg', '')}）"
    return error_response(422, "invalid_parameter", message, field)


class GuardedRoute(APIRoute):
    """Every API route answers errors in the one JSON shape, whatever raised them (dependencies too)."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def guarded(request: Request):
            try:
                return await handler(request)
            except Exception as exc:  # noqa: BLE001 - translated, and logged when unexpected
                return _translate(exc)

        return guarded


ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (400, 401, 403, 404, 405, 409, 422, 503)}


def _sources(index: Index) -> dict:
    return {d.source: d for d in index.documents()}


def build_api(index: Index, settings: Settings, accounts: Accounts, uploads: UploadLog | None = None) -> APIRouter:
    """/api/v1 over one index. Upload and delete answer 403 in read-only mode.

    `uploads` is shared with the UI: GET /documents/{name} tells a client that timed out how its upload ended.
    """
    uploads = uploads or UploadLog()
    rules = UploadRules(settings)
    signed_in = [Depends(accounts.require)]
    api = APIRouter(prefix=PREFIX, route_class=GuardedRoute, responses=ERRORS)

    @api.get("/health", response_model=HealthOut, tags=["status"], summary="存活检查（无需登录）")
    def health():
        return HealthOut(version=__version__)

    @api.get("/info", response_model=InfoOut, tags=["status"], dependencies=signed_in, summary="索引状态、语义引擎与数量")
    def info():
        return InfoOut.of(index.info(), settings.read_only)

    @api.get("/retrieve", response_model=RetrieveOut, tags=["search"], dependencies=signed_in,
             summary="检索段落（不生成回答）")
    def retrieve(
        q: Annotated[str, Query(description="查询文本")] = "",
        k: Annotated[int, Query(ge=1, le=MAX_K, description="段落数，1–50")] = 5,
        mode: Annotated[Mode, Query(description="hybrid（默认）、lexical 或 dense")] = "hybrid",
        source: Annotated[list[str] | None, Query(description="只在这些文件中查找；可重复")] = None,
    ):
        if not q.strip():
            raise ApiError(400, "empty_query", "查询不能为空（q must not be empty）", "q")
        passages = index.retrieve(q, k=k, mode=mode, sources=source or None)
        return RetrieveOut(query=q.strip(), mode=cast(Mode, passages.mode), notice=passages.notice,
                           notices=[NoticeOut.of(n) for n in passages.notices], engine=passages.engine,
                           elapsed_ms=passages.elapsed_ms, passages=[PassageOut.of(p) for p in passages])

    @api.post("/ask", response_model=AskOut, tags=["search"], dependencies=signed_in,
              summary="提问：摘自原文、带 [n] 出处的回答")
    def ask(body: AskIn):
        if not body.question.strip():
            raise ApiError(400, "empty_question", "问题不能为空（question must not be empty）", "question")
        history = [{"role": "user", "content": t} if isinstance(t, str) else t.model_dump() for t in body.history]
        started = time.perf_counter()
        result = answer(index, body.question, k=body.k, history=history, mode=body.mode, sources=body.sources or None)
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        citations = [CitationOut(number=c.number, sentence=c.sentence,
                                 passage=next(i for i, p in enumerate(result.passages) if p is c.passage),
                                 answer_span=list(c.answer_span) if c.answer_span else None)
                     for c in result.citations]
        # The answer speaks the question's language; quoted sentences stay as the archive has them.
        lang = detect_language(body.question)
        return AskOut(question=result.question, answer=result.text if result.found else not_found(lang),
                      found=result.found, confidence=None if result.confidence is None else round(result.confidence, 4),
                      citations=citations, passages=[PassageOut.of(p) for p in result.passages],
                      notice=render(result.notices, lang),
                      notices=[NoticeOut.of(n) for n in result.notices], query=result.query, mode=cast(Mode, result.mode),
                      engine=engine_label(result.engine, lang), language=cast(Language, lang), elapsed_ms=elapsed)

    @api.get("/documents", response_model=DocumentsOut, tags=["library"], dependencies=signed_in,
             summary="资料库中的文档")
    def documents():
        docs = sorted(index.documents(), key=lambda d: d.source)
        return DocumentsOut(count=len(docs), documents=[DocumentOut.of(d) for d in docs])

    @api.get("/documents/{name:path}/articles", response_model=ArticlesOut, tags=["library"], dependencies=signed_in,
             summary="一篇文档解析出的文章（标题、署名、版面、正文）")
    def articles(name: Annotated[str, Path(description="文档名，见 GET /documents")]):
        if name not in _sources(index):
            raise ApiError(404, "not_found", f"资料库中没有名为 {name!r} 的文档（document not found）", "name")
        found = index.articles(name)
        return ArticlesOut(document=name, count=len(found), articles=[ArticleOut.of(a) for a in found])

    @api.get("/documents/{name:path}", response_model=DocumentStatusOut, tags=["library"], dependencies=signed_in,
             summary="一篇文档的状态；也说明最近一次上传它的结果（上传超时后可以用来查询）")
    def document(name: Annotated[str, Path(description="文档名，见 GET /documents")]):
        doc = _sources(index).get(name)
        state = uploads.state(name)
        if doc is None and state is None:
            raise ApiError(404, "not_found", f"资料库中没有名为 {name!r} 的文档（document not found）", "name")
        return DocumentStatusOut(
            name=name, document=DocumentOut.of(doc) if doc is not None else None,
            upload=UploadStateOut(state=state.state, message=state.message) if state is not None else None)

    @api.post("/documents", response_model=ChangesOut, tags=["library"], dependencies=signed_in,
              summary="上传一个或多个文件（multipart，字段名 files）；每个文件各有结果")
    def upload(files: Annotated[list[UploadFile], File(description="要加入资料库的文件")]):
        rules.require_change("upload")
        too_many = rules.batch(len(files))
        if too_many is not None:
            raise too_many.error()
        outcome: list[ChangeOut | None] = []
        todo: list[tuple[str, bytes]] = []
        for f in files:
            name = f.filename or "upload"
            data = rules.read(f.file)
            if isinstance(data, Refusal):
                outcome.append(ChangeOut(name=library_name(name), status="refused", articles=0, chunks=0,
                                         message=data.message()))
                continue
            outcome.append(None)
            todo.append((name, data))
        if todo:
            with uploads.working([n for n, _ in todo]):
                try:
                    changes = index.add(todo)  # one commit; each file has its own outcome
                except RagError:  # the library's refusals, a busy or broken index: the whole request's error
                    raise
                except Exception:
                    log.exception("上传失败：%s", [n for n, _ in todo])
                    changes = [Change(library_name(n), "refused", "处理时出错（已记录）") for n, _ in todo]
            uploads.finished(changes)
            done = iter(changes)
            return ChangesOut(changes=[c if c is not None else ChangeOut.of(next(done)) for c in outcome])
        return ChangesOut(changes=[c for c in outcome if c is not None])  # nothing to add: every file was refused

    @api.delete("/documents/{name:path}", response_model=ChangesOut, tags=["library"], dependencies=signed_in,
                summary="删除一篇上传的文档")
    def delete(name: Annotated[str, Path(description="文档名")]):
        rules.require_change("delete")
        doc = _sources(index).get(name)
        if doc is None:
            raise ApiError(404, "not_found", f"资料库中没有名为 {name!r} 的文档（document not found）", "name")
        if doc.origin != "stored":
            raise ApiError(409, "in_docs_folder", f"{name} 来自文档目录：请从该目录中删除文件，索引会随之更新"
                           "（documents of the docs folder are removed by deleting the file）", "name")
        return ChangesOut(changes=[ChangeOut.of(c) for c in index.remove(name)])

    @api.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def unknown(rest: str, request: Request):
        allowed = _methods_for(api, request.scope)
        if allowed:
            raise ApiError(405, "method_not_allowed",
                           f"{PREFIX}/{rest} 不接受 {request.method}，请用 {'、'.join(allowed)}"
                           f"（method not allowed; use {', '.join(allowed)}）",
                           headers={"Allow": ", ".join(allowed)})
        raise ApiError(404, "not_found", f"没有这个接口：{PREFIX}/{rest}（no such endpoint）")

    return api


def _methods_for(router: APIRouter, scope: Scope) -> list[str]:
    """The methods the other routes accept at this path (a GET to POST /ask is a 405, not a 404)."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in router.routes:
        if isinstance(route, APIRoute) and route.name != "unknown" and route.methods:  # an APIRoute has methods
            match, _ = route.matches({**scope, "method": next(iter(route.methods))})
            if match is Match.FULL:
                methods |= route.methods
    return sorted(methods - {"HEAD"})


def swagger_assets() -> dict[str, FilePath]:
    """Swagger UI's files as shipped by the `fastapi-offline` package (swagger-ui-dist 5), by file name."""
    folder = FilePath(fastapi_offline.__file__).parent / "static"
    return {name: folder / name for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
            if (folder / name).is_file()}


def add_api(app: FastAPI, index: Index, settings: Settings, accounts: Accounts, uploads: UploadLog | None = None) -> None:
    """The API routes, their OpenAPI schema at /api/openapi.json and docs at /api/docs (behind the same login)."""
    router = build_api(index, settings, accounts, uploads)
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, lambda request, exc: _validation(exc))
    schema: dict = {}

    def openapi_json(request: Request):
        if accounts.user(request) is None:
            return _translate(Unauthorized())
        if not schema:
            schema.update(get_openapi(
                title="周口新闻问答助手 API", version=__version__, routes=router.routes,
                description="检索与问答（回答摘自原文并带出处）以及资料库管理。开启 --auth 时需要 HTTP Basic 认证，"
                            "用户名和密码与界面相同。所有错误的形式为 {\"error\": {\"code\", \"message\"}}。",
            ))
        return JSONResponse(schema)

    def docs(request: Request):
        if accounts.user(request) is None:
            return _translate(Unauthorized())
        # Swagger UI from the app itself: users on closed intranets cannot reach a CDN. No validator badge
        # (it would send the schema's address to validator.swagger.io).
        return get_swagger_ui_html(
            openapi_url="/api/openapi.json", title="周口新闻问答助手 API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png", swagger_ui_parameters={"validatorUrl": None},
        )

    def docs_asset(name: str, request: Request):
        if accounts.user(request) is None:
            return _translate(Unauthorized())
        path = swagger_assets().get(name)
        if path is None:
            return error_response(404, "not_found", f"没有这个文件：{name}（no such file）")
        return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})

    app.add_api_route("/api/openapi.json", openapi_json, methods=["GET"], include_in_schema=False)
    app.add_api_route("/api/docs", docs, methods=["GET"], include_in_schema=False)
    app.add_api_route(DOCS_ASSETS + "/{name}", docs_asset, methods=["GET"], include_in_schema=False)
    app.add_api_route("/api", lambda: error_response(404, "not_found", f"接口位于 {PREFIX}/…，文档见 /api/docs"),
                      methods=["GET"], include_in_schema=False)
