"""The speed paths compute what the plain paths compute (issue 14).

- the Gram (B×B) form of the loss's D×D sums against the D×D form, at 1e-5 relative in float32;
- fused scaled-dot-product attention (the CUDA path, forced here) against the explicit matmuls;
- DSTLayer's batched (CUDA) and apart (CPU) layouts, the same masks drawn in the same order;
- USDRL's projectors on stacked views (``Projector.forward_views``) against one call per view;
- the augmentation's sync-free (GPU) path, run on the CPU, against the grouped CPU path, and no
  host read anywhere in a USDRL step (views, forward, backward) on that path;
- bf16 autocast on the CPU, ``torch.compile`` of the method, the pinned-memory loader (on CUDA only).
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.augment import sync as aug_sync

from harness.contracts import DataInfo, build_method
from harness.data.topology import NTU25
from harness.errors import HarnessError
from harness.methods import losses as L
from harness.methods.encoders import dste as dste_mod
from harness.methods.encoders import layers
from harness.methods.encoders.dste import DSTE, DSTEOptions, DSTLayer
from harness.methods.usdrl import usdrl_views
from harness.config import load_config
from harness.resolve import resolved

pytestmark = [pytest.mark.parity, pytest.mark.unit, pytest.mark.usefixtures("one_thread")]


# --- the loss: Gram form = D×D form ------------------------------------------------------------
def dxd_covariance(z: torch.Tensor) -> torch.Tensor:  # the D×D implementation before the Gram form
    b, d = z.shape
    zc = z - z.mean(dim=0)
    cov = zc.T @ zc / (b - 1)
    return (cov.pow(2).sum() - torch.diagonal(cov).pow(2).sum()) / d


def dxd_cross_correlation(a: torch.Tensor, b: torch.Tensor, w: float = 0.005) -> torch.Tensor:
    n = a.shape[0]
    an = (a - a.mean(dim=0)) / a.std(dim=0, unbiased=True)
    bn = (b - b.mean(dim=0)) / b.std(dim=0, unbiased=True)
    c = an.T @ bn / n
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return (torch.diagonal(c) - 1).pow(2).sum() + w * off


def _z(b: int, d: int, seed: int, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(b, -(-d // 4), generator=g, dtype=dtype)  # groups of 4 correlated features
    return 0.7 * base.repeat_interleave(4, dim=1)[:, :d] + torch.randn(b, d, generator=g, dtype=dtype)


@pytest.mark.parametrize("b,d", [(8, 64), (32, 256), (31, 128), (2, 5)])
def test_gram_form_equals_dxd_form(b, d):
    a, c = _z(b, d, 1), _z(b, d, 2)
    assert L._use_gram(b, d)
    rel = 1e-5
    for got, want in ((L.covariance_term(a), dxd_covariance(a)),
                      (L.cross_correlation(a, c), dxd_cross_correlation(a, c)),
                      (L.cross_correlation(a, c, 0.5), dxd_cross_correlation(a, c, 0.5))):
        assert got.item() == pytest.approx(want.item(), rel=rel)
    # float64: the same sums in another order, equal to rounding
    a64, c64 = a.double(), c.double()
    assert L.cross_correlation(a64, c64).item() == pytest.approx(dxd_cross_correlation(a64, c64).item(), rel=1e-12)
    assert L.covariance_term(a64).item() == pytest.approx(dxd_covariance(a64).item(), rel=1e-12)


def test_gram_form_gradients_and_multi_grained_loss():
    views = {dom: [_z(16, d, 10 * i + k).requires_grad_() for k in range(4)]
             for i, (dom, d) in enumerate((("i", 128), ("t", 64), ("s", 64)))}
    out = L.multi_grained_loss(views["i"], views["t"], views["s"])
    pairs = list(itertools.combinations(range(4), 2))
    want = {}
    for dom, zs in views.items():
        want[f"vac_{dom}"] = sum(5 * L.variance_term(z) + dxd_covariance(z) for z in zs)
        want[f"xc_{dom}"] = sum(dxd_cross_correlation(zs[p], zs[q]) for p, q in pairs)
    ref_loss = 0.0
    for dom, w in (("i", 1.0), ("t", 0.5), ("s", 0.5)):
        assert out[f"vac_{dom}"].item() == pytest.approx(want[f"vac_{dom}"].item(), rel=1e-5)
        assert out[f"xc_{dom}"].item() == pytest.approx(want[f"xc_{dom}"].item(), rel=1e-5)
        ref_loss = ref_loss + w * (5 * L.similarity(views[dom]) + want[f"vac_{dom}"] + 1e-3 * want[f"xc_{dom}"])
    assert out["loss"].item() == pytest.approx(ref_loss.item(), rel=1e-5)
    leaves = [z for zs in views.values() for z in zs]
    g_new = torch.autograd.grad(out["loss"], leaves)
    g_ref = torch.autograd.grad(ref_loss, leaves)
    for a, b in zip(g_new, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_gram_form_keeps_the_nan_of_a_constant_feature():
    a = _z(4, 9, 3)
    a[:, 2] = 1.0
    assert torch.isnan(L.cross_correlation(a, _z(4, 9, 4)))


# --- attention: fused SDPA = explicit matmuls --------------------------------------------------
@pytest.mark.parametrize("heads", [1, 4])
def test_sdpa_path_equals_matmul_path(monkeypatch, heads):
    torch.manual_seed(0)
    attn = torch.nn.MultiheadAttention(32, heads, batch_first=True)
    x = torch.randn(5, 11, 32, requires_grad=True)
    outs = {}
    for impl in ("matmul", "sdpa"):
        monkeypatch.setattr(layers, "ATTENTION_IMPL", impl)
        y = layers.self_attention(x, attn)
        outs[impl] = (y, *torch.autograd.grad((y * torch.linspace(-1, 1, 32)).sum(), [x, attn.in_proj_weight]))
    for a, b in zip(outs["matmul"], outs["sdpa"]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(outs["sdpa"][0], attn(x, x, x)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["dste", "sttr"])
def test_encoders_on_the_sdpa_path(monkeypatch, name):
    cfg = resolved(load_config("smoke", overrides={"encoder.name": name, "encoder.options": {"drop_path": 0.0}}
                  if name == "dste" else {"encoder.name": name}))
    info = DataInfo(topology=NTU25, num_classes=60, frames=cfg.data.frames, persons=2)
    from harness.contracts import build_encoder

    torch.manual_seed(1)
    enc = build_encoder(cfg, info, reference_init=True)
    x = torch.randn(3, 3, cfg.data.frames, 25, 2)
    ys = {}
    for impl in ("matmul", "sdpa"):
        monkeypatch.setattr(layers, "ATTENTION_IMPL", impl)
        ys[impl] = enc(x).pooled
    torch.testing.assert_close(ys["sdpa"], ys["matmul"], rtol=1e-5, atol=1e-5)


def test_attention_switch_rejects_unknown_values(monkeypatch):
    monkeypatch.setattr(layers, "ATTENTION_IMPL", "flash")
    attn = torch.nn.MultiheadAttention(8, 1, batch_first=True)
    with pytest.raises(HarnessError, match="HARNESS_ATTENTION"):
        layers.self_attention(torch.randn(1, 3, 8), attn)


# --- DSTLayer layouts --------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(heads=1, gap=4, kernel=1), dict(heads=2, gap=3, kernel=3)])
def test_dst_layer_batched_and_apart_layouts_agree(monkeypatch, kw):
    torch.manual_seed(3)
    layer = DSTLayer(12, 16, mlp_hidden=24, alpha=0.3, drop_path=0.2, **kw).train()
    x = torch.randn(6, 12, 16, requires_grad=True)
    results = {}
    for batched in (True, False):
        monkeypatch.setattr(dste_mod, "BATCH_ATTENTION", batched)
        torch.manual_seed(7)  # the same stochastic-depth masks when drawn in the same order
        y = layer(x)
        after = torch.rand(1)  # the RNG advanced by the same draws
        grads = torch.autograd.grad(y.square().sum(), [x, *layer.parameters()])
        results[batched] = (y, after, *grads)
    for a, b in zip(results[True], results[False]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    monkeypatch.setattr(dste_mod, "BATCH_ATTENTION", None)
    layer.eval()
    torch.testing.assert_close(layer(x), layer.forward_reference(x), rtol=1e-5, atol=1e-5)


# --- USDRL: stacked-view projectors -------------------------------------------------------------
def _usdrl(preset: str = "smoke", **options):
    over = {"method.name": "usdrl"}
    if options:
        over.update({f"{k}": v for k, v in options.items()})
    cfg = resolved(load_config(preset, overrides=over))
    info = DataInfo(topology=NTU25, num_classes=60, frames=cfg.data.frames, persons=2)
    torch.manual_seed(0)
    return build_method(cfg, info), info


def _per_view_project(m, views):  # USDRL.project before forward_views: one projector call per view
    k, b = len(views), views[0].shape[0]
    out = m.net(torch.cat(views))
    y_i = out.pooled.reshape(k, b, -1)
    y_t, y_s = out.temporal.amax(1).reshape(k, b, -1), out.spatial.amax(1).reshape(k, b, -1)
    return {"i": [m.i_proj(y_i[v]) for v in range(k)], "t": [m.t_proj(y_t[v]) for v in range(k)],
            "s": [m.s_proj(y_s[v]) for v in range(k)]}


def test_usdrl_project_on_stacked_views_equals_per_view_calls():
    m, info = _usdrl()
    m.train()
    ref = copy.deepcopy(m)
    g = torch.Generator().manual_seed(0)
    views = [torch.randn(6, 3, info.frames, 25, 2, generator=g) for _ in range(4)]
    torch.manual_seed(1)
    z = m.project(views)
    torch.manual_seed(1)
    zr = _per_view_project(ref, views)
    for dom in "its":
        for a, b in zip(z[dom], zr[dom]):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    for (name, a), b in zip(m.named_buffers(), ref.buffers()):  # BatchNorm running stats, view by view
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=name)
    loss, loss_ref = m.loss(z)["loss"], ref.loss(zr)["loss"]
    assert loss.item() == pytest.approx(loss_ref.item(), rel=1e-6)


# --- augmentation: the sync-free (GPU) path on the CPU -----------------------------------------
def _raw(n: int = 7, t: int = 90, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, t, 25, 2, generator=g)
    lengths = torch.randint(20, t + 1, (n,), generator=g)
    for i, ln in enumerate(lengths.tolist()):
        x[i, :, ln:] = 0
    x[::3, :, :, :, 1] = 0  # one-person clips
    return x, lengths


def test_sync_free_augmentation_equals_cpu_path(monkeypatch):
    x, lengths = _raw()
    out = {}
    for free in (False, True):
        monkeypatch.setattr(aug_sync, "SYNC_FREE", free)
        out[free] = usdrl_views(x, lengths, 4, 16, torch.Generator().manual_seed(5), pool=None)
    for a, b in zip(out[False], out[True]):
        assert torch.equal(a, b)


def test_sync_free_joint_maps_without_selection(monkeypatch):
    from harness.augment import JointMaps, apply_joint_maps, crop_resize_map, shear_matrices

    x, lengths = _raw(5)
    maps = JointMaps(shear_matrices(5, generator=torch.Generator().manual_seed(2)), torch.zeros(5, 3, 3),
                     torch.zeros(5, 25, dtype=torch.bool))
    starts = torch.zeros(5, dtype=torch.long)
    res = {}
    for free in (False, True):
        monkeypatch.setattr(aug_sync, "SYNC_FREE", free)
        res[free] = (crop_resize_map(x, lengths, starts, 16, maps), apply_joint_maps(x, maps))
    for a, b in zip(res[False], res[True]):
        assert torch.equal(a, b)


def _forbid_host_reads(mp: pytest.MonkeyPatch) -> None:
    """Fail on any read of a tensor's value by Python: on a GPU each is a host synchronisation."""
    for name in ("item", "tolist", "__bool__", "__int__", "__float__", "__index__"):
        def fail(self, *args, _name=name, **kwargs):
            raise AssertionError(f"host read Tensor.{_name} inside the step")
        mp.setattr(torch.Tensor, name, fail)


