"""The registered USDRL method (methods/usdrl.py): views, batched forward, variants, modality, backbone."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch
from torch import nn


from harness.transforms.modality import bone, motion
from harness.data.topology import NTU25
from harness.errors import HarnessError, UnknownNameError
from harness.registry import ENCODERS, METHODS
from harness.methods import losses as L
from harness.contracts import Backbone, DataInfo, Encoder, EncoderOutput, ModalityBackbone, build_method
from harness.methods.encoders.layers import spatial_tokens, temporal_tokens
from harness.methods.usdrl import USDRL
from harness.config import load_config

FRAMES, B = 16, 8
INFO = DataInfo(topology=NTU25, num_classes=60, frames=FRAMES, persons=2)


pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_thread")]


@dataclass
class TinyOptions:
    hidden: int = 32  # the smoke width of the real encoders


class TinyEncoder(Encoder):
    """A deterministic two-stream encoder (no dropout, no BN) with USDRL's output layout."""

    name = "usdrl_test_tiny"
    Options = TinyOptions

    def __init__(self, options=None, *, in_channels=3, frames=64, joints=25, persons=2, topology=None):
        options = options or TinyOptions()
        super().__init__(options, in_channels=in_channels, frames=frames, joints=joints, persons=persons,
                         topology=topology)
        d = options.hidden
        self.t_emb = nn.Linear(in_channels * joints * persons, d)
        self.s_emb = nn.Linear(in_channels * frames, d)
        self.t_mix = nn.Linear(d, d)
        self.s_mix = nn.Linear(d, d)
        self.feature_dim, self.frame_dim = 2 * d, d
        self.token_dim = d  # width of the dense tokens (usdrl.token_width sizes t_proj / s_proj by it)
        self.seen: list[torch.Tensor] = []  # inputs, recorded when record is on
        self.record = False

    def _streams(self, x):
        if self.record:
            self.seen.append(x.detach().clone())
        t = self.t_mix(torch.relu(self.t_emb(temporal_tokens(x))))
        s = self.s_mix(torch.relu(self.s_emb(spatial_tokens(x))))
        return t, s

    def forward(self, x):
        t, s = self._streams(x)
        return EncoderOutput(torch.cat([t.max(1).values, s.max(1).values], 1), t, s)

    def frame_features(self, x):
        return self._streams(x)[0]


@pytest.fixture(autouse=True, scope="module")
def _tiny_encoder():
    with ENCODERS.temporarily("usdrl_test_tiny", TinyEncoder):
        yield


def make_cfg(variant="default", modality="joint", encoder="usdrl_test_tiny", **options):
    return load_config("smoke", overrides={"encoder.name": encoder, "method.name": "usdrl",
                                       "method.variant": variant, "method.modality": modality,
                                       "method.options": options})


def make(variant="default", seed=0, **kw):
    torch.manual_seed(seed)
    return build_method(make_cfg(variant, **kw), INFO)


def rand_views(k=4, b=B, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, 3, FRAMES, 25, 2, generator=g) for _ in range(k)]


# --- construction -----------------------------------------------------------------------

def test_registered_with_table5_variants():
    entry = METHODS.entry("usdrl")
    assert entry.obj is USDRL
    assert set(entry.variants) == {"default", "no_xc", "no_vac", "single_grained", "no_vac_no_xc"}


def test_projector_sizes_scale_with_width():
    m = make()
    d = 32  # smoke preset encoder.hidden
    assert isinstance(m, USDRL) and m.num_views == 4
    lin = lambda p: [layer for layer in p if isinstance(layer, nn.Linear)]  # noqa: E731
    assert [(x.in_features, x.out_features) for x in lin(m.t_proj)] == [(d, 2 * d), (2 * d, 2 * d), (2 * d, 2 * d)]
    assert [(x.in_features, x.out_features) for x in lin(m.s_proj)] == [(d, 2 * d), (2 * d, 2 * d), (2 * d, 2 * d)]
    assert [(x.in_features, x.out_features) for x in lin(m.i_proj)] == [(2 * d, 2 * d), (2 * d, 2 * d), (2 * d, 4 * d)]
    # reference init: Linear bias 0, weight std ≈ 0.02
    w = m.i_proj[0].weight
    assert torch.all(m.i_proj[0].bias == 0) and 0.015 < w.std().item() < 0.025
    m2 = make(proj_hidden=8, proj_out=6, instance_out=10)
    assert (m2.t_proj[0].out_features, m2.t_proj[6].out_features, m2.i_proj[6].out_features) == (8, 6, 10)


