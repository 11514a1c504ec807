"""USDRL's cross-correlation term XC (docs/reference/usdrl.md §8).

XC(a, b) = Σ_i (c_ii − 1)² + 0.005·Σ_{i≠j} c_ij², c = âᵀb̂/B, standardised with the unbiased std
and NO epsilon (a constant feature gives NaN, as in the reference). Full precision
(:mod:`._precision`); the B×B Gram form when B < D (:mod:`._gram`), where
:func:`cross_correlation_pairs` standardises each view and makes its Gram once for all its pairs.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ._gram import _offdiag_sq_sum, _use_gram
from ._precision import _full_precision, _up

__all__ = ["cross_correlation", "cross_correlation_pairs"]


def cross_correlation(a: torch.Tensor, b: torch.Tensor, offdiag_weight: float = 0.005) -> torch.Tensor:
    """XC(a, b) = Σ_i (c_ii − 1)² + offdiag_weight·Σ_{i≠j} c_ij², c = âᵀb̂/B (unbiased std, no eps)."""
    with _full_precision(a):
        a, b = _up(a), _up(b)
        n, d = a.shape
        an, bn = _standardise(a), _standardise(b)
        if _use_gram(n, d):
            return _xc_gram(an, bn, an @ an.T, bn @ bn.T, offdiag_weight)
        c = an.T @ bn / n
        on = (torch.diagonal(c) - 1).pow(2).sum()
        return on + offdiag_weight * _offdiag_sq_sum(c)


def cross_correlation_pairs(zs: Sequence[torch.Tensor], pairs: Sequence[tuple[int, int]],
                            offdiag_weight: float = 0.005) -> torch.Tensor:
    """Σ over view pairs (p, q) of XC(zs[p], zs[q]); in the Gram form each view is standardised and
    its Gram made once."""
    n, d = zs[0].shape
    if not _use_gram(n, d):
        return sum(cross_correlation(zs[p], zs[q], offdiag_weight) for p, q in pairs)
    with _full_precision(zs[0]):
        std = [_standardise(_up(z)) for z in zs]
        grams = [s @ s.T for s in std]
        return sum(_xc_gram(std[p], std[q], grams[p], grams[q], offdiag_weight) for p, q in pairs)


def _standardise(a: torch.Tensor) -> torch.Tensor:
    """(a − mean) / unbiased std per column, no epsilon."""
    return (a - a.mean(dim=0)) / a.std(dim=0, unbiased=True)


def _xc_gram(an: torch.Tensor, bn: torch.Tensor, ga: torch.Tensor, gb: torch.Tensor,
             offdiag_weight: float) -> torch.Tensor:
    """XC from standardised views and their Grams ga = ân·ânᵀ, gb = b̂n·b̂nᵀ (B×B):
    Σ_ij c_ij² = Σ_ab ga_ab·gb_ab / B², c_ii = Σ_b ân_bi·b̂n_bi / B."""
    n = an.shape[0]
    diag = (an * bn).sum(dim=0) / n
    on = (diag - 1).pow(2).sum()
    off = (ga * gb).sum() / n ** 2 - diag.pow(2).sum()
    return on + offdiag_weight * off