def test_no_host_reads_in_a_usdrl_step_on_the_gpu_code_path(monkeypatch):
    monkeypatch.setattr(aug_sync, "SYNC_FREE", True)
    monkeypatch.setattr(dste_mod, "BATCH_ATTENTION", True)
    monkeypatch.setattr(layers, "ATTENTION_IMPL", "sdpa")
    m, info = _usdrl()
    m.train()
    x, lengths = _raw(6)
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(m.parameters(), lr=1e-4, fused=True)  # fused, as engine/optim.py on CUDA
    with monkeypatch.context() as mp:
        _forbid_host_reads(mp)
        views = m.make_views(x, lengths, gen)
        out = m(views)
        out["loss"].backward()
        opt.step()
    assert torch.isfinite(out["loss"]) and all(p.grad is not None for p in m.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_make_views_on_cuda_equals_cpu():
    m, _ = _usdrl()
    x, lengths = _raw()
    cpu = m.make_views(x, lengths, torch.Generator().manual_seed(3))
    dev = m.to("cuda").make_views(x.cuda(), lengths.cuda(), torch.Generator().manual_seed(3))
    for a, b in zip(cpu, dev):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-5, atol=1e-5)


# --- bf16 autocast on the CPU, compile ---------------------------------------------------------
def test_bf16_autocast_step_close_to_fp32():
    """Same weights, same views, no stochastic depth: the bf16 step's loss within 0.2 % of fp32's.

    bf16 keeps 8 significant bits (relative rounding 2^-9 ≈ 0.2 % per product); the encoder's matmuls
    run in bf16 but accumulate in fp32, the loss terms run in fp32 (methods/losses/) and average
    thousands of entries whose rounding errors are independent, so the loss moves far less than one
    rounding step: about 5e-5 relative at these sizes. 2e-3 (one bf16 rounding) leaves room for
    other seeds and CPUs while still failing if a D×D product ran in bf16.
    """
    m, info = _usdrl(**{"encoder.options": {"drop_path": 0.0}})
    m.train()
    g = torch.Generator().manual_seed(4)
    views = [torch.randn(8, 3, info.frames, 25, 2, generator=g) for _ in range(4)]
    ref = copy.deepcopy(m)
    fp32 = ref(views)["loss"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = m(views)
    assert low["loss"].dtype == torch.float32
    assert low["loss"].item() == pytest.approx(fp32.item(), rel=2e-3)
    low["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


@pytest.mark.slow
def test_compiled_usdrl_step_equals_eager():
    """torch.compile of the method (the train.compile path) at the smoke preset: same loss, same
    gradients. aot_eager traces through dynamo and AOT autograd without generating kernels (fast)."""
    m, info = _usdrl(**{"encoder.options": {"drop_path": 0.0}})
    m.train()
    ref = copy.deepcopy(m)
    g = torch.Generator().manual_seed(6)
    views = [torch.randn(4, 3, info.frames, 25, 2, generator=g) for _ in range(4)]
    compiled = torch.compile(m, backend="aot_eager")
    out = compiled(views)["loss"]
    want = ref(views)["loss"]
    assert out.item() == pytest.approx(want.item(), rel=1e-5)
    out.backward()
    want.backward()
    for (name, a), b in zip(m.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6, msg=name)


# --- the loader ----------------------------------------------------------------------------------
def _prepared(tmp_path):
    from harness.data.prepared.format import PreparedWriter, open_prepared

    rng = np.random.default_rng(0)
    with PreparedWriter(tmp_path / "toy", kind="toy", topology=NTU25, num_samples=6, max_frames=12,
                        num_persons=2, class_names=["a", "b"]) as w:
        for i in range(6):
            w.set_sample(i, rng.normal(size=(3, 4 + i, 25, 2)).astype(np.float32), name=f"s{i}", label=i % 2,
                         subject=i)
        w.add_split("xsub", "train", list(range(6)))
    return open_prepared(tmp_path / "toy")


def test_read_clips_into_a_given_buffer(tmp_path):
    from harness.data.prepared.loader import read_clips

    ds = _prepared(tmp_path)
    given = []

    def empty(shape):
        given.append(np.full(shape, np.nan, dtype=np.float32))
        return given[-1]

    clips, lengths = read_clips(ds, np.array([4, 1, 2]), empty=empty)
    assert clips is given[0]
    want, want_len = read_clips(ds, np.array([4, 1, 2]))
    np.testing.assert_array_equal(clips, want)
    np.testing.assert_array_equal(lengths, want_len)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_loader_pinned_side_stream_equals_cpu_loader(tmp_path):
    from harness.data.prepared.loader import ClipBatches

    ds = _prepared(tmp_path)
    idx = ds.indices("xsub", "train")
    for prefetch in (0, 2):
        cpu = list(ClipBatches(ds, idx, 4, device="cpu", prefetch=prefetch))
        gpu = list(ClipBatches(ds, idx, 4, device="cuda", prefetch=prefetch))
        assert len(cpu) == len(gpu)
        for a, b in zip(cpu, gpu):
            assert b.ready is None and b.x.is_cuda
            for name in ("x", "lengths", "labels", "index"):
                assert torch.equal(getattr(a, name), getattr(b, name).cpu()), name
