"""Files -> documents: every supported format behind one `read_file`, and the docs-folder scan.

Formats are `Reader`s (see base.py), tried most specific first; a file's kind is decided by
its content, its suffix only breaks ties (markdown vs plain text).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from ..settings import IngestLimits
from .base import PAGE_BREAK, Document, Pages, Reader, Unreadable
from .docx import DocxReader
from .html import HtmlReader
from .image import ImageReader
from .pdf import PdfReader
from .text import MarkdownReader, TextReader, decode

log = logging.getLogger(__name__)

__all__ = ["PAGE_BREAK", "Document", "IngestLimits", "Pages", "Reader", "Unreadable", "READERS", "SUFFIXES", "detect", "read_bytes",
           "read_file", "scan_folder", "read_documents", "decode"]

# Binary formats by their signatures first; HTML before plain text, which would accept it too.
READERS: list[Reader] = [PdfReader(), DocxReader(), ImageReader(), HtmlReader(), MarkdownReader(), TextReader()]
SUFFIXES: tuple[str, ...] = tuple(dict.fromkeys(s for r in READERS for s in r.suffixes))
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the container of .doc/.xls/.ppt


def detect(head: bytes, name: str = "") -> Reader | None:
    suffix = Path(name).suffix.lower()
    for reader in READERS:
        if reader.sniff(head[:8192], suffix):
            return reader
    return None


def _too_large(size: int, limits: IngestLimits) -> None:
    """Larger files are refused before they are read: no newspaper page needs more."""
    if size > limits.max_file_bytes:
        raise Unreadable(f"文件过大（{size / 2**20:.0f} MB，上限 {limits.max_file_mb} MB）")


def read_bytes(data: bytes, source: str, limits: IngestLimits | None = None) -> Document:
    """One file's bytes -> Document; raises Unreadable with the reason.

    `limits`: the caller's `Settings.ingest`; by default the limits the environment sets now."""
    limits = limits or IngestLimits()
    if not data:
        raise Unreadable("文件为空（0 字节）")
    _too_large(len(data), limits)
    reader = detect(data, source)
    suffix = Path(source).suffix.lower()
    claimed = next((r for r in READERS if suffix in r.suffixes), None)
    if reader is None and data.startswith(_OLE):
        raise Unreadable("旧版 Office 文件（.doc/.xls/.ppt）不支持，请另存为 .docx 或 PDF")
    if reader is None and claimed is not None:
        raise Unreadable(f"文件内容不是 {suffix} 格式，也不是其他支持的格式（文件可能已损坏）")
    if reader is None:
        raise Unreadable(f"不支持的文件类型（支持 {'、'.join(SUFFIXES)}）")
    if claimed is not None and claimed.binary and not reader.binary:
        raise Unreadable(f"扩展名是 {suffix}，内容却是文本或网页（可能是下载出错时保存的页面），已跳过")
    try:
        read = reader.read(data, source, limits)
    except Unreadable:
        raise
    except Exception as exc:  # any other failure of a reader (a missing module, a parser bug) is this file's only
        log.error("读取 %s 时出错", source, exc_info=exc)
        raise Unreadable(f"读取时出错（{type(exc).__name__}），已跳过") from exc
    pages = read if isinstance(read, Pages) else Pages(*read)
    if not pages.text.replace(PAGE_BREAK, "").strip():
        raise Unreadable("文件中没有可提取的文字")
    return Document(source, pages.text, hashlib.sha256(data).hexdigest(), pages.kind or reader.kind, pages.n_pages,
                    pages.printed)


def read_file(path: Path, source: str | None = None, limits: IngestLimits | None = None) -> Document:
    path = Path(path)
    limits = limits or IngestLimits()
    try:
        _too_large(path.stat().st_size, limits)
        data = path.read_bytes()
    except OSError as exc:
        raise Unreadable(f"无法读取文件：{exc.strerror or exc}") from exc
    return read_bytes(data, source or path.name, limits)


def scan_folder(docs_dir: Path) -> list[tuple[Path, str]]:
    """(path, name relative to the folder) of every supported file, sorted by name.

    Links are followed only to files inside the folder: a link out of it could publish any file
    of the machine (/etc/...) through the app. Hidden files, link loops and links to folders are
    skipped with a warning.
    """
    docs_dir = Path(docs_dir)
    if not docs_dir.is_dir():
        raise FileNotFoundError(f"文档目录不存在: {docs_dir}")
    root = docs_dir.resolve()
    out = []
    for folder, dirs, files in os.walk(docs_dir, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(dirs + files):
            path = Path(folder) / name
            rel = path.relative_to(docs_dir).as_posix()
            if name.startswith(".") or (name in dirs and not path.is_symlink()):
                continue
            if path.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    log.warning("跳过无法解析的符号链接（可能是循环链接）：%s", rel)
                    continue
                if not target.is_relative_to(root):
                    log.warning("跳过指向文档目录之外的符号链接：%s -> %s", rel, target)
                    continue
                if target.is_dir():
                    log.warning("跳过指向目录的符号链接（避免重复与循环）：%s", rel)
                    continue
            if name in files and path.suffix.lower() in SUFFIXES:
                out.append((path, rel))
    return sorted(out, key=lambda item: item[1])


def read_documents(docs_dir: Path, limits: IngestLimits | None = None) -> list[Document]:
    """Every readable document in the folder; an unreadable file is skipped with a warning naming it."""
    limits = limits or IngestLimits()
    documents = []
    for path, rel in scan_folder(docs_dir):
        try:
            documents.append(read_file(path, rel, limits))
        except Unreadable as exc:
            log.warning("跳过 %s：%s", rel, exc)
    return documents
