"""A tiny dataset whose class shows in the joint positions, and tiny backbones, for protocol tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn


from harness.data.prepared.format import PreparedWriter, open_prepared
from harness.data.topology import MSR20
from harness.contracts import Backbone, EncoderOutput, ProtocolContext
from harness.config import load_config


def toy_dataset(root: Path, n_per_class: int = 12, classes: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = n_per_class * classes
    with PreparedWriter(root, kind="toy", topology=MSR20, num_samples=n, max_frames=20, num_persons=1,
                        class_names=[f"c{i}" for i in range(classes)]) as w:
        for i in range(n):
            label = i % classes
            t = int(rng.integers(8, 21))
            clip = rng.normal(scale=0.3, size=(3, t, 20, 1)).astype(np.float32)
            clip[0, :, label] += 2.0  # the class moves one joint
            w.set_sample(i, clip, name=f"v{i}", label=label, subject=i % 6)
        subjects = np.arange(n) % 6
        w.add_split("xsub", "train", np.flatnonzero(subjects < 4))
        w.add_split("xsub", "test", np.flatnonzero(subjects >= 4))
    return open_prepared(root)


class MeanPoseBackbone(Backbone):
    """Pooled feature = the time-averaged pose through a linear layer (identity init or random)."""

    def __init__(self, joints: int = 20, identity: bool = True):
        super().__init__()
        self.feature_dim = self.frame_dim = 3 * joints
        self.proj = nn.Linear(3 * joints, 3 * joints)
        if identity:
            nn.init.eye_(self.proj.weight), nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        per_frame = self.frame_features(x)
        return EncoderOutput(pooled=per_frame.mean(1), temporal=per_frame)

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        return self.proj(x.mean(-1).permute(0, 2, 1, 3).reshape(n, t, c * v))


def context(ds, tmp_path: Path, backbone_factory, preset: str = "smoke", protocol: str = "linear",
            overrides: list[str] | None = None) -> ProtocolContext:
    cfg = load_config(preset, overrides=[f"protocol.name={protocol}", "data.frames=8", *(overrides or [])])
    return ProtocolContext(cfg=cfg, dataset=ds, make_backbone=backbone_factory, device=torch.device("cpu"),
                           run_dir=tmp_path / "run", base_row={"method": "toy", "dataset": "toy",
                                                               "protocol": protocol, "preset": preset})


class NoiseBackbone(MeanPoseBackbone):
    """Features that carry no information about the clip."""

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        return EncoderOutput(pooled=torch.randn(x.shape[0], self.feature_dim))