def test_bad_options_fail_clearly():
    with pytest.raises(UnknownNameError):
        make(xc_wieght=0.1)
    with pytest.raises(UnknownNameError):
        make(variant="no_such_row")
    with pytest.raises(HarnessError):
        make(num_views=1)
    with pytest.raises(UnknownNameError):
        make(modality="jbm")


# --- forward ----------------------------------------------------------------------------

TERMS = {"loss", "sim", "vac", "xc"} | {f"{p}_{d}" for p in ("sim", "vac", "xc") for d in "its"}


def test_forward_returns_finite_terms():
    m = make()
    out = m(rand_views())
    assert set(out) == TERMS
    assert all(torch.isfinite(v) and v.dim() == 0 for v in out.values())
    assert all(out[k].item() > 0 for k in TERMS)
    assert out["loss"].requires_grad
    expected = 5 * out["sim"] + 1 * out["vac"] + 1e-3 * out["xc"]
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert out["sim"].item() == pytest.approx(
        (out["sim_i"] + 0.5 * (out["sim_t"] + out["sim_s"])).item(), rel=1e-6)
    # also takes the views stacked as one (K, B, ...) tensor
    torch.manual_seed(0)
    out2 = m(torch.stack(rand_views()))
    assert out2["loss"].item() == pytest.approx(out["loss"].item(), rel=1e-6)


@pytest.mark.parametrize("variant,zero,nonzero", [
    ("default", set(), {"sim", "vac", "xc", "sim_t", "vac_s", "xc_t"}),
    ("no_xc", {"xc", "xc_i", "xc_t", "xc_s"}, {"sim", "vac", "sim_t", "vac_t"}),
    ("no_vac", {"vac", "vac_i", "vac_t", "vac_s"}, {"sim", "xc", "xc_t"}),
    ("single_grained", {f"{p}_{d}" for p in ("sim", "vac", "xc") for d in "ts"}, {"sim_i", "vac_i", "xc_i"}),
    ("no_vac_no_xc", {"vac", "xc", "vac_i", "xc_i", "vac_t", "xc_s"}, {"sim", "sim_i", "sim_t"}),
])
def test_variants_zero_the_right_terms(variant, zero, nonzero):
    m = make(variant)
    out = m(rand_views())
    assert set(out) == TERMS
    for k in zero:
        assert out[k].item() == 0.0, k
    for k in nonzero:
        assert out[k].item() > 0.0, k
    if variant == "single_grained":
        assert m.t_proj is None and m.s_proj is None
        assert out["sim"].item() == pytest.approx(out["sim_i"].item(), rel=1e-6)


def test_variant_layers_under_user_options():
    m = make("no_xc", use_xc=True, domain_weight=0.25, num_views=3)
    assert m.options.use_xc is True and m.options.domain_weight == 0.25 and m.num_views == 3
    out = m(rand_views(k=3))
    assert out["xc"].item() > 0
    assert out["sim"].item() == pytest.approx((out["sim_i"] + 0.25 * (out["sim_t"] + out["sim_s"])).item(), rel=1e-6)


