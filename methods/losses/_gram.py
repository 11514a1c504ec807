"""The Gram form of the D×D sums (shared by the covariance and cross-correlation terms).

With fewer samples than features (B < D, the usual case: the paper has B = 356 on one GPU and
D = 2048/4096) the D×D sums are computed from B×B Gram matrices, which is the same sum in a
different order: Σ_ij (XᵀY)_ij² = Σ_ab (XXᵀ)_ab·(YYᵀ)_ab and (XᵀY)_ii = Σ_b X_bi·Y_bi. It costs
O(B²·D) instead of O(B·D²) FLOPs and B×B instead of D×D memory; in the multi-grained loss each
view's Gram is made once and shared by its K − 1 cross-correlation pairs. The values agree with the
D×D form up to float rounding (tests/test_speed_paths.py pins 1e-5 relative in float32); with
B ≥ D the D×D form is used.
"""

from __future__ import annotations

import torch


def _use_gram(b: int, d: int) -> bool:
    """The B×B (Gram) form of the D×D sums: fewer FLOPs and less memory when B < D."""
    return b < d


def _offdiag_sq_sum(m: torch.Tensor) -> torch.Tensor:
    """Σ_{i≠j} m_ij² for a square matrix."""
    return m.pow(2).sum() - torch.diagonal(m).pow(2).sum()
