"""Batched temporal resampling: each clip's frames [start, start + length) → a fixed frame count.

Linear interpolation with half-pixel centres, as PyTorch ``interpolate(mode="linear",
align_corners=False)`` (the USDRL/UmURL feeders): source s = (i + 0.5)·ℓ/T − 0.5 clamped at 0,
output = linear between ⌊s⌋ and min(⌊s⌋ + 1, ℓ − 1). One gather per batch, no per-sample loop.
"""

from __future__ import annotations

import torch


def resample(x: torch.Tensor, lengths: torch.Tensor, frames: int, starts: torch.Tensor | None = None) -> torch.Tensor:
    """(B, C, T_in, V, M) with per-clip windows → (B, C, frames, V, M)."""
    b = x.shape[0]
    device = x.device
    length = lengths.to(device=device, dtype=torch.float64).clamp(min=1)
    start = torch.zeros(b, device=device, dtype=torch.long) if starts is None else starts.to(device).long()
    i = torch.arange(frames, device=device, dtype=torch.float64)
    src = ((i[None] + 0.5) * (length[:, None] / frames) - 0.5).clamp(min=0)  # (B, frames)
    lo = src.floor()
    w = (src - lo).to(x.dtype)
    lo = lo.long()
    hi = torch.minimum(lo + 1, length.long()[:, None] - 1)
    lo = lo + start[:, None]
    hi = hi + start[:, None]
    c, v, m = x.shape[1], x.shape[3], x.shape[4]

    def take(idx: torch.Tensor) -> torch.Tensor:
        return torch.gather(x, 2, idx[:, None, :, None, None].expand(b, c, frames, v, m))

    w = w[:, None, :, None, None]
    return take(lo) * (1 - w) + take(hi) * w
