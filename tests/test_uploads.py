"""The one set of upload rules (rag.uploads.UploadRules) that the JSON API and the page both follow,
and the page's assets shipped beside rag/ui.py."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from rag.errors import ApiError, describe
from rag.settings import Settings
from rag.uploads import READ_CHUNK, Refusal, UploadRules


def _rules(**changes) -> UploadRules:
    return UploadRules(Settings().with_(**{"read_only": False, "max_uploads": 2, "max_upload_mb": 1, **changes}))


def test_read_only_refuses_uploads_and_deletes_with_the_api_s_403():
    rules = _rules(read_only=True)
    assert rules.change("upload") == Refusal("read_only", "upload")
    for action, verb in (("upload", "上传"), ("delete", "删除")):
        with pytest.raises(ApiError) as raised:
            rules.require_change(action)
        failure = describe(raised.value)
        assert (failure.status, failure.code) == (403, "read_only")
        assert failure.message == f"只读模式：不能{verb}文档（the library is read-only）"
    assert _rules().change("delete") is None
    _rules().require_change("upload")  # nothing raised


def test_files_per_upload_whole_request_for_the_api_and_per_file_for_the_page():
    rules = _rules()
    assert rules.batch(2) is None
    too_many = rules.batch(3)
    assert too_many == Refusal("too_many_files", limit=2)
    failure = describe(too_many.error())
    assert (failure.status, failure.code, failure.field) == (400, "too_many_files", "files")
    assert failure.message == "一次最多上传 2 个文件（at most 2 files per upload）"
    assert [rules.over(i) for i in range(3)] == [None, None, Refusal("too_many_files", limit=2)]


def test_size_limit_reading_a_stream_and_a_stored_file(tmp_path: Path):
    rules = _rules()
    assert rules.read(io.BytesIO(b"x" * 2**20)) == b"x" * 2**20  # exactly the limit is taken

    class Counting(io.BytesIO):
        taken = 0

        def read(self, size=-1):
            block = super().read(size)
            self.taken += len(block)
            return block

    big = Counting(b"x" * (5 * 2**20))
    refusal = rules.read(big)
    assert refusal == Refusal("too_large", limit=1)
    assert refusal.message() == "文件过大（上限 1 MB）"
    assert big.taken <= 2**20 + READ_CHUNK  # stops reading once past the limit

    small, large = tmp_path / "a.txt", tmp_path / "b.txt"
    small.write_bytes(b"ok")
    large.write_bytes(b"x" * (2**20 + 1))
    assert rules.read_file(small) == b"ok"
    assert rules.read_file(large) == Refusal("too_large", limit=1, size=2**20 + 1)
    with pytest.raises(OSError):
        rules.read_file(tmp_path / "missing.txt")


def test_the_page_words_each_refusal_in_its_language():
    from rag.ui import LibraryHandlers

    text = LibraryHandlers.refusal_text
    assert text(Refusal("too_many_files", limit=2), "zh") == "一次最多上传 2 个文件"
    assert text(Refusal("too_many_files", limit=2), "en") == "At most 2 files per upload"
    assert text(Refusal("too_large", limit=1, size=3 * 2**20), "en") == "Too large (3.0 MB; the limit is 1 MB)"
    assert "只读模式" in text(Refusal("read_only"), "zh")


def test_page_assets_are_read_from_package_files():
    import rag.ui as ui

    folder = Path(ui.__file__).parent / "ui_assets"
    assert ui.CSS == (folder / "chat.css").read_text(encoding="utf-8") and "#qa-chat" in ui.CSS
    assert ui.BRIDGE_JS == (folder / "bridge.js").read_text(encoding="utf-8") and "__ragOpen" in ui.BRIDGE_JS
    assert ui.ARTICLE_JS == (folder / "article.js").read_text(encoding="utf-8") and "scrollIntoView" in ui.ARTICLE_JS
    shipped = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert '"ui_assets/*.css", "ui_assets/*.js"' in shipped  # package data: a non-editable install has them
