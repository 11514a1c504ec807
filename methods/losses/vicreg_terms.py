"""The VICReg-style terms of one or two projections (docs/reference/usdrl.md §8; VICReg, USDRL, UmURL).

Pure functions of projector outputs z ∈ R^{B×D} (rows = samples), computed in full precision
(:mod:`._precision`); reference constants as defaults:

- :func:`mse` — element-wise mean of (a − b)² over B·D (the invariance term);
- :func:`variance_term` — mean_j ReLU(γ − sqrt(Var_unbiased(z[:, j]) + ε)), γ = 1, ε = 1e-4;
- :func:`covariance_term` — (1/D) Σ_{i≠j} C_ij², C the unbiased covariance (Gram form when B < D);
- :func:`vac` — USDRL's VAC of one view: 5·variance + 1·covariance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._gram import _offdiag_sq_sum, _use_gram
from ._precision import _full_precision, _up

__all__ = ["mse", "variance_term", "covariance_term", "vac"]


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Element-wise mean squared error over all B·D entries (F.mse_loss, reduction mean)."""
    with _full_precision(a):
        return F.mse_loss(_up(a), _up(b))


def variance_term(z: torch.Tensor, target: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """mean_j ReLU(target − sqrt(Var_unbiased(z[:, j]) + eps)) (the VICReg hinge on the std)."""
    with _full_precision(z):
        z = _up(z)
        std = torch.sqrt(z.var(dim=0, unbiased=True) + eps)
        return F.relu(target - std).mean()


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """(1/D) Σ_{i≠j} C_ij² with C = (z − z̄)ᵀ(z − z̄)/(B − 1)."""
    with _full_precision(z):
        z = _up(z)
        b, d = z.shape
        zc = z - z.mean(dim=0)
        if _use_gram(b, d):  # Σ_ij C_ij² = ‖zc·zcᵀ‖² / (B − 1)², C_ii = Σ_b zc_bi² / (B − 1)
            total = (zc @ zc.T).pow(2).sum()
            diag = zc.pow(2).sum(dim=0).pow(2).sum()
            return (total - diag) / ((b - 1) ** 2 * d)
        cov = zc.T @ zc / (b - 1)
        return _offdiag_sq_sum(cov) / d


def vac(z: torch.Tensor, variance_weight: float = 5.0, covariance_weight: float = 1.0,
        target: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """Variance + auto-covariance of one view: 5·variance_term + 1·covariance_term."""
    return variance_weight * variance_term(z, target, eps) + covariance_weight * covariance_term(z)
