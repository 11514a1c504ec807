"""The cross-correlation term XC (methods/losses/cross_correlation_term.py) against values computed by hand
(docs/reference/usdrl.md §8); its Gram form against the D×D form is in tests/test_speed_paths.py."""

from __future__ import annotations

import math

import pytest
import torch

from harness.methods.losses import cross_correlation_term as L

pytestmark = [pytest.mark.parity, pytest.mark.unit, pytest.mark.usefixtures("one_thread")]


def t(rows, dtype=torch.float64):
    return torch.tensor(rows, dtype=dtype)


def test_cross_correlation_by_hand():
    a = t([[1.0, 2.0], [3.0, 0.0], [5.0, 4.0]])
    b = t([[0.0, 3.0], [1.0, 3.0], [2.0, 0.0]])
    # â: col0 (−2, 0, 2)/2, col1 (0, −2, 2)/2 (unbiased std 2)
    # b̂: col0 (−1, 0, 1)/1, col1 (1, 1, −2)/sqrt(3)   (unbiased var (1 + 1 + 4)/2 = 3)
    r3 = math.sqrt(3)
    c00 = (1 + 0 + 1) / 3
    c01 = (-1 * 1 + 0 * 1 + 1 * -2) / r3 / 3
    c10 = (0 * -1 + -1 * 0 + 1 * 1) / 3
    c11 = (0 * 1 + -1 * 1 + 1 * -2) / r3 / 3
    expected = (c00 - 1) ** 2 + (c11 - 1) ** 2 + 0.005 * (c01 ** 2 + c10 ** 2)
    assert L.cross_correlation(a, b).item() == pytest.approx(expected, rel=1e-12)
    expected_w = (c00 - 1) ** 2 + (c11 - 1) ** 2 + 0.5 * (c01 ** 2 + c10 ** 2)
    assert L.cross_correlation(a, b, offdiag_weight=0.5).item() == pytest.approx(expected_w, rel=1e-12)


def test_cross_correlation_has_no_epsilon():
    a = t([[1.0, 2.0], [1.0, 0.0], [1.0, 4.0]])  # constant column: std 0 → NaN, as the reference
    assert torch.isnan(L.cross_correlation(a, a))
