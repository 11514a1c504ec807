"""A checkpoint format is a plugin: one class registered in ``CHECKPOINT_FORMATS`` makes
``harness run --checkpoint FILE`` read a new layout, with the same strict tensor check, the same rows
and nothing else in the harness edited (the built-in ones live in methods/checkpoint_formats/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.checkpoints import CheckpointFormat, formats, read_checkpoint
from harness.checkpoints.base import Checkpoint, Mapped, map_by_prefix
from harness.checkpoints.loading import sha256_of
from harness.cli import main

from harness.contracts import DataInfo, build_method
from harness.data.topology import NTU25
from harness.errors import HarnessError
from harness.registry import CHECKPOINT_FORMATS
from harness.config import load_config

pytestmark = pytest.mark.usefixtures("one_thread")

RENAMES = (("", "encoder."),)  # the file keeps the bare encoder's keys


class ToyFormat(CheckpointFormat):
    """A made-up release: {'toy_release': 1, 'encoder': NAME, 'weights': the encoder's state dict}."""

    name = "toy"
    label = "toy release (tests/test_checkpoint_format_plugin.py)"
    method = "usdrl"  # the method whose backbone the weights are
    top_keys = ("toy_release", "encoder", "weights", "epochs")

    def detect(self, obj: Any) -> str | None:
        return None if isinstance(obj, dict) and obj.get("toy_release") == 1 else "no toy_release=1 entry"

    def encoder_of(self, obj: Any) -> str:
        return str(obj.get("encoder", ""))

    def backbone_state(self, ckpt: Checkpoint, method: torch.nn.Module) -> Mapped:
        return map_by_prefix(ckpt.obj["weights"], RENAMES, (), "weights.")

    def file_name(self, ckpt: Checkpoint, key: str) -> str:
        return "weights." + key[len("encoder."):]

    def identity(self, ckpt: Checkpoint) -> dict[str, int]:
        return {"epochs": int(ckpt.obj["epochs"]), "steps": 0, "pretrain_seed": 0}


def toy_file(path: Path) -> Path:
    """An STTR encoder at the smoke sizes, saved in the toy layout."""
    cfg = load_config("smoke", overrides=["method.name=usdrl", "encoder.name=sttr"])
    torch.manual_seed(0)
    method = build_method(cfg, DataInfo(topology=NTU25, num_classes=60, frames=cfg.data.frames, persons=2))
    weights = {k[len("encoder."):]: v for k, v in method.backbone().state_dict().items()}
    torch.save({"toy_release": 1, "encoder": "sttr", "weights": weights, "epochs": 7}, path)
    return path


@pytest.fixture
def toy_registered():
    with CHECKPOINT_FORMATS.temporarily("toy", ToyFormat):  # removed again after the test
        yield


def _run(tmp_path: Path, *args: str) -> list[str]:
    return ["run", "--preset", "smoke", "--workdir", str(tmp_path / "work"), "--results", str(tmp_path / "res"),
            "--no-progress", "--json", "--set", "train.num_threads=1", *args]


def test_a_registered_format_is_evaluated_by_harness_run(toy_registered, tmp_path, capsys):
    f = toy_file(tmp_path / "toy.pt")
    assert [x.name for x in formats()][-1] == "toy"  # default order: after the built-in formats
    assert main(_run(tmp_path, "--checkpoint", str(f), "--protocol", "knn")) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and {(r["method"], r["encoder"], r["epochs"]) for r in rows} == {("usdrl", "sttr", 7)}
    extra = [json.loads(r["extra"]) for r in rows]
    assert {(e["checkpoint_format"], e["checkpoint_sha256"]) for e in extra} == {("toy", sha256_of(f))}
    assert not (tmp_path / "work" / "runs").exists()  # nothing was pretrained


def test_a_plugin_format_gets_the_strict_tensor_check(toy_registered, tmp_path, capsys):
    obj = torch.load(toy_file(tmp_path / "toy.pt"), weights_only=True)
    key = next(iter(obj["weights"]))
    del obj["weights"][key]
    torch.save(obj, tmp_path / "short.pt")
    assert main(_run(tmp_path, "--checkpoint", str(tmp_path / "short.pt"), "--protocol", "knn")) == 2
    assert f"missing from the file (1): weights.{key}" in capsys.readouterr().err
    assert not (tmp_path / "res" / "results.csv").exists()


def test_without_the_plugin_the_file_is_unknown_and_every_format_is_named(tmp_path):
    f = toy_file(tmp_path / "toy.pt")
    assert "toy" not in CHECKPOINT_FORMATS
    with pytest.raises(HarnessError, match="not a checkpoint format the harness reads") as err:
        read_checkpoint(f)
    assert all(f"{x.name}: " in str(err.value) for x in formats()) and "toy: " not in str(err.value)
