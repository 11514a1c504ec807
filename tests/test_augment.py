"""Batched augmentation (harness.augment, and USDRL's view recipe), resampling and modalities.

Exact tests on tiny tensors with known parameters, equivalence of the fused paths with the plain
step-by-step ones, and a statistical comparison of the batched USDRL views with the per-sample
reference feeder (docs/reference/usdrl.md §9).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from harness import augment as A
from harness.benchmarks.reference_feeder import ReferenceFeeder
from harness.transforms.modality import bone, motion, to_modality
from harness.transforms.resample import resample, source_positions
from harness.data.topology import MSR20, NTU25, Topology
from harness.errors import HarnessError
from harness.methods.usdrl import usdrl_views

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """These tensors are small: one intra-op thread avoids spinning threads on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ramp_clips(lengths: list[int], t_max: int, v: int = 4, m: int = 2) -> torch.Tensor:
    """x[b, c, t, v, m] = t + 1 for t < length (all channels, joints, persons), else 0."""
    t = torch.arange(t_max, dtype=torch.float32) + 1
    x = t[None, None, :, None, None].expand(len(lengths), 3, t_max, v, m).clone()
    for b, n in enumerate(lengths):
        x[b, :, n:] = 0
    return x


def interpolate_reference(clip: torch.Tensor, start: int, length: int, frames: int) -> torch.Tensor:
    """The reference feeders' resize of one window: F.interpolate on (1, C·V·M, ℓ)."""
    c, _, v, m = clip.shape
    seg = clip[:, start:start + length].permute(0, 2, 3, 1).reshape(1, c * v * m, length)
    out = F.interpolate(seg, size=frames, mode="linear", align_corners=False)
    return out.reshape(c, v, m, frames).permute(0, 3, 1, 2)


# --- resampling ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("frames", [64, 120, 16])
def test_resample_matches_f_interpolate(frames):
    g = gen(1)
    b, t = 24, 90
    x = torch.randn(b, 3, t, 5, 2, generator=g)
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    lengths[:4] = torch.tensor([1, 2, min(frames, t), t])
    starts = (torch.rand(b, generator=g) * (t - lengths + 1)).long()
    y = resample(x, lengths, frames, starts)
    for i in range(b):
        ref = interpolate_reference(x[i], int(starts[i]), int(lengths[i]), frames)
        torch.testing.assert_close(y[i], ref, rtol=0, atol=2e-6)


def test_source_positions_are_pytorch_bit_exact():
    # the exact positions/weights F.interpolate uses: a one-hot input row reveals each output's weights
    for length in (1, 7, 63, 64, 65, 100, 299):
        eye = torch.eye(length)[None]  # (1, ℓ channels, ℓ frames)
        w = F.interpolate(eye, size=64, mode="linear", align_corners=False)[0]  # (ℓ, 64)
        lo, hi, lam = source_positions(torch.tensor([length]), 64)
        ours = torch.zeros(length, 64)
        ours[lo[0], torch.arange(64)] += 1 - lam[0]
        ours[hi[0], torch.arange(64)] += lam[0]
        assert torch.equal(ours, w), length


def test_resample_known_ramps():
    x = ramp_clips([128, 64, 32, 300], 300, v=2, m=1)
    y = resample(x, torch.tensor([128, 64, 32, 100]), 64, torch.tensor([0, 0, 0, 10]))
    i = torch.arange(64, dtype=torch.float32)
    assert torch.equal(y[0, 0, :, 0, 0], 2 * i + 1.5)  # s = 2i + 0.5, value = s + 1
    assert torch.equal(y[1, 1, :, 1, 0], i + 1)  # ℓ = T: the identity
    expected = (i / 2 - 0.25).clamp(min=0).clamp(max=31) + 1  # upsampling, clamped at both ends
    assert torch.equal(y[2, 2, :, 0, 0], expected)
    src = (i + 0.5) * (100 / 64) - 0.5
    torch.testing.assert_close(y[3, 0, :, 0, 0], src + 11, rtol=0, atol=1e-5)  # window from frame 10


def test_resample_out_argument_and_empty_batch():
    x = torch.randn(3, 3, 20, 2, 1)
    out = torch.empty(3, 3, 8, 2, 1)
    res = resample(x, torch.tensor([20, 5, 9]), 8, out=out)
    assert res is out
    torch.testing.assert_close(out[1], interpolate_reference(x[1], 0, 5, 8), rtol=0, atol=1e-6)
    assert resample(x[:0], torch.tensor([], dtype=torch.long), 8).shape == (0, 3, 8, 2, 1)


