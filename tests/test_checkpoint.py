"""Checkpoint building blocks: weights_only-safe RNG states, stateless schedules, atomic saves, clear errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch


from harness.engine import checkpoint as ck
from harness.errors import HarnessError
from harness.config import load_config
from harness.resolve import resolved

pytestmark = pytest.mark.unit


class Foreign:
    pass


def draws():
    return (random.random(), random.gauss(0, 1), float(np.random.rand()), float(np.random.randn()),
            torch.rand(3).tolist())


def test_rng_state_round_trips_through_weights_only_file(tmp_path):
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    random.gauss(0, 1)  # leaves a cached gaussian in Python's state
    np.random.randn()
    state = ck.rng_state()
    ck.save({"format": ck.CKPT_FORMAT, "version": ck.VERSION, "rng": [state]}, tmp_path / "r.pt")
    expected = draws()
    loaded = ck.load(tmp_path / "r.pt", ck.CKPT_FORMAT)["rng"][0]  # weights_only=True inside
    ck.seed_everything(123)
    assert draws() != expected
    ck.set_rng_state(loaded)
    assert draws() == expected


def test_step_generator_is_a_pure_function_of_seed_epoch_step_rank():
    cpu = torch.device("cpu")

    def sample(*key):
        return torch.rand(4, generator=ck.step_generator(*key, cpu)).tolist()

    torch.manual_seed(0)
    a = sample(0, 1, 2, 0)
    torch.rand(10)  # the global RNG does not matter
    assert sample(0, 1, 2, 0) == a
    assert len({tuple(sample(*k)) for k in [(0, 1, 2, 0), (1, 1, 2, 0), (0, 2, 2, 0), (0, 1, 3, 0),
                                            (0, 1, 2, 1)]}) == 5


def test_learning_rate_is_a_function_of_the_step_count():
    """Checkpoints carry no scheduler state: a fresh scheduler told the step count gives the lr the
    uninterrupted one has (step decay and cosine with warm-up)."""
    from harness.engine.schedule import make_scheduler

    def scheduler(**kw):
        opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        return opt, make_scheduler(opt, total_steps=8, **kw)

    for kw in ({"milestones": [0.25, 0.5], "gamma": 0.5}, {"schedule": "cosine", "warmup": 0.25, "min_lr": 0.1}):
        opt, sched = scheduler(**kw)
        whole = []
        for i in range(8):
            sched.step_update(i)
            whole.append(opt.param_groups[0]["lr"])
        for resume_at in (3, 5):
            opt2, sched2 = scheduler(**kw)
            sched2.step_update(resume_at)
            assert opt2.param_groups[0]["lr"] == whole[resume_at], (kw, resume_at)
    assert whole[0] == 0.0 and whole[2] == pytest.approx(1.0)  # the cosine run warmed up from 0


def test_save_is_atomic_and_leaves_no_temporaries(tmp_path, monkeypatch):
    target = tmp_path / "ck" / "last.pt"
    ck.save({"format": ck.CKPT_FORMAT, "version": ck.VERSION, "x": 1}, target)
    before = target.read_bytes()

    def boom(obj, f, *a, **k):
        open(f, "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        ck.save({"format": ck.CKPT_FORMAT, "version": ck.VERSION, "x": 2}, target)
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["last.pt"]


def test_link_or_copy_replaces_target(tmp_path):
    a = ck.save({"format": ck.CKPT_FORMAT, "version": ck.VERSION, "x": 1}, tmp_path / "epoch_0001.pt")
    last = tmp_path / "last.pt"
    last.write_bytes(b"old")
    ck.link_or_copy(a, last)
    assert ck.load(last, ck.CKPT_FORMAT)["x"] == 1
    b = ck.save({"format": ck.CKPT_FORMAT, "version": ck.VERSION, "x": 2}, tmp_path / "epoch_0002.pt")
    ck.link_or_copy(b, last)
    assert ck.load(a, ck.CKPT_FORMAT)["x"] == 1 and ck.load(last, ck.CKPT_FORMAT)["x"] == 2


def test_load_errors(tmp_path):
    with pytest.raises(HarnessError, match="no such checkpoint"):
        ck.load(tmp_path / "missing.pt", ck.CKPT_FORMAT)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(HarnessError, match="cannot read checkpoint"):
        ck.load(tmp_path / "junk.pt", ck.CKPT_FORMAT)
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(HarnessError, match="not a harness-checkpoint"):
        ck.load(tmp_path / "other.pt", ck.CKPT_FORMAT)
    torch.save({"format": ck.CKPT_FORMAT, "version": 99}, tmp_path / "v.pt")
    with pytest.raises(HarnessError, match="version 99"):
        ck.load(tmp_path / "v.pt", ck.CKPT_FORMAT)

    # an arbitrary pickled object is refused by weights_only
    torch.save({"format": ck.CKPT_FORMAT, "version": ck.VERSION, "obj": Foreign()}, tmp_path / "f.pt")
    with pytest.raises(HarnessError, match="cannot read checkpoint"):
        ck.load(tmp_path / "f.pt", ck.CKPT_FORMAT)


def test_config_diff_and_refusal():
    a = load_config("smoke")
    b = load_config("smoke", overrides=["train.lr=0.5", "encoder=sttr", "workdir=elsewhere",
                                    "method.options={xc_weight: 0}"])
    diff = ck.config_diff(a.to_dict(), b.to_dict())
    assert diff == ["encoder.name: '' → 'sttr'", "method.options.xc_weight: '<absent>' → 0",
                    "train.lr: 0.001 → 0.5"]
    # a checkpoint stores the resolved configuration (every option filled in), as the trainer writes it
    state = {"pretrain_hash": resolved(a).pretrain_hash, "config": resolved(a).to_dict()}
    ck.check_same_run(state, load_config("smoke", overrides=["workdir=x"]), "p.pt")  # workdir is not hashed
    ck.check_same_run(state, load_config("smoke", overrides=["encoder=dste"]), "p.pt")  # the default, stated
    with pytest.raises(HarnessError) as err:
        ck.check_same_run(state, load_config("smoke", overrides=["train.lr=0.5", "encoder.options.heads=2"]), "p.pt")
    detail = str(err.value).split("): ", 1)[1]  # only the settings that really differ, one line each
    assert detail.startswith("encoder.options.heads: 1 → 2; train.lr: 0.001 → 0.5.")
