"""The main engine: any sentence-transformers model, from the local cache, a local directory or the hub.

Offline machines must not wait for the hub: the local cache is tried first (without importing
torch when the model is not there), then a 5 s TCP probe, and only then a download.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from .base import Encoder, ModelUnavailable

log = logging.getLogger(__name__)

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


def hub_reachable(timeout: float) -> tuple[bool, str]:
    """A quick TCP probe: without it, an unreachable hub costs about 80 s of retries per load."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host, port = parsed.hostname or "huggingface.co", parsed.port or (443 if parsed.scheme != "http" else 80)
    try:
        with socket.create_connection((host, port), timeout=min(timeout, 5.0)):
            return True, ""
    except OSError as exc:
        return False, f"{host}:{port} 无法连接（{exc.__class__.__name__}）"


def is_cached(name: str) -> bool:
    """Whether the hub model is in the local Hugging Face cache; cheap, imports no torch."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # a malformed repo id, an unreadable cache: treat as not cached
        return False


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


def _import():
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ModelUnavailable(f"未安装 sentence-transformers：{exc}") from exc
    return SentenceTransformer


class SentenceTransformerEncoder(Encoder):
    engine = "sentence-transformers"

    def __init__(self, name: str, device: str = "auto", timeout: float = 20.0):
        """Load `name` (hub id or local directory) on `device` (rag/encoders/device.py); raises
        ModelUnavailable with the reason."""
        super().__init__()
        self.name = name
        self._wanted_device = device
        path = Path(name).expanduser()
        if path.is_dir():
            try:
                self.model = self._load(str(path))
            except ModelUnavailable:
                raise
            except Exception as exc:
                raise ModelUnavailable(f"本地模型目录 {path} 无法加载：{exc}") from exc
        elif name.startswith((".", "/", "~")):  # hub ids contain "/" too, so only explicit paths
            raise ModelUnavailable(f"模型目录不存在：{path}")
        elif is_cached(name):
            try:
                self.model = self._load(name, local_files_only=True)
            except ModelUnavailable:
                raise
            except Exception as exc:
                raise ModelUnavailable(f"本地缓存中的模型 {name} 无法加载：{exc}") from exc
        else:
            if offline():
                raise ModelUnavailable(f"模型 {name} 不在本地缓存中，且 HF_HUB_OFFLINE 已开启")
            ok, why = hub_reachable(timeout)
            if not ok:
                raise ModelUnavailable(f"模型 {name} 不在本地缓存中，且无法访问 Hugging Face hub：{why}")
            os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(timeout)))
            os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(timeout)))
            log.info("正在下载模型 %s …", name)
            try:
                self.model = self._load(name)
            except ModelUnavailable:
                raise
            except Exception as exc:
                raise ModelUnavailable(f"模型 {name} 下载失败：{exc}") from exc
        self.query_prompt, self.passage_prompt = prompts_for(name, getattr(self.model, "prompts", None))

    def _load(self, name: str, **kwargs):
        """The model on the planned device: fp16 with large batches on a GPU, fp32 on the CPU."""
        from .device import plan_device

        plan = plan_device(self._wanted_device)  # imports torch: only once the model is known to be there
        model = _import()(name, device=plan.device, **kwargs)
        if plan.fp16:
            model.half()
        self.device, self.batch_size, self.fp16 = plan.device, plan.batch_size, plan.fp16
        return model

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    def _encode(self, texts, batch_size, progress, query):
        prompt = self.query_prompt if query else self.passage_prompt
        return self.model.encode(
            [prompt + t for t in texts], batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True
        )