# --- crop windows and crop-resize --------------------------------------------------------------------------
def test_crop_windows_follow_the_formula():
    nf = torch.tensor([300, 150, 64, 40, 1, 90] * 50)
    crop, start = A.crop_windows(nf, 64, (0.1, 1.0), generator=gen(3))
    g = gen(3)  # the same draws, in crop_windows' order: scale, then start (float64)
    scale = torch.rand(len(nf), generator=g, dtype=torch.float64) * 0.9 + 0.1
    u = torch.rand(len(nf), generator=g, dtype=torch.float64)
    expected = torch.minimum((nf * scale).floor().long().clamp(min=64), nf)
    assert torch.equal(crop, expected)
    assert torch.equal(start, (u * (nf - expected + 1)).floor().long())
    assert (start >= 0).all() and (start + crop <= nf).all()
    assert (crop[nf <= 64] == nf[nf <= 64]).all() and (start[nf <= 64] == 0).all()


def test_crop_windows_min_length_for_mamp():
    nf = torch.full((400,), 200)
    crop, _ = A.crop_windows(nf, 120, (0.5, 1.0), min_length=64, generator=gen(0))
    assert crop.min() >= 100 and crop.max() <= 200  # ⌊200·U(0.5, 1)⌋ ≥ 100 > 64, not clamped to 120
    assert (crop < 120).any()


def test_crop_resize_of_a_ramp_recovers_the_window():
    lengths = [300, 200, 80, 50]
    x = ramp_clips(lengths, 300)
    y = A.crop_resize(x, torch.tensor(lengths), 64, generator=gen(5))
    crop, start = A.crop_windows(torch.tensor(lengths), 64, generator=gen(5))
    for b in range(4):
        ref = interpolate_reference(x[b], int(start[b]), int(crop[b]), 64)
        torch.testing.assert_close(y[b], ref, rtol=0, atol=1e-5)
        assert y[b, 0, 0, 0, 0] >= start[b] + 1 and y[b, 0, -1, 0, 0] <= start[b] + crop[b]


# --- matrices -------------------------------------------------------------------------------------------------
def test_shear_of_a_known_point():
    s = A.shear_matrices(500, 1.0, gen(2))
    assert torch.equal(s.diagonal(dim1=1, dim2=2), torch.ones(500, 3))
    off = s[:, [0, 0, 1, 1, 2, 2], [1, 2, 0, 2, 0, 1]]  # a, b, c, d, e, f
    g = gen(2)
    assert torch.equal(off, torch.rand(500, 6, generator=g) * 2 - 1)
    assert off.abs().max() <= 1 and off.min() < -0.9 and off.max() > 0.9
    p = torch.tensor([1.0, 2.0, 3.0])
    x = p.view(1, 3, 1, 1, 1).expand(500, 3, 2, 1, 1).contiguous()
    y = A.apply_joint_maps(x, A.JointMaps(s))
    a, b_, c, d, e, f = off.unbind(1)
    torch.testing.assert_close(y[:, 0, 1, 0, 0], 1 + 2 * a + 3 * b_)  # x' = x + a·y + b·z
    torch.testing.assert_close(y[:, 1, 1, 0, 0], c + 2 + 3 * d)
    torch.testing.assert_close(y[:, 2, 1, 0, 0], e + 2 * f + 3)


def test_shear_probability_and_magnitude():
    x = torch.randn(4000, 3, 2, 2, 1, generator=gen(0))
    y = A.shear(x, magnitude=0.5, p=0.3, generator=gen(1))
    changed = (y != x).flatten(1).any(1).float().mean().item()
    assert abs(changed - 0.3) < 0.03
    assert torch.equal(A.shear(x, p=0.0, generator=gen(1)), x)


def _np_rotate_aimclr(seq: np.ndarray, angles_rad: np.ndarray) -> np.ndarray:
    """AimCLR ``random_rotate`` with given angles: rotate about x, then y, then z (rows @ R.T)."""
    out = np.transpose(seq, (1, 2, 3, 0))
    for axis, ang in enumerate(angles_rad):
        c, s = math.cos(ang), math.sin(ang)
        r = {0: [[1, 0, 0], [0, c, s], [0, -s, c]], 1: [[c, 0, -s], [0, 1, 0], [s, 0, c]],
             2: [[c, s, 0], [-s, c, 0], [0, 0, 1]]}[axis]
        out = out @ np.array(r).T
    return np.transpose(out, (3, 0, 1, 2))


