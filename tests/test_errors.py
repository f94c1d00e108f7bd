"""The error hierarchy (rag/errors.py): every kind has its status and code, and the one mapping covers them all."""

from __future__ import annotations

import gc
import re

import pytest

from rag import errors
from rag.errors import RagError, describe

WHERE_RAISED = {  # the modules that raise each kind still export it, as the very same class
    "rag.auth": ["Unauthorized"],
    "rag.guard": ["BodyTooLarge"],
    "rag.api": ["ApiError"],
    "rag.library": ["LibraryError"],
    "rag.ingest": ["Unreadable"],
    "rag.ingest.base": ["Unreadable"],
    "rag.backends.base": ["IndexCorrupt", "IndexLocked", "BackendUnavailable"],
    "rag.index": ["IndexCorrupt", "IndexLocked", "BackendUnavailable", "DenseUnavailable", "LexicalUnavailable"],
    "rag.encoders": ["ModelUnavailable"],
    "rag.encoders.base": ["ModelUnavailable"],
    "rag": ["BackendUnavailable", "DenseUnavailable", "IndexCorrupt", "IndexLocked", "LexicalUnavailable", "LibraryError"],
}
CAUGHT_AS = {  # code catches these by their builtin base (the CLI, the segment loader, the readers)
    "LibraryError": ValueError, "Unreadable": ValueError, "IndexCorrupt": RuntimeError, "IndexLocked": RuntimeError,
    "BackendUnavailable": RuntimeError, "DenseUnavailable": RuntimeError, "LexicalUnavailable": RuntimeError,
    "ModelUnavailable": RuntimeError,
}
SNAKE = re.compile(r"[a-z]+(_[a-z]+)*")


def _kinds() -> list[type[RagError]]:
    for module in WHERE_RAISED:  # a subclass defined elsewhere is found too
        __import__(module)
    found, todo = [], [RagError]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def _sample(kind: type[RagError]) -> RagError:
    if kind is errors.ApiError:
        return kind(404, "not_found", "没有这篇文档（document not found）", "name")
    return kind("原因 reason")


def test_every_kind_is_known_to_the_hierarchy():
    names = {k.__name__ for k in _kinds()}
    assert names >= {n for ns in WHERE_RAISED.values() for n in ns}
    for module, kinds in WHERE_RAISED.items():
        exported = __import__(module, fromlist=kinds)
        for name in kinds:
            assert getattr(exported, name) is getattr(errors, name), (module, name)
    for name, base in CAUGHT_AS.items():
        assert issubclass(getattr(errors, name), base), name


@pytest.mark.parametrize("kind", _kinds(), ids=lambda k: k.__name__)
def test_every_kind_has_its_own_status_and_code_and_is_mapped(kind):
    assert isinstance(kind.__dict__.get("status"), int) and 400 <= kind.status < 600, "status not set on the class"
    assert isinstance(kind.__dict__.get("code"), str) and SNAKE.fullmatch(kind.code), "code not set on the class"
    exc = _sample(kind)
    for lang in (None, "zh", "en"):
        failure = describe(exc, lang)
        assert failure.known, (kind, lang)
        assert (failure.status, failure.code) == (exc.status, exc.code) != (500, "internal_error")
        assert failure.message.strip() and "原因 reason" in failure.message or kind is errors.ApiError
        assert failure.field == exc.field and failure.headers == exc.headers
    if kind.zh:  # a message of its own: Chinese first, English in brackets, the detail after
        assert describe(exc).message == f"{kind.zh}（{kind.en}）：原因 reason"
        assert describe(exc, "zh").message.startswith(kind.zh) and kind.en.lower() in describe(exc, "en").message.lower()


def test_codes_are_distinct_per_kind():
    codes = [k.code for k in _kinds() if k is not errors.ApiError]
    assert len(codes) == len(set(codes))


def test_the_api_statuses_and_messages_as_they_were():
    assert describe(errors.Unauthorized()) == (
        401, "unauthorized",
        "需要登录：请使用与界面相同的用户名和密码进行 HTTP Basic 认证，或先在界面登录（authentication required）",
        None, {"WWW-Authenticate": 'Basic realm="rag", charset="UTF-8"'}, True)
    assert describe(errors.IndexLocked("写入中"))[:3] == (503, "index_busy", "资料库正在由其他进程更新，请稍后重试（index is busy）：写入中")
    assert describe(errors.IndexLocked("x")).headers == {"Retry-After": "5"}
    assert describe(errors.IndexCorrupt("x")).headers == {"Retry-After": "30"}
    assert describe(errors.BackendUnavailable("x")).headers == {"Retry-After": "10"}
    assert describe(errors.DenseUnavailable("语义检索不可用"))[:4] == (400, "dense_unavailable", "语义检索不可用", "mode")
    assert describe(errors.LibraryError("名称无效"))[:3] == (400, "library_error", "名称无效")
    api = describe(errors.ApiError(405, "method_not_allowed", "不接受 GET", headers={"Allow": "POST"}))
    assert api == (405, "method_not_allowed", "不接受 GET", None, {"Allow": "POST"}, True)


def test_anything_else_is_a_plain_value_error_400_or_a_generic_500():
    assert describe(ValueError("坏值"))[:3] == (400, "bad_request", "坏值")
    failure = describe(RuntimeError("disk on fire"))
    assert failure[:2] == (500, "internal_error") and not failure.known and "disk on fire" not in failure.message
    assert "Internal" in describe(KeyError("x"), "en").message
    from starlette.exceptions import HTTPException

    assert describe(HTTPException(400, "multipart"))[:3] == (400, "bad_request", "请求无效（bad request）：multipart")
    assert describe(HTTPException(502, "gateway")).status == 500


def test_a_kind_without_status_or_code_is_not_mapped_as_one():
    class Forgotten(RagError):
        pass

    failure = describe(Forgotten("x"))
    assert failure.status == 500 and not failure.known  # and the parametrized test above would flag it
    del Forgotten
    gc.collect()  # out of RagError.__subclasses__() again