def test_batched_forward_equals_per_view_forward():
    m = make()
    m.train()
    views = rand_views()
    out = m(views)
    ref_m = copy.deepcopy(m)
    z = {"i": [], "t": [], "s": []}
    for v in views:  # each view alone through encoder and projectors (train-mode BN per view)
        o = ref_m.net(v)
        z["i"].append(ref_m.i_proj(o.pooled))
        z["t"].append(ref_m.t_proj(o.temporal.max(1).values))
        z["s"].append(ref_m.s_proj(o.spatial.max(1).values))
    ref = L.multi_grained_loss(z["i"], z["t"], z["s"])
    for k in TERMS:
        assert out[k].item() == pytest.approx(ref[k].item(), rel=1e-5, abs=1e-7), k
    # gradients agree as well
    out["loss"].backward()
    ref["loss"].backward()
    for (name, p), q in zip(m.named_parameters(), ref_m.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-7), name
    # and the BN statistics are per view: pooling all views into one BN batch gives another loss
    zi_joint = m.i_proj(torch.cat([ref_m.net(v).pooled for v in views])).chunk(4)
    assert not torch.allclose(zi_joint[0], z["i"][0])


def test_adam_steps_lower_the_loss():
    m = make()
    views = rand_views(seed=3)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        out = m(views)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert losses[-1] < losses[0] * 0.95, losses


def test_loss_is_float32_under_autocast():
    m = make()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(rand_views())
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in out.values())


# --- modality and backbone --------------------------------------------------------------

@pytest.mark.parametrize("modality", ["joint", "bone", "motion"])
def test_modality_is_applied_inside_the_backbone(modality):
    m = make(modality=modality)
    enc = m.encoder
    enc.record = True
    views = rand_views(k=2, b=3)
    m(views)
    (seen,) = enc.seen
    x = torch.cat(views)
    expected = {"joint": x, "bone": bone(x, NTU25), "motion": motion(x)}[modality]
    assert torch.equal(seen, expected)
    if modality != "joint":
        assert not torch.allclose(seen, x)
    # the exported backbone applies the same transform
    enc.seen.clear()
    bb = m.backbone()
    bb(views[0])
    assert torch.equal(enc.seen[0], expected[:3])


def test_bone_and_motion_change_the_loss():
    views = rand_views()
    vals = {mod: make(modality=mod)(views)["loss"].item() for mod in ("joint", "bone", "motion")}
    assert len({round(v, 6) for v in vals.values()}) == 3, vals


def test_backbone_shares_weights_and_exposes_dims():
    m = make(modality="motion")
    bb = m.backbone()
    assert isinstance(bb, Backbone) and isinstance(bb, ModalityBackbone) and bb.modality == "motion"
    assert bb.feature_dim == 64 and bb.frame_dim == 32
    assert all(k.startswith("encoder.") for k in bb.state_dict())
    ids = {id(p) for p in m.parameters()}
    assert all(id(p) in ids for p in bb.parameters())
    x = rand_views(k=1, b=2)[0]
    bb.eval()
    out = bb(x)
    assert out.pooled.shape == (2, 64)
    ff = bb.frame_features(x)
    assert ff.shape == (2, FRAMES, 32)
    assert torch.allclose(ff, m.encoder.frame_features(motion(x)))
    # no projector weights in the backbone
    assert not any("proj" in k for k in bb.state_dict())


# --- the real encoders at smoke size (hidden 32, 16 frames) -------------------------------

@pytest.mark.parametrize("encoder", ["dste", "sttr"])
def test_real_encoders_forward_and_reference_init(encoder):
    m = make(encoder=encoder)
    assert m.encoder.options.hidden == 32 and m.encoder.frames == FRAMES
    out = m(rand_views(b=6))
    assert set(out) == TERMS and all(torch.isfinite(v) for v in out.values())
    assert all(out[k].item() > 0 for k in TERMS)
    out["loss"].backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)
    # the reference init reached the encoder: trunc-normal(0.02) instead of PyTorch's default
    # (uniform ±1/sqrt(150), std ≈ 0.047, for the 150-wide temporal embedding)
    emb = m.encoder.ske_emb.t_embedding[0]
    assert torch.all(emb.bias == 0) and 0.015 < emb.weight.std().item() < 0.025


