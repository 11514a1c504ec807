"""DataInfo: what a method learns about the data it trains on (harness.contracts)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.topology import Topology

FUSED_MODALITY = "jbm"  # an encoder that fuses joint, bone and motion itself takes joint coordinates


@dataclass(frozen=True)
class DataInfo:
    """What a method needs to know about the data it trains on.

    ``train_samples``, ``batch_size`` (global) and ``total_steps`` (the optimizer steps of the whole
    run) let a method derive data- and budget-dependent settings from stated rules (a queue sized to
    the training set, an EMA momentum for the budget); 0 when unknown (e.g. a backbone rebuilt for
    evaluation, where those settings do not matter).
    """

    topology: Topology
    num_classes: int
    frames: int  # T after resampling
    persons: int  # M
    train_samples: int = 0
    batch_size: int = 0
    total_steps: int = 0

    @property
    def joints(self) -> int:
        return self.topology.num_joints

    def to_dict(self) -> dict[str, Any]:
        return {"topology": self.topology.to_dict(), "num_classes": self.num_classes, "frames": self.frames,
                "persons": self.persons, "train_samples": self.train_samples, "batch_size": self.batch_size,
                "total_steps": self.total_steps}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str | Path | None = None) -> "DataInfo":
        return cls(topology=Topology.from_dict(d["topology"], where), num_classes=int(d["num_classes"]),
                   frames=int(d["frames"]), persons=int(d["persons"]), train_samples=int(d.get("train_samples", 0)),
                   batch_size=int(d.get("batch_size", 0)), total_steps=int(d.get("total_steps", 0)))