def test_rotation_matches_aimclr_and_mamp_conventions():
    angles = torch.tensor([[0.3, -0.2, 0.1], [0.0, 0.5, 0.0], [math.pi / 6, 0.01, 0.02]], dtype=torch.float64)
    r = A.rotation_matrices(angles)
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(3, 3, 3))
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(3, dtype=torch.float64))
    x = torch.randn(3, 3, 4, 5, 2, dtype=torch.float64, generator=gen(0))
    y = A.apply_joint_maps(x, A.JointMaps(r))
    for i in range(3):
        ref = _np_rotate_aimclr(x[i].numpy(), angles[i].numpy())
        np.testing.assert_allclose(y[i].numpy(), ref, atol=1e-12)
    # x-rotation of the unit y vector: Rx·(0, 1, 0) = (0, cos, −sin)
    rx = A.rotation_matrices(torch.tensor([[0.4, 0.0, 0.0]]))[0]
    torch.testing.assert_close(rx @ torch.tensor([0.0, 1.0, 0.0]), torch.tensor([0.0, math.cos(0.4), -math.sin(0.4)]))


def test_rotation_angle_ranges():
    ang = torch.rad2deg(A.aimclr_angles(6000, generator=gen(4)))
    big = ang > 1.0 + 1e-4
    assert (big.sum(1) <= 1).all() and (ang >= 0).all() and (ang <= 30 + 1e-4).all()
    main = ang.argmax(1)
    share = torch.bincount(main, minlength=3).float() / 6000
    assert (share - 1 / 3).abs().max() < 0.03  # the main axis is uniform over x, y, z
    assert abs(ang.max(1).values.mean().item() - 15) < 0.5
    e = A.euler_angles(6000, 0.3, generator=gen(4))
    assert e.abs().max() <= 0.3 and e.min() < -0.29 and abs(e.mean().item()) < 0.01


# --- joint corruption and the USDRL spatial step ---------------------------------------------------------------
def test_scaled_counts():
    assert A.scaled_count(15, 25) == 15 and A.scaled_count(15, 20) == 12
    assert A.scaled_count(8, 20) == 6 and A.scaled_count(5, 20) == 4
    assert A.scaled_count(6, 16, 16) == 6 and A.scaled_count(6, 4, 16) == 2
    assert A.scaled_count(15, 1) == 1 and A.scaled_count(0, 25) == 0


def test_random_subsets_exact_size_and_uniform():
    m = A.random_subsets(5000, 25, 15, gen(0))
    assert (m.sum(1) == 15).all()
    assert (m.float().mean(0) - 0.6).abs().max() < 0.03


def test_joint_corruption_zero_and_linear_branches():
    g = gen(7)
    n, v = 400, 25
    x = torch.randn(n, 3, 6, v, 2, generator=g)
    step = A.JointCorruption()
    maps = step.maps(n, v, torch.device("cpu"), gen(11))
    y = step(x, generator=gen(11))
    d = step.draw(n, v, torch.device("cpu"), gen(11))  # the same draws
    assert d["corrupt"].all()
    assert (d["subset"].sum(1) == 15).all()
    for i in range(n):
        sel = d["subset"][i]
        torch.testing.assert_close(y[i][:, :, ~sel], x[i][:, :, ~sel], rtol=0, atol=0)
        if d["zero"][i]:
            assert (y[i][:, :, sel] == 0).all()
        else:  # p·R with p a row vector
            rows = x[i][:, :, sel].permute(1, 2, 3, 0).numpy() @ d["R"][i].numpy()
            np.testing.assert_allclose(y[i][:, :, sel].permute(1, 2, 3, 0).numpy(), rows, rtol=1e-5, atol=1e-5)
    assert 0.4 < d["zero"].float().mean() < 0.6
    assert maps.selected.sum(1).eq(15).all()


def test_corrupt_or_shear_branch_probabilities():
    n = 8000
    d = A.CorruptOrShear().draw(n, 25, torch.device("cpu"), gen(1))
    corrupt, zero = d["corrupt"], d["zero"]
    assert abs(corrupt.float().mean() - 0.5) < 0.02
    assert abs((corrupt & zero).float().mean() - 0.25) < 0.02
    assert abs((corrupt & ~zero).float().mean() - 0.25) < 0.02


