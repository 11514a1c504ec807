"""The harness's own files: the backbone export (``backbone.pt``) and training checkpoints
(``checkpoints/last.pt``, ``epoch_NNNN.pt``); layouts in :mod:`harness.engine.checkpoint`.

Both store the resolved configuration they were trained with, so the backbone is rebuilt from the
file's ``encoder``, ``method`` and ``data.frames`` (the command line's are replaced, with a note when
they differ); the protocol, the evaluation data and the execution settings stay the command line's.
From a training checkpoint only the backbone's tensors are taken: they are found in the method's
state dict by building the method and matching the backbone's tensors by identity, and every other
tensor the method holds (projectors, queues, momentum encoders) is expected and dropped.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from ..config import RunConfig, from_dict
from ..contracts import DataInfo
from ..engine import checkpoint as ck
from ..errors import HarnessError
from ..registry import CHECKPOINT_FORMATS
from .base import Checkpoint, CheckpointFormat, Mapped


class _HarnessFile(CheckpointFormat):
    row_label = "checkpoint file"
    expect: str = ""

    def detect(self, obj: Any) -> str | None:
        if not isinstance(obj, dict) or obj.get("format") != self.expect:
            return f"no format={self.expect!r} entry"
        return None

    def check_top_level(self, ckpt: Checkpoint) -> None:
        if ckpt.obj.get("version") != ck.VERSION:
            raise HarnessError(f"{ckpt.path}: {self.expect} version {ckpt.obj.get('version')!r} is not supported "
                               f"(this code reads version {ck.VERSION})")
        if not isinstance(ckpt.obj.get("config"), dict):
            raise HarnessError(f"{ckpt.path}: a {self.label} without its 'config'")

    def stored(self, ckpt: Checkpoint) -> RunConfig:
        return from_dict(ckpt.obj["config"])

    def method_name(self, ckpt: Checkpoint) -> str:
        return self.stored(ckpt).method.name

    def encoder_of(self, obj: Any) -> str:
        return str(obj["config"].get("encoder", {}).get("name", "")) if isinstance(obj.get("config"), dict) else ""

    def configure(self, cfg: RunConfig, ckpt: Checkpoint) -> tuple[RunConfig, list[str]]:
        stored = self.stored(ckpt)
        out = copy.deepcopy(cfg)
        notes = []
        for what, mine, theirs in (("method", cfg.method.name, stored.method.name),
                                   ("encoder", cfg.encoder.name, stored.encoder.name),
                                   ("data.frames", cfg.data.frames, stored.data.frames)):
            if mine and mine != theirs:
                notes.append(f"{what} {theirs} from the file (not {mine})")
        for section in ("encoder", "method"):  # options set on the command line that the file overrides
            theirs_opts = getattr(stored, section).options
            for k, v in getattr(cfg, section).options.items():
                if k in theirs_opts and theirs_opts[k] != v:
                    notes.append(f"{section}.options.{k}={theirs_opts[k]} from the file (not {v})")
        out.method, out.encoder = copy.deepcopy(stored.method), copy.deepcopy(stored.encoder)
        out.data.frames = stored.data.frames
        out.train.seed = stored.train.seed  # the rows' pretrain_seed
        return out, notes

    def identity(self, ckpt: Checkpoint) -> dict[str, int]:
        o = ckpt.obj
        epochs = o.get("epochs", o.get("epoch", 0))
        return {"epochs": int(epochs or 0), "steps": int(o.get("global_step", 0) or 0),
                "pretrain_seed": int(self.stored(ckpt).train.seed)}


@CHECKPOINT_FORMATS.register()
class HarnessBackboneFormat(_HarnessFile):
    """The harness's backbone export, backbone.pt."""

    name = "harness-backbone"
    order = 0  # the harness's own files are tried first
    label = "harness backbone export (backbone.pt)"
    expect = ck.BACKBONE_FORMAT
    top_keys = ("format", "version", "pretrain_hash", "config", "method", "state_dict", "feature_dim", "frame_dim",
                "data_info", "epochs", "global_step")

    def data_info(self, ckpt: Checkpoint, ds: Any, frames: int) -> DataInfo:
        info = DataInfo.from_dict(ckpt.obj["data_info"], ckpt.path)
        if info.joints != ds.num_joints or info.persons != ds.num_persons:
            raise HarnessError(f"{ckpt.path}: the backbone was pretrained on {info.joints} joints × {info.persons} "
                               f"person(s) but {ds.root} has {ds.num_joints} × {ds.num_persons}")
        return info

    def backbone_state(self, ckpt: Checkpoint, method: torch.nn.Module) -> Mapped:
        out = Mapped()
        for k, v in ckpt.obj["state_dict"].items():
            if torch.is_tensor(v):
                out.tensors[k], out.names[k] = v, f"state_dict.{k}"
            else:
                out.unexpected.append(f"state_dict.{k}")
        return out

    def file_name(self, ckpt: Checkpoint, key: str) -> str:
        return f"state_dict.{key}"


@CHECKPOINT_FORMATS.register()
class HarnessTrainingFormat(_HarnessFile):
    """The harness's training checkpoints, last.pt and epoch_NNNN.pt."""

    name = "harness-checkpoint"
    order = 1
    label = "harness training checkpoint (last.pt / epoch_NNNN.pt)"
    expect = ck.CKPT_FORMAT
    top_keys = ("format", "version", "pretrain_hash", "config", "epoch", "global_step", "train_s", "model",
                "optimizer", "scaler", "rng", "metrics")

    def backbone_state(self, ckpt: Checkpoint, method: torch.nn.Module) -> Mapped:
        model = ckpt.obj.get("model")
        if not isinstance(model, dict):
            raise HarnessError(f"{ckpt.path}: a {self.label} without its 'model' state dict")
        own = {id(t): k for k, t in method.state_dict(keep_vars=True).items()}
        out = Mapped()
        for bk, t in method.backbone().state_dict(keep_vars=True).items():
            mk = own.get(id(t))  # the backbone is part of the method: each of its tensors has a method key
            if mk is None:
                raise HarnessError(f"{ckpt.path}: method {method.name!r} keeps its backbone outside its state dict, "
                                   f"so it cannot be taken from a training checkpoint; use the run's backbone.pt")
            out.names[bk] = f"model.{mk}"
            if mk in model:
                out.tensors[bk] = model[mk]
        known = set(method.state_dict())  # every name, shared tensors' aliases included
        out.unexpected = [f"model.{k}" for k in model if k not in known]
        out.ignored = len(known) - len(out.names)
        return out
