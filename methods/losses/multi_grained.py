"""USDRL's multi-grained feature decorrelation loss (docs/reference/usdrl.md §8).

The combination over K views and the instance, temporal and spatial domains of the terms in
:mod:`.similarity_term`, :mod:`.vicreg_terms` (VAC) and :mod:`.cross_correlation_term` (XC):

    LOSS = 5·SIM + 1·VAC + 1e-3·XC,   each summed over domains with weights i 1, t 0.5, s 0.5

The reference asserts K = 4 views; here any K ≥ 2 is accepted (K = 4 reproduces it exactly).
"""

from __future__ import annotations

import itertools
from typing import Sequence

import torch

from .cross_correlation_term import cross_correlation_pairs
from .similarity_term import similarity
from .vicreg_terms import vac

__all__ = ["multi_grained_loss", "DOMAINS"]

DOMAINS = ("i", "t", "s")  # instance, temporal, spatial


def multi_grained_loss(z_i: Sequence[torch.Tensor], z_t: Sequence[torch.Tensor] | None = None,
                       z_s: Sequence[torch.Tensor] | None = None, *,
                       sim_weight: float = 5.0, vac_weight: float = 1.0, xc_weight: float = 1e-3,
                       instance_weight: float = 1.0, temporal_weight: float = 0.5,
                       spatial_weight: float = 0.5, variance_weight: float = 5.0,
                       covariance_weight: float = 1.0, variance_target: float = 1.0,
                       variance_eps: float = 1e-4, offdiag_weight: float = 0.005,
                       use_vac: bool = True, use_xc: bool = True) -> dict[str, torch.Tensor]:
    """USDRL's multi-grained feature decorrelation over K views (docs/reference/usdrl.md §8).

    ``z_i``, ``z_t``, ``z_s`` are the K projector outputs of the instance, temporal and spatial
    domains (each a list of (B, D_d) tensors, view K−1 the anchor). A domain whose list is None or
    whose weight is 0 is skipped (single-grained = instance only). Per domain d:

        sim_d = S(z_d^0..z_d^{K−1}),  vac_d = Σ_v VAC(z_d^v),  xc_d = Σ_{v<w} XC(z_d^v, z_d^w)

    and with w_i, w_t, w_s = instance/temporal/spatial weights (1, 0.5, 0.5):

        sim = Σ_d w_d·sim_d,  vac = Σ_d w_d·vac_d,  xc = Σ_d w_d·xc_d
        loss = sim_weight·sim + vac_weight·vac + xc_weight·xc          (5, 1, 1e-3)

    Returns every one of those names (``sim``, ``vac``, ``xc``, ``sim_i`` … ``xc_s``) plus the
    total under ``loss``. Disabled parts (``use_vac``/``use_xc`` False, skipped domains) are not
    computed and are reported as exact zeros, so the set of keys never changes.
    """
    groups = {"i": (z_i, instance_weight), "t": (z_t, temporal_weight), "s": (z_s, spatial_weight)}
    k = len(z_i)
    if k < 2:
        raise ValueError(f"multi-grained loss needs at least 2 views, got {k}")
    for name, (zs, _) in groups.items():
        if zs is not None and len(zs) != k:
            raise ValueError(f"domain {name!r} has {len(zs)} views, instance has {k}")
    ref = z_i[0]
    dev = ref.device
    dtype = torch.float64 if ref.dtype == torch.float64 else torch.float32
    zero = torch.zeros((), device=dev, dtype=dtype)
    out: dict[str, torch.Tensor] = {}
    totals = {"sim": zero, "vac": zero, "xc": zero}
    pairs = list(itertools.combinations(range(k), 2))
    for d, (zs, w) in groups.items():
        active = zs is not None and w != 0
        parts = {"sim": zero, "vac": zero, "xc": zero}
        if active:
            parts["sim"] = similarity(zs)
            if use_vac:
                parts["vac"] = sum(vac(z, variance_weight, covariance_weight, variance_target, variance_eps)
                                   for z in zs)
            if use_xc:
                parts["xc"] = cross_correlation_pairs(zs, pairs, offdiag_weight)
            for name in totals:
                totals[name] = totals[name] + w * parts[name]
        for name, value in parts.items():
            out[f"{name}_{d}"] = value
    out.update(totals)
    out["loss"] = sim_weight * totals["sim"] + vac_weight * totals["vac"] + xc_weight * totals["xc"]
    return out
