"""The index meta: what a commit records about how the index was made, and what that promises.

`meta_for` writes it, `stale_reason` compares it with the present settings and model (a full
rebuild when they differ), `validate_meta` tells a meta of the wrong shape (a corrupt index).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from . import __version__
from .backends.base import IndexCorrupt
from .encoders import Encoder
from .settings import Settings

FORMAT = 3  # of what the index meta promises; a change forces a full rebuild (3: PDF headlines, pages, near duplicates)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def meta_for(settings: Settings, encoder: Encoder | None, dense_note: str, timings: dict,
             self_test: float | None = None) -> dict:
    """What a commit records about how the index was made; `stale_reason` compares it with the present.

    `self_test` is the dense leg's score on the corpus's own sentences (`Library.self_test`).
    """
    from .tokenizer import default_tokenizer

    dense = {"enabled": encoder is not None, "wanted": settings.model, "reason": dense_note if encoder is None else "",
             "note": dense_note if encoder is not None else ""}
    if encoder is not None:
        dense.update(engine=encoder.engine, model=encoder.name, key=encoder.key, label=encoder.label, dim=encoder.dim,
                     query_prompt=encoder.query_prompt, passage_prompt=encoder.passage_prompt)
        if self_test is not None:
            dense["self_test"] = self_test
    return {
        "format": FORMAT,
        "rag_version": __version__,
        "updated_at": now(),
        "docs_dir": str(Path(settings.docs_dir).resolve()),
        "model": settings.model,
        "dense": dense,
        "chunking": settings.chunking(),
        "tokenizer": default_tokenizer().version,
        "lexical_weights": settings.lexical_weights(),
        "sentence_vectors": wants_sentences(settings, encoder),
        "timings": timings,
    }


def wants_sentences(settings: Settings, encoder: Encoder | None) -> bool:
    return bool(settings.sentence_vectors and encoder is not None)


def stale_reason(meta: dict | None, settings: Settings, encoder: Encoder | None) -> str:
    """Why the index must be rebuilt in full (a change that touches every chunk); empty when it need not."""
    from .tokenizer import default_tokenizer

    if not meta:
        return "尚无索引"
    if meta.get("format") != FORMAT:
        return "索引格式已更新"
    if meta.get("chunking") != settings.chunking():
        return "分块参数有变化"
    if meta.get("tokenizer") != default_tokenizer().version:
        return "分词器或词典有变化"
    if meta.get("lexical_weights") != settings.lexical_weights():
        return "关键词检索字段有变化"
    dense = meta.get("dense") or {}
    old_key = dense.get("key") if dense.get("enabled") else None
    new_key = encoder.key if encoder is not None else None
    if old_key != new_key:
        return f"语义模型由 {old_key or '无'} 改为 {new_key or '无'}"
    if bool(meta.get("sentence_vectors", False)) != wants_sentences(settings, encoder):
        return "句向量设置有变化（RAG_SENTENCE_VECTORS）"
    return ""


class _DenseMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    enabled: bool
    wanted: str
    reason: str = ""
    note: str = ""
    engine: str = ""
    model: str = ""
    key: str = ""
    label: str = ""
    dim: int | None = None


class _Meta(BaseModel):
    """The shape a commit's meta must have; anything else is a corrupt index."""

    model_config = ConfigDict(extra="allow")
    format: int
    rag_version: str
    updated_at: str
    docs_dir: str
    model: str
    dense: _DenseMeta
    chunking: dict[str, int]
    tokenizer: str
    lexical_weights: dict[str, float]
    timings: dict


def validate_meta(meta: dict) -> dict:
    try:
        _Meta.model_validate(meta)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise IndexCorrupt(f"索引清单的 meta 结构不符（{'.'.join(map(str, first['loc']))}：{first['msg']}）") from exc
    return meta
