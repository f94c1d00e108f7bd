"""The embedding model: load a sentence-transformers model without hanging offline, and encode with the right prompts."""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

log = logging.getLogger(__name__)


class ModelUnavailable(RuntimeError):
    """The dense model cannot be loaded; the message says why, in Chinese first."""


# Prompts each model family was trained with; a model's own configured prompts are used otherwise.
BGE_ZH_QUERY = "为这个句子生成表示以用于检索相关文章："


def prompts_for(name: str, configured: dict | None = None) -> tuple[str, str]:
    lower = name.lower()
    if "e5" in lower and "mistral" not in lower:
        return "query: ", "passage: "
    if "bge" in lower and "zh" in lower:
        return BGE_ZH_QUERY, ""
    configured = configured or {}
    return configured.get("query", ""), configured.get("document", configured.get("passage", ""))


def _hub_reachable(timeout: float) -> tuple[bool, str]:
    """A quick TCP probe: without it, an unreachable hub costs about 80 s of retries per load."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host, port = parsed.hostname or "huggingface.co", parsed.port or (443 if parsed.scheme != "http" else 80)
    try:
        with socket.create_connection((host, port), timeout=min(timeout, 5.0)):
            return True, ""
    except OSError as exc:
        return False, f"{host}:{port} 无法连接（{exc.__class__.__name__}）"


@dataclass
class Embedder:
    name: str
    model: object  # sentence_transformers.SentenceTransformer
    query_prompt: str
    passage_prompt: str

    def __post_init__(self):
        self._lock = threading.Lock()  # torch modules are not guaranteed re-entrant across threads

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    def _encode(self, texts: list[str], batch_size: int, progress: bool) -> np.ndarray:
        with self._lock:
            vectors = self.model.encode(
                texts,
                batch_size=batch_size,
                show_progress_bar=progress,
                normalize_embeddings=True,  # bge has no Normalize module; inner product must be cosine
                convert_to_numpy=True,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_passages(self, texts: list[str], batch_size: int = 32, progress: bool = True) -> np.ndarray:
        return self._encode([self.passage_prompt + t for t in texts], batch_size, progress)

    def encode_query(self, text: str) -> np.ndarray:
        return self._encode([self.query_prompt + text], 1, False)[0]


def load_embedder(name: str, device: str = "cpu", timeout: float = 20.0) -> Embedder:
    """Load `name` (hub id or local directory): local cache first, then the hub only if it answers.

    Raises ModelUnavailable with the reason instead of hanging or crashing.
    """
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - the dependency is declared
        raise ModelUnavailable(f"未安装 sentence-transformers：{exc}") from exc

    path = Path(name).expanduser()
    looks_like_path = name.startswith((".", "/", "~"))  # hub ids also contain "/", so only explicit paths
    if path.is_dir():
        try:
            model = SentenceTransformer(str(path), device=device)
        except Exception as exc:
            raise ModelUnavailable(f"本地模型目录 {path} 无法加载：{exc}") from exc
    elif looks_like_path:
        raise ModelUnavailable(f"模型目录不存在：{path}")
    else:
        try:
            model = SentenceTransformer(name, device=device, local_files_only=True)
        except Exception as cached_error:
            offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
            if offline:
                raise ModelUnavailable(f"模型 {name} 不在本地缓存中，且 HF_HUB_OFFLINE 已开启") from cached_error
            ok, why = _hub_reachable(timeout)
            if not ok:
                raise ModelUnavailable(f"模型 {name} 不在本地缓存中，且无法访问 Hugging Face hub：{why}") from cached_error
            os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(timeout)))
            os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(timeout)))
            log.info("正在下载模型 %s …", name)
            try:
                model = SentenceTransformer(name, device=device)
            except Exception as exc:
                raise ModelUnavailable(f"模型 {name} 下载失败：{exc}") from exc
    query_prompt, passage_prompt = prompts_for(name, getattr(model, "prompts", None))
    return Embedder(name, model, query_prompt, passage_prompt)
