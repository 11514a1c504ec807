"""UmURL (methods/umurl.py; its loss is pinned in tests/test_loss_umurl_objective.py): batched projections, fused J+B+M backbone, training."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn


from harness.transforms.modality import bone, motion
from harness.data.topology import NTU25
from harness.engine import load_backbone, pretrain
from harness.errors import HarnessError
from harness.contracts import DataInfo, ModalityBackbone, build_method
from harness.methods.encoders.umurl_fusion import UmURLEncoder
from harness.methods.encoders.layers import spatial_tokens, temporal_tokens
from harness.methods.umurl import UmURL
from protocol_helpers import toy_dataset
from harness.config import load_config

FRAMES, B = 16, 8
INFO = DataInfo(topology=NTU25, num_classes=60, frames=FRAMES, persons=2)


pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_thread")]


def make(modality="jbm", seed=0, encoder=None, **options):
    cfg = load_config("smoke", overrides={"method.name": "umurl", "method.modality": modality,
                                      "method.options": options, "encoder.options": encoder or {}})
    torch.manual_seed(seed)
    return build_method(cfg, INFO)


def views(b=B, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, 3, FRAMES, 25, 2, generator=g) for _ in range(4)]


# --- the method --------------------------------------------------------------------------------------

def test_architecture_follows_the_reference():
    m = make()
    d = 32
    assert isinstance(m.net, ModalityBackbone) and m.net.modality == "jbm"
    net = m.encoder
    assert isinstance(net, UmURLEncoder) and net is m.net.encoder
    assert net.feature_dim == net.frame_dim == m.net.feature_dim == m.net.frame_dim == 2 * d
    assert net.mm_fusion.t_fusion.bias is None and net.mm_fusion.s_fusion.bias is None
    assert len(net.ma_encoder.t_tr.layers) == len(net.ma_encoder.s_tr.layers) == 1
    assert not any("spe" in n or "pos" in n for n, _ in net.named_parameters())  # no spatial PE
    for p in (m.j_projector, m.b_projector, m.m_projector):
        dims = [(l.in_features, l.out_features) for l in p if isinstance(l, nn.Linear)]
        assert dims == [(2 * d, 2 * d), (2 * d, 2 * d), (2 * d, 4 * d)]
    assert make(encoder={"layers": 2}).encoder.ma_encoder.t_tr.layers.__len__() == 2
    with pytest.raises(HarnessError, match=r"encoder\.options\.layers"):  # moved from method.options
        make(layers=2)


def test_modality_is_fixed_to_jbm():
    assert make("").net.modality == "jbm"  # the config default ("") is the method's modality
    for other in ("joint", "bone"):
        with pytest.raises(HarnessError, match="jbm"):
            make(other)
    with pytest.raises(HarnessError, match="umurl"):  # UmURL trains only its own encoder
        build_method(load_config("smoke", overrides={"method.name": "umurl", "encoder.name": "dste"}), INFO)


def test_batched_projections_equal_separate_calls():
    m = make()
    m.train()
    v = views()
    torch.manual_seed(1)
    z = m.project(v)
    net = m.encoder
    with torch.no_grad():
        y_j = net.encode(*net.embed(v[0], "j")).pooled
        y_b = net.encode(*net.embed(bone(v[1], NTU25), "b")).pooled
        y_m = net.encode(*net.embed(motion(v[2]), "m")).pooled
        # early fusion by hand: mean of the three embeddings, then the bias-free Linear
        x = v[3]
        embs = [net.j_emb(temporal_tokens(x), spatial_tokens(x)),
                net.b_emb(temporal_tokens(bone(x, NTU25)), spatial_tokens(bone(x, NTU25))),
                net.m_emb(temporal_tokens(motion(x)), spatial_tokens(motion(x)))]
        t = sum(e[0] for e in embs) / 3 @ net.mm_fusion.t_fusion.weight.T
        s = sum(e[1] for e in embs) / 3 @ net.mm_fusion.s_fusion.weight.T
        y_u = net.encode(t, s).pooled
        assert torch.allclose(m.net(x).pooled, y_u, atol=1e-5)  # the backbone is the fused path
        ref = {"z_uj": m.j_projector(y_u), "z_ub": m.b_projector(y_u), "z_um": m.m_projector(y_u),
               "z_j": m.j_projector(y_j), "z_b": m.b_projector(y_b), "z_m": m.m_projector(y_m)}
    for k in ref:
        assert torch.allclose(z[k], ref[k], atol=1e-4), k
    out = m(v)
    assert set(out) == {"loss", "intra", "inter", "vac"} and torch.isfinite(out["loss"])


def test_encoder_pe_once_and_max_pool():
    m = make()
    net = m.encoder
    x = views(b=2)[0]
    with torch.no_grad():
        t, s = net.fuse(x)
        enc = net.ma_encoder
        y_t = enc.t_tr(t + enc.pe.pe[:, :FRAMES])  # the modules' own forward: PE once, then the layer
        y_s = enc.s_tr(s)
        out = net(x)
    assert torch.allclose(out.temporal, y_t, atol=1e-5) and torch.allclose(out.spatial, y_s, atol=1e-5)
    assert torch.allclose(out.pooled, torch.cat([y_t.amax(1), y_s.amax(1)], 1), atol=1e-5)
    assert net.frame_features(x).shape == (2, FRAMES, net.frame_dim)
    with pytest.raises(HarnessError):
        net(torch.randn(2, 3, FRAMES + 4, 25, 2))


def test_adam_steps_lower_the_loss():
    m = make()
    m.train()
    v = views()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        out = m(v)
        losses.append(out["loss"].item())
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert losses[-1] < losses[0] - 0.5, losses


@pytest.mark.e2e
def test_views_and_smoke_pretrain(tmp_path):
    m = make()
    vs = m.make_views(torch.randn(4, 3, 30, 25, 2), torch.tensor([30, 22, 17, 9]), torch.Generator().manual_seed(0))
    assert len(vs) == 4 and all(v.shape == (4, 3, FRAMES, 25, 2) for v in vs)
    ds = toy_dataset(tmp_path / "data")
    cfg = load_config("smoke", overrides={"method.name": "umurl", "method.modality": "jbm", "data.dataset": str(ds.root),
                                      "workdir": str(tmp_path / "work"), "train.device": "cpu"})
    run = pretrain(cfg, progress=False)
    assert run.status == "finished" and math.isfinite(run.metrics["loss"])
    bb, _ = load_backbone(run.run_dir)
    assert isinstance(bb, type(m.net)) and bb(torch.randn(2, 3, FRAMES, 20, 1)).pooled.shape == (2, 64)
    assert isinstance(build_method(cfg, INFO.__class__(ds.topology, 4, FRAMES, 1)), UmURL)
