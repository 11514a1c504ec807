"""Batched temporal resampling: each clip's frames [start, start + length) → a fixed frame count.

Linear interpolation with half-pixel centres, as PyTorch ``interpolate(mode="linear",
align_corners=False)`` (the USDRL/UmURL feeders): source s = (i + 0.5)·ℓ/T − 0.5 clamped at 0,
output = (1 − λ)·x[⌊s⌋] + λ·x[min(⌊s⌋ + 1, ℓ − 1)] with λ = s − ⌊s⌋. The positions and weights are
computed with PyTorch's own rounding (scale ℓ/T in float32, s in float64 then rounded to float32), so
they are bit-identical to ``F.interpolate``'s; the blend itself may differ from it in the last bit.

One fused gather-and-blend (``embedding_bag`` over rows of V·M values, weights (1 − λ, λ)) per
chunk of clips, no per-sample loop. :func:`source_positions` is the single source of the index rule;
the fused crop-and-augment kernel in :mod:`harness.augment.fused` reuses it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# clips per fused call: keeps the index/weight temporaries and the gathered rows cache-sized
_CHUNK_ROWS = 8192


def source_positions(lengths: torch.Tensor, frames: int, starts: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per clip and output frame: (lo, hi, λ), each (B, frames); lo/hi are absolute frame indices.

    ``lengths`` are the window lengths ℓ (clamped to ≥ 1) and ``starts`` the window starts (default 0).
    """
    device = lengths.device
    length = lengths.to(torch.long).clamp(min=1)
    scale = length.to(torch.float32) / frames  # float32, as ATen's area_pixel_compute_scale<float>
    i = torch.arange(frames, device=device, dtype=torch.float64) + 0.5
    src = (scale.to(torch.float64)[:, None] * i[None] - 0.5).to(torch.float32).clamp(min=0)
    lo_f = src.floor()
    lam = src - lo_f
    lo = lo_f.to(torch.long)
    hi = torch.minimum(lo + 1, length[:, None] - 1)
    if starts is not None:
        start = starts.to(device=device, dtype=torch.long)[:, None]
        lo, hi = lo + start, hi + start
    return lo, hi, lam


def resample(x: torch.Tensor, lengths: torch.Tensor, frames: int, starts: torch.Tensor | None = None,
             *, out: torch.Tensor | None = None) -> torch.Tensor:
    """(B, C, T_in, V, M) with per-clip windows → (B, C, frames, V, M).

    The window of clip b is frames [starts[b], starts[b] + lengths[b]) (it must lie inside T_in).
    ``out`` (optional, contiguous, (B, C, frames, V, M)) receives the result.
    """
    b, c, t_in, v, m = x.shape
    device = x.device
    if out is None:
        out = torch.empty((b, c, frames, v, m), dtype=x.dtype, device=device)
    if b == 0:
        return out
    lo, hi, lam = source_positions(lengths.to(device), frames, starts)
    src = x.contiguous().view(b * c * t_in, v * m)
    dst = out.view(b * c * frames, v * m)
    # row of (clip, channel, frame) in src: (clip·C + channel)·T_in + frame
    base = (torch.arange(b, device=device) * c)[:, None] + torch.arange(c, device=device)[None]
    base = (base * t_in)[:, :, None]  # (B, C, 1)
    weights = torch.stack([1 - lam, lam], dim=-1).to(x.dtype)  # (B, frames, 2)
    pos = torch.stack([lo, hi], dim=-1)  # (B, frames, 2)
    step = max(1, _CHUNK_ROWS // (c * frames))
    for s in range(0, b, step):
        e = min(b, s + step)
        rows = (base[s:e, :, :, None] + pos[s:e, None]).reshape(-1, 2)  # (n·C·frames, 2)
        w = weights[s:e, None].expand(e - s, c, frames, 2).reshape(-1, 2)
        dst[s * c * frames:e * c * frames] = F.embedding_bag(rows, src, mode="sum", per_sample_weights=w)
    return out
