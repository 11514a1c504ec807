"""Why every loss here computes in full precision (shared by the loss modules of this package).

Every term is computed in float32 (float64 inputs stay float64, for gradcheck) with autocast
disabled, whatever precision the projectors ran in: the reference's MSE runs in fp32 under fp16
autocast, and the D×D products are the numerically fragile part, so we keep them in fp32 too (the
reference runs those in fp16; docs/reference/usdrl.md §8 "Numerics").
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


def _up(z: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 (or any non-float64 dtype) → float32; float64 stays float64."""
    return z if z.dtype == torch.float64 else z.float()


@contextmanager
def _full_precision(z: torch.Tensor) -> Iterator[None]:
    """Disable autocast on z's device so matmuls really run in the (upcast) input dtype."""
    with torch.autocast(device_type=z.device.type, enabled=False):
        yield
