"""VICReg's objective (methods/losses/vicreg_objective.py: vicreg_loss) pinned by hand: the terms, the
weights, a constant dimension, bad shapes and the gradients."""

from __future__ import annotations

import math

import pytest
import torch

from harness.errors import HarnessError
from harness.methods.losses.vicreg_objective import vicreg_loss
from vicreg_reference import Z, ZP, covariance as _covariance, invariance as _invariance, variance as _variance

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_thread")]


def test_loss_terms_hand_checked():
    out = vicreg_loss(torch.tensor(Z), torch.tensor(ZP))
    assert set(out) == {"loss", "invariance", "variance", "covariance"}
    s = _invariance(Z, ZP)
    v = _variance(Z) + _variance(ZP)
    c = _covariance(Z) + _covariance(ZP)
    assert out["invariance"].item() == pytest.approx(s, rel=1e-6)
    assert out["variance"].item() == pytest.approx(v, rel=1e-6)
    assert out["covariance"].item() == pytest.approx(c, rel=1e-6)
    assert out["loss"].item() == pytest.approx(25 * s + 25 * v + c, rel=1e-6)
    # the same numbers in closed form, worked out on paper from the values above
    assert s == pytest.approx(1.7 / 6)  # squared differences 1, 0, 0, 0.09, 0.25, 0.36 over 6 entries
    assert _variance(Z) == pytest.approx(1 - math.sqrt(0.2501))
    assert _variance(ZP) == pytest.approx((0 + 1 - math.sqrt(0.0401)) / 2)
    assert _covariance(Z) == pytest.approx(2 * 0.125 ** 2 / 2) and _covariance(ZP) == pytest.approx(2 * 0.1 ** 2 / 2)
    assert out["loss"].item() == pytest.approx(29.603335534, rel=1e-6)
    # the weights and γ are honoured; ν = 0 removes the covariance, λ = 0 the invariance
    w = vicreg_loss(torch.tensor(Z), torch.tensor(ZP), sim_weight=0.0, variance_weight=2.0, covariance_weight=0.0,
                    variance_target=2.0)
    assert w["loss"].item() == pytest.approx(2 * (_variance(Z, 2.0) + _variance(ZP, 2.0)), rel=1e-6)


def test_variance_eps_keeps_a_constant_dimension_finite():
    z = torch.tensor([[0.3, 1.0], [0.3, -1.0], [0.3, 0.0]], requires_grad=True)
    out = vicreg_loss(z, z.detach().clone())
    # column 0 is constant: std = sqrt(ε) = 0.01 → hinge 0.99; column 1 has variance 1 → hinge 0
    assert out["variance"].item() == pytest.approx((0.99 + 0.0) / 2 * 2, rel=1e-6)
    assert out["covariance"].item() == 0.0 and out["invariance"].item() == 0.0
    out["loss"].backward()
    assert torch.isfinite(z.grad).all()


def test_bad_shapes_are_refused():
    with pytest.raises(HarnessError, match="one shape"):
        vicreg_loss(torch.zeros(3, 2), torch.zeros(3, 4))
    with pytest.raises(HarnessError, match="at least 2"):
        vicreg_loss(torch.zeros(1, 2), torch.zeros(1, 2))


def test_gradient_reaches_both_branches():
    a = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(ZP, dtype=torch.float64, requires_grad=True)
    vicreg_loss(a, b, variance_weight=0.0, covariance_weight=0.0)["loss"].backward()
    want = 25 * 2 * (a.detach() - b.detach()) / 6  # d(λ·MSE)/dZ; nothing is detached: −that for Z'
    assert torch.allclose(a.grad, want) and torch.allclose(b.grad, -want)
    assert torch.autograd.gradcheck(lambda x, y: vicreg_loss(x, y)["loss"], (a, b))
