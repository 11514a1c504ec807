"""USDRL's multi-view similarity term (docs/reference/usdrl.md §8).

S(z^0..z^{K−1}) = Σ_{k<K−1} MSE(z^k, z^{K−1}) + Σ_{k<K−1} MSE(z^k, c), c = mean(z^0..z^{K−2}); the
last view is the anchor and nothing is detached. Full precision (:mod:`._precision`).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ._precision import _full_precision, _up

__all__ = ["similarity"]


def similarity(zs: Sequence[torch.Tensor]) -> torch.Tensor:
    """S(z^0..z^{K−1}): views 0..K−2 vs the anchor view K−1, plus views 0..K−2 vs their centroid.

    For K = 2 the centroid of the single non-anchor view is that view, so its part is 0.
    """
    k = len(zs)
    if k < 2:
        raise ValueError(f"similarity needs at least 2 views, got {k}")
    with _full_precision(zs[0]):
        zs = [_up(z) for z in zs]
        anchor, others = zs[-1], zs[:-1]
        centroid = torch.stack(others).mean(0)  # not detached
        total = sum(F.mse_loss(z, anchor) for z in others)
        total = total + sum(F.mse_loss(z, centroid) for z in others)
    return total