def test_msr_counts_and_shapes():
    x = torch.randn(6, 3, 40, 20, 1, generator=gen(0))
    views = usdrl_views(x, torch.tensor([40, 30, 20, 64, 10, 39]).clamp(max=40), 3, 16, gen(0))
    assert len(views) == 3 and all(v.shape == (6, 3, 16, 20, 1) for v in views)
    d = A.CorruptOrShear().draw(10, 20, torch.device("cpu"), gen(0))
    assert (d["subset"].sum(1) == 12).all()


# --- the fused kernel and Compose ----------------------------------------------------------------------------
def test_usdrl_views_equal_crop_then_spatial_step_by_step():
    g = gen(0)
    lengths = torch.tensor([300, 120, 64, 50, 200, 90])
    x = torch.randn(6, 3, 300, 25, 2, generator=g)
    views = usdrl_views(x, lengths, 4, 64, gen(9))
    pipe = A.Compose(A.CropResize(64), A.CorruptOrShear())  # the recipe usdrl_views runs
    g2 = gen(9)
    idx = torch.arange(6).repeat(4)
    crop, start = pipe.steps[0].windows(lengths[idx], g2)
    plain = pipe.steps[1](resample(x[idx], crop, 64, start), generator=g2)
    torch.testing.assert_close(torch.stack(views).flatten(0, 1), plain, rtol=1e-5, atol=1e-5)


def test_zero_padded_person_stays_zero_and_views_are_deterministic():
    x = torch.randn(5, 3, 120, 25, 3, generator=gen(0))
    x[:, :, :, :, 2] = 0  # an absent third person
    x[2, :, :, :, 1] = 0
    lengths = torch.tensor([120, 100, 70, 64, 30])
    views = usdrl_views(x, lengths, 4, 64, gen(1))
    again = usdrl_views(x, lengths, 4, 64, gen(1))
    other = usdrl_views(x, lengths, 4, 64, gen(2))
    for v, w, o in zip(views, again, other):
        assert v.shape == (5, 3, 64, 25, 3) and v.dtype == torch.float32
        assert torch.isfinite(v).all()
        assert (v[..., 2] == 0).all() and (v[2, ..., 1] == 0).all()
        assert torch.equal(v, w) and not torch.equal(v, o)
    assert not torch.equal(views[0], views[1])


def test_compose_fuses_map_steps_exactly_like_sequential_steps():
    x = torch.randn(7, 3, 90, 25, 2, generator=gen(0))
    lengths = torch.tensor([90, 80, 64, 40, 77, 90, 65])
    steps = [A.CropResize(32, (0.3, 1.0)), A.RotateAimCLR(p=0.5), A.Shear(0.5, p=0.5), A.AxisMask(p=0.5),
             A.Flip(NTU25, p=0.5), A.JointCorruption(), A.JointCorruption(count=3), A.Shear(p=1.0),
             A.StructuralMask(NTU25, p=0.5), A.TemporalMask(p=0.5)]
    fused = A.Compose(*steps)(x, lengths, gen(3))
    g = gen(3)
    y = steps[0](x, lengths, generator=g)
    for s in steps[1:]:
        y = s(y, generator=g)
    torch.testing.assert_close(fused, y, rtol=1e-4, atol=1e-4)
    with pytest.raises(HarnessError, match="first step"):
        A.Compose(A.Shear(), A.CropResize(16))


def test_compose_views_and_lambda_steps():
    x = torch.randn(4, 3, 50, 25, 2, generator=gen(0))
    pipe = A.Compose(A.CropResize(16), A.Lambda(lambda t, generator=None: t * 2), A.Shear(p=0.0))
    views = pipe.views(x, torch.tensor([50, 40, 30, 20]), 3, gen(0))
    assert len(views) == 3 and views[0].shape == (4, 3, 16, 25, 2)
    crop, start = A.crop_windows(torch.tensor([50, 40, 30, 20]).repeat(3), 16, generator=gen(0))
    torch.testing.assert_close(torch.cat(views), 2 * resample(x.repeat(3, 1, 1, 1, 1), crop, 16, start))


def test_dense_maps_fallback_matches():
    n, v = 6, 25
    maps = A.JointCorruption().maps(n, v, torch.device("cpu"), gen(0)).then(
        A.JointCorruption(count=4).maps(n, v, torch.device("cpu"), gen(1)))
    assert maps.dense is not None
    x = torch.randn(n, 3, 40, v, 2, generator=gen(2))
    lengths, starts = torch.full((n,), 30), torch.full((n,), 5)
    fused = A.crop_resize_map(x, lengths, starts, 16, maps)
    plain = A.apply_joint_maps(resample(x, lengths, 16, starts), maps)
    torch.testing.assert_close(fused, plain)


