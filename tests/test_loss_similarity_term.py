"""USDRL's multi-view similarity term (methods/losses/similarity_term.py) against values computed by hand
(docs/reference/usdrl.md §8)."""

from __future__ import annotations

import pytest
import torch

from harness.methods.losses import similarity_term as L

pytestmark = [pytest.mark.parity, pytest.mark.unit, pytest.mark.usefixtures("one_thread")]


def t(rows, dtype=torch.float64):
    return torch.tensor(rows, dtype=dtype)


def test_similarity_k3_by_hand():
    # B = 2, D = 1; anchor z2 = 0. centroid of z0, z1 = [[2], [1]]
    z0, z1, z2 = t([[1.0], [2.0]]), t([[3.0], [0.0]]), t([[0.0], [0.0]])
    # MSE(z0, z2) = (1 + 4)/2, MSE(z1, z2) = (9 + 0)/2, MSE(z0, c) = (1 + 1)/2, MSE(z1, c) = (1 + 1)/2
    assert L.similarity([z0, z1, z2]).item() == pytest.approx(2.5 + 4.5 + 1.0 + 1.0)


def test_similarity_k4_by_hand():
    # B = 1, D = 2
    z = [t([[0.0, 0.0]]), t([[3.0, 0.0]]), t([[0.0, 6.0]]), t([[1.0, 1.0]])]
    # vs anchor (1, 1): (1 + 1)/2, (4 + 1)/2, (1 + 25)/2
    anchor = 1.0 + 2.5 + 13.0
    # centroid (1, 2): (1 + 4)/2, (4 + 4)/2, (1 + 16)/2
    cent = 2.5 + 4.0 + 8.5
    assert L.similarity(z).item() == pytest.approx(anchor + cent)


def test_similarity_k2_is_plain_mse_and_k1_rejected():
    a, b = t([[1.0, 3.0]]), t([[0.0, 1.0]])
    assert L.similarity([a, b]).item() == pytest.approx((1 + 4) / 2)
    with pytest.raises(ValueError):
        L.similarity([a])


def test_similarity_gradient_by_hand():
    # K = 3, B = D = 1: c = (z0 + z1)/2, so S = (z0−z2)² + (z1−z2)² + (z0−z1)²/2
    # (the gradient through the centroid sums to zero, so detaching it would not change this;
    # the anchor's own gradient shows that nothing is detached there)
    z = [torch.tensor([[v]], dtype=torch.float64, requires_grad=True) for v in (1.0, 4.0, 0.0)]
    L.similarity(z).backward()
    # dS/dz0 = 2(z0−z2) + (z0−z1) ; dS/dz1 = 2(z1−z2) + (z1−z0) ; dS/dz2 = −2(z0−z2) − 2(z1−z2)
    assert z[0].grad.item() == pytest.approx(2 * 1 + (1 - 4))
    assert z[1].grad.item() == pytest.approx(2 * 4 + (4 - 1))
    assert z[2].grad.item() == pytest.approx(-2 * 1 - 2 * 4)
