"""Where the models run: ``auto`` (CUDA, then Apple's MPS, then the CPU), ``cpu``, ``cuda``,
``cuda:N`` or ``mps`` — from ``--device`` on the command line or ``EXPLORER_DEVICE`` for the app
— and mixed precision (``--amp bf16|fp16``) through ``torch.autocast``.

A device that is not there is an error with one sentence, never a silent fallback: the user asked
for it. Code elsewhere never picks a device itself; it follows the model's (``device_of``).
"""

from __future__ import annotations

import contextlib
import os
import re

import torch
from torch import nn

from explorer.core.errors import UserFacingError

CHOICES = "auto|cpu|cuda|cuda:N|mps"
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(spec: str | None = "auto", what: str = "--device {spec}") -> torch.device:
    """The ``torch.device`` for ``spec`` (None or "" mean auto), checked to be usable here;
    ``what`` names the setting in messages."""
    spec = (spec or "auto").strip().lower()
    setting = what.format(spec=spec[:40])
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not _mps_available():
            raise UserFacingError(f"{setting}: this machine has no usable Apple MPS device (torch.backends.mps).",
                                  f"{setting}：本机没有可用的 Apple MPS 设备（torch.backends.mps）。")
        return torch.device("mps")
    match = re.fullmatch(r"cuda(?::(\d{1,3}))?", spec)
    if match is None:
        raise UserFacingError(f"Device {spec[:40]!r} is not one of {CHOICES}.", f"设备 {spec[:40]!r} 不是 {CHOICES} 之一。")
    if not torch.cuda.is_available():
        raise UserFacingError(f"{setting}: this machine has no usable CUDA device (torch.cuda.is_available() "
                              "is False: no GPU, or a CPU-only build of PyTorch).",
                              f"{setting}：本机没有可用的 CUDA 设备（torch.cuda.is_available() 为 False："
                              "没有 GPU，或 PyTorch 是仅 CPU 版本）。")
    index = int(match.group(1)) if match.group(1) is not None else torch.cuda.current_device()
    count = torch.cuda.device_count()
    if index >= count:
        raise UserFacingError(f"{setting}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}.",
                              f"{setting}：本机有 {count} 个 CUDA 设备（cuda:0 到 cuda:{count - 1}）。")
    return torch.device("cuda", index)


def app_device() -> torch.device:
    """The app's device: ``EXPLORER_DEVICE`` (default auto)."""
    return resolve_device(os.environ.get("EXPLORER_DEVICE", "auto"), "EXPLORER_DEVICE={spec}")


def device_of(model: nn.Module) -> torch.device:
    """Where ``model`` lives (its first parameter or buffer; the CPU for an empty module)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def describe(device: torch.device) -> str:
    """The device for a banner or a log line, e.g. ``cuda:0 (NVIDIA H200)``, ``cpu``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type


def amp_dtype(spec: str | None) -> torch.dtype | None:
    """``--amp``: None (full precision), "bf16" or "fp16"."""
    if not spec:
        return None
    if spec not in AMP_DTYPES:
        raise UserFacingError(f"--amp {spec[:20]!r}: use bf16 or fp16.", f"--amp {spec[:20]!r}：请使用 bf16 或 fp16。")
    return AMP_DTYPES[spec]


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` on ``device`` in ``dtype``, or nothing for full precision."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def add_device_argument(parser, amp: bool = False) -> None:
    """``--device`` (and ``--amp``) on a command."""
    parser.add_argument("--device", default="auto", help=f"{CHOICES} (auto: CUDA, then MPS, then the CPU)")
    if amp:
        parser.add_argument("--amp", choices=sorted(AMP_DTYPES), help="mixed precision through torch.autocast")