# --- the other augmentations ----------------------------------------------------------------------------------
def test_flip_swaps_left_and_right():
    x = torch.randn(300, 3, 4, 25, 2, generator=gen(0))
    y = A.flip(x, NTU25, p=0.5, generator=gen(1))
    flipped = (y != x).flatten(1).any(1)
    assert 0.42 < flipped.float().mean() < 0.58
    perm = torch.tensor(NTU25.flip)
    assert torch.equal(y[flipped], x[flipped][:, :, :, perm])
    assert torch.equal(y[~flipped], x[~flipped])
    assert perm[4].item() == 8 and perm[21].item() == 23  # left shoulder ↔ right shoulder, hand tips
    assert torch.equal(A.flip(x, NTU25, p=1.0, generator=gen(0))[:, :, :, 20], x[:, :, :, 20])  # spine stays
    no_flip = Topology("t", ("a", "b"), ((0, 0), (1, 0)), 0, (0, 1))
    with pytest.raises(HarnessError, match="flip"):
        A.Flip(no_flip)


def test_gaussian_noise():
    x = torch.zeros(2000, 3, 8, 5, 1)
    y = A.gaussian_noise(x, std=0.01, p=0.5, generator=gen(0))
    noisy = (y != 0).flatten(1).any(1)
    assert 0.45 < noisy.float().mean() < 0.55
    assert abs(y[noisy].std().item() - 0.01) < 5e-4 and (y[~noisy] == 0).all()


def _aimclr_blur(x: np.ndarray, sigma: float, kernel: int = 15) -> np.ndarray:
    """AimCLR GaussianBlurConv's filtering of one (C, T, V, M) clip with a given σ."""
    r = kernel // 2
    k = np.exp(-np.power(np.arange(-r, r + 1), 2.0) / (2.0 * sigma ** 2))
    w = torch.from_numpy(k)[None, None, None].repeat(3, 1, 1, 1)
    t = torch.from_numpy(x).double().permute(3, 0, 2, 1)  # M, C, V, T
    return F.conv2d(t, w, padding=(0, r), groups=3).permute(1, 3, 2, 0).numpy()


@pytest.mark.parametrize("normalize", [False, True])
def test_gaussian_blur_matches_aimclr_filter(normalize):
    x = torch.randn(40, 3, 20, 4, 2, dtype=torch.float64, generator=gen(0))
    step = A.GaussianBlur(p=0.5, normalize=normalize)
    y = step(x, generator=gen(5))
    g = gen(5)
    sigma = torch.rand(40, generator=g) * 1.9 + 0.1
    applied = torch.rand(40, generator=g) < 0.5
    assert 0 < applied.sum() < 40
    for i in range(40):
        if applied[i]:
            ref = _aimclr_blur(x[i].numpy(), float(sigma[i]))
            if normalize:
                r = np.arange(-7, 8)
                ref = ref / np.exp(-r ** 2 / (2.0 * float(sigma[i]) ** 2)).sum()
            np.testing.assert_allclose(y[i].numpy(), ref, rtol=1e-5, atol=1e-6)
        else:
            assert torch.equal(y[i], x[i])


def test_axis_mask_and_joint_mask():
    x = torch.randn(3000, 3, 4, 25, 2, generator=gen(0))
    y = A.axis_mask(x, p=0.5, generator=gen(1))
    zero_axes = (y == 0).flatten(2).all(2)  # (N, 3)
    masked = zero_axes.any(1)
    assert (zero_axes.sum(1) <= 1).all() and 0.45 < masked.float().mean() < 0.55
    assert (zero_axes[masked].float().mean(0) - 1 / 3).abs().max() < 0.05
    z = A.joint_mask(x, 7, p=1.0, generator=gen(2))
    zero_joints = (z == 0).permute(0, 3, 1, 2, 4).flatten(2).all(2)  # (N, V)
    assert (zero_joints.sum(1) == 7).all()
    kept = (~zero_joints)[:, None, None, :, None].expand_as(z)
    assert torch.equal(z[kept], x[kept])
    assert (zero_joints.float().mean(0) - 7 / 25).abs().max() < 0.04


def _scd_spatial_mask(seeds: np.ndarray) -> np.ndarray:
    """SCD-Net ``spatial_masking``'s joint choice for given seeds (graph built from its edge list)."""
    inward = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
              (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19),
              (22, 23), (23, 8), (24, 25), (25, 12)]
    a = np.eye(25)
    for i, j in inward:
        a[j - 1, i - 1] = a[i - 1, j - 1] = 1
    a = a @ a
    flag = a[seeds].sum(0)
    return np.sort(flag.argsort(kind="stable")[-8:])


