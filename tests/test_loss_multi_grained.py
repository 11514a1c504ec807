"""USDRL's multi-grained loss (methods/losses/multi_grained.py) against an independent loop implementation
(docs/reference/usdrl.md §8): weights, switches, view counts, gradients, precision under autocast."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from harness.methods.losses import multi_grained as L

pytestmark = [pytest.mark.parity, pytest.mark.unit, pytest.mark.usefixtures("one_thread")]


# --- the combination against an independent loop implementation ----------------------------

def _np(z):
    return z.detach().double().numpy()


def ref_var(z):
    b, d = z.shape
    out = 0.0
    for j in range(d):
        m = sum(z[i, j] for i in range(b)) / b
        var = sum((z[i, j] - m) ** 2 for i in range(b)) / (b - 1)
        out += max(0.0, 1.0 - math.sqrt(var + 1e-4))
    return out / d


def ref_cov(z):
    b, d = z.shape
    m = [sum(z[i, j] for i in range(b)) / b for j in range(d)]
    s = 0.0
    for p in range(d):
        for q in range(d):
            if p != q:
                c = sum((z[i, p] - m[p]) * (z[i, q] - m[q]) for i in range(b)) / (b - 1)
                s += c * c
    return s / d


def ref_xc(a, b):
    n, d = a.shape

    def standardise(z):
        out = np.empty_like(z)
        for j in range(d):
            m = sum(z[i, j] for i in range(n)) / n
            sd = math.sqrt(sum((z[i, j] - m) ** 2 for i in range(n)) / (n - 1))
            for i in range(n):
                out[i, j] = (z[i, j] - m) / sd
        return out

    ah, bh = standardise(a), standardise(b)
    s = 0.0
    for p in range(d):
        for q in range(d):
            c = sum(ah[i, p] * bh[i, q] for i in range(n)) / n
            s += (c - 1) ** 2 if p == q else 0.005 * c * c
    return s


def ref_mse(a, b):
    return float(np.mean([(x - y) ** 2 for x, y in zip(a.ravel(), b.ravel())]))


def ref_sim(zs):
    anchor, others = zs[-1], zs[:-1]
    cent = sum(others) / len(others)
    return sum(ref_mse(z, anchor) for z in others) + sum(ref_mse(z, cent) for z in others)


def ref_total(zi, zt, zs, w_dom=0.5, use_vac=True, use_xc=True):
    sim = vacs = xcs = 0.0
    k = len(zi)
    for zz, w in ((zi, 1.0), (zt, w_dom), (zs, w_dom)):
        sim += w * ref_sim(zz)
        if use_vac:
            vacs += w * sum(5 * ref_var(z) + ref_cov(z) for z in zz)
        if use_xc:
            xcs += w * sum(ref_xc(zz[p], zz[q]) for p in range(k) for q in range(p + 1, k))
    return 5 * sim + 1.0 * vacs + 1e-3 * xcs, sim, vacs, xcs


def _views(k, b, d, gen, scale=0.7, dtype=torch.float64):
    # std around 0.7 keeps the variance hinge active on most columns
    return [(torch.randn(b, d, generator=gen, dtype=torch.float64) * scale).to(dtype) for _ in range(k)]


@pytest.mark.parametrize("dtype,rel", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_combination_k4_matches_loops(dtype, rel):
    g = torch.Generator().manual_seed(0)
    zi, zt, zs = _views(4, 5, 6, g, dtype=dtype), _views(4, 5, 4, g, dtype=dtype), _views(4, 5, 4, g, dtype=dtype)
    out = L.multi_grained_loss(zi, zt, zs)
    total, sim, vacs, xcs = ref_total([_np(z) for z in zi], [_np(z) for z in zt], [_np(z) for z in zs])
    assert out["loss"].item() == pytest.approx(total, rel=rel)
    assert out["sim"].item() == pytest.approx(sim, rel=rel)
    assert out["vac"].item() == pytest.approx(vacs, rel=rel)
    assert out["xc"].item() == pytest.approx(xcs, rel=rel)
    # per-domain parts are unweighted sums
    n = [_np(z) for z in zi]
    assert out["sim_i"].item() == pytest.approx(ref_sim(n), rel=rel)
    assert out["vac_i"].item() == pytest.approx(sum(5 * ref_var(z) + ref_cov(z) for z in n), rel=rel)
    nt = [_np(z) for z in zt]
    assert out["xc_t"].item() == pytest.approx(
        sum(ref_xc(nt[p], nt[q]) for p, q in itertools.combinations(range(4), 2)), rel=rel)
    assert out["loss"].dtype == (torch.float64 if dtype == torch.float64 else torch.float32)


def test_combination_switches_and_other_k():
    g = torch.Generator().manual_seed(1)
    zi, zt, zs = _views(3, 6, 4, g), _views(3, 6, 3, g), _views(3, 6, 3, g)
    n = lambda zz: [_np(z) for z in zz]  # noqa: E731
    keys = None
    for use_vac, use_xc in ((True, False), (False, True), (False, False)):
        out = L.multi_grained_loss(zi, zt, zs, use_vac=use_vac, use_xc=use_xc)
        total, *_ = ref_total(n(zi), n(zt), n(zs), use_vac=use_vac, use_xc=use_xc)
        assert out["loss"].item() == pytest.approx(total, rel=1e-10)
        if not use_vac:
            assert all(out[k].item() == 0.0 for k in ("vac", "vac_i", "vac_t", "vac_s"))
        if not use_xc:
            assert all(out[k].item() == 0.0 for k in ("xc", "xc_i", "xc_t", "xc_s"))
        keys = keys or set(out)
        assert set(out) == keys
    # single-grained: domain weight 0 skips the temporal and spatial domains entirely
    out = L.multi_grained_loss(zi, zt, zs, temporal_weight=0.0, spatial_weight=0.0)
    total, *_ = ref_total(n(zi), n(zt), n(zs), w_dom=0.0)
    assert out["loss"].item() == pytest.approx(total, rel=1e-10)
    assert all(out[f"{p}_{d}"].item() == 0.0 for p in ("sim", "vac", "xc") for d in "ts")
    assert out["sim_i"].item() > 0 and out["vac_i"].item() > 0 and out["xc_i"].item() > 0
    out2 = L.multi_grained_loss(zi)  # no t/s lists at all: the same
    assert out2["loss"].item() == pytest.approx(out["loss"].item(), rel=1e-12)
    assert set(out2) == keys


def test_combination_global_weights():
    g = torch.Generator().manual_seed(2)
    zi, zt, zs = _views(4, 4, 3, g), _views(4, 4, 3, g), _views(4, 4, 3, g)
    base = L.multi_grained_loss(zi, zt, zs)
    out = L.multi_grained_loss(zi, zt, zs, sim_weight=2.0, vac_weight=3.0, xc_weight=0.5)
    expected = 2 * base["sim"] + 3 * base["vac"] + 0.5 * base["xc"]
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-12)


def test_combination_rejects_bad_view_counts():
    g = torch.Generator().manual_seed(3)
    with pytest.raises(ValueError):
        L.multi_grained_loss(_views(1, 4, 3, g))
    with pytest.raises(ValueError):
        L.multi_grained_loss(_views(4, 4, 3, g), _views(3, 4, 3, g))


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(4)
    zs = [z.requires_grad_() for z in _views(9, 4, 3, g)]

    def f(*z):
        return L.multi_grained_loss(list(z[0:3]), list(z[3:6]), list(z[6:9]))["loss"]

    # the variance hinge kinks where std = 1: make sure no column is near it
    for z in zs:
        assert (z.detach().std(0) - 1).abs().min() > 1e-3
    assert torch.autograd.gradcheck(f, tuple(zs), eps=1e-6, atol=1e-6)


def test_float32_under_autocast():
    g = torch.Generator().manual_seed(5)
    zi, zt, zs = (_views(4, 8, 6, g, dtype=torch.float32) for _ in range(3))
    low = [[z.bfloat16() for z in zz] for zz in (zi, zt, zs)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = L.multi_grained_loss(*low)
        # the D×D products must not run in bf16: the same as the fp32 computation on the upcast inputs
    ref = L.multi_grained_loss(*[[z.float() for z in zz] for zz in low])
    assert out["loss"].dtype == torch.float32
    for k in ref:
        assert out[k].dtype == torch.float32
        assert out[k].item() == pytest.approx(ref[k].item(), rel=1e-6, abs=1e-7)
