"""Uploads: the rules every upload and delete follows, and what happened to recent uploads.

`UploadRules` is the one place that says whether the library may change (read-only mode), how many
files one upload takes and how large each may be; the JSON API (rag/api.py) and the page (rag/ui.py)
both ask it and only word its `Refusal`s their own way (the API as an ApiError or a refused row, the
page in the reader's language).

`UploadLog`: an upload of a large file takes a while; a client that gave up waiting (a timeout) can
still learn its outcome from GET /api/v1/documents/{name}. Kept in memory, for the most recent uploads only.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

from .errors import ApiError
from .library import Change, LibraryError, safe_name

if TYPE_CHECKING:
    from .settings import Settings

KEEP = 1000  # outcomes remembered
READ_CHUNK = 1 << 20  # an upload is read in blocks of this size, so a too large one is never read whole

Action = Literal["upload", "delete"]
Reason = Literal["read_only", "too_many_files", "too_large"]


@dataclass(frozen=True)
class Refusal:
    """Why an upload (or a delete) is not taken, with the limit it went past."""

    reason: Reason
    action: Action = "upload"
    limit: int = 0  # files per upload (too_many_files) or MB per file (too_large)
    size: int | None = None  # the file's size in bytes (too_large), when known

    def error(self) -> ApiError:
        """The API's answer to a refused request: its status, code and Chinese-first message."""
        if self.reason == "read_only":
            verb = "上传" if self.action == "upload" else "删除"
            return ApiError(403, "read_only", f"只读模式：不能{verb}文档（the library is read-only）")
        if self.reason == "too_many_files":
            return ApiError(400, "too_many_files", f"一次最多上传 {self.limit} 个文件"
                            f"（at most {self.limit} files per upload）", "files")
        return ApiError(413, "too_large", self.message())

    def message(self) -> str:
        """The API's reason for one refused file (a row of the upload's changes)."""
        if self.reason == "too_large":
            return f"文件过大（上限 {self.limit} MB）"
        return self.error().message()


class UploadRules:
    """Read-only refusal, files per upload and the size of each file: one set of rules for the API and the UI.

    Settings are read on every call, so the rules are the settings' of the moment.
    """

    def __init__(self, settings: Settings):
        self.settings = settings

    @property
    def read_only(self) -> bool:
        return bool(self.settings.read_only)

    @property
    def max_files(self) -> int:
        return int(self.settings.max_uploads)

    @property
    def max_mb(self) -> int:
        return int(self.settings.max_upload_mb)

    @property
    def max_bytes(self) -> int:
        return self.max_mb * 2**20

    def change(self, action: Action = "upload") -> Refusal | None:
        """None when the library may change; a read-only refusal when it may not."""
        return Refusal("read_only", action) if self.read_only else None

    def require_change(self, action: Action = "upload") -> None:
        """Raise the read-only refusal as the API's ApiError (403 read_only)."""
        refusal = self.change(action)
        if refusal is not None:
            raise refusal.error()

    def batch(self, count: int) -> Refusal | None:
        """A request of `count` files: refused whole when it has more than one upload takes (the API's rule)."""
        return Refusal("too_many_files", limit=self.max_files) if count > self.max_files else None

    def over(self, position: int) -> Refusal | None:
        """The file at `position` (from 0) of one upload: refused when it comes after the first max_files (the page's rule)."""
        return Refusal("too_many_files", limit=self.max_files) if position >= self.max_files else None

    def size(self, size: int) -> Refusal | None:
        """A file of `size` bytes: refused when larger than the per-file limit."""
        return Refusal("too_large", limit=self.max_mb, size=size) if size > self.max_bytes else None

    def read(self, stream: BinaryIO) -> bytes | Refusal:
        """The stream's bytes, or a too_large refusal as soon as it is larger than the limit
        (never reads more than the limit + one block)."""
        parts, size = [], 0
        while block := stream.read(READ_CHUNK):
            size += len(block)
            if size > self.max_bytes:
                return Refusal("too_large", limit=self.max_mb)  # its whole size is not known: reading stopped
            parts.append(block)
        return b"".join(parts)

    def read_file(self, path: Path) -> bytes | Refusal:
        """A stored file's bytes, or a too_large refusal (with its size) without reading it. OSError passes."""
        refusal = self.size(path.stat().st_size)
        if refusal is not None:
            return refusal
        return path.read_bytes()


@dataclass(frozen=True)
class UploadState:
    name: str
    state: str  # "processing", or the outcome: added, replaced, unchanged, refused, skipped
    message: str = ""


def library_name(name: str) -> str:
    """The name a file will have in the library (or the name as given, when it has none)."""
    try:
        return safe_name(name)
    except LibraryError:
        return str(name)[:80]


class UploadLog:
    def __init__(self, keep: int = KEEP):
        self.keep = keep
        self._working: dict[str, int] = {}
        self._done: OrderedDict[str, UploadState] = OrderedDict()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def working(self, names: list[str]):
        """While the block runs these uploads show as "processing"."""
        names = [library_name(n) for n in names]
        with self._lock:
            for n in names:
                self._working[n] = self._working.get(n, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                for n in names:
                    left = self._working.get(n, 1) - 1
                    if left:
                        self._working[n] = left
                    else:
                        self._working.pop(n, None)

    def finished(self, changes: list[Change]) -> None:
        with self._lock:
            for c in changes:
                self._done.pop(c.source, None)
                self._done[c.source] = UploadState(c.source, c.status, c.message)
            while len(self._done) > self.keep:
                self._done.popitem(last=False)

    def state(self, name: str) -> UploadState | None:
        with self._lock:
            if name in self._working:
                return UploadState(name, "processing", "正在读取和索引（processing）")
            return self._done.get(name)
