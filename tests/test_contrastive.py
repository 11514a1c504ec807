"""MoCo machinery (methods/moco.py) and the ``contrastive`` method (methods/contrastive.py)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn


from harness.data.topology import NTU25
from harness.engine import load_backbone, pretrain
from harness.errors import HarnessError, UnknownNameError
from harness.registry import METHODS
from harness.contracts import DataInfo, build_method
from harness.methods.contrastive import Contrastive, aimclr_normal_view
from harness.methods.moco import (REFERENCE_STEPS, REFERENCE_TRAIN_CLIPS, KeyQueue, check_queue_size,
                                  derive_queue_and_momentum, key_copy, momentum_update_)
from protocol_helpers import toy_dataset
from harness.config import load_config

FRAMES, B = 16, 8
INFO = DataInfo(topology=NTU25, num_classes=60, frames=FRAMES, persons=2)


pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_thread")]


def make(encoder="dste", seed=0, batch=B, variant="default", info=INFO, **options):
    options.setdefault("queue_size", 16)
    # DropPath off (DSTE; STTR has none), so a forward is deterministic
    enc_options = {"drop_path": 0.0} if encoder == "dste" else {}
    cfg = load_config("smoke", overrides={"method.name": "contrastive", "encoder.name": encoder,
                                      "encoder.options": enc_options, "train.batch_size": batch,
                                      "method.variant": variant, "method.options": options})
    torch.manual_seed(seed)
    return build_method(cfg, info)


def clips(b=B, seed=0, t=FRAMES):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, 3, t, 25, 2, generator=g) for _ in range(2)]


# --- MoCo pieces on hand-checked numbers (InfoNCE: tests/test_loss_info_nce_term.py) -------------

def test_queue_ring_and_init():
    torch.manual_seed(0)
    qu = KeyQueue(2, 4)
    assert torch.allclose(qu.queue.norm(dim=0), torch.ones(4))
    assert {n for n, _ in qu.named_buffers()} == {"queue", "ptr"}
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    qu.enqueue(a)
    assert qu.ptr.item() == 3 and torch.equal(qu.queue[:, :3], a.T)
    b = torch.tensor([[7.0, 8.0], [9.0, 10.0], [11.0, 12.0]])
    qu.enqueue(b)  # wraps: columns 3, 0, 1
    assert qu.ptr.item() == 2
    assert torch.equal(qu.queue, torch.tensor([[9.0, 11.0, 5.0, 7.0], [10.0, 12.0, 6.0, 8.0]]))
    with pytest.raises(HarnessError):
        qu.enqueue(torch.zeros(5, 2))


def test_momentum_update_formula():
    torch.manual_seed(0)
    q = nn.Linear(3, 2)
    k = key_copy(q)
    assert all(not p.requires_grad for p in k.parameters())
    with torch.no_grad():
        q.weight.add_(1.0)
    w_k, w_q = k.weight.clone(), q.weight.clone()
    momentum_update_(k, q, 0.9)
    assert torch.allclose(k.weight, 0.9 * w_k + 0.1 * w_q)
    with pytest.raises(HarnessError):
        momentum_update_(nn.Linear(3, 3), q, 0.9)


def test_queue_must_hold_a_batch_but_need_not_divide_by_it():
    check_queue_size(64, 32, "x")
    check_queue_size(32768, 356, "x")  # the paper preset's batch
    with pytest.raises(HarnessError, match="smaller than train.batch_size"):
        check_queue_size(16, 32, "x")
    with pytest.raises(HarnessError, match="smaller than train.batch_size"):
        make(queue_size=4, batch=8)


# --- the method -----------------------------------------------------------------------------------

def test_registered_with_defaults():
    entry = METHODS.entry("contrastive")
    assert entry.obj is Contrastive and set(entry.variants) == {"default", "aimclr_aug"}
    paper = load_config("paper", overrides={"method.name": "contrastive"})
    o = Contrastive.resolve_options(paper)
    assert (o.queue_size, o.temperature, o.momentum, o.proj_dim, o.momentum_rule) == (0, 0.07, 0.999, 128, "budget")
    # queue_size 0 = the rule: SkeletonCLR's exact K and m on NTU-60 xsub at the paper budget
    kw = dict(queue_size=o.queue_size, queue_ratio=o.queue_ratio, momentum=o.momentum, rule=o.momentum_rule)
    assert derive_queue_and_momentum("x", **kw, train_samples=REFERENCE_TRAIN_CLIPS,
                                     batch_size=paper.train.batch_size, total_steps=REFERENCE_STEPS) == (32768, 0.999)
    # a small set and budget: K follows the set (at least a batch), m the budget
    k, m = derive_queue_and_momentum("x", **kw, train_samples=1000, batch_size=64, total_steps=320)
    assert k == round(32768 / REFERENCE_TRAIN_CLIPS * 1000) == 817 and m == pytest.approx(0.999 ** (REFERENCE_STEPS / 320))
    assert derive_queue_and_momentum("x", **kw, train_samples=50, batch_size=64, total_steps=320)[0] == 64
    fixed = dict(kw, queue_size=96, rule="constant")
    assert derive_queue_and_momentum("x", **fixed, train_samples=1000, batch_size=64, total_steps=320) == (96, 0.999)
    # the method derives them from its DataInfo and reports them
    built = make(queue_size=0, info=DataInfo(NTU25, 60, FRAMES, 2, train_samples=100, batch_size=B, total_steps=6))
    assert built.queue.size == built.queue_size == 82
    assert built.derived_settings() == {"queue_size": 82, "momentum": pytest.approx(0.999 ** (REFERENCE_STEPS / 6))}
    with pytest.raises(UnknownNameError):
        make(momentum_rule="fixed")
    with pytest.raises(UnknownNameError):
        make(augment="extreme")


def test_head_normalises_its_first_layer_by_default():
    assert any(isinstance(l, torch.nn.BatchNorm1d) for l in make().head)
    assert not any(isinstance(l, torch.nn.BatchNorm1d) for l in make(head_bn=False).head)  # the reference's head


def test_forward_order_ema_before_keys_then_enqueue():
    # the reference's head (no BatchNorm): keys and logits are then reproduced to float rounding
    m = make(momentum=0.9, head_bn=False)
    m.train()
    v1, v2 = clips()
    k0 = [p.clone() for p in list(m.key_net.parameters()) + list(m.key_head.parameters())]
    q0 = [p.clone() for p in list(m.net.parameters()) + list(m.head.parameters())]
    queue0 = m.queue.queue.clone()
    # the expected keys: an EMA-updated copy of the key branch applied to view 2
    ref = copy.deepcopy(m)
    with torch.no_grad():
        for p, a, b in zip(list(ref.key_net.parameters()) + list(ref.key_head.parameters()), k0, q0):
            p.copy_(0.9 * a + 0.1 * b)
        k_expected = F.normalize(ref.key_head(ref.key_net(v2).pooled), dim=1)
        q_expected = F.normalize(m.head(m.net(v1).pooled), dim=1)
    out = m([v1, v2])
    for p, a, b in zip(list(m.key_net.parameters()) + list(m.key_head.parameters()), k0, q0):
        assert torch.allclose(p, 0.9 * a + 0.1 * b)
    logits = torch.cat([(q_expected * k_expected).sum(1, keepdim=True), q_expected @ queue0], 1) / 0.07
    assert out["loss"].item() == pytest.approx(F.cross_entropy(logits, torch.zeros(B, dtype=torch.long)).item(),
                                               rel=1e-5)
    assert torch.allclose(m.queue.queue[:, :B], k_expected.T, atol=1e-6)
    assert torch.equal(m.queue.queue[:, B:], queue0[:, B:]) and m.queue.ptr.item() == B
    # eval mode: the same loss function, but neither the key encoder nor the queue changes
    m.eval()
    state = {k: v.clone() for k, v in m.state_dict().items()}
    m([v1, v2])
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in state.items())


def test_queue_and_key_encoder_are_checkpointed():
    a = make(seed=0, queue_size=32)
    a.train()
    a(clips(seed=1))
    sd = a.state_dict()
    assert {"queue.queue", "queue.ptr"} <= set(sd) and any(k.startswith("key_net.") for k in sd)
    b = make(seed=5, queue_size=32)
    b.load_state_dict(sd)
    b.train()
    v = clips(seed=2)
    la, lb = a(v)["loss"], b(v)["loss"]
    assert la.item() == lb.item()
    assert torch.equal(a.queue.queue, b.queue.queue) and a.queue.ptr.item() == b.queue.ptr.item() == 2 * B


def test_adam_steps_lower_the_loss():
    """Fixed views and a queue of keys of other clips (kept fixed): a few steps lower InfoNCE."""
    m = make(momentum=0.99, queue_size=64)
    m.train()
    with torch.no_grad():
        negatives = torch.cat([m.key(c) for c in clips(b=32, seed=7)], 0)  # 64 keys of other clips
        m.queue.queue.copy_(negatives.T)
    fixed = m.queue.snapshot()
    v = clips(seed=3)
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(6):
        m.queue.queue.copy_(fixed)
        out = m(v)
        losses.append(out["loss"].item())
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert losses[0] > math.log(65) - 1.0  # near chance: queries do not yet tell the clips apart
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < 0.85 * losses[0]


def test_aimclr_view_is_a_mirrored_window():
    frames, pad = 12, 2  # T // 6
    t = torch.arange(frames, dtype=torch.float32)
    x = t.view(1, 1, frames, 1, 1).expand(5, 3, frames, 25, 2).contiguous()
    out = aimclr_normal_view(x, torch.full((5,), frames), frames, shear=0.0,
                             generator=torch.Generator().manual_seed(0))
    padded = torch.cat([t[:pad].flip(0), t, t[-pad:].flip(0)])
    starts = set()
    for i in range(5):
        seq = out[i, 0, :, 0, 0]
        s = [s for s in range(2 * pad + 1) if torch.equal(seq, padded[s:s + frames])]
        assert s, seq
        starts.add(s[0])
    assert starts <= set(range(2 * pad + 1))
    # with shear, each frame is S·p with off-diagonals within ±0.5
    y = aimclr_normal_view(torch.randn(4, 3, 30, 25, 2), torch.tensor([30, 20, 16, 9]), frames,
                           generator=torch.Generator().manual_seed(1))
    assert y.shape == (4, 3, frames, 25, 2) and torch.isfinite(y).all()


@pytest.mark.parametrize("encoder,variant", [("dste", "default"), ("sttr", "aimclr_aug")])
def test_views_and_backbone_for_both_encoders(encoder, variant):
    m = make(encoder=encoder, variant=variant)
    g = torch.Generator().manual_seed(0)
    views = m.make_views(torch.randn(B, 3, 30, 25, 2), torch.full((B,), 30), g)
    assert len(views) == 2 and views[0].shape == (B, 3, FRAMES, 25, 2)
    out = m(views)
    assert torch.isfinite(out["loss"]) and out["loss"].requires_grad
    bb = m.backbone()
    e = bb(views[0])
    assert e.pooled.shape == (B, bb.feature_dim) and bb.feature_dim == 64
    assert bb.frame_features(views[0]).shape == (B, FRAMES, bb.frame_dim)
    assert not any(n.startswith(("key_", "queue")) for n in bb.state_dict())


class Kill(Exception):
    pass


@pytest.mark.slow
@pytest.mark.e2e
def test_smoke_pretrain_exports_and_resumes_exactly(tmp_path):
    """Through the engine: a run killed after epoch 1 and resumed ends bit-identical (queue included)."""
    ds = toy_dataset(tmp_path / "data")

    def cfg(work):
        return load_config("smoke", overrides={"method.name": "contrastive", "data.dataset": str(ds.root),
                                           "workdir": str(tmp_path / work), "train.device": "cpu",
                                           "train.steps": 0, "train.epochs": 3, "train.batch_size": 16,
                                           "method.options.queue_size": 80})

    full = pretrain(cfg("full"), progress=False)
    assert full.status == "finished" and math.isfinite(full.metrics["loss"]) and full.global_step == 6

    def kill(done, rec):
        if done == 1:
            raise Kill()

    with pytest.raises(Kill):
        pretrain(cfg("killed"), progress=False, on_epoch_end=kill)
    resumed = pretrain(cfg("killed"), resume="auto", progress=False)
    a = torch.load(full.checkpoint, weights_only=True)["model"]
    b = torch.load(resumed.checkpoint, weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert a["queue.ptr"].item() == (6 * 16) % 80  # six steps of 16 keys, wrapped once

    bb, cfg2 = load_backbone(full.run_dir)
    assert cfg2.method.name == "contrastive"
    x = torch.randn(2, 3, cfg2.data.frames, 20, 1)
    assert bb(x).pooled.shape == (2, bb.feature_dim)
