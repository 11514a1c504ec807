"""UmURL's objective (docs/reference/methods.md §2; HuiGuanLab/UmURL @ 744278b ``umurl.py``)::

    intra = MSE(z_j, z_uj) + MSE(z_b, z_ub) + MSE(z_m, z_um)
    c = (z_j + z_b + z_m)/3;   inter = MSE(z_j, c) + MSE(z_b, c) + MSE(z_m, c)
    L = 5·(intra + inter) + Σ_{six projections} VAC(z)            (VAC = 5·variance + covariance)

from the terms of :mod:`.vicreg_terms`; methods/umurl.py documents the method around it.
"""

from __future__ import annotations

import torch

from .vicreg_terms import mse, vac

__all__ = ["umurl_loss"]


def umurl_loss(z_j: torch.Tensor, z_b: torch.Tensor, z_m: torch.Tensor, z_uj: torch.Tensor,
               z_ub: torch.Tensor, z_um: torch.Tensor, *, sim_weight: float = 5.0, vac_weight: float = 1.0,
               variance_weight: float = 5.0, covariance_weight: float = 1.0, variance_target: float = 1.0,
               variance_eps: float = 1e-4) -> dict[str, torch.Tensor]:
    """UmURL's loss from the six projections (uni-modal z_j, z_b, z_m; multi-modal z_u*).

    Computed in float32 (float64 stays float64) whatever precision the projectors ran in.
    """
    z_j, z_b, z_m, z_uj, z_ub, z_um = (z if z.dtype == torch.float64 else z.float()
                                       for z in (z_j, z_b, z_m, z_uj, z_ub, z_um))
    intra = mse(z_j, z_uj) + mse(z_b, z_ub) + mse(z_m, z_um)
    center = (z_j + z_b + z_m) / 3
    inter = mse(z_j, center) + mse(z_b, center) + mse(z_m, center)
    reg = sum(vac(z, variance_weight, covariance_weight, variance_target, variance_eps)
              for z in (z_j, z_b, z_m, z_uj, z_ub, z_um))
    return {"loss": sim_weight * (intra + inter) + vac_weight * reg, "intra": intra, "inter": inter,
            "vac": reg}
