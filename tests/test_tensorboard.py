"""TensorBoard scalars, the optional extra (`pip install -e '.[tb]'`): written beside metrics.jsonl,
which stays the source of truth. Tests that read events skip when tensorboard is not installed."""

from __future__ import annotations

import json
import sys

import pytest


from harness.engine import pretrain
from harness.engine.logging import MetricsLog, read_metrics
from harness.config import load_config

pytestmark = pytest.mark.usefixtures("one_thread")
NO_TB = "tensorboard is not installed (it is the optional extra: pip install -e '.[tb]')"


def _scalars(tb_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    return {tag: [(s.step, s.value) for s in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_metrics_log_writes_the_jsonl_values_as_scalars(tmp_path):
    pytest.importorskip("tensorboard", reason=NO_TB)
    log = MetricsLog(tmp_path)
    assert log.tb is not None
    log.write({"kind": "step", "epoch": 1, "step": 2, "loss": 1.5, "lr": 0.01})
    log.write({"kind": "epoch", "epoch": 1, "step": 4, "loss": 1.25, "lr": 0.01, "samples_per_s": 10.0})
    log.close()
    scalars = _scalars(tmp_path / "tb")
    assert scalars["step/loss"] == [(2, 1.5)] and scalars["epoch/loss"] == [(4, 1.25)]
    assert scalars["epoch/samples_per_s"] == [(4, 10.0)] and "step/epoch" not in scalars
    assert [r["loss"] for r in read_metrics(tmp_path)] == [1.5, 1.25]


def test_a_pretraining_run_logs_its_epochs_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard", reason=NO_TB)
    cfg = load_config("smoke", overrides={"method.name": "usdrl", "workdir": str(tmp_path), "train.num_threads": 1})
    info = pretrain(cfg, progress=False)
    epochs = [r for r in read_metrics(info.run_dir) if r["kind"] == "epoch"]
    scalars = _scalars(info.run_dir / "tb")
    assert [s for _, s in scalars["epoch/loss"]] == pytest.approx([r["loss"] for r in epochs])
    assert [step for step, _ in scalars["epoch/loss"]] == [r["step"] for r in epochs]


def test_without_tensorboard_only_the_jsonl_is_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # the import fails, as when absent
    log = MetricsLog(tmp_path)
    assert log.tb is None
    log.write({"kind": "epoch", "epoch": 1, "step": 1, "loss": 2.0})
    log.close()
    assert not (tmp_path / "tb").exists()
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["loss"] == 2.0
