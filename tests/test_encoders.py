"""DSTE / STTR encoders: parity with the USDRL reference (docs/reference/usdrl.md §2–7) and generality.

Paper-size models are only instantiated (parameter counts) and run once at batch 1 (FLOP count,
shapes); everything numerical runs at narrow widths.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dataclasses import fields

from harness.benchmarks.flops import encoder_flops, projector_macs
from harness.methods.encoders.dste import dste_macs
from harness.methods.encoders.sttr import sttr_macs
from harness.methods.usdrl import usdrl_projector_macs

from harness.contracts import DataInfo, build_encoder
from harness.data.topology import NTU25
from harness.errors import HarnessError
from harness.methods.encoders.dste import DSTE, DSTEOptions, DSTLayer, dense_shift_mask
from harness.methods.encoders.layers import Projector, SinusoidalPE, init_weights, spatial_tokens, temporal_tokens
from harness.methods.encoders.sttr import STTR, STTROptions
from harness.registry import ENCODERS
from harness.config import load_config


def nparams(*modules: nn.Module) -> int:
    seen, total = set(), 0
    for m in modules:
        for p in m.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
    return total


SMALL = dict(hidden=32, heads=1, layers=2, mlp_hidden=64, ffn=48)
TWO_STREAM_KEYS = {f.name for cls in (DSTEOptions, STTROptions) for f in fields(cls)}


def small_opts(name: str = "dste", **kw):
    """Narrow Options of encoder ``name``; keys of the other two-stream encoder are ignored, so one
    call sizes DSTE and STTR alike (a key neither knows is a test bug)."""
    assert set(kw) <= TWO_STREAM_KEYS, set(kw) - TWO_STREAM_KEYS
    cls = ENCODERS.get(name).Options
    own = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in {**SMALL, **kw}.items() if k in own})


def make(name: str = "dste", *, frames: int = 64, joints: int = 25, persons: int = 2, **kw):
    return ENCODERS.get(name)(small_opts(name, **kw), frames=frames, joints=joints, persons=persons)


def usdrl_projectors(d: int) -> list[Projector]:
    return [Projector(d, 2 * d, 2 * d), Projector(d, 2 * d, 2 * d), Projector(2 * d, 2 * d, 4 * d)]


pytestmark = [pytest.mark.parity, pytest.mark.unit, pytest.mark.usefixtures("one_thread")]  # tests/conftest.py


@pytest.fixture(scope="module")
def dste_paper() -> DSTE:
    torch.manual_seed(0)
    return DSTE(DSTEOptions())


@pytest.fixture(scope="module")
def sttr_paper() -> STTR:
    torch.manual_seed(0)
    return STTR(STTROptions())


# --- a straightforward reference-style forward (docs/reference/usdrl.md §3–5), kept here as the slow path ------
def _mlp(mlp: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return mlp.fc2(F.gelu(mlp.fc1(x)))


def ref_dst_layer(layer: DSTLayer, x: torch.Tensor) -> torch.Tensor:
    ca, dsa = layer.CA, layer.DSA
    attn = ca.attn
    assert attn is dsa.attn
    # CA: conv in (N, d, L), residual to the original x around the attention, no MLP residual
    f = x.permute(0, 2, 1)
    c = (f + torch.relu(F.conv1d(f, ca.conv1.weight, ca.conv1.bias, padding=ca.conv1.padding))).permute(0, 2, 1)
    cn = ca.norm1(c)
    a = attn(cn, cn, cn)[0] + x
    ca_out = _mlp(ca.mlp, ca.norm2(a))
    # DSA: token mixing on (N, d, L), DenseShift overwrite, two passes of one pre-LN block
    f1 = x.permute(0, 2, 1)
    fh = dsa.wt2(torch.relu(dsa.wt1(f1))) + f1
    idx = torch.arange(0, x.shape[1], dsa.gap)
    fh[:, :, idx] = f1[:, :, idx]
    fm = fh.permute(0, 2, 1)

    def block(z):
        zn = dsa.norm1(z)
        u = attn(zn, zn, zn)[0] + z
        return u + _mlp(dsa.mlp, dsa.norm2(u))

    dsa_out = (block(fm) + block(x)) * 0.5
    return layer.alpha * ca_out + (1 - layer.alpha) * dsa_out


def ref_embed(enc, x):
    n, c, t, v, m = x.shape
    xt = x.permute(0, 2, 4, 3, 1).reshape(n, t, m * v * c)
    xs = x.permute(0, 4, 3, 2, 1).reshape(n, m * v, t * c)
    return enc.ske_emb.t_embedding(xt), enc.ske_emb.s_embedding(xs)


def ref_dste(enc: DSTE, x: torch.Tensor):
    y_t, y_s = ref_embed(enc, x)
    for layer in enc.temporal_layers():
        y_t = ref_dst_layer(layer, y_t + enc.tpe.pe[:, : y_t.shape[1]])
    for layer in enc.spatial_layers():
        y_s = ref_dst_layer(layer, y_s + enc.spe.expand(x.shape[0], -1, -1))
    return y_t, y_s


def ref_sttr(enc: STTR, x: torch.Tensor):
    y_t, y_s = ref_embed(enc, x)
    return enc.t_tr(y_t + enc.tpe.pe[:, : y_t.shape[1]]), enc.s_tr(y_s + enc.spe.expand(x.shape[0], -1, -1))


# --- registry and construction -----------------------------------------------------------------
def test_registered():
    assert {"dste", "sttr"} <= set(ENCODERS.names())
    assert ENCODERS.get("dste") is DSTE and ENCODERS.get("sttr") is STTR
    cfg = load_config("smoke", overrides={"encoder.name": "sttr", "encoder.options": {"hidden": 32, "ffn": 48}})
    enc = build_encoder(cfg, DataInfo(topology=NTU25, num_classes=60, frames=16, persons=2))
    assert isinstance(enc, STTR) and enc.feature_dim == 64 and enc.frame_dim == 64
    assert enc.options == STTROptions(hidden=32, ffn=48) and (enc.frames, enc.joints, enc.persons) == (16, 25, 2)


# --- parameter counts (docs/reference/usdrl.md §7) ------------------------------------------------------------
def test_dste_paper_parameter_counts(dste_paper):
    d = dste_paper
    assert nparams(d) == 57_137_368
    assert nparams(d, *usdrl_projectors(1024)) == 94_931_160
    for classes, total in [(60, 57_260_308), (120, 57_383_248), (51, 57_241_867), (52, 57_243_916)]:
        assert nparams(d, nn.Linear(d.feature_dim, classes)) == total
    assert nparams(d.ske_emb.t_embedding) == 1_206_272 and nparams(d.ske_emb.s_embedding) == 1_249_280
    assert d.spe.numel() == 51_200
    t, s = d.temporal_layers()[0], d.spatial_layers()[0]
    assert nparams(t.attn) == 4_198_400
    assert nparams(t.CA) - nparams(t.attn) == 5_251_072
    assert nparams(t.CA.conv1) == 1_049_600 and nparams(t.CA.mlp) == 4_197_376
    assert nparams(t.DSA) - nparams(t.attn) == 4_209_792
    assert nparams(s.DSA) - nparams(s.attn) == 4_206_572
    assert nparams(t) == 13_659_264 and nparams(s) == 13_656_044
    assert t.attn is t.DSA.attn and t.attn is not s.attn  # one shared attention per layer
    assert sum(isinstance(m, nn.MultiheadAttention) for m in d.modules()) == 4


def test_sttr_paper_parameter_counts(sttr_paper):
    s = sttr_paper
    assert nparams(s) == 27_713_536
    assert nparams(s, *usdrl_projectors(1024)) == 65_507_328
    assert nparams(s, nn.Linear(2048, 60)) == 27_836_476
    assert nparams(s.t_tr.layers[0]) == 6_301_696
    assert len(s.t_tr.layers) == 2 and s.t_tr.layers[0].linear1.out_features == 1024


def test_projector_counts_and_structure():
    t, _, i = usdrl_projectors(1024)
    assert nparams(t) == 10_500_096 and nparams(i) == 16_793_600
    assert [type(m) for m in t] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d, nn.ReLU,
                                    nn.Linear]
    assert i[-1].out_features == 4096 and usdrl_projector_macs(1024) == 37_748_736
    assert projector_macs(1024, 2048, 2048) == 10_485_760


def test_projector_forward_views_equals_per_view_calls():
    torch.manual_seed(11)
    a, b = Projector(12, 16, 20), Projector(12, 16, 20)
    b.load_state_dict(a.state_dict())
    x = torch.randn(4 * 6, 12)
    want = torch.cat([a(v) for v in x.split(6)])
    got = b.forward_views(x, 4)
    torch.testing.assert_close(got, want)
    for ma, mb in zip(a, b):  # running statistics updated the same way, view by view
        if isinstance(ma, nn.BatchNorm1d):
            torch.testing.assert_close(ma.running_mean, mb.running_mean)
            torch.testing.assert_close(ma.running_var, mb.running_var)
            assert ma.num_batches_tracked == mb.num_batches_tracked == 4


def test_reference_state_dict_names(dste_paper, sttr_paper):
    keys = set(dste_paper.state_dict())
    for k in ["spe", "tpe.pe", "ske_emb.t_embedding.0.weight", "ske_emb.s_embedding.3.bias",
              "t_tr.CA.attn.in_proj_weight", "t_tr.DSA.attn.out_proj.weight", "t_tr1.DSA.wt1.weight",
              "s_tr1.CA.conv1.weight", "s_tr.DSA.mlp.fc2.bias", "t_tr1.CA.norm2.weight"]:
        assert k in keys, k
    assert not any(k.endswith(".mix") for k in keys)  # the DenseShift mask is not state
    assert dste_paper.tpe.pe.shape == (1, 200, 1024) and dste_paper.spe.shape == (1, 50, 1024)
    assert dste_paper.t_tr.DSA.wt1.weight.shape == (64, 64) and dste_paper.s_tr.DSA.wt1.weight.shape == (50, 50)
    skeys = set(sttr_paper.state_dict())
    assert {"t_tr.layers.1.self_attn.in_proj_weight", "s_tr.layers.0.linear2.weight", "t_tr.layers.0.norm2.bias"} <= skeys


# --- FLOPs (docs/reference/usdrl.md §7) -------------------------------------------------------------------------
def test_paper_flops_and_shapes(dste_paper, sttr_paper):
    # FlopCounterMode counts mm/addmm/bmm, convolutions and SDPA (2 FLOPs per MAC, the CPU SDPA
    # kernel added by flops.py); norms, softmax, activations and bias adds are not counted — the
    # same convention as the spec, so the counts agree exactly.
    assert dste_macs() == 6_224_150_528 and sttr_macs() == 1_600_667_648
    f_dste = encoder_flops(dste_paper, batch=1)
    f_sttr = encoder_flops(sttr_paper, batch=1)
    assert f_dste == pytest.approx(12.45e9, rel=1e-3) and f_dste == 2 * 6_224_150_528
    assert f_sttr == pytest.approx(3.20e9, rel=1e-3) and f_sttr == 2 * 1_600_667_648
    x = torch.randn(1, 3, 64, 25, 2)
    dste_paper.eval()
    with torch.no_grad():
        out = dste_paper(x)
    assert out.pooled.shape == (1, 2048) and out.temporal.shape == (1, 64, 1024)
    assert out.spatial.shape == (1, 50, 1024)
    assert torch.equal(out.pooled, torch.cat([out.temporal.amax(1), out.spatial.amax(1)], -1))


@pytest.mark.parametrize("kernel,heads", [(1, 1), (3, 2)])
def test_flops_match_analytic_formula_generic(kernel, heads):
    cfg = small_opts(hidden=24, mlp_hidden=40, heads=heads, layers=3, kernel=kernel)
    enc = DSTE(cfg, frames=12, joints=7, persons=1)
    assert encoder_flops(enc, batch=2) == 2 * dste_macs(frames=12, joints=7, persons=1, d=24, mlp_hidden=40,
                                                         layers=3, kernel=kernel)
    s = STTR(small_opts("sttr", hidden=24, ffn=20, heads=heads, layers=3), frames=12, joints=7, persons=1)
    assert encoder_flops(s, batch=2) == 2 * sttr_macs(frames=12, joints=7, persons=1, d=24, ffn=20, layers=3)


# --- token layout, PE ----------------------------------------------------------------------------
def test_token_layout():
    n, c, t, v, m = 2, 3, 5, 4, 2
    x = torch.randn(n, c, t, v, m)
    xt, xs = temporal_tokens(x), spatial_tokens(x)
    assert xt.shape == (n, t, m * v * c) and xs.shape == (n, m * v, t * c)
    for (ti, mi, vi, ci) in [(0, 0, 0, 0), (3, 1, 2, 1), (4, 1, 3, 2)]:
        assert xt[1, ti, mi * v * c + vi * c + ci] == x[1, ci, ti, vi, mi]
        assert xs[1, mi * v + vi, ti * c + ci] == x[1, ci, ti, vi, mi]


def test_sinusoidal_pe():
    pe = SinusoidalPE(8, 200).pe[0]
    assert pe.shape == (200, 8)
    p, i = 7, 1
    assert pe[p, 2 * i].item() == pytest.approx(math.sin(p / 10000 ** (2 * i / 8)), abs=1e-6)
    assert pe[p, 2 * i + 1].item() == pytest.approx(math.cos(p / 10000 ** (2 * i / 8)), abs=1e-6)
    assert SinusoidalPE(7, 10).pe.shape == (1, 10, 7)  # odd widths work
    enc = DSTE(small_opts(), frames=240, joints=3, persons=1)
    assert enc.tpe.pe.shape[1] == 240


# --- the optimised forward equals the reference-style slow path -----------------------------------
@pytest.mark.parametrize("kw", [{}, {"heads": 2, "kernel": 3, "gap": 3, "alpha": 0.3}])
def test_dste_fused_equals_reference_forward_and_backward(kw):
    torch.manual_seed(1)
    enc = DSTE(small_opts(drop_path=0.0, **kw), frames=16, joints=5, persons=2)
    enc.init_weights()
    x = torch.randn(3, 3, 16, 5, 2)
    enc.train()  # train mode with drop_path 0: same maths, gradients on
    y_t, y_s = enc.streams(x)
    r_t, r_s = ref_dste(enc, x)
    torch.testing.assert_close(y_t, r_t, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y_s, r_s, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(y_t), torch.randn_like(y_s)
    grads = torch.autograd.grad((y_t * g[0]).sum() + (y_s * g[1]).sum(), list(enc.parameters()))
    rgrads = torch.autograd.grad((r_t * g[0]).sum() + (r_s * g[1]).sum(), list(enc.parameters()))
    for a, b in zip(grads, rgrads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_dst_layer_matches_unfused_composition():
    torch.manual_seed(2)
    layer = DSTLayer(10, 16, heads=2, mlp_hidden=24, alpha=0.5, gap=4, kernel=1, drop_path=0.1).eval()
    x = torch.randn(4, 10, 16)
    torch.testing.assert_close(layer(x), layer.forward_reference(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(layer(x), ref_dst_layer(layer, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("heads", [1, 4])
def test_sttr_equals_transformer_encoder_modules(heads):
    torch.manual_seed(3)
    enc = STTR(small_opts("sttr", heads=heads, layers=3), frames=16, joints=5, persons=2)
    enc.init_weights()
    x = torch.randn(3, 3, 16, 5, 2)
    y_t, y_s = enc.streams(x)
    r_t, r_s = ref_sttr(enc, x)
    torch.testing.assert_close(y_t, r_t, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y_s, r_s, rtol=1e-5, atol=1e-5)
    enc.eval()
    with torch.no_grad():  # the modules' eval fast path too
        torch.testing.assert_close(enc.streams(x)[0], ref_sttr(enc, x)[0], rtol=1e-5, atol=1e-5)


# --- DenseShift, alpha, DropPath -----------------------------------------------------------------
def test_dense_shift_keeps_every_gap_th_token():
    assert int(dense_shift_mask(64, 4).sum()) == 16 and int(dense_shift_mask(50, 4).sum()) == 13
    assert dense_shift_mask(50, 4).nonzero().flatten().tolist() == list(range(0, 49, 4))
    assert bool(dense_shift_mask(9, 1).all())
    torch.manual_seed(4)
    enc = DSTE(small_opts(), frames=64, joints=25, persons=2)
    for layer, length, kept in [(enc.t_tr, 64, 16), (enc.s_tr, 50, 13)]:
        x = torch.randn(2, length, 32)
        fm = layer.DSA.shift(x)
        same = (fm == x).all(dim=(0, 2))
        assert int(same.sum()) == kept and same[::4].all()


def test_alpha_selects_branches():
    torch.manual_seed(5)
    x = torch.randn(2, 12, 16)
    ca_only = DSTLayer(12, 16, heads=1, mlp_hidden=32, alpha=1.0, gap=4, kernel=1, drop_path=0.1).eval()
    torch.testing.assert_close(ca_only(x), ca_only.CA(x), rtol=1e-5, atol=1e-6)
    dsa_only = DSTLayer(12, 16, heads=1, mlp_hidden=32, alpha=0.0, gap=4, kernel=1, drop_path=0.1).eval()
    torch.testing.assert_close(dsa_only(x), dsa_only.DSA(x), rtol=1e-5, atol=1e-6)


def test_drop_path_only_in_training():
    torch.manual_seed(6)
    enc = DSTE(small_opts(drop_path=0.5), frames=8, joints=3, persons=2)
    x = torch.randn(6, 3, 8, 3, 2)
    enc.eval()
    assert torch.equal(enc(x).pooled, enc(x).pooled)
    enc.train()
    assert not torch.allclose(enc(x).pooled, enc(x).pooled)
    assert enc.t_tr.CA.drop.drop_prob == 0.5
    assert DSTE(small_opts(), frames=8, joints=3, persons=2).t_tr.DSA.drop.drop_prob == 0.1  # paper default


def test_drop_path_positions():
    # with every path dropped, CA contributes 0 and each DSA block is the identity:
    # the layer returns beta · (F_m + x) / 2, as the reference's DropPath placement gives
    torch.manual_seed(10)
    layer = DSTLayer(12, 16, heads=1, mlp_hidden=32, alpha=0.25, gap=4, kernel=1, drop_path=1 - 1e-12).train()
    x = torch.randn(5, 12, 16)
    torch.testing.assert_close(layer(x), 0.75 * (layer.DSA.shift(x) + x) / 2)


# --- generality and dense outputs ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dste", "sttr"])
def test_msr_shape_forward_backward(name):
    torch.manual_seed(7)
    enc = make(name, hidden=16, mlp_hidden=24, ffn=24, heads=2, layers=3, frames=32, joints=20, persons=1)
    x = torch.randn(4, 3, 32, 20, 1)
    out = enc(x)
    assert out.pooled.shape == (4, 32) and out.temporal.shape == (4, 32, 16) and out.spatial.shape == (4, 20, 16)
    (out.pooled.square().sum() + out.temporal.mean() + out.spatial.mean()).backward()
    for pname, p in enc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    ff = enc.frame_features(x)
    assert ff.shape == (4, 32, 32) and enc.frame_dim == 32


def test_frame_features_pooling_rule():
    torch.manual_seed(8)
    enc = DSTE(small_opts(hidden=8, mlp_hidden=8), frames=64, joints=25, persons=2).eval()
    x = torch.randn(2, 3, 64, 25, 2)
    with torch.no_grad():
        out = enc(x)
        ff = enc.frame_features(x)
    assert ff.shape == (2, 64, 16)
    torch.testing.assert_close(ff[..., :8], out.temporal)
    for i in [0, 1, 17, 63]:
        lo, hi = (50 * i) // 64, -((-50 * (i + 1)) // 64)
        torch.testing.assert_close(ff[:, i, 8:], out.spatial[:, lo:hi].mean(1))


def test_kernel_same_padding_keeps_token_count():
    for kernel in (2, 3, 5):
        enc = DSTE(small_opts(kernel=kernel), frames=8, joints=3, persons=2).eval()
        out = enc(torch.randn(2, 3, 8, 3, 2))
        assert out.temporal.shape == (2, 8, 32) and out.spatial.shape == (2, 6, 32)
        ca = enc.t_tr.CA
        x = torch.randn(2, 8, 32)
        with warnings.catch_warnings():  # torch warns about even kernels with padding='same'
            warnings.simplefilter("ignore")
            want = x + torch.relu(ca.conv1(x.transpose(1, 2)).transpose(1, 2))  # torch's own 'same'
        torch.testing.assert_close(ca.conv_residual(x), want)


def test_bad_inputs_and_configs():
    enc = DSTE(small_opts(), frames=8, joints=3, persons=2)
    with pytest.raises(ValueError, match=r"\(N, 3, 8, 3, 2\)"):
        enc(torch.randn(2, 3, 9, 3, 2))
    with pytest.raises(HarnessError, match="heads"):
        DSTE(small_opts(hidden=30, heads=4))
    with pytest.raises(HarnessError, match="gap"):
        DSTE(small_opts(gap=0))
    with pytest.raises(HarnessError, match="layers"):
        STTR(small_opts("sttr", layers=0))


# --- initialisation (docs/reference/usdrl.md §6) ------------------------------------------------------------------
def test_init_weights():
    torch.manual_seed(9)
    enc = DSTE(small_opts(hidden=64, mlp_hidden=128), frames=16, joints=25, persons=2)
    for m in enc.modules():
        if isinstance(m, nn.LayerNorm):
            nn.init.normal_(m.weight), nn.init.normal_(m.bias)
    in_proj = enc.t_tr.attn.in_proj_weight.clone()
    conv = enc.t_tr.CA.conv1.weight.clone()
    spe = enc.spe.detach().clone()
    enc.init_weights()
    assert torch.equal(enc.t_tr.attn.in_proj_weight, in_proj) and torch.equal(enc.t_tr.CA.conv1.weight, conv)
    assert torch.equal(enc.spe, spe) and spe.std().item() == pytest.approx(0.02, rel=0.1)
    for m in enc.modules():
        if isinstance(m, nn.Linear):  # includes out_proj and the token-mixing layers
            assert m.weight.std().item() == pytest.approx(0.02, rel=0.35) and not m.bias.any()
        if isinstance(m, nn.LayerNorm):
            assert (m.weight == 1).all() and not m.bias.any()
    big = nn.Linear(512, 512)
    init_weights(big)
    assert big.weight.std().item() == pytest.approx(0.02, rel=0.02) and big.weight.abs().max() < 0.2


# --- harness bench encoder -------------------------------------------------------------------------
@pytest.mark.e2e
def test_bench_encoder_cli_json(capsys):
    import json

    from harness.cli import main

    rc = main(["bench", "encoder", "--config", "smoke", "--seconds", "0", "--json", "--matmul-size", "64",
               "--batch-size", "4", "--infer-batch-size", "4", "--no-malloc-tuning"])
    assert rc == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["encoder"] for r in rows] == ["dste", "sttr"]
    for r in rows:
        for key in ("encoder", "params", "gflops_per_sample", "infer_efficiency", "train_efficiency",
                    "infer_samples_per_s", "train_samples_per_s"):
            assert key in r
        assert r["infer_samples_per_s"] > 0 and r["train_samples_per_s"] > 0 and r["loss"]
    assert rows[0]["params"] == sum(p.numel() for p in DSTE(small_opts(hidden=32, mlp_hidden=64), frames=16).parameters())
    assert rows[0]["gflops_per_sample"] * 1e9 == 2 * dste_macs(frames=16, d=32, mlp_hidden=64)
    assert rows[0]["train_gflops_per_sample"] == pytest.approx(
        3 * 4 * (rows[0]["gflops_per_sample"] + 2 * usdrl_projector_macs(32) / 1e9))


@pytest.mark.e2e
def test_bench_encoder_rejects_bad_arguments(capsys):
    from harness.cli import main

    assert main(["bench", "encoder", "--encoders", "dstee", "--no-malloc-tuning"]) == 2
    assert "dste" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["dste", "sttr"])
def test_autocast_bf16_forward_backward(name):
    torch.manual_seed(12)
    enc = make(name, heads=2, frames=8, joints=4, persons=2).eval()
    enc.init_weights()
    x = torch.randn(3, 3, 8, 4, 2)
    ref = enc(x).pooled.detach()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(x)
    out.pooled.float().square().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)
    torch.testing.assert_close(out.pooled.float(), ref, rtol=0.1, atol=0.1)


def test_flop_counter_counts_cpu_sdpa():
    from harness.benchmarks.flops import count_flops

    q = torch.randn(2, 3, 10, 8)
    assert count_flops(F.scaled_dot_product_attention, q, q, q) == 2 * 2 * (2 * 3 * 10 * 10 * 8)
