"""``harness pretrain`` end to end (in-process CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harness.cli import main
from harness.engine import load_backbone

from test_engine import TOY, _toy_methods, make_dataset  # noqa: E402,F401  (the toy methods)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("cli-data"))


@pytest.fixture(scope="module")
def shared_workdir(tmp_path_factory) -> Path:
    """One workdir for the synthetic runs, so the dataset is generated once."""
    return tmp_path_factory.mktemp("cli-work")


def toy_args(dataset: Path, workdir: Path, *extra: str) -> list[str]:
    return ["pretrain", "--method", TOY, "--dataset", str(dataset), "--preset", "smoke",
            "--workdir", str(workdir), "--set", "data.frames=6", "--set", "train.batch_size=8",
            "--set", "train.device=cpu", "--set", "train.num_threads=1", "--no-progress", *extra]


def test_pretrain_prints_run_loss_and_checkpoint(dataset, tmp_path, capsys):
    assert main(toy_args(dataset, tmp_path)) == 0
    out = capsys.readouterr().out
    lines = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    run = Path(lines["run"])
    assert run.parent == tmp_path / "runs" and run.name.startswith(f"{TOY}-")
    assert float(lines["final loss"]) > 0
    assert Path(lines["checkpoint"]) == run / "checkpoints" / "last.pt" and Path(lines["checkpoint"]).is_file()
    assert "2 epoch(s), 6 step(s)" in out  # smoke: a budget of 6 steps, at most 3 per epoch
    # --json; a second call with --resume auto finds the finished run and trains nothing more
    assert main(toy_args(dataset, tmp_path, "--json")) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["run_dir"] == str(run) and info["epochs"] == 2 and info["global_step"] == 6
    assert info["status"] == "finished" and info["resumed_from"].endswith("last.pt")
    bb, cfg = load_backbone(info["backbone"])
    assert cfg.method.name == TOY and cfg.train.steps == 6 and cfg.train.max_steps_per_epoch == 3
    assert bb(torch.zeros(1, 3, 6, 25, 2)).pooled.shape == (1, bb.feature_dim)


def test_pretrain_errors_exit_2(dataset, tmp_path, capsys):
    assert main(toy_args(dataset, tmp_path, "--resume", str(tmp_path / "nope.pt"))) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    assert main(toy_args(dataset, tmp_path, "--set", "train.amp=fp16")) == 2
    assert "fp16 needs a CUDA device" in capsys.readouterr().err
    assert main(toy_args(dataset, tmp_path, "--set", "train.optimiser=sgd")) == 2
    assert "train.optimizer" in capsys.readouterr().err  # the suggestion


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--set", "encoder=sttr", "--set", "train.max_steps_per_epoch=1",
                                         "--set", "train.steps=2"]],
                         ids=["dste", "sttr"])
def test_usdrl_on_synthetic_smoke(shared_workdir, capsys, extra):
    """The real method on the built-in dataset: `harness pretrain --method usdrl --dataset synthetic
    --preset smoke` trains to a checkpoint and a loadable backbone on CPU."""
    argv = ["pretrain", "--method", "usdrl", "--dataset", "synthetic", "--preset", "smoke",
            "--workdir", str(shared_workdir), "--set", "train.device=cpu", "--set", "train.num_threads=1",
            "--no-progress", "--json", *extra]
    assert main(argv) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["status"] == "finished" and info["epochs"] == 2
    assert info["metrics"]["loss"] > 0 and all(k in info["metrics"] for k in ("sim", "vac", "xc"))
    ckpt = torch.load(info["checkpoint"], weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["config"]["encoder"]["name"] == ("sttr" if extra else "dste")
    bb, cfg = load_backbone(info["run_dir"])
    assert cfg.method.name == "usdrl" and not bb.training
    with torch.no_grad():
        out = bb(torch.randn(2, 3, cfg.data.frames, 25, 2))
    assert out.pooled.shape == (2, bb.feature_dim) and torch.isfinite(out.pooled).all()
