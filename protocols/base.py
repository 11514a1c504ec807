"""The protocol seam: a pretrained backbone + a prepared dataset → result rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch

from harness.config import DataConfig, RunConfig, plugin_options
from harness.data.prepared import PreparedDataset
from harness.results import ResultRow


@dataclass
class ProtocolContext:
    cfg: RunConfig
    dataset: PreparedDataset  # the evaluation dataset (for detection: an untrimmed one)
    make_backbone: Callable[[], Any]  # a fresh Backbone with the pretrained weights loaded
    device: torch.device
    run_dir: Path  # where the protocol may keep files (per-sample scores, subsets)
    base_row: dict[str, Any] = field(default_factory=dict)  # method, variant, encoder, ... for rows

    @property
    def split(self) -> str:
        return self.cfg.protocol.split or self.cfg.data.split

    def row(self, metric: str, value: float, **fields: Any) -> ResultRow:
        """A result row with this run's identity (method, dataset, preset, hashes...) filled in."""
        merged = {**self.base_row, "split": self.split, **fields}
        return ResultRow(metric=metric, value=float(value), **merged)


class Protocol:
    name: ClassVar[str] = ""
    Options: ClassVar[type | None] = None
    variants: ClassVar[tuple[str, ...]] = ()
    untrimmed: ClassVar[bool] = False  # True: evaluates on untrimmed videos (detection)
    preset_defaults: ClassVar[dict[str, dict[str, Any]]] = {}  # preset → option defaults

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.options = (plugin_options(self.Options, cfg.preset, self.preset_defaults, cfg.protocol.options,
                                       where=f"protocol.options ({self.name})")
                        if self.Options is not None else None)

    def eval_data(self, data: DataConfig) -> DataConfig:
        """The data config the evaluation dataset is resolved from (e.g. detection asks a generated
        untrimmed set for more videos); the default is ``data`` itself."""
        return data

    def run(self, ctx: ProtocolContext) -> list[ResultRow]:  # pragma: no cover - abstract
        raise NotImplementedError