def test_dste_batched_forward_equals_per_view_forward():
    cfg = make_cfg(encoder="dste")
    cfg.encoder.options["drop_path"] = 0.0  # DropPath draws per call; without it the encoder is deterministic
    torch.manual_seed(0)
    m = build_method(cfg, INFO)
    views = rand_views(b=5)
    out = m(views)
    z = {"i": [], "t": [], "s": []}
    for v in views:
        o = m.net(v)
        z["i"].append(m.i_proj(o.pooled))
        z["t"].append(m.t_proj(o.temporal.amax(1)))
        z["s"].append(m.s_proj(o.spatial.amax(1)))
    ref = L.multi_grained_loss(z["i"], z["t"], z["s"])
    for k in TERMS:
        assert out[k].item() == pytest.approx(ref[k].item(), rel=1e-4, abs=1e-6), k


@pytest.mark.parity
@pytest.mark.parametrize("encoder,total", [("dste", 94_931_160), ("sttr", 65_507_328)])
def test_paper_parameter_counts(encoder, total):
    # docs/reference/usdrl.md §7: USDRL-DSTE / USDRL-STTR pretraining models (built on the meta device: no memory)
    cfg = load_config("paper", overrides={"encoder": encoder})
    with torch.device("meta"):
        m = build_method(cfg, DataInfo(topology=NTU25, num_classes=60, frames=64, persons=2))
    assert sum(p.numel() for p in m.parameters()) == total
    assert sum(p.numel() for p in m.backbone().parameters()) == {"dste": 57_137_368, "sttr": 27_713_536}[encoder]
    assert (m.t_proj[0].in_features, m.t_proj[6].out_features) == (1024, 2048)
    assert (m.i_proj[0].in_features, m.i_proj[3].out_features, m.i_proj[6].out_features) == (2048, 2048, 4096)


def test_forward_gathers_every_projection(monkeypatch):
    # under DDP the loss must see the global batch: forward passes each z through gather_with_grad
    import harness.methods.usdrl as usdrl_module

    calls = []

    def fake_gather(x):  # stands for another rank's rows appended after ours
        calls.append(tuple(x.shape))
        return torch.cat([x, 2 * x + 1])

    monkeypatch.setattr(usdrl_module, "gather_with_grad", fake_gather)  # the name usdrl.py imported
    m = make()
    views = rand_views(b=4)
    torch.manual_seed(1)
    out = m(views)
    assert len(calls) == 12 and all(s[0] == 4 for s in calls)  # 3 domains × 4 views, local rows
    torch.manual_seed(1)
    z = m.project(views)
    big = {d: [torch.cat([v, 2 * v + 1]) for v in zs] for d, zs in z.items()}
    ref = L.multi_grained_loss(big["i"], big["t"], big["s"])
    assert out["loss"].item() == pytest.approx(ref["loss"].item(), rel=1e-6)


# --- views ------------------------------------------------------------------------------

def raw_batch(b=5, t_max=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 3, t_max, 25, 2, generator=g)
    lengths = torch.tensor([40, 17, 33, 8, 25][:b])
    for i, n in enumerate(lengths.tolist()):
        x[i, :, n:] = 0  # frames beyond the valid length are zero, as ClipBatches yields them
    return x, lengths


@pytest.mark.parametrize("num_views", [4, 3])
def test_make_views_then_forward(num_views):
    m = make(num_views=num_views)
    x, lengths = raw_batch()
    views = m.make_views(x, lengths, torch.Generator().manual_seed(7))
    assert isinstance(views, list) and len(views) == num_views
    assert all(v.shape == (5, 3, FRAMES, 25, 2) and torch.isfinite(v).all() for v in views)
    assert not torch.equal(views[0], views[1])  # independently augmented
    again = m.make_views(x, lengths, torch.Generator().manual_seed(7))
    assert all(torch.equal(a, b) for a, b in zip(views, again))  # the generator fixes the draw
    out = m(views)
    assert set(out) == TERMS and all(torch.isfinite(v) for v in out.values())
