"""Every failure the app reports on purpose, and the one place that says how each is shown.

Each kind is a `RagError` subclass with its HTTP `status`, a stable snake_case `code` and, where the
exception's own message is not enough, what happened in Chinese (`zh`) and English (`en`). The
classes stay importable from the modules that raise them (rag.auth, rag.guard, rag.library, rag.api,
rag.ingest, rag.backends, rag.index, rag.encoders). Those that code catches as ValueError or
RuntimeError (the CLI, the segment loader) keep that base too.

`describe(exc, lang)` is the mapping: the JSON API answers with it (its messages Chinese first with
the English in brackets, `lang=None`), and the UI shows its message in the page's language. Anything
that is not a RagError is unexpected: a 500 with a generic message, for the caller to log.
"""

from __future__ import annotations

import sys
from typing import ClassVar, NamedTuple


class RagError(Exception):
    """A failure reported to the user as it is. Subclasses set `status` and `code` (rag.tests check it)."""

    # Set by each subclass's body (ApiError: per instance).
    status: int  # the HTTP status the API answers with
    code: str  # machine-readable, stable: the API's error.code
    field: str | None = None  # the request parameter at fault, if one is
    headers: dict[str, str] | None = None  # e.g. Retry-After
    zh: ClassVar[str] = ""  # what happened; "" when the exception's own message says it all
    en: ClassVar[str] = ""

    def message(self, lang: str | None = None) -> str:
        """For the user: in `lang` ("zh" or "en"), or Chinese first with the English in brackets (None)."""
        detail = str(self)
        if not self.zh:
            return detail
        if lang == "en":
            head = self.en[:1].upper() + self.en[1:]
            return f"{head}: {detail}" if detail else head
        head = self.zh if lang == "zh" else f"{self.zh}（{self.en}）"
        return f"{head}：{detail}" if detail else head


# --- who and how much ------------------------------------------------------------------------------------

class Unauthorized(RagError):
    """No valid credentials; the API answers 401 with a Basic challenge."""

    status, code = 401, "unauthorized"
    headers = {"WWW-Authenticate": 'Basic realm="rag", charset="UTF-8"'}
    zh = "需要登录：请使用与界面相同的用户名和密码进行 HTTP Basic 认证，或先在界面登录"
    en = "authentication required"


class BodyTooLarge(RagError):
    """The request body went past its cap while being read; the message (if any) says the cap."""

    status, code = 413, "too_large"


class ApiError(RagError):
    """A refusal of the API's own (empty question, not found, read-only …): status and code per instance."""

    status, code = 400, "bad_request"

    def __init__(self, status: int, code: str, message: str, field: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.field, self.headers = status, code, field, headers


# --- the library and its files ------------------------------------------------------------------------------

class LibraryError(RagError, ValueError):
    """A library operation that cannot be done as asked; the message says why, Chinese first."""

    status, code = 400, "library_error"


class Unreadable(RagError, ValueError):
    """A file that cannot be read; the message is the reason, Chinese first."""

    status, code = 400, "unreadable"


# --- the index and its storage ---------------------------------------------------------------------------

class IndexCorrupt(RagError, RuntimeError):
    """The index is missing, partial or damaged; the message says what and what to do."""

    status, code = 503, "index_unavailable"
    headers = {"Retry-After": "30"}
    zh, en = "索引暂不可用，正在修复", "index unavailable"


class IndexLocked(RagError, RuntimeError):
    """Another process is writing the index."""

    status, code = 503, "index_busy"
    headers = {"Retry-After": "5"}
    zh, en = "资料库正在由其他进程更新，请稍后重试", "index is busy"


class BackendUnavailable(RagError, RuntimeError):
    """The storage server cannot be reached or refuses us (down, wrong token, locked by another process).

    Unlike IndexCorrupt this never triggers a rebuild: nothing is wrong with the index itself.
    """

    status, code = 503, "storage_unavailable"
    headers = {"Retry-After": "10"}
    zh, en = "存储服务暂时无法连接，请稍后重试", "storage unavailable"


# --- retrieval modes and models ----------------------------------------------------------------------------

class DenseUnavailable(RagError, RuntimeError):
    """Dense mode was asked for but no dense model serves this index."""

    status, code, field = 400, "dense_unavailable", "mode"


class LexicalUnavailable(RagError, RuntimeError):
    """Lexical mode was asked for but the storage cannot run BM25 (a Milvus server before 2.4)."""

    status, code, field = 400, "lexical_unavailable", "mode"


class ModelUnavailable(RagError, RuntimeError):
    """No dense model can be loaded; the message says why, Chinese first."""

    status, code = 503, "model_unavailable"
    zh, en = "语义模型无法加载", "semantic model unavailable"


# --- the mapping ------------------------------------------------------------------------------------------------

INTERNAL = {None: "服务器内部错误，已记录（internal server error; it was logged）",
            "zh": "服务器内部错误，已记录", "en": "Internal server error; it was logged"}


class Failure(NamedTuple):
    """How one exception is shown: the API's status, code, message, field and headers."""

    status: int
    code: str
    message: str
    field: str | None = None
    headers: dict[str, str] | None = None
    # A RagError: its message is written for the user. Otherwise the UI shows its own generic text, and a
    # 500 is unexpected: the caller logs its traceback.
    known: bool = True


def describe(exc: BaseException, lang: str | None = None) -> Failure:
    """Any exception -> how it is shown, in `lang` ("zh", "en"; None: Chinese first, English in brackets).

    RagErrors as their class says; a framework's 4xx (a malformed multipart body) and any other
    ValueError are a 400 bad_request with their own message; everything else a generic 500.
    """
    if isinstance(exc, RagError) and isinstance(getattr(exc, "status", None), int) and getattr(exc, "code", None):
        return Failure(exc.status, exc.code, exc.message(lang), exc.field, exc.headers)
    status = getattr(exc, "status_code", None) if _http_exception(exc) else None
    if isinstance(status, int) and 400 <= status < 500:
        head = {"zh": "请求无效", "en": "Bad request"}.get(lang or "", "请求无效（bad request）")
        return Failure(status, "bad_request", f"{head}：{getattr(exc, 'detail', '')}", known=False)
    if isinstance(exc, ValueError):
        return Failure(400, "bad_request", str(exc), known=False)
    return Failure(500, "internal_error", INTERNAL.get(lang, INTERNAL[None]), known=False)


def _http_exception(exc: BaseException) -> bool:
    """Starlette's HTTPException, without importing the web stack into the core (none raised: not loaded)."""
    starlette = sys.modules.get("starlette.exceptions")
    return starlette is not None and isinstance(exc, starlette.HTTPException)
