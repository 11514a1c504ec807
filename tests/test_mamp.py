"""MAMP (methods/mamp.py): motion-aware masking, motion targets, backbone, training (the masked loss:
tests/test_loss_mamp_objective.py)."""

from __future__ import annotations

import math

import pytest
import torch
from timm.models.vision_transformer import Block


from harness.data.topology import NTU25
from harness.engine import load_backbone, pretrain
from harness.errors import HarnessError
from harness.contracts import DataInfo, ModalityBackbone, build_method
from harness.methods.encoders.mamp_vit import MAMPViT
from harness.methods.mamp import (MAMP, decoder_depth, keep_count, mask_from_scores, motion_scores, motion_target,
                                  patchify)
from protocol_helpers import toy_dataset
from harness.config import load_config
from harness.resolve import resolved

FRAMES, B = 16, 4
INFO = DataInfo(topology=NTU25, num_classes=60, frames=FRAMES, persons=2)


pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_thread")]


def make(seed=0, preset="smoke", variant="default", frames=FRAMES, **options):
    cfg = load_config(preset, overrides={"method.name": "mamp", "method.variant": variant, "method.options": options})
    torch.manual_seed(seed)
    return build_method(cfg, DataInfo(NTU25, 60, frames, 2))


@pytest.mark.parity
def test_motion_aware_scores_hand_checked():
    # one person, 3 time patches × 2 joints, every value of a patch equal
    level = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.5]])  # (TP, VP)
    patches = level[None, :, :, None].expand(1, 3, 2, 12)
    # motion per token (t, v): t1 = |1−0|, |0−0|; t2 = |3−1|, |0.5−0|; t0 copies t1 → [1, 0, 1, 0, 2, 0.5]
    motion = [1.0, 0.0, 1.0, 0.0, 2.0, 0.5]
    tau = 0.5
    s = [v / (2.0 * tau + 1e-10) for v in motion]
    lse = math.log(sum(math.exp(v) for v in s))
    u = torch.tensor([[0.1, 0.5, 0.9, 0.3, 0.7, 0.2]])
    expected = [s[i] - lse - math.log(-math.log(u[0, i].item() + 1e-10) + 1e-10) for i in range(6)]
    scores = motion_scores(patches, u, tau)
    assert scores[0].tolist() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    # u = 1/e makes the Gumbel term 0: the lowest motion is kept
    keep = keep_count(6, 0.5)
    ids_keep, mask, ids_restore = mask_from_scores(motion_scores(patches, torch.full((1, 6), math.exp(-1)), tau), keep)
    assert keep == 3 and sorted(ids_keep[0].tolist()) == [1, 3, 5]
    assert mask[0].tolist() == [1, 0, 1, 0, 1, 0]
    assert torch.equal(torch.argsort(ids_restore[0]), torch.argsort(motion_scores(
        patches, torch.full((1, 6), math.exp(-1)), tau)[0]))
    # τ ≤ 0: uniform random masking, the score is the noise itself
    assert torch.equal(motion_scores(patches, u, 0.0), u)
    ids_keep, mask, _ = mask_from_scores(u, 2)
    assert ids_keep[0].tolist() == [0, 5] and mask[0].tolist() == [0, 1, 1, 1, 1, 0]


@pytest.mark.parity
def test_keep_count_follows_reference_arithmetic():
    assert keep_count(750, 0.9) == 74  # int(750 · 0.0999…) in float arithmetic
    assert keep_count(100, 0.9) == 9 and keep_count(100, 0.8) == 19 and keep_count(10, 0.5) == 5


@pytest.mark.parity
def test_motion_target_hand_checked():
    t = torch.arange(4, dtype=torch.float32)
    x = torch.stack([t, 2 * t, t * t], dim=-1).view(1, 4, 1, 3)  # (NM, T, V, C)
    raw = [1.0, 2.0, 1.0, 1.0, 2.0, 3.0, 1.0, 2.0, 5.0, 0.0, 0.0, 0.0]  # frame-major, then xyz
    assert motion_target(x, normalize=False)[0, 0].tolist() == raw
    mean = sum(raw) / 12
    std = math.sqrt(sum((v - mean) ** 2 for v in raw) / 11 + 1e-6)
    assert motion_target(x)[0, 0].tolist() == pytest.approx([(v - mean) / std for v in raw], rel=1e-5)
    assert patchify(torch.arange(24.0).view(1, 8, 1, 3))[0, 1, 0].tolist() == list(range(12, 24))


def test_options_presets_and_variants():
    smoke = make()
    assert isinstance(smoke.net, ModalityBackbone) and isinstance(smoke.encoder, MAMPViT)
    # decoder depth = round(3/8 × 2 encoder blocks) = 1 at the small presets (never deeper than the encoder)
    assert smoke.net.feature_dim == 32 and len(smoke.encoder.blocks) == 2 and len(smoke.decoder_blocks) == 1
    assert smoke.derived_settings() == {"decoder_depth": 1}
    assert all(isinstance(b, Block) for b in smoke.encoder.blocks)
    paper_cfg = load_config("paper", overrides={"method.name": "mamp"})
    paper, vit = MAMP.resolve_options(paper_cfg), MAMPViT.resolve_options(paper_cfg)
    assert (vit.hidden, vit.heads, vit.layers, decoder_depth(paper, vit.layers), paper.tau, paper.mask_ratio) == \
        (256, 8, 8, 3, 0.8, 0.9)
    assert resolved(paper_cfg).encoder.name == "mamp-vit"
    ntu120 = MAMP.resolve_options(load_config("paper", overrides={"method.name": "mamp", "method.variant": "ntu120"}))
    assert (ntu120.tau, decoder_depth(ntu120, vit.layers)) == (0.75, 5)
    assert len(make(decoder_depth=1).decoder_blocks) == 1
    assert len(make(decoder_depth=3).decoder_blocks) == 3
    with pytest.raises(HarnessError, match="divisible by 4"):
        make(frames=18)
    with pytest.raises(HarnessError, match="multiple of 4"):
        smoke.backbone()(torch.randn(1, 3, 14, 25, 2))


