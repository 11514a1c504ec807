"""UmURL's objective (methods/losses/umurl_objective.py: umurl_loss) against a plain-Python reference on
hand-made projections (docs/reference/methods.md §2)."""

from __future__ import annotations

import math

import pytest
import torch

from harness.methods.losses.umurl_objective import umurl_loss

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_thread")]


# --- plain-Python reference of the loss -------------------------------------------------------------

def _mse(a, b):
    return sum((x - y) ** 2 for ra, rb in zip(a, b) for x, y in zip(ra, rb)) / (len(a) * len(a[0]))


def _vac(z):
    n, d = len(z), len(z[0])
    means = [sum(r[j] for r in z) / n for j in range(d)]
    var = [sum((r[j] - means[j]) ** 2 for r in z) / (n - 1) for j in range(d)]
    v = sum(max(0.0, 1 - math.sqrt(s + 1e-4)) for s in var) / d
    cov = sum(sum((r[i] - means[i]) * (r[j] - means[j]) for r in z) ** 2 / (n - 1) ** 2
              for i in range(d) for j in range(d) if i != j)
    return 5 * v + cov / d


@pytest.mark.parity
def test_loss_hand_checked():
    zs = {
        "z_j": [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]],
        "z_b": [[0.0, 0.2], [0.4, 0.0], [1.0, 1.0]],
        "z_m": [[2.0, 1.0], [0.0, 0.0], [0.0, -1.0]],
        "z_uj": [[1.0, 1.0], [0.0, 1.0], [0.5, 0.0]],
        "z_ub": [[0.0, 0.0], [0.4, 0.4], [1.0, 2.0]],
        "z_um": [[1.0, 1.0], [0.0, 1.0], [0.0, -2.0]],
    }
    out = umurl_loss(*(torch.tensor(zs[k]) for k in ("z_j", "z_b", "z_m", "z_uj", "z_ub", "z_um")))
    intra = _mse(zs["z_j"], zs["z_uj"]) + _mse(zs["z_b"], zs["z_ub"]) + _mse(zs["z_m"], zs["z_um"])
    center = [[(a + b + c) / 3 for a, b, c in zip(ra, rb, rc)] for ra, rb, rc in zip(zs["z_j"], zs["z_b"], zs["z_m"])]
    inter = sum(_mse(zs[k], center) for k in ("z_j", "z_b", "z_m"))
    reg = sum(_vac(z) for z in zs.values())
    assert out["intra"].item() == pytest.approx(intra, rel=1e-6)
    assert out["inter"].item() == pytest.approx(inter, rel=1e-6)
    assert out["vac"].item() == pytest.approx(reg, rel=1e-5)
    assert out["loss"].item() == pytest.approx(5 * (intra + inter) + reg, rel=1e-5)
    # a second, simpler check of intra by hand: z_j vs z_uj differs in 2 of 6 entries by 1 and 0.5
    assert _mse(zs["z_j"], zs["z_uj"]) == pytest.approx((1 + 0.25) / 6)