def test_structural_mask_matches_scdnet():
    step = A.StructuralMask(NTU25, p=1.0)
    assert (step.seeds, step.count) == (5, 8)
    masked = step.masked_joints(300, torch.device("cpu"), gen(4))
    g = gen(4)
    seeds = (torch.rand(300 * 5, generator=g, dtype=torch.float64) * 25).floor().long().view(300, 5)
    for i in range(300):
        assert sorted(masked[i].nonzero().squeeze(1).tolist()) == _scd_spatial_mask(seeds[i].numpy()).tolist()
    x = torch.randn(50, 3, 4, 25, 2, generator=gen(0))
    y = A.structural_mask(x, NTU25, p=1.0, generator=gen(1))
    assert ((y == 0).permute(0, 3, 1, 2, 4).flatten(2).all(2).sum(1) == 8).all()
    msr = A.StructuralMask(MSR20)
    assert (msr.seeds, msr.count) == (4, 6)


def test_temporal_mask_chunks():
    x = torch.randn(500, 3, 64, 3, 1, generator=gen(0)) + 5
    y = A.temporal_mask(x, p=1.0, generator=gen(1))
    zero_frames = (y == 0).permute(0, 2, 1, 3, 4).flatten(2).all(2)  # (N, 64)
    chunks = zero_frames.view(500, 16, 4)
    assert (chunks.all(2) == chunks.any(2)).all()  # whole 4-frame chunks
    assert (chunks.all(2).sum(1) == 6).all()
    assert (chunks.all(2).float().mean(0) - 6 / 16).abs().max() < 0.08
    y2 = A.temporal_mask(x[:, :, :30], p=1.0, generator=gen(1))  # 8 chunks (the last of 2 frames) → 3
    assert ((y2 == 0).permute(0, 2, 1, 3, 4).flatten(2).all(2).view(500, 30).sum(1) >= 3 * 2).all()


def test_generators_on_the_data_device_and_none():
    x = torch.randn(3, 3, 30, 25, 2)
    views = usdrl_views(x, torch.tensor([30, 20, 10]), 2, 8)  # global RNG
    assert len(views) == 2 and views[0].shape == (3, 3, 8, 25, 2)


# --- the host buffer pool --------------------------------------------------------------------------------------
def test_pool_reuses_a_buffer_only_when_nothing_refers_to_it():
    pool = A.HostBufferPool()
    a = pool.empty((4, 5))
    a.fill_(1.0)
    keep = a[1:]  # a view keeps the block alive
    ptr = a.data_ptr()
    del a  # CPython frees at once (reference counting, no cycles)
    b = pool.empty((4, 5))
    assert b.data_ptr() != ptr and (keep == 1).all()
    del keep
    c = pool.empty((20,))
    assert c.data_ptr() == ptr  # released, then reused
    assert pool.empty((4, 5), torch.int64).dtype == torch.int64  # other dtypes: plain tensors


def test_pooled_views_survive_later_calls():
    x = torch.randn(8, 3, 100, 25, 2, generator=gen(0))
    lengths = torch.full((8,), 100)
    first = usdrl_views(x, lengths, 4, 64, gen(1))
    copy = [v.clone() for v in first]
    for _ in range(3):
        usdrl_views(x, lengths, 4, 64, gen(2))
    assert all(torch.equal(a, b) for a, b in zip(first, copy))


# --- modalities (docs/reference/usdrl.md §9.3) ----------------------------------------------------------------------------------
def test_bone_modality_ntu_pairs():
    x = torch.randn(2, 3, 5, 25, 2, generator=gen(0))
    b = bone(x, NTU25)
    pairs = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
             (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (21, 21),
             (22, 23), (23, 8), (24, 25), (25, 12)]
    for v, u in pairs:
        torch.testing.assert_close(b[:, :, :, v - 1], x[:, :, :, v - 1] - x[:, :, :, u - 1], rtol=0, atol=0)
    assert (b[:, :, :, 20] == 0).all()  # joint 21 pairs with itself
    assert torch.equal(to_modality(x, "bone", NTU25), b)


