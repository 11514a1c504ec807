"""Feature-decorrelation loss terms shared by USDRL and UmURL (docs/reference/usdrl.md §8, docs/reference/methods.md §2).

Every term is a pure function of projector outputs z ∈ R^{B×D} (rows = samples). All of them
compute in float32 (float64 inputs stay float64, for gradcheck) with autocast disabled, whatever
precision the projectors ran in: the reference's MSE runs in fp32 under fp16 autocast, and the
D×D products are the numerically fragile part, so we keep them in fp32 too (the reference runs
those in fp16; docs/reference/usdrl.md §8 "Numerics").

Terms (reference constants as defaults):

- :func:`mse` — element-wise mean of (a − b)² over B·D.
- :func:`similarity` — S(z^0..z^{K−1}) = Σ_{k<K−1} MSE(z^k, z^{K−1}) + Σ_{k<K−1} MSE(z^k, c),
  c = mean(z^0..z^{K−2}); the last view is the anchor, nothing is detached.
- :func:`variance_term` — mean_j ReLU(γ − sqrt(Var_unbiased(z[:, j]) + ε)), γ = 1, ε = 1e-4.
- :func:`covariance_term` — (1/D) Σ_{i≠j} C_ij², C the unbiased covariance.
- :func:`vac` — 5·variance + 1·covariance.
- :func:`cross_correlation` — XC(a, b) = Σ_i (c_ii − 1)² + 0.005·Σ_{i≠j} c_ij², c = âᵀb̂/B,
  standardised with the unbiased std and NO epsilon (a constant feature gives NaN, as in the
  reference).
- :func:`multi_grained_loss` — the USDRL combination over K views and the instance, temporal and
  spatial domains: LOSS = 5·SIM + 1·VAC + 1e-3·XC with per-domain weights 1 / 0.5 / 0.5.

The reference asserts K = 4 views; here any K ≥ 2 is accepted (K = 4 reproduces it exactly).

**Gram form.** With fewer samples than features (B < D, the usual case: the paper has B = 356 on one
GPU and D = 2048/4096) the D×D sums are computed from B×B Gram matrices, which is the same sum in a
different order: Σ_ij (XᵀY)_ij² = Σ_ab (XXᵀ)_ab·(YYᵀ)_ab and (XᵀY)_ii = Σ_b X_bi·Y_bi. It costs
O(B²·D) instead of O(B·D²) FLOPs and B×B instead of D×D memory; in :func:`multi_grained_loss` each
view's Gram is made once and shared by its K − 1 cross-correlation pairs. The values agree with the
D×D form up to float rounding (tests/test_speed_paths.py pins 1e-5 relative in float32); with
B ≥ D the D×D form is used as before.
"""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

__all__ = ["mse", "similarity", "variance_term", "covariance_term", "vac", "cross_correlation",
           "multi_grained_loss", "DOMAINS"]

DOMAINS = ("i", "t", "s")  # instance, temporal, spatial


def _up(z: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 (or any non-float64 dtype) → float32; float64 stays float64."""
    return z if z.dtype == torch.float64 else z.float()


@contextmanager
def _full_precision(z: torch.Tensor) -> Iterator[None]:
    """Disable autocast on z's device so matmuls really run in the (upcast) input dtype."""
    with torch.autocast(device_type=z.device.type, enabled=False):
        yield


def _offdiag_sq_sum(m: torch.Tensor) -> torch.Tensor:
    """Σ_{i≠j} m_ij² for a square matrix."""
    return m.pow(2).sum() - torch.diagonal(m).pow(2).sum()


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Element-wise mean squared error over all B·D entries (F.mse_loss, reduction mean)."""
    with _full_precision(a):
        return F.mse_loss(_up(a), _up(b))


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


def _use_gram(b: int, d: int) -> bool:
    """The B×B (Gram) form of the D×D sums: fewer FLOPs and less memory when B < D."""
    return b < d


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


def _xc_pairs(zs: Sequence[torch.Tensor], pairs: Sequence[tuple[int, int]],
              offdiag_weight: float) -> torch.Tensor:
    """Σ over view pairs of XC; in the Gram form each view is standardised and its Gram made once."""
    n, d = zs[0].shape
    if not _use_gram(n, d):
        return sum(cross_correlation(zs[p], zs[q], offdiag_weight) for p, q in pairs)
    with _full_precision(zs[0]):
        std = [_standardise(_up(z)) for z in zs]
        grams = [s @ s.T for s in std]
        return sum(_xc_gram(std[p], std[q], grams[p], grams[q], offdiag_weight) for p, q in pairs)


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
                parts["xc"] = _xc_pairs(zs, pairs, offdiag_weight)
            for name in totals:
                totals[name] = totals[name] + w * parts[name]
        for name, value in parts.items():
            out[f"{name}_{d}"] = value
    out.update(totals)
    out["loss"] = sim_weight * totals["sim"] + vac_weight * totals["vac"] + xc_weight * totals["xc"]
    return out
