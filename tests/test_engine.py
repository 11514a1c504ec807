"""The training engine on a tiny toy method and a tiny prepared dataset (CPU, seconds)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from harness.config import RunConfig, load_config
from harness.resolve import resolved
from harness.data.prepared.format import PreparedWriter
from harness.transforms.resample import resample
from harness.data.topology import NTU25
from harness.engine import NonFiniteLossError, find_or_pretrain, load_backbone, pretrain
from harness.engine.amp import resolve_amp
from harness.engine.distributed import ShardedBatches, gather_with_grad
from harness.engine.logging import read_metrics
from harness.engine.optim import build_optimizer
from harness.engine.runs import run_lock
from harness.errors import HarnessError, UnknownNameError
from harness.registry import METHODS
from harness.contracts import Backbone, EncoderOutput, Method

pytestmark = pytest.mark.e2e

TOY = "_engine_toy"


def vac(z: torch.Tensor) -> torch.Tensor:
    """Variance + auto-covariance of one view (the docs/reference/usdrl.md §8 formula)."""
    b, d = z.shape
    std = torch.sqrt(z.var(dim=0) + 1e-4)
    v = F.relu(1 - std).mean()
    zc = z - z.mean(0)
    cov = zc.T @ zc / (b - 1)
    off = cov - torch.diag(torch.diag(cov))
    return 5 * v + off.pow(2).sum() / d


class ToyBackbone(Backbone):
    def __init__(self, encoder: nn.Module, width: int):
        super().__init__()
        self.encoder = encoder
        self.feature_dim = self.frame_dim = width

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        tokens = self.encoder(x.permute(0, 2, 1, 3, 4).flatten(2))  # (N, T, width)
        return EncoderOutput(pooled=tokens.mean(1), temporal=tokens)

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x).temporal


@dataclass
class ToyOptions:
    noise: float = 0.1  # augmentation strength (0: views are the resampled clip)
    dropout: float = 0.1
    nan_at_call: int = -1  # make the "vac" term NaN on this forward call (1-based)


class ToyMethod(Method):
    """A two-view decorrelation toy that uses every RNG source the engine must restore."""

    name = TOY
    Options = ToyOptions

    def __init__(self, cfg: RunConfig, info):
        super().__init__(cfg, info)
        width = 8
        self.encoder = nn.Sequential(nn.Linear(3 * info.joints * info.persons, 16), nn.ReLU(),
                                     nn.Dropout(self.options.dropout), nn.Linear(16, width))
        self.proj = nn.Linear(width, 8)
        self._backbone = ToyBackbone(self.encoder, width)
        self.calls = 0

    def make_views(self, x, lengths, generator=None):
        base = resample(x, lengths, self.info.frames)
        views = []
        for _ in range(self.num_views):
            s = self.options.noise * (1.0 + 0.5 * random.random()) * float(np.random.uniform(0.5, 1.5))
            views.append(base + s * torch.randn(base.shape, generator=generator, device=base.device))
        return views

    def forward(self, views, labels=None):
        self.calls += 1
        z = [gather_with_grad(self.proj(self._backbone(v).pooled)) for v in views]
        sim = F.mse_loss(z[0], z[1])
        var = vac(z[0]) + vac(z[1])
        if self.calls == self.options.nan_at_call:
            var = var * float("nan")
        return {"loss": 5 * sim + var, "sim": sim, "vac": var}

    def backbone(self) -> Backbone:
        return self._backbone


class FloorMethod(ToyMethod):
    """Random-init floor: nothing to pretrain."""

    name = TOY + "_floor"
    pretrains = False


@contextlib.contextmanager
def toy_methods():
    """The toy methods registered for the block only (nothing else sees them in the registry)."""
    with METHODS.temporarily(TOY, ToyMethod), METHODS.temporarily(FloorMethod.name, FloorMethod):
        yield


@pytest.fixture(autouse=True, scope="module")
def _toy_methods():
    """Autouse in every module that imports it: its tests see the toy methods."""
    with toy_methods():
        yield


def make_dataset(root: Path, n: int = 40, t_max: int = 20, seed: int = 0, overwrite: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    out = root / "toyds"
    with PreparedWriter(out, kind="toy", topology=NTU25, num_samples=n, max_frames=t_max, num_persons=2,
                        class_names=[f"c{i}" for i in range(4)], overwrite=overwrite) as w:
        for i in range(n):
            length = int(rng.integers(8, t_max + 1))
            clip = rng.normal(size=(3, length, 25, 2)).astype(np.float32)
            clip[..., 1] *= i % 2  # half the clips have one person
            w.set_sample(i, clip, name=f"s{i:03d}", label=i % 4, subject=i % 5)
        w.add_split("xsub", "train", np.arange(32))
        w.add_split("xsub", "test", np.arange(32, n))
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"))


def toy_cfg(dataset: Path, workdir: Path, **overrides) -> RunConfig:
    sets = {"method.name": TOY, "data.dataset": str(dataset), "data.frames": 6, "workdir": str(workdir),
            # an epoch budget (steps 0); lr × 0.1 after the first of three epochs
            "train.steps": 0, "train.epochs": 3, "train.batch_size": 8, "train.milestones": [1 / 3], "train.lr": 1e-2,
            "train.checkpoint_every": 1, "train.max_steps_per_epoch": 0, "train.log_every": 2,
            "train.device": "cpu", "train.amp": "off", "train.num_threads": 1}
    sets.update(overrides)
    return load_config("smoke", overrides=sets)


def state_of(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Kill(Exception):
    pass


def test_pretrain_writes_run_folder(dataset, tmp_path):
    cfg = toy_cfg(dataset, tmp_path, **{"train.checkpoint_every": 2})
    info = pretrain(cfg, progress=False)
    run = tmp_path / "runs" / f"{TOY}-{resolved(cfg).pretrain_hash}"
    assert info.run_dir == run and info.status == "finished"
    assert info.epochs == 3 and info.global_step == 3 * 4  # 32 samples / batch 8
    assert (run / "config.yaml").read_text() and (run / "backbone.pt").is_file()
    meta = json.loads((run / "run.json").read_text())
    assert meta["pretrain_hash"] == resolved(cfg).pretrain_hash and meta["config_hash"] == resolved(cfg).config_hash
    assert meta["status"] == "finished"
    # numbered checkpoints every 2 epochs and at the end, plus last.pt (= the final state)
    assert [p.name for p in info.checkpoints] == ["epoch_0002.pt", "epoch_0003.pt"]
    last = state_of(info.checkpoint)
    assert last["epoch"] == 3 and last["global_step"] == 12 and last["pretrain_hash"] == resolved(cfg).pretrain_hash
    # no scheduler state: the learning rate is a function of global_step (harness.engine.schedule)
    assert set(last) >= {"model", "optimizer", "scaler", "rng", "config", "metrics"}
    # metrics: a step line every 2 steps, an epoch line per epoch; lr decays after milestone 1
    recs = read_metrics(run)
    epochs = [r for r in recs if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert [r["lr"] for r in epochs] == pytest.approx([1e-2, 1e-3, 1e-3])
    assert [r["step"] for r in recs if r["kind"] == "step"] == [2, 4, 6, 8, 10, 12]
    for r in recs:
        assert {"loss", "sim", "vac", "lr", "samples_per_s"} <= set(r) and r["samples_per_s"] > 0
    assert info.metrics["loss"] == pytest.approx(epochs[-1]["loss"])


def test_training_lowers_the_loss(dataset, tmp_path):
    cfg = toy_cfg(dataset, tmp_path, **{"train.epochs": 6, "train.milestones": [],
                                         "method.options": {"dropout": 0.0}})
    pretrain(cfg, progress=False)
    losses = [r["loss"] for r in read_metrics(tmp_path / "runs" / f"{TOY}-{resolved(cfg).pretrain_hash}")
              if r["kind"] == "epoch"]
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize("kill_at", [("epoch", 2), ("step", 7)])
def test_resume_is_exact(dataset, tmp_path, kill_at):
    """Killed after epoch 2 (or mid epoch 2 at step 7) and resumed == uninterrupted, bit for bit."""
    full = pretrain(toy_cfg(dataset, tmp_path / "full"), progress=False)

    cfg = toy_cfg(dataset, tmp_path / "killed")

    def on_epoch(done, rec):
        if kill_at == ("epoch", done):
            raise Kill()

    def on_step(epoch, step, terms):
        if kill_at == ("step", step):
            raise Kill()

    with pytest.raises(Kill):
        pretrain(cfg, progress=False, on_epoch_end=on_epoch, on_step_end=on_step)
    run = tmp_path / "killed" / "runs" / f"{TOY}-{resolved(cfg).pretrain_hash}"
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    assert state_of(run / "checkpoints" / "last.pt")["epoch"] == (2 if kill_at[0] == "epoch" else 1)
    resumed = pretrain(cfg, resume="auto", progress=False)
    assert resumed.resumed_from and resumed.epochs == 3 and resumed.global_step == full.global_step

    a, b = state_of(full.checkpoint), state_of(resumed.checkpoint)
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"])
    # the log of the resumed run has no duplicated lines and the same losses
    la, lb = read_metrics(full.run_dir), read_metrics(resumed.run_dir)
    assert [r["step"] for r in la] == [r["step"] for r in lb]
    assert [r["loss"] for r in la] == [r["loss"] for r in lb]
    assert [r["lr"] for r in la] == [r["lr"] for r in lb]  # the schedule picks up from the step count


def test_resume_refuses_a_different_config(dataset, tmp_path):
    first = pretrain(toy_cfg(dataset, tmp_path, **{"train.epochs": 1}), progress=False)
    other = toy_cfg(dataset, tmp_path, **{"train.epochs": 1, "train.lr": 0.5})
    with pytest.raises(HarnessError) as err:
        pretrain(other, resume=str(first.checkpoint), progress=False)
    msg = str(err.value)
    assert "train.lr" in msg and "0.01" in msg and "0.5" in msg and "pretrain_hash" in msg
    with pytest.raises(HarnessError, match="no such checkpoint"):
        pretrain(other, resume=str(tmp_path / "nope.pt"), progress=False)


def test_resume_never_starts_over(dataset, tmp_path):
    cfg = toy_cfg(dataset, tmp_path, **{"train.epochs": 1})
    a = pretrain(cfg, progress=False)
    before = state_of(a.checkpoint)["model"]
    again = pretrain(cfg, resume="auto", progress=False)  # finished: nothing to train
    assert again.epochs == 1 and again.global_step == a.global_step
    b = pretrain(cfg, resume="never", progress=False)
    assert b.resumed_from is None and b.global_step == a.global_step
    after = state_of(b.checkpoint)["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)  # same seed → same weights
    assert len([r for r in read_metrics(b.run_dir) if r["kind"] == "epoch"]) == 1


def test_nan_loss_stops_and_keeps_checkpoint(dataset, tmp_path):
    cfg = toy_cfg(dataset, tmp_path, **{"method.options": {"nan_at_call": 6}})
    run = tmp_path / "runs" / f"{TOY}-{resolved(cfg).pretrain_hash}"
    digests = {}

    def on_epoch(done, rec):
        digests[done] = file_digest(run / "checkpoints" / "last.pt")

    with pytest.raises(NonFiniteLossError) as err:
        pretrain(cfg, progress=False, on_epoch_end=on_epoch)
    msg = str(err.value)
    assert "epoch 2" in msg and "step 6" in msg and "vac=nan" in msg and "sim=" not in msg
    assert err.value.epoch == 2 and err.value.step == 6
    assert list(digests) == [1]
    assert file_digest(run / "checkpoints" / "last.pt") == digests[1]
    assert not (run / "backbone.pt").exists()
    assert json.loads((run / "run.json").read_text())["status"] == "failed"


def test_backbone_export_and_load(dataset, tmp_path):
    cfg = toy_cfg(dataset, tmp_path, **{"train.epochs": 1})
    info = pretrain(cfg, progress=False)
    bb, bcfg = load_backbone(info.run_dir, "cpu")
    assert resolved(bcfg).pretrain_hash == resolved(cfg).pretrain_hash and bcfg.method.name == TOY
    assert not bb.training and bb.feature_dim == 8
    model = state_of(info.checkpoint)["model"]
    for k, v in bb.state_dict().items():
        assert torch.equal(v, model[k]), k  # the backbone shares the method's encoder weights
    x = torch.randn(2, 3, 6, 25, 2)
    assert bb(x).pooled.shape == (2, 8)
    # the same file by path, and a clear error for a non-backbone file
    bb2, _ = load_backbone(info.backbone)
    assert torch.equal(bb2(x).pooled, bb(x).pooled)
    with pytest.raises(HarnessError, match="not a harness-backbone"):
        load_backbone(info.checkpoint)


def test_find_or_pretrain_reuses(dataset, tmp_path):
    cfg = toy_cfg(dataset, tmp_path, **{"train.epochs": 1})
    first = find_or_pretrain(cfg, progress=False)
    assert not first.reused
    stamp = first.backbone.stat().st_mtime_ns
    again = find_or_pretrain(cfg, progress=False)
    assert again.reused and again.run_dir == first.run_dir and again.backbone.stat().st_mtime_ns == stamp
    assert again.metrics["loss"] == pytest.approx(first.metrics["loss"])


def test_a_run_made_on_other_data_is_moved_aside_not_reused(tmp_path):
    """The pretrain hash covers the config; the dataset fingerprint in run.json covers the data."""
    data = make_dataset(tmp_path / "data")
    cfg = toy_cfg(data, tmp_path / "wd", **{"train.epochs": 1})
    first = find_or_pretrain(cfg, progress=False)
    made_on = json.loads((first.run_dir / "run.json").read_text())["dataset_fingerprint"]
    assert find_or_pretrain(cfg, progress=False).reused

    make_dataset(tmp_path / "data", seed=1, overwrite=True)  # same path and config, other clips
    again = find_or_pretrain(cfg, progress=False)
    assert not again.reused and again.run_dir == first.run_dir
    now_on = json.loads((again.run_dir / "run.json").read_text())["dataset_fingerprint"]
    assert now_on != made_on
    stale = list((tmp_path / "wd" / "runs" / ".stale").iterdir())
    assert [p.name for p in stale] == [f"{first.run_dir.name}.{made_on[:8]}"]
    assert (stale[0] / "backbone.pt").is_file()  # kept, not deleted
    assert find_or_pretrain(cfg, progress=False).reused  # and the new run is reused from now on


def test_method_without_pretraining_only_exports(dataset, tmp_path):
    cfg = toy_cfg(dataset, tmp_path, **{"method.name": FloorMethod.name})
    info = pretrain(cfg, progress=False)
    assert info.status == "finished" and info.checkpoint is None and info.epochs == 0
    assert not (info.run_dir / "checkpoints").exists()
    bb, _ = load_backbone(info.run_dir)
    assert bb.feature_dim == 8


def test_run_lock_refuses_a_second_trainer(dataset, tmp_path):
    cfg = toy_cfg(dataset, tmp_path, **{"train.epochs": 1})
    run = tmp_path / "runs" / f"{TOY}-{resolved(cfg).pretrain_hash}"
    with run_lock(run):
        with pytest.raises(HarnessError, match="being trained by another process"):
            pretrain(cfg, progress=False)


def test_max_steps_and_bf16_on_cpu(dataset, tmp_path, capsys):
    cfg = toy_cfg(dataset, tmp_path, **{"train.epochs": 1, "train.max_steps_per_epoch": 2,
                                         "train.amp": "bf16"})
    info = pretrain(cfg, progress=True)
    assert info.global_step == 2
    err = capsys.readouterr().err  # not a TTY: no bar, but one summary line per epoch
    assert err.startswith("epoch 1/1: loss ") and "samples/s" in err and "\r" not in err
    assert json.loads((info.run_dir / "run.json").read_text())["amp"] == "bf16"


def test_compile(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_COMPILE_BACKEND", "eager")
    cfg = toy_cfg(dataset, tmp_path, **{"train.epochs": 1, "train.max_steps_per_epoch": 2,
                                         "train.compile": True})
    info = pretrain(cfg, progress=False)
    assert info.global_step == 2 and np.isfinite(info.metrics["loss"])
    assert not any(k.startswith("_orig_mod") for k in state_of(info.checkpoint)["model"])


@pytest.mark.unit
def test_amp_resolution():
    assert resolve_amp("auto", "cpu").mode == "off"
    assert resolve_amp("off", "cpu").dtype is None
    assert resolve_amp("bf16", "cpu").dtype == torch.bfloat16
    with pytest.raises(HarnessError, match="fp16 needs a CUDA device"):
        resolve_amp("fp16", "cpu")
    with pytest.raises(UnknownNameError):
        resolve_amp("fp8", "cpu")
    assert not resolve_amp("off", "cpu").grad_scaler().is_enabled()


def test_optimizers(dataset, tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    cpu = torch.device("cpu")
    cfg = toy_cfg(dataset, tmp_path)
    opt = build_optimizer(cfg, model, cpu)
    assert type(opt) is torch.optim.Adam and len(opt.param_groups) == 1
    assert opt.param_groups[0]["weight_decay"] == cfg.train.weight_decay  # coupled L2 on every parameter
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)
    cfg.train.optimizer = "adamw"
    assert type(build_optimizer(cfg, model, cpu)) is torch.optim.AdamW
    cfg.train.decay_norm_and_bias = False  # biases and norm weights in a group without decay
    groups = build_optimizer(cfg, model, cpu).param_groups
    decays = sorted((g["weight_decay"], sum(p.numel() for p in g["params"])) for g in groups)
    assert decays == [(0.0, 4 + 4 + 4), (cfg.train.weight_decay, 12)]
    cfg.train.optimizer = "sgd"
    assert build_optimizer(cfg, model, cpu).defaults["momentum"] == 0.9
    cfg.train.optimizer = "adamm"
    with pytest.raises(UnknownNameError, match="adam"):  # every run checks its config first
        resolved(cfg)
    with pytest.raises(UnknownNameError, match="adam"):
        pretrain(cfg, progress=False)


def test_bad_inputs(dataset, tmp_path):
    with pytest.raises(UnknownNameError):
        pretrain(toy_cfg(dataset, tmp_path, **{"data.split": "xview"}), progress=False)
    with pytest.raises(HarnessError, match="CUDA is not available"):
        pretrain(toy_cfg(dataset, tmp_path, **{"train.device": "cuda"}), progress=False)
    with pytest.raises(UnknownNameError):
        pretrain(toy_cfg(dataset, tmp_path, **{"method.name": "_no_such_method"}), progress=False)


@pytest.mark.unit
def test_sharded_batches_match_single_process(dataset):
    from harness.data.prepared.format import open_prepared

    ds = open_prepared(dataset)
    idx = np.arange(30)
    single = ShardedBatches(ds, idx, 8, shuffle=True, seed=3, prefetch=0)
    ranks = [ShardedBatches(ds, idx, 8, rank=r, world_size=2, shuffle=True, seed=3, prefetch=0) for r in (0, 1)]
    for loader in [single, *ranks]:
        loader.set_epoch(1)
    whole = [b.index.tolist() for b in single]
    parts = [[b.index.tolist() for b in loader] for loader in ranks]
    assert len(whole) == len(parts[0]) == len(parts[1]) == 4
    for k in range(4):  # rank 0's half then rank 1's half == the single-process batch
        assert parts[0][k] + parts[1][k] == whole[k]
    # 29 samples: the last global batch (5) is padded with the epoch's first sample to 6
    odd = [ShardedBatches(ds, idx[:29], 8, rank=r, world_size=2, shuffle=True, seed=3, prefetch=0)
           for r in (0, 1)]
    last = [list(loader)[-1].index.tolist() for loader in odd]
    order = odd[0].order().tolist()
    assert last[0] + last[1] == order[24:29] + order[:1]
    # one leftover sample is dropped in a single process (no batch statistics from one clip)
    assert [len(b.index) for b in ShardedBatches(ds, np.arange(17), 8, prefetch=0)] == [8, 8]
    with pytest.raises(HarnessError, match="divisible"):
        ShardedBatches(ds, idx, 7, rank=0, world_size=2)


def test_step_budget_and_fractional_milestones(dataset, tmp_path):
    """train.steps is the budget whatever the data size; milestones are fractions of it."""
    cfg = toy_cfg(dataset, tmp_path, **{"train.steps": 10, "train.epochs": 0, "train.milestones": [0.5]})
    info = pretrain(cfg, progress=False)
    assert info.global_step == 10 and info.epochs == 3  # 4 steps per epoch: 4 + 4 + 2
    meta = json.loads((info.run_dir / "run.json").read_text())
    assert meta["total_steps"] == 10 and meta["train_samples"] == 32
    lrs = [r["lr"] for r in read_metrics(info.run_dir) if r["kind"] == "step"]  # steps 2, 4, ..., 10
    assert lrs == pytest.approx([1e-2, 1e-2, 1e-3, 1e-3, 1e-3])  # × 0.1 from update 5 on (0-based)
    with pytest.raises(HarnessError, match="fractions of the training budget"):
        resolved(toy_cfg(dataset, tmp_path, **{"train.milestones": [351]}))
    with pytest.raises(HarnessError, match="no training at all"):
        resolved(toy_cfg(dataset, tmp_path, **{"train.steps": 0, "train.epochs": 0}))


@pytest.mark.unit
def test_schedules_follow_the_step_count():
    from harness.engine.schedule import budget_steps, epochs_for, make_scheduler, milestone_steps

    assert budget_steps(0, 451, 113) == 50_963 and budget_steps(320, 451, 113) == 320
    assert epochs_for(10, 4) == 3 and milestone_steps([351 / 451], 451 * 113) == [351 * 113]

    def lrs(**kw):
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
        sched = make_scheduler(opt, total_steps=10, **kw)
        out = []
        for i in range(10):
            sched.step_update(i)
            out.append(opt.param_groups[0]["lr"])
        return out

    assert lrs(milestones=[0.5], gamma=0.1) == pytest.approx([1.0] * 5 + [0.1] * 5)
    cos = lrs(schedule="cosine", warmup=0.2, min_lr=0.5)
    assert cos[0] == 0.0 and cos[1] == pytest.approx(0.5) and cos[2] == pytest.approx(1.0)  # warm-up from 0
    assert all(b <= a for a, b in zip(cos[2:], cos[3:])) and min(cos[2:]) >= 0.5