def test_motion_modality():
    x = torch.randn(2, 3, 64, 25, 2, generator=gen(1))
    mo = motion(x)
    torch.testing.assert_close(mo[:, :, :63], x[:, :, 1:] - x[:, :, :-1], rtol=0, atol=0)
    assert (mo[:, :, 63] == 0).all()
    assert torch.equal(to_modality(x, "motion", NTU25), mo) and to_modality(x, "joint", NTU25) is x
    with pytest.raises(HarnessError):
        to_modality(x, "velocity", NTU25)


def test_msr_bone_root_is_zero():
    x = torch.randn(1, 3, 4, 20, 1, generator=gen(2))
    assert (bone(x, MSR20)[:, :, :, MSR20.center] == 0).all()


# --- statistics: batched pipeline against the per-sample reference feeder -----------------------------------------
STAT_CLIPS = 1500


class _StatClips:
    """Person 0 holds a fixed pose P in every valid frame, person 1 the pose times (t + 1).

    Clips are built on demand (the reference feeder only indexes its data), so thousands of them
    need no memory.
    """

    def __init__(self, n: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.lengths = rng.integers(64, 301, n)
        self.pose = (rng.uniform(0.3, 1.0, (3, 25)) * rng.choice([-1.0, 1.0], (3, 25))).astype(np.float32)
        self.t = np.arange(300, dtype=np.float32) + 1

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> np.ndarray:
        nf = self.lengths[i]
        clip = np.zeros((3, 300, 25, 2), dtype=np.float32)
        clip[:, :nf, :, 0] = self.pose[:, None, :]
        clip[:, :nf, :, 1] = self.pose[:, None, :] * self.t[:nf, None]
        return clip


def _analyse(p0: np.ndarray, p1: np.ndarray, lengths: np.ndarray, pose: np.ndarray) -> dict:
    """Per view, from output frames 0 and 63 of both persons: branch, crop window, matrices.

    p0, p1: (n, 3, 2, 25), person 0 / person 1 at output frames 0 and 63.
    """
    n = len(p0)
    a = p0[:, :, 0]  # A_v·P_v, (n, 3, 25): person 0 is constant in time
    zero_j = np.all(a == 0, axis=1)
    same_j = np.all(np.abs(a - pose[None]) <= 1e-5, axis=1)
    n_zero, n_same = zero_j.sum(1), same_j.sum(1)
    kind = np.full(n, -1)
    kind[(n_zero == 0) & (n_same == 0)] = 0  # shear
    kind[(n_zero == 15) & (n_same == 10)] = 1  # 15 joints zeroed
    kind[(n_zero == 0) & (n_same == 10)] = 2  # 15 joints linearly mapped
    # time profile s_i = person 1 / person 0 at the largest |A·P| entry (never a zeroed joint)
    best = np.abs(a).reshape(n, -1).argmax(1)
    at = (lambda p: p.transpose(0, 2, 1, 3).reshape(n, 2, -1)[np.arange(n), :, best])
    s = at(p1) / at(p0)  # (n, 2): frames 0 and 63
    ell = 64 * (s[:, 1] - s[:, 0]) / 63  # slope ℓ/64 per output frame (ℓ ≥ 64: no clamping)
    start = s[:, 0] - 1 - (ell / 128 - 0.5)
    # matrices by least squares: a = S·P over all joints, a = Rᵀ·P over the 15 changed joints
    shear_off, lin = [], []
    for i in np.flatnonzero(kind == 0)[:400]:
        m = np.linalg.lstsq(pose.T, a[i].T, rcond=None)[0].T
        assert np.allclose(np.diag(m), 1, atol=1e-4)
        shear_off.append(m[[0, 0, 1, 1, 2, 2], [1, 2, 0, 2, 0, 1]])
    for i in np.flatnonzero(kind == 2)[:300]:
        ch = ~same_j[i]
        lin.append(np.linalg.lstsq(pose[:, ch].T, a[i][:, ch].T, rcond=None)[0].ravel())
    sheared = a[kind == 0]
    return {"kind": kind, "ell": ell, "start": start, "lengths": lengths, "shear": np.concatenate(shear_off),
            "linear": np.concatenate(lin), "selected": ~same_j[kind >= 1],
            "sheared_mean": sheared.mean(), "sheared_std": sheared.std()}


def _expected_crop_length(nf: np.ndarray) -> np.ndarray:
    """E[min(max(⌊nf·U(0.1, 1)⌋, 64), nf)] per clip, by integration over a fine grid of U."""
    values, inverse = np.unique(nf, return_inverse=True)
    u = (np.arange(9000) + 0.5) / 9000 * 0.9 + 0.1  # midpoints: exact to ~1e-4 frames here
    mean = np.minimum(np.maximum(np.floor(values[:, None] * u[None]), 64), values[:, None]).mean(1)
    return mean[inverse]


@pytest.fixture(scope="module")
def stat_runs():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # multi-threaded BLAS on the reference's tiny arrays is only contention
        return _stat_runs()


def _stat_runs():
    clips = _StatClips(STAT_CLIPS)
    lengths = clips.lengths
    feeder = ReferenceFeeder(clips, lengths, seed=0)
    ref0, ref1 = [], []
    for i in range(STAT_CLIPS):
        for v in feeder[i]:
            ref0.append(v[:, [0, 63]][..., 0])
            ref1.append(v[:, [0, 63]][..., 1])
    ref = _analyse(np.stack(ref0), np.stack(ref1), np.repeat(lengths, 4), clips.pose)
    g = gen(123)
    views = []
    for s in range(0, STAT_CLIPS, 250):
        idx = range(s, min(s + 250, STAT_CLIPS))
        t_b = int(lengths[s:s + 250].max())
        x = torch.from_numpy(np.stack([clips[i][:, :t_b] for i in idx]))
        vs = usdrl_views(x, torch.from_numpy(lengths[s:s + 250]), 4, 64, g)
        views.append(torch.stack(vs, 1)[:, :, :, [0, 63]].flatten(0, 1).numpy())  # clip-major like the feeder
    v = np.concatenate(views)
    ours = _analyse(v[..., 0], v[..., 1], np.repeat(lengths, 4), clips.pose)
    return ref, ours


@pytest.mark.slow
def test_statistics_branch_fractions(stat_runs):
    n = STAT_CLIPS * 4
    for res in stat_runs:
        kind = res["kind"]
        assert (kind >= 0).all()  # every view is recognisably one of the three branches
        frac = np.bincount(kind, minlength=3) / n
        assert abs(frac[0] - 0.5) < 0.03 and abs(frac[1] - 0.25) < 0.025 and abs(frac[2] - 0.25) < 0.025
    ref, ours = stat_runs
    diff = np.abs(np.bincount(ref["kind"], minlength=3) - np.bincount(ours["kind"], minlength=3)) / n
    assert diff.max() < 0.035


def test_statistics_crop_windows(stat_runs):
    for res in stat_runs:
        ell, start, nf = res["ell"], res["start"], res["lengths"]
        assert np.abs(ell - np.round(ell)).max() < 0.05 and np.abs(start - np.round(start)).max() < 0.05
        ell, start = np.round(ell), np.round(start)
        assert (ell >= 64).all() and (ell <= nf).all() and (start >= 0).all() and (start + ell <= nf).all()
        expected = _expected_crop_length(nf)
        sd = np.sqrt(np.mean((nf * 0.26) ** 2) / len(nf))  # generous per-view spread bound
        assert abs(ell.mean() - expected.mean()) < 4 * sd
        free = nf > ell
        rel = start[free] / (nf - ell)[free]
        assert abs(rel.mean() - 0.5) < 0.02
    ref, ours = stat_runs
    assert stats.ks_2samp(ref["ell"] / ref["lengths"], ours["ell"] / ours["lengths"]).pvalue > 1e-3


def test_statistics_matrices(stat_runs):
    for res in stat_runs:
        for key in ("shear", "linear"):
            vals = res[key]
            assert vals.min() >= -1 - 1e-4 and vals.max() <= 1 + 1e-4
            assert abs(vals.mean()) < 0.05 and abs(vals.std() - 1 / math.sqrt(3)) < 0.03
            assert stats.kstest(vals, "uniform", args=(-1, 2)).pvalue > 1e-3
        sel = res["selected"]
        assert (sel.sum(1) == 15).all()
        assert np.abs(sel.mean(0) - 0.6).max() < 0.06  # every joint equally likely
    ref, ours = stat_runs
    assert abs(ref["sheared_mean"] - ours["sheared_mean"]) < 0.05
    assert abs(ref["sheared_std"] / ours["sheared_std"] - 1) < 0.05


# --- the benchmark command (a tiny run) ---------------------------------------------------------------------------
@pytest.mark.e2e
def test_bench_augment_json(capsys):
    from harness.cli import main

    assert main(["bench", "augment", "--json", "--batch-size", "8", "--seconds", "0.3"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("samples_per_s", "reference_samples_per_s", "speedup"):
        assert out[key] > 0
    assert out["batch_size"] == 8 and out["threads"] == 1 and out["num_views"] == 4
    assert main(["bench", "augment", "--batch-size", "0"]) == 2
