"""Manifests of segments and generations: validated shapes, and a checksum over every byte.

A manifest file is its JSON followed by a line `#xxh3:<hex>` over the JSON bytes, so a torn or
flipped manifest is told from a valid one before it is parsed. The shapes are pydantic models:
a manifest of the wrong shape is corrupt, not an AttributeError later.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Final, Literal

import xxhash
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...results import DocumentInfo
from ..base import IndexCorrupt
from .folder import write_durably

SEGMENT_FORMAT: Final = 1
GENERATION_FORMAT: Final = 2
_MARK = b"\n#xxh3:"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileSum(_Model):
    size: int = Field(ge=0)
    xxh3: str


class FieldTotals(_Model):
    docs: int = Field(ge=0)
    total_len: int = Field(ge=0)


class SegmentVectors(_Model):
    key: str
    dim: int = Field(gt=0)


class SegmentManifest(_Model):
    format: Literal[1]
    id: str
    created_at: str
    articles: int = Field(ge=0)
    chunks: int = Field(ge=0)
    fields: dict[str, FieldTotals]
    vectors: SegmentVectors | None = None
    # Sentences with vectors (sentences.npy, sentence_vectors.npy); None: the segment has none.
    sentences: int | None = Field(default=None, ge=0)
    files: dict[str, FileSum]


class DocRecord(_Model):
    source: str
    sha256: str
    kind: str
    pages: int = 0
    articles: int = 0
    chunks: int = 0
    added_at: str = ""
    status: Literal["ok", "skipped"] = "ok"
    reason: str = ""
    origin: Literal["folder", "stored"] = "folder"
    stored: str = ""
    size: int = 0
    mtime_ns: int = 0
    duplicates: int = 0
    # (segment id, first article, end article): the articles this document holds
    refs: list[tuple[str, int, int]] = []


def record_of(info: DocumentInfo, refs) -> DocRecord:
    return DocRecord(**asdict(info), refs=refs)


def info_of(rec: DocRecord) -> DocumentInfo:
    data = rec.model_dump()
    data.pop("refs")
    return DocumentInfo(**data)


class GenerationManifest(_Model):
    format: Literal[2]
    number: int = Field(ge=1)
    created_at: str
    segments: list[str]
    documents: list[DocRecord]
    meta: dict


def file_checksum(path: Path) -> str:
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def dump(model: _Model, path: Path, durable: bool = True) -> None:
    body = model.model_dump_json().encode("utf-8")
    data = body + _MARK + xxhash.xxh3_128_hexdigest(body).encode("ascii") + b"\n"
    if durable:
        write_durably(path, data)
    else:
        path.write_bytes(data)


def load(cls: type[_Model], path: Path):
    """The manifest at `path`; raises IndexCorrupt naming the file and what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IndexCorrupt(f"无法读取 {path.name}：{exc.strerror or exc}") from exc
    body, mark, tail = data.rpartition(_MARK)
    if not mark or tail.strip().decode("ascii", "replace") != xxhash.xxh3_128_hexdigest(body):
        raise IndexCorrupt(f"{path.name} 校验和不符（文件被截断或损坏）")
    try:
        return cls.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise IndexCorrupt(f"{path.name} 结构不符（{where}：{first.get('msg')}）") from exc
