"""The supervised upper bound and the random-init floor (methods/baselines.py)."""

from __future__ import annotations

import math

import pytest
import torch


from harness.data.topology import NTU25
from harness.engine import load_backbone, pretrain
from harness.errors import HarnessError
from harness.registry import METHODS
from harness.contracts import DataInfo, build_method
from harness.methods.baselines import RandomInit, Supervised
from protocol_helpers import toy_dataset
from harness.config import load_config

FRAMES, B = 16, 6
INFO = DataInfo(topology=NTU25, num_classes=5, frames=FRAMES, persons=2)


pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_thread")]


def make(name="supervised", seed=0, encoder="dste", **options):
    sets = {"method.name": name, "encoder.name": encoder}
    if encoder == "dste":
        sets["encoder.options.drop_path"] = 0.0  # deterministic forwards (STTR has no DropPath)
    if options:
        sets["method.options"] = options
    torch.manual_seed(seed)
    return build_method(load_config("smoke", overrides=sets), INFO)


def test_registered():
    assert METHODS.get("supervised") is Supervised and METHODS.get("random") is RandomInit
    assert Supervised.needs_labels and Supervised.pretrains
    assert RandomInit.pretrains is False and not RandomInit.needs_labels


def test_supervised_cross_entropy_hand_checked():
    m = make()
    m.train()
    x = torch.randn(B, 3, FRAMES, 25, 2)
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    out = m(x, labels)
    with torch.no_grad():
        logits = m.logits(x).tolist()
    expected = sum(-row[y] + math.log(sum(math.exp(v) for v in row)) for row, y in zip(logits, labels.tolist())) / B
    assert out["loss"].item() == pytest.approx(expected, rel=1e-5)
    right = sum(max(range(5), key=row.__getitem__) == y for row, y in zip(logits, labels.tolist()))
    assert out["acc"].item() == pytest.approx(right / B)
    with pytest.raises(HarnessError, match="labels"):
        m(x)
    smooth = make(label_smoothing=0.1)(x, labels)["loss"]
    assert smooth.item() != pytest.approx(out["loss"].item())


def test_supervised_views_and_steps_lower_the_loss():
    m = make(encoder="sttr")
    v = m.make_views(torch.randn(B, 3, 30, 25, 2), torch.tensor([30, 25, 20, 16, 12, 30]),
                     torch.Generator().manual_seed(0))
    assert v.shape == (B, 3, FRAMES, 25, 2)
    labels = torch.arange(B) % 5
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        out = m(v, labels)
        losses.append(out["loss"].item())
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert losses[-1] < 0.8 * losses[0], losses
    bb = m.backbone()
    assert bb(v).pooled.shape == (B, bb.feature_dim) and bb.frame_features(v).shape == (B, FRAMES, bb.frame_dim)
    assert not any(k.startswith("fc") for k in bb.state_dict())


def test_random_floor_has_the_shape_of_the_trained_encoders():
    r = make("random")
    u = make("usdrl")
    assert r.backbone().state_dict().keys() == u.backbone().state_dict().keys()
    assert r.backbone().feature_dim == u.backbone().feature_dim
    with pytest.raises(HarnessError, match="nothing to train"):
        r([torch.zeros(1)])


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["supervised", "random"])
def test_smoke_pretrain_and_reload(name, tmp_path):
    ds = toy_dataset(tmp_path / "data")
    cfg = load_config("smoke", overrides={"method.name": name, "data.dataset": str(ds.root),
                                      "workdir": str(tmp_path / "work"), "train.device": "cpu"})
    run = pretrain(cfg, progress=False)
    assert run.status == "finished"
    bb, cfg2 = load_backbone(run.run_dir)
    x = torch.randn(2, 3, FRAMES, 20, 1)
    assert bb(x).pooled.shape == (2, bb.feature_dim) and cfg2.method.name == name
    if name == "supervised":
        # the smoke budget is 6 optimizer steps; 32 training clips at batch 32 are one step per epoch
        assert run.global_step == 6 and run.epochs == 6
        assert math.isfinite(run.metrics["loss"]) and "acc" in run.metrics
    else:  # nothing trained: the export is the seeded initial encoder
        assert run.epochs == 0
        torch.manual_seed(cfg.train.seed)
        fresh = build_method(cfg, DataInfo(ds.topology, ds.num_classes, FRAMES, 1))
        saved = torch.load(run.run_dir / "backbone.pt", weights_only=True)["state_dict"]
        assert all(torch.equal(saved[k], v) for k, v in fresh.backbone().state_dict().items())
