"""Where an evaluated backbone comes from: a run the harness pretrains (or reuses), or a file.

:func:`harness.pipeline.evaluate` runs the same steps for every source (resolve, check the results
store, open the datasets once, the protocol, the collapse check, the rows); a
:class:`BackboneSource` supplies only what differs: the configuration to evaluate, the pretraining
dataset it opened, and a :class:`SourcedBackbone` (``make_backbone()`` and the identity its rows carry;
a pretrained run's rows also carry its pretraining's cost from ``run.json`` in ``extra.cost``,
:func:`harness.engine.cost.row_cost`).
:class:`PretrainedRun` is here; the file source is :class:`harness.checkpoints.file_source.CheckpointFile`.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .config import RunConfig
from .resolve import resolved
from .data.prepared.format import PreparedDataset
from .data.prepared.kinds import resolve_dataset
from .engine import checkpoint as ck
from .engine.loop import find_or_pretrain
from .engine.cost import row_cost
from .engine.runs import RunInfo, read_run_json
from .errors import HarnessError


@dataclass
class SourcedBackbone:
    """A backbone ready for a protocol, and what the rows say about where it came from."""

    make_backbone: Callable[[], torch.nn.Module]  # a fresh backbone on the evaluation device
    epochs: int  # the pretraining budget the rows record
    steps: int
    home: Path  # the folder whose eval/ holds the protocol's side files
    config_hash: str = ""  # the rows' config_hash when it is not the configuration's own
    pretrain_seed: int | None = None  # the rows' pretrain_seed when it is not train.seed
    extra: dict[str, Any] = field(default_factory=dict)  # added to every row's extra


class BackboneSource(typing.Protocol):
    """What :func:`harness.pipeline.evaluate` asks of a source, in this order."""

    def configure(self, cfg: RunConfig) -> tuple[RunConfig, RunConfig]:
        """The configuration to evaluate and its resolved form (a file names its own method)."""
        ...

    def prepare(self, cfg: RunConfig) -> PreparedDataset | None:
        """Work before the evaluation data is opened (pretraining); the dataset it opened, if any."""
        ...

    def backbone(self, cfg: RunConfig, resolved: RunConfig, ds: PreparedDataset,
                 device: torch.device) -> SourcedBackbone:
        """The backbone for evaluation dataset ``ds``, checked against it before any evaluation."""
        ...


@dataclass
class PretrainedRun:
    """The run with the configuration's ``pretrain_hash``: reused when finished, else trained."""

    progress: bool = True
    info: RunInfo | None = None  # set by prepare

    def configure(self, cfg: RunConfig) -> tuple[RunConfig, RunConfig]:
        return cfg, resolved(cfg)  # names and options of every plugin, checked before any work

    def prepare(self, cfg: RunConfig) -> PreparedDataset:
        train_ds = resolve_dataset(cfg.data, cfg.workdir)
        self.info = find_or_pretrain(cfg, progress=self.progress, dataset=train_ds)
        return train_ds

    def backbone(self, cfg: RunConfig, resolved: RunConfig, ds: PreparedDataset,
                 device: torch.device) -> SourcedBackbone:
        info = self.info
        assert info is not None, "PretrainedRun.prepare() comes first"
        check_compatible(info.backbone, ds)
        path = info.backbone

        def make_backbone() -> torch.nn.Module:
            return ck.load_backbone(path, device)[0]

        cost = row_cost((read_run_json(Path(info.run_dir)) or {}).get("cost"))  # None: the run predates it
        return SourcedBackbone(make_backbone, epochs=info.epochs, steps=info.global_step, home=Path(info.run_dir),
                               extra={"cost": cost} if cost else {})


def check_compatible(backbone_path: Path, ds: PreparedDataset) -> None:
    """The backbone's skeleton (joints × persons) must be the evaluation dataset's."""
    meta = ck.load_export(backbone_path)["data_info"]  # every key checked: a damaged file is a message
    joints = len(meta["topology"]["joint_names"])
    if joints != ds.num_joints or meta["persons"] != ds.num_persons:
        raise HarnessError(f"{ds.root}: the encoder was pretrained on {joints} joints × {meta['persons']} "
                           f"person(s) but this dataset has {ds.num_joints} × {ds.num_persons}")
