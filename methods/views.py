"""View recipes and encoder helpers shared by several methods (not a method: nothing is registered here).

- :func:`usdrl_views` — USDRL's pretraining views (docs/reference/usdrl.md §9), which UmURL, MoCo-v2
  (``contrastive``), VICReg and the example plugin reuse so that comparisons differ in the objective,
  not in the augmentation.
- :func:`token_width` — the width of an encoder's dense tokens, which sizes the temporal/spatial
  projectors of USDRL and SCD-Net.

They live apart from ``usdrl.py`` so that a method depending on the recipe does not import another
method; ``harness.methods.usdrl`` re-exports both for older imports.
"""

from __future__ import annotations

import torch

from harness.augment import DEFAULT_POOL, Compose, CropResize, HostBufferPool, CorruptOrShear
from harness.contracts import Encoder

__all__ = ["usdrl_views", "token_width"]


def usdrl_views(x: torch.Tensor, lengths: torch.Tensor, num_views: int = 4, frames: int = 64,
                generator: torch.Generator | None = None, *, ratio: tuple[float, float] = (0.1, 1.0),
                count: int | None = None, pool: HostBufferPool | None = DEFAULT_POOL) -> list[torch.Tensor]:
    """USDRL's pretraining views (docs/reference/usdrl.md §9): ``num_views`` independent crop-resizes to ``frames``
    (scale U(0.1, 1)), each then joint corruption or shear; (B, 3, frames, V, M) each. UmURL, MoCo and
    VICReg use the same recipe."""
    pipeline = Compose(CropResize(frames, ratio), CorruptOrShear(count=count))
    return pipeline.views(x, lengths, num_views, generator, pool=pool)


def token_width(encoder: Encoder) -> int:
    """Width of an encoder's dense tokens (``token_dim``; else its pooled width)."""
    return int(getattr(encoder, "token_dim", 0) or encoder.feature_dim)
