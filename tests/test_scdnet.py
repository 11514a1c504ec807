"""SCD-Net (methods/scdnet.py): the four anchor InfoNCE terms, clue features, views, training."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F


from harness.transforms.modality import bone
from harness.data.topology import NTU25
from harness.engine import load_backbone, pretrain
from harness.errors import HarnessError
from harness.registry import METHODS
from harness.contracts import DataInfo, build_method
from harness.methods.moco import REFERENCE_STEPS, REFERENCE_TRAIN_CLIPS, derive_queue_and_momentum
from harness.methods.scdnet import SCDNet, scd_loss
from protocol_helpers import toy_dataset
from harness.config import load_config

FRAMES, B = 16, 8
INFO = DataInfo(topology=NTU25, num_classes=60, frames=FRAMES, persons=2)


pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_thread")]


def make(seed=0, modality="joint", encoder="dste", info=INFO, **options):
    options.setdefault("queue_size", 16)
    enc_options = {"drop_path": 0.0} if encoder == "dste" else {}  # deterministic forwards (STTR has none)
    cfg = load_config("smoke", overrides={"method.name": "scdnet", "encoder.name": encoder, "encoder.options": enc_options,
                                      "train.batch_size": B, "method.modality": modality,
                                      "method.options": options})
    torch.manual_seed(seed)
    return build_method(cfg, info)


def clips(b=B, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, 3, FRAMES, 25, 2, generator=g) for _ in range(2)]





def test_registered_with_reference_defaults():
    assert METHODS.get("scdnet") is SCDNet
    paper = load_config("paper", overrides={"method.name": "scdnet"})
    o = SCDNet.resolve_options(paper)
    assert (o.queue_size, o.temperature, o.momentum, o.proj_dim, o.momentum_rule) == (0, 0.2, 0.999, 128, "budget")
    # queue_size 0 = the rule: SCD-Net's 8,192 and 0.999 on NTU-60 xsub at the paper budget
    assert derive_queue_and_momentum("x", queue_size=0, queue_ratio=o.queue_ratio, momentum=o.momentum,
                                     rule=o.momentum_rule, train_samples=REFERENCE_TRAIN_CLIPS,
                                     batch_size=paper.train.batch_size, total_steps=REFERENCE_STEPS) == (8192, 0.999)
    ruled = make(queue_size=0, info=DataInfo(NTU25, 60, FRAMES, 2, train_samples=1000, batch_size=B, total_steps=320))
    assert ruled.queue_size == round(8192 / REFERENCE_TRAIN_CLIPS * 1000) == 204
    assert all(qq.size == 204 for qq in ruled.queues.values())
    assert ruled.derived_settings()["momentum"] == pytest.approx(0.999 ** (REFERENCE_STEPS / 320))
    m = make()
    assert set(m.queues) == {"t", "s", "i"} and all(qq.queue.shape == (128, 16) for qq in m.queues.values())
    assert {"queues.t.queue", "queues.s.queue", "queues.i.queue", "queues.i.ptr"} <= set(m.state_dict())
    with pytest.raises(HarnessError, match="smaller than train.batch_size"):
        make(queue_size=2)


def test_clues_are_max_pooled_tokens():
    m = make()
    x = clips()[0]
    with torch.no_grad():
        out = m.encoder(x)
        v_t, v_s = out.temporal.amax(1), out.spatial.amax(1)
        z = m.q(x)
        assert torch.allclose(z["t"], F.normalize(m.q.t_proj(v_t), dim=1), atol=1e-6)
        assert torch.allclose(z["s"], F.normalize(m.q.s_proj(v_s), dim=1), atol=1e-6)
        assert torch.allclose(z["i"], F.normalize(m.q.i_proj(torch.cat([v_t, v_s], 1)), dim=1), atol=1e-6)
        assert torch.allclose(m.backbone()(x).pooled, torch.cat([v_t, v_s], 1))  # downstream feature = v_i


def test_projectors_normalise_their_first_layer_by_default():
    assert all(any(isinstance(l, torch.nn.BatchNorm1d) for l in h) for h in (make().q.t_proj, make().q.i_proj))
    assert not any(isinstance(l, torch.nn.BatchNorm1d) for l in make(head_bn=False).q.s_proj)  # the reference's


def test_forward_order_and_enqueue():
    # the reference's projectors (no BatchNorm): keys and logits are then reproduced to float rounding
    m = make(momentum=0.9, head_bn=False)
    m.train()
    v1, v2 = clips(seed=1)
    queues0 = {c: m.queues[c].snapshot() for c in "tsi"}
    ref = copy.deepcopy(m)
    with torch.no_grad():
        for pk, pq in zip(ref.k.parameters(), ref.q.parameters()):
            pk.copy_(0.9 * pk + 0.1 * pq)
        k = ref.k(v2)
        q = m.q(v1)
    expected = scd_loss(q, k, queues0, 0.2)
    out = m([v1, v2])
    for name in ("loss", "nce_ti", "nce_si", "nce_it", "nce_is"):
        assert out[name].item() == pytest.approx(expected[name].item(), rel=1e-5), name
    for c in "tsi":
        assert torch.allclose(m.queues[c].queue[:, :B], k[c].T, atol=1e-6)
        assert torch.equal(m.queues[c].queue[:, B:], queues0[c][:, B:]) and m.queues[c].ptr.item() == B
    for pk, pr in zip(m.k.parameters(), ref.k.parameters()):
        assert torch.allclose(pk, pr)
    m.eval()
    state = {n: t.clone() for n, t in m.state_dict().items()}
    m([v1, v2])
    assert all(torch.equal(t, m.state_dict()[n]) for n, t in state.items())


def test_views_masks_and_modality():
    m = make(crop_min=1.0, p_rotate=0.0, p_flip=0.0, p_shear=0.0, p_spatial_mask=1.0, p_temporal_mask=0.0)
    x = torch.rand(4, 3, FRAMES, 25, 2) + 0.5  # no zeros of its own
    g = torch.Generator().manual_seed(0)
    v1, v2 = m.make_views(x, torch.full((4,), FRAMES), g)
    zero_joints = (v1.abs().sum(dim=(1, 2, 4)) == 0).sum(dim=1)
    assert zero_joints.tolist() == [8] * 4  # 8 of 25 joints, every frame, both persons
    m = make(crop_min=1.0, p_rotate=0.0, p_flip=0.0, p_shear=0.0, p_spatial_mask=0.0, p_temporal_mask=1.0)
    v1, _ = m.make_views(x, torch.full((4,), FRAMES), torch.Generator().manual_seed(0))
    zero_frames = (v1.abs().sum(dim=(1, 3, 4)) == 0)
    assert zero_frames.sum(dim=1).tolist() == [8] * 4  # 2 of 4 chunks of 4 frames (6 of 16 scaled)
    assert torch.equal(zero_frames.view(4, 4, 4).all(2), zero_frames.view(4, 4, 4).any(2))  # whole chunks
    # the default pipeline is reproducible from the generator; the modality is derived inside
    m = make()
    a = m.make_views(x, torch.full((4,), FRAMES), torch.Generator().manual_seed(3))
    b = m.make_views(x, torch.full((4,), FRAMES), torch.Generator().manual_seed(3))
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    mb = make(modality="bone", crop_min=1.0, p_rotate=0.0, p_flip=0.0, p_shear=0.0, p_spatial_mask=0.0,
              p_temporal_mask=0.0)
    vb, _ = mb.make_views(x, torch.full((4,), FRAMES), torch.Generator().manual_seed(0))
    assert torch.allclose(vb, bone(x, NTU25), atol=1e-6)
    xb = clips(b=2)[0]
    assert torch.allclose(mb.backbone()(xb).pooled, mb.encoder(bone(xb, NTU25)).pooled)


def test_adam_steps_lower_the_loss():
    m = make(momentum=0.99, queue_size=64, encoder="sttr")
    m.train()
    with torch.no_grad():  # queues of keys of other clips, kept fixed
        keys = [m.k(c) for c in clips(b=32, seed=7)]
        for c in "tsi":
            m.queues[c].queue.copy_(torch.cat([kk[c] for kk in keys], 0).T)
    fixed = {c: m.queues[c].snapshot() for c in "tsi"}
    v = clips(seed=3)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(6):
        for c in "tsi":
            m.queues[c].queue.copy_(fixed[c])
        out = m(v)
        losses.append(out["loss"].item())
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < losses[0] - 0.5, losses


@pytest.mark.e2e
def test_sttr_and_smoke_pretrain(tmp_path):
    m = make(encoder="sttr")
    assert torch.isfinite(m(clips())["loss"])
    ds = toy_dataset(tmp_path / "data")
    cfg = load_config("smoke", overrides={"method.name": "scdnet", "data.dataset": str(ds.root),
                                      "workdir": str(tmp_path / "work"), "train.device": "cpu"})
    run = pretrain(cfg, progress=False)
    assert run.status == "finished" and math.isfinite(run.metrics["loss"])
    bb, _ = load_backbone(run.run_dir)
    assert bb(torch.randn(2, 3, FRAMES, 20, 1)).pooled.shape == (2, bb.feature_dim)
