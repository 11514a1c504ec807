"""Extending the harness touches only the new plugin's own file and its test (docs/extending.md).

Each example below is a small plugin defined *here* and registered for the test only
(``Registry.temporarily``), never in the built-in packages: an encoder that declares its FLOPs and
a dataset kind with its display label. (A protocol with its table column: tests/test_tables.py;
a method with a figure role: tests/test_reproduce.py; a checkpoint format:
tests/test_checkpoint_format_plugin.py.)
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from harness.benchmarks.flops import encoder_flops
from harness.cli import main
from harness.config import load_config
from harness.contracts import DataInfo, DatasetKind, Encoder, EncoderOutput, build_encoder
from harness.data.prepared.format import PreparedWriter, open_prepared
from harness.data.topology import NTU25
from harness.registry import DATASETS, ENCODERS
from harness.results import ResultRow, append_rows
from harness.tables import pretty_dataset, write_tables

pytestmark = pytest.mark.unit

FRAMES = 8
INFO = DataInfo(topology=NTU25, num_classes=3, frames=FRAMES, persons=2, train_samples=8, batch_size=4)


@dataclass
class PoolOptions:
    width: int = 16


class FramePool(Encoder):
    """A toy encoder: one linear map of each frame's joints, mean over frames; it knows its MACs."""

    name = "framepool"
    Options = PoolOptions
    dense = False

    def __init__(self, options: PoolOptions | None = None, **shape):
        super().__init__(options or PoolOptions(), **shape)
        self.proj = nn.Linear(self.in_channels * self.joints * self.persons, self.options.width)
        self.feature_dim, self.frame_dim = self.options.width, 0

    def analytic_macs(self) -> int:
        return self.frames * self.proj.in_features * self.proj.out_features

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        n, c, t, v, m = x.shape
        frames = x.permute(0, 2, 1, 3, 4).reshape(n, t, c * v * m)
        return EncoderOutput(pooled=self.proj(frames).mean(1))


def test_an_encoder_declares_its_flops_in_its_own_file():
    with ENCODERS.temporarily("framepool", FramePool):
        enc = build_encoder(load_config("smoke", overrides=["encoder.name=framepool"]), INFO)
        assert isinstance(enc, FramePool) and enc.analytic_macs() == FRAMES * 150 * 16
        assert encoder_flops(enc, batch=2) == 2 * enc.analytic_macs()  # what the contract test checks
    assert "framepool" not in ENCODERS.names()


class TinyKind(DatasetKind):
    """A toy dataset kind: six random one-person clips in two classes, written by ``prepare``."""

    name = "tinyset"
    label = "Tiny Set"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--clips", type=int, default=6)

    @classmethod
    def prepare(cls, args: argparse.Namespace) -> list[Path]:
        rng = np.random.default_rng(0)
        out = Path(args.out)
        with PreparedWriter(out, kind=cls.name, topology=NTU25, num_samples=args.clips, max_frames=FRAMES,
                            num_persons=1, class_names=["wave", "sit"], overwrite=args.overwrite) as w:
            for i in range(args.clips):
                w.set_sample(i, rng.normal(size=(3, FRAMES, 25, 1)).astype(np.float32), name=f"c{i}", label=i % 2)
            w.add_split("xsub", "train", range(0, args.clips, 2))
            w.add_split("xsub", "test", range(1, args.clips, 2))
        return [out]


def test_a_dataset_kind_prepares_and_names_itself_from_its_own_file(tmp_path):
    out = tmp_path / "tiny"
    with DATASETS.temporarily("tinyset", TinyKind):
        assert main(["data", "prepare", "tinyset", "--out", str(out), "--clips", "4"]) == 0
        ds = open_prepared(out)
        assert (ds.kind, ds.num_samples, ds.num_classes) == ("tinyset", 4, 2)
        assert pretty_dataset("tinyset") == "Tiny Set"  # the tables' and figures' name for it
        store = tmp_path / "res"
        append_rows(store, [ResultRow("usdrl", "tinyset", "linear", "top1_best", 0.75, split="xsub", preset="cpu",
                                      epochs=1, steps=1, config_hash="h", encoder="dste")])
        write_tables(store, tmp_path / "tables", dataset="tinyset", preset="cpu", tables=(1,))
        text = (tmp_path / "tables" / "table1.md").read_text()
        assert "Tiny Set" in text and "75.0" in text
    assert "tinyset" not in DATASETS.names() and pretty_dataset("tinyset") == "tinyset"
