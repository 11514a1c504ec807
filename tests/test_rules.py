"""Budget- and data-dependent rules resolve to the references' exact values at `paper` on NTU-60 xsub
(docs/reference-differences.md, "Budgets, and settings that follow the data and the budget")."""

from __future__ import annotations

import pytest
import torch


from harness.contracts import DataInfo, build_method
from harness.data.topology import NTU25
from harness.engine.schedule import budget_steps, make_scheduler, milestone_steps
from harness.methods.moco import REFERENCE_STEPS, REFERENCE_TRAIN_CLIPS, momentum_rule, queue_rule
from harness.config import load_config
from harness.resolve import resolved

pytestmark = pytest.mark.unit

NTU60_XSUB = 40_091
PAPER_STEPS_PER_EPOCH = -(-NTU60_XSUB // 356)  # 113 steps of the paper's batch of 356


def paper_info(total_steps: int = 451 * PAPER_STEPS_PER_EPOCH) -> DataInfo:
    return DataInfo(topology=NTU25, num_classes=60, frames=64, persons=2, train_samples=NTU60_XSUB,
                    batch_size=356, total_steps=total_steps)


def test_reference_constants_are_the_paper_budget():
    assert REFERENCE_TRAIN_CLIPS == NTU60_XSUB and PAPER_STEPS_PER_EPOCH == 113
    assert REFERENCE_STEPS == 50_963 == budget_steps(0, load_config("paper").train.epochs, PAPER_STEPS_PER_EPOCH)


def test_queue_and_momentum_rules_give_the_references_at_paper_and_scale_down():
    assert queue_rule(32768 / NTU60_XSUB, NTU60_XSUB, 356) == 32768
    assert queue_rule(8192 / NTU60_XSUB, NTU60_XSUB, 356) == 8192
    assert momentum_rule(0.999, REFERENCE_STEPS) == 0.999
    assert queue_rule(32768 / NTU60_XSUB, 1000, 64) == 817  # synthetic at cpu: below the training set
    assert queue_rule(8192 / NTU60_XSUB, 284, 64) == 64  # at least one batch
    m = momentum_rule(0.999, 320)
    assert m == pytest.approx(0.8527, abs=1e-4)
    assert m ** 320 == pytest.approx(0.999 ** REFERENCE_STEPS)  # the same share of initial weights left


@pytest.mark.parametrize("method, queue", [("contrastive", 32768), ("scdnet", 8192)])
def test_queue_methods_derive_the_reference_values_at_paper(method, queue):
    # the rule does not depend on the encoder's width: a narrow DSTE keeps the test light
    cfg = load_config("paper", overrides=[f"method.name={method}", "encoder.options.hidden=16",
                                      "encoder.options.mlp_hidden=16"])
    with torch.random.fork_rng():
        m = build_method(cfg, paper_info())
    assert m.derived_settings() == {"queue_size": queue, "momentum": 0.999}


def test_mamp_at_paper_is_the_reference_recipe():
    cfg = resolved(load_config("paper", overrides=["method.name=mamp"]))
    t = cfg.train
    assert (t.optimizer, t.betas, t.weight_decay, t.decay_norm_and_bias, t.lr) == ("adamw", [0.9, 0.95], 0.05, False, 1e-3)
    assert (t.schedule, t.warmup, t.min_lr, t.batch_size, t.epochs) == ("cosine", 20 / 400, 5e-4, 128, 400)
    assert cfg.encoder.name == "mamp-vit" and cfg.encoder.options["hidden"] == 256
    with torch.random.fork_rng():
        m = build_method(cfg, paper_info())
    assert m.derived_settings() == {"decoder_depth": 3}
    assert len(m.decoder_blocks) == 3 and len(m.encoder.blocks) == 8


def test_mamp_decoder_is_never_deeper_than_its_encoder_at_cpu():
    cfg = load_config("cpu", overrides=["method.name=mamp"])
    info = DataInfo(topology=NTU25, num_classes=60, frames=32, persons=2, train_samples=1000, batch_size=64,
                    total_steps=320)
    m = build_method(cfg, info)
    assert len(m.encoder.blocks) == 2 and len(m.decoder_blocks) == 1


def test_paper_step_decay_happens_at_the_references_epoch_351():
    cfg = load_config("paper")
    total = budget_steps(cfg.train.steps, cfg.train.epochs, PAPER_STEPS_PER_EPOCH)
    assert milestone_steps(cfg.train.milestones, total) == [351 * PAPER_STEPS_PER_EPOCH]
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=cfg.train.lr)
    sched = make_scheduler(opt, total_steps=total, milestones=cfg.train.milestones, gamma=cfg.train.gamma)
    lr = []
    for update in (351 * PAPER_STEPS_PER_EPOCH - 1, 351 * PAPER_STEPS_PER_EPOCH):
        sched.step_update(update)
        lr.append(opt.param_groups[0]["lr"])
    assert lr == [pytest.approx(5e-4), pytest.approx(5e-5)]


@pytest.mark.parametrize("method", ["contrastive", "scdnet"])
@pytest.mark.parametrize("preset, batch", [("paper", 356), ("cpu", 64)])
def test_queue_methods_train_with_moco_v3s_transformer_recipe(method, preset, batch):
    t = resolved(load_config(preset, overrides=[f"method.name={method}"])).train
    assert (t.optimizer, t.weight_decay, t.schedule, t.warmup, t.milestones) == ("adamw", 0.1, "cosine", 40 / 300, [])
    assert t.batch_size == batch and t.lr == pytest.approx(1.5e-4 * batch / 256)
    user = resolved(load_config(preset, overrides=[f"method.name={method}", "train.lr=0.01"])).train
    assert user.lr == 0.01 and user.optimizer == "adamw"  # --set still wins over the method's recipe
