"""VICReg's objective (Bardes, Ponce and LeCun, ICLR 2022) from the shared terms of :mod:`.vicreg_terms`.

L = λ·s(Z, Z') + μ·[v(Z) + v(Z')] + ν·[c(Z) + c(Z')] with λ = μ = 25, ν = 1 (the paper's defaults);
methods/vicreg.py documents the method around it.
"""

from __future__ import annotations

import torch

from harness.errors import HarnessError

from .vicreg_terms import covariance_term, mse, variance_term

__all__ = ["vicreg_loss"]


def vicreg_loss(z_a: torch.Tensor, z_b: torch.Tensor, *, sim_weight: float = 25.0, variance_weight: float = 25.0,
                covariance_weight: float = 1.0, variance_target: float = 1.0,
                variance_eps: float = 1e-4) -> dict[str, torch.Tensor]:
    """The VICReg objective of two (B, D) projections: {"loss", "invariance", "variance", "covariance"}."""
    if z_a.dim() != 2 or z_a.shape != z_b.shape:
        raise HarnessError(f"VICReg needs two (B, D) projections of one shape, got {tuple(z_a.shape)} and "
                           f"{tuple(z_b.shape)}")
    if z_a.shape[0] < 2:
        raise HarnessError(f"VICReg's variance and covariance need a batch of at least 2, got {z_a.shape[0]}")
    invariance = mse(z_a, z_b)
    variance = (variance_term(z_a, variance_target, variance_eps)
                + variance_term(z_b, variance_target, variance_eps))
    covariance = covariance_term(z_a) + covariance_term(z_b)
    loss = sim_weight * invariance + variance_weight * variance + covariance_weight * covariance
    return {"loss": loss, "invariance": invariance, "variance": variance, "covariance": covariance}
