"""Feature statistics that tell a collapsed representation from a healthy one.

On features X (N × D) of an evaluation split:

- ``eff_rank``: the effective rank exp(H(p)), H the entropy of p_k = σ_k / Σσ, σ the singular values
  of the centred X (1 for a single direction, D for an isotropic cloud; RankMe, Garrido et al. 2023);
- ``top1_share``: σ_1² / Σσ², the share of the variance in the first principal direction;
- ``mean_cos``: the mean cosine similarity over all pairs of distinct samples (uncentred): 1 when
  every sample points the same way;
- ``mean_std``: the mean over dimensions of the standard deviation of the L2-normalised features
  (1/√D for an isotropic cloud, 0 for a constant one), the collapse measure of the SimSiam paper.

:func:`collapsed` is the rule ``harness run`` warns with: most of the variance in one direction, or an
effective rank below 2.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

COLLAPSE_TOP1_SHARE = 0.9
COLLAPSE_EFF_RANK = 2.0


@torch.no_grad()
def feature_statistics(x: torch.Tensor) -> dict[str, float]:
    x = x.detach().double()
    n, d = x.shape
    if n < 2:
        raise ValueError(f"feature statistics need at least 2 samples, got {n}")
    sv = torch.linalg.svdvals(x - x.mean(0))
    total = float(sv.sum())
    if total <= 0:  # every sample identical
        eff_rank, top1 = 0.0, 1.0
    else:
        p = sv / total
        p = p[p > 0]
        eff_rank = math.exp(float(-(p * p.log()).sum()))
        top1 = float(sv[0] ** 2 / (sv ** 2).sum())
    xn = F.normalize(x, dim=1)
    s = xn.sum(0)
    mean_cos = (float(s @ s) - float((xn * xn).sum())) / (n * (n - 1))
    return {"eff_rank": eff_rank, "top1_share": top1, "mean_cos": mean_cos,
            "mean_std": float(xn.std(0, unbiased=True).mean()), "dims": float(d)}


def collapsed(stats: dict[str, float]) -> bool:
    return stats["top1_share"] >= COLLAPSE_TOP1_SHARE or stats["eff_rank"] < COLLAPSE_EFF_RANK
