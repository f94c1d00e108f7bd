"""Files -> documents: read every .txt/.md under a folder, tolerating bad files."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class Document:
    source: str  # path relative to the docs folder, with forward slashes
    text: str
    sha256: str

    @property
    def is_markdown(self) -> bool:
        return self.source.endswith(".md") or any(
            line.startswith("## ") for line in self.text.splitlines()[:50]
        )


def decode(data: bytes) -> str | None:
    """UTF-8 first (BOM tolerated), GB18030 as the fallback; None if neither fits or it looks binary."""
    if not data.strip() or b"\x00" in data:
        return None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def list_files(docs_dir: Path) -> list[Path]:
    if not docs_dir.is_dir():
        raise FileNotFoundError(f"文档目录不存在: {docs_dir}")
    return sorted(
        p for p in docs_dir.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")
    )


def read_documents(docs_dir: Path) -> list[Document]:
    """Read the docs folder; a binary, empty or undecodable file is skipped with a warning naming it."""
    docs_dir = Path(docs_dir)
    documents = []
    for path in list_files(docs_dir):
        rel = path.relative_to(docs_dir).as_posix()
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("跳过无法读取的文件 %s: %s", rel, exc)
            continue
        text = decode(data)
        if text is None or not text.strip():
            log.warning("跳过空文件、二进制文件或无法解码的文件: %s", rel)
            continue
        documents.append(Document(rel, text, hashlib.sha256(data).hexdigest()))
    return documents


def fingerprint(docs_dir: Path) -> list[list[str]]:
    """Names and content hashes of every candidate file: the manifest compares this to detect changes."""
    docs_dir = Path(docs_dir)
    out = []
    for path in list_files(docs_dir):
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            digest = "unreadable"
        out.append([path.relative_to(docs_dir).as_posix(), digest])
    return out
