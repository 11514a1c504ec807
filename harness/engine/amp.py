"""Mixed precision: ``train.amp`` = auto | off | bf16 | fp16.

* ``auto``: bf16 autocast on a CUDA device that supports it, otherwise off (CPU runs stay fp32).
* ``bf16``: bf16 autocast (CUDA with bf16 support, or CPU autocast); no loss scaling.
* ``fp16``: fp16 autocast with a ``GradScaler`` (the reference's setting); CUDA only.
* ``off``: float32.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import ContextManager

import torch

from ..config import AMP_MODES
from ..errors import HarnessError, UnknownNameError


@dataclass(frozen=True)
class AmpSettings:
    mode: str  # the resolved mode: off | bf16 | fp16
    device_type: str  # "cuda" or "cpu"

    @property
    def dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.mode)

    @property
    def uses_scaler(self) -> bool:
        return self.mode == "fp16"

    def autocast(self) -> ContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        # a disabled scaler is a pass-through (scale() returns the loss, step() calls the optimiser)
        return torch.amp.GradScaler(self.device_type if self.uses_scaler else "cpu", enabled=self.uses_scaler)


def _cuda_bf16(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def resolve_amp(mode: str, device: torch.device | str) -> AmpSettings:
    device = torch.device(device)
    if mode not in AMP_MODES:
        raise UnknownNameError("train.amp mode", mode, list(AMP_MODES))
    kind = device.type
    if kind not in ("cuda", "cpu"):
        if mode in ("off", "auto"):
            return AmpSettings("off", kind)
        raise HarnessError(f"train.amp={mode} is not supported on device {device}; use train.amp=off")
    if mode == "auto":
        return AmpSettings("bf16" if _cuda_bf16(device) else "off", kind)
    if mode == "fp16" and kind != "cuda":
        raise HarnessError("train.amp=fp16 needs a CUDA device (fp16 autocast with loss scaling); "
                           "on CPU use train.amp=bf16 or off")
    if mode == "bf16" and kind == "cuda" and not _cuda_bf16(device):
        raise HarnessError(f"train.amp=bf16: {device} does not support bfloat16; use train.amp=fp16")
    return AmpSettings(mode, kind)