def test_make_views_and_high_motion_is_masked():
    m = make()
    x = torch.randn(B, 3, 40, 25, 2)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    v, w = m.make_views(x, torch.full((B,), 40), g1), m.make_views(x, torch.full((B,), 40), g2)
    assert v["x"].shape == (B, 3, FRAMES, 25, 2) and v["noise"].shape == (B * 2, FRAMES // 4 * 25)
    assert torch.equal(v["x"], w["x"]) and torch.equal(v["noise"], w["noise"])
    # a clip where only joint 7 moves (faster and faster): with τ = 0.8 its tokens are masked more
    # often than the static ones, and more often than under random masking (τ = 0); ratio 0.5
    clip = torch.zeros(1, FRAMES, 25, 3)
    clip[0, :, 7, 0] = torch.linspace(0, 30, FRAMES) ** 2
    patches = patchify(clip)
    keep = keep_count(FRAMES // 4 * 25, 0.5)

    def masked_rate(tau):
        counts = torch.zeros(FRAMES // 4 * 25)
        for seed in range(50):
            u = torch.rand(1, FRAMES // 4 * 25, generator=torch.Generator().manual_seed(seed))
            counts += mask_from_scores(motion_scores(patches, u, tau), keep)[1][0]
        return counts.view(FRAMES // 4, 25) / 50

    aware, uniform = masked_rate(0.8), masked_rate(0.0)
    static = torch.cat([aware[:, :7], aware[:, 8:]], 1)
    assert aware[:, 7].mean() > 0.7 and static.mean() < 0.5 and aware[2:, 7].min() >= 0.8
    assert uniform[:, 7].mean() < 0.6
    assert (aware.sum() * 50).round() == 50 * (100 - keep)


def test_backbone_features():
    m = make()
    bb = m.backbone()
    x = torch.randn(2, 3, FRAMES, 25, 2)
    with torch.no_grad():
        z = bb.encoder.tokens(x)  # (N, M, T/4, V, D)
        out = bb(x)
    assert z.shape == (2, 2, 4, 25, 32)
    assert torch.allclose(out.pooled, z.mean(dim=(1, 2, 3)), atol=1e-6)
    assert out.temporal.shape == (2, 4, 32) and out.spatial.shape == (2, 50, 32)
    ff = bb.frame_features(x)
    assert ff.shape == (2, FRAMES, bb.frame_dim) and torch.allclose(ff[:, 4:8], out.temporal[:, 1:2].expand(2, 4, 32))
    assert not any(n.startswith("decoder") or n == "mask_token" for n in bb.state_dict())
    assert all(n.startswith("encoder.") for n in bb.state_dict())  # the ViT inside a ModalityBackbone


def test_moved_options_and_own_encoder_only():
    for old, new in [("width", "encoder.options.hidden"), ("depth", "encoder.options.layers")]:
        with pytest.raises(HarnessError, match=new.replace(".", r"\.")):
            make(**{old: 64})
    with pytest.raises(HarnessError, match="mamp-vit"):
        build_method(load_config("smoke", overrides={"method.name": "mamp", "encoder.name": "dste"}), INFO)
    wide = build_method(load_config("smoke", overrides={"method.name": "mamp", "encoder.options.hidden": 64,
                                                    "encoder.options.heads": 2}), INFO)
    assert wide.net.feature_dim == 64 and wide.decoder_embed.out_features == 64


def test_mamp_train_defaults_follow_the_reference():
    t = load_config("smoke", overrides={"method.name": "mamp"}).train
    assert (t.optimizer, t.betas, t.weight_decay, t.decay_norm_and_bias, t.schedule, t.min_lr) == \
        ("adamw", [0.9, 0.95], 0.05, False, "cosine", 5e-4)
    assert t.warmup == pytest.approx(0.05) and t.steps == 6  # the preset's budget stays
    paper = load_config("paper", overrides={"method.name": "mamp"}).train
    assert (paper.batch_size, paper.epochs) == (128, 400)
    assert load_config("smoke", overrides={"method.name": "mamp", "train.lr": 0.01}).train.lr == 0.01  # --set wins


def test_adam_steps_lower_the_loss():
    m = make()
    m.train()
    views = m.make_views(torch.randn(B, 3, 24, 25, 2), torch.full((B,), 24), torch.Generator().manual_seed(1))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        out = m(views)
        losses.append(out["loss"].item())
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert losses[-1] < 0.9 * losses[0], losses


@pytest.mark.e2e
def test_smoke_pretrain(tmp_path):
    ds = toy_dataset(tmp_path / "data")
    cfg = load_config("smoke", overrides={"method.name": "mamp", "data.dataset": str(ds.root),
                                      "workdir": str(tmp_path / "work"), "train.device": "cpu"})
    run = pretrain(cfg, progress=False)
    assert run.status == "finished" and math.isfinite(run.metrics["loss"])
    bb, _ = load_backbone(run.run_dir)
    assert bb(torch.randn(2, 3, FRAMES, 20, 1)).pooled.shape == (2, 32)
