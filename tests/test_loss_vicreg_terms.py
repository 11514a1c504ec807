"""The VICReg-style terms (methods/losses/vicreg_terms.py: mse, variance, covariance, VAC) against values
computed by hand (docs/reference/usdrl.md §8)."""

from __future__ import annotations

import math

import pytest
import torch

from harness.methods.losses import vicreg_terms as L

pytestmark = [pytest.mark.parity, pytest.mark.unit, pytest.mark.usefixtures("one_thread")]


def t(rows, dtype=torch.float64):
    return torch.tensor(rows, dtype=dtype)


def test_mse_is_elementwise_mean():
    a = t([[1.0, 2.0], [3.0, 4.0]])
    b = t([[0.0, 0.0], [1.0, 1.0]])
    # (1 + 4 + 4 + 9) / 4
    assert L.mse(a, b).item() == pytest.approx(18 / 4)


Z_VAC = [[0.1, 2.0], [0.3, 0.0], [0.5, 4.0]]  # B = 3, D = 2


def test_variance_term_by_hand():
    # column 0: deviations (−0.2, 0, 0.2) → unbiased var 0.08/2 = 0.04, std sqrt(0.0401) < 1
    # column 1: deviations (0, −2, 2) → var 8/2 = 4, std > 1 → hinge 0
    expected = ((1 - math.sqrt(0.04 + 1e-4)) + 0.0) / 2
    assert L.variance_term(t(Z_VAC)).item() == pytest.approx(expected, rel=1e-12)
    # target and eps are parameters
    expected3 = ((3 - math.sqrt(0.04 + 0.01)) + (3 - math.sqrt(4 + 0.01))) / 2
    assert L.variance_term(t(Z_VAC), target=3.0, eps=0.01).item() == pytest.approx(expected3, rel=1e-12)


def test_covariance_term_by_hand():
    # C_01 = ((−0.2)(0) + (0)(−2) + (0.2)(2)) / 2 = 0.2 ; Σ_{i≠j} C² = 2·0.04 ; / D = 2
    assert L.covariance_term(t(Z_VAC)).item() == pytest.approx(0.04, rel=1e-12)


def test_vac_weights():
    v = (1 - math.sqrt(0.0401)) / 2
    assert L.vac(t(Z_VAC)).item() == pytest.approx(5 * v + 0.04, rel=1e-12)
    assert L.vac(t(Z_VAC), variance_weight=2.0, covariance_weight=3.0).item() == pytest.approx(2 * v + 3 * 0.04)
