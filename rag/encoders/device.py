"""Where an engine runs: `RAG_DEVICE=auto|cpu|cuda[:N]`, and the batch size and precision for it.

`auto` takes the first CUDA GPU when torch sees one, else the CPU. On a GPU the model runs in fp16
with large batches (its memory is not the limit for a small e5 model; kernel launches are); on the CPU
it stays fp32 with the batch the CPU engines were tuned with. The bundled 4-bit engine runs on the CPU
only. `RAG_BATCH_SIZE` overrides the batch size.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from .base import ModelUnavailable

CPU_BATCH = 32
CUDA_BATCH = 128
_CUDA = re.compile(r"cuda(:\d+)?")


class Device(str, Enum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


@dataclass(frozen=True)
class DevicePlan:
    device: str  # as torch names it: "cpu", "cuda", "cuda:1"
    batch_size: int
    fp16: bool

    @property
    def label(self) -> str:
        return f"{self.device}{'（fp16）' if self.fp16 else ''}"


def check_device(text: str) -> str:
    """The normalised `RAG_DEVICE` value; ValueError (Chinese first) for anything else."""
    value = (text or "auto").strip().lower()
    if value in (Device.AUTO, Device.CPU) or _CUDA.fullmatch(value):
        return value
    raise ValueError(f"RAG_DEVICE={text!r} 无效：可选 auto、cpu、cuda 或 cuda:N（invalid device）")


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU (False without torch)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def plan_device(wanted: str, batch_size: int | None = None, has_cuda: Callable[[], bool] = cuda_available) -> DevicePlan:
    """The device, batch size and precision for `wanted`; ModelUnavailable when a GPU is asked for and absent."""
    value = check_device(wanted)
    if value == Device.AUTO:
        value = Device.CUDA.value if has_cuda() else Device.CPU.value
    elif value != Device.CPU and not has_cuda():
        raise ModelUnavailable(f"RAG_DEVICE={value}，但 torch 找不到可用的 CUDA GPU（CPU 版 torch，或没有驱动）；"
                               "改用 RAG_DEVICE=auto 或 cpu")
    gpu = value != Device.CPU
    return DevicePlan(value, batch_size or (CUDA_BATCH if gpu else CPU_BATCH), fp16=gpu)
