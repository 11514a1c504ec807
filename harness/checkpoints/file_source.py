"""The backbone in a checkpoint file as a backbone source: ``harness run --checkpoint PATH``.

:class:`CheckpointFile` is what :func:`harness.pipeline.evaluate` evaluates for ``checkpoint=``: the
file is read weights-only and its format recognised (:func:`~harness.checkpoints.read_checkpoint`); the
backbone is built from the configuration (the method and encoder the file names, the shapes from the
configuration's ``--set`` values: ``encoder.options.hidden``, ``data.frames``, ...) on the evaluation
dataset's skeleton, and the file's tensors are loaded into it strictly (every tensor accounted for,
:func:`~harness.checkpoints.base.check_tensors`) before any evaluation starts.

Rows carry the file as their identity: ``extra.checkpoint_sha256`` and ``extra.checkpoint_format``,
and a ``config_hash`` derived from the sha256 and the evaluated configuration (without its training
section, which did not produce these weights), so they never mix with the harness's own pretrained
rows in a table cell; the tables show them as rows of their own.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import torch

from ..backbone_source import SourcedBackbone
from ..config import RunConfig, stable_hash
from ..resolve import resolved
from ..contracts import build_method
from .base import Checkpoint, check_tensors, suggest_sets
from .formats import read_checkpoint


def checkpoint_config_hash(sha256: str, resolved: RunConfig) -> str:
    """The configuration hash of rows evaluated from a file: its sha256 and the evaluated
    configuration (data, encoder, method, protocol) without the training section."""
    d = resolved.to_dict()
    for key in ("train", "workdir", "results"):
        d.pop(key)
    return stable_hash({"checkpoint_sha256": sha256, "config": d})


def backbone_factory(ckpt: Checkpoint, cfg: RunConfig, ds: Any, device: torch.device) -> Callable[[], Any]:
    """A function returning a fresh backbone with the file's weights, after one strict check now
    (its ``summary`` attribute says what was loaded and what was dropped)."""
    res = resolved(cfg)
    fmt = ckpt.format
    info = fmt.data_info(ckpt, ds, res.data.frames)

    def build() -> tuple[Any, Any]:
        with torch.random.fork_rng(devices=[]):  # building must not move the global RNG
            method = build_method(cfg, info)
        return method, method.backbone()

    method, backbone = build()
    mapped = fmt.backbone_state(ckpt, method)
    opts = ", ".join(f"{k}={v}" for k, v in res.encoder.options.items())
    built_as = (f"method {res.method.name}, encoder {res.encoder.name} ({opts}), data.frames "
                f"{info.frames}, {info.joints} joints × {info.persons} person(s)")
    check_tensors(ckpt, mapped, backbone, file_name=lambda k: fmt.file_name(ckpt, k), built_as=built_as,
                  hint=suggest_sets(fmt.shapes(ckpt), res))
    state = mapped.tensors

    def make_backbone() -> torch.nn.Module:
        bb = build()[1]
        bb.load_state_dict(state, strict=True)
        return bb.to(device).eval()

    make_backbone.summary = (f"{len(state)} backbone tensors loaded into {res.encoder.name}"  # type: ignore[attr-defined]
                             + (f"; {mapped.ignored} other tensors of the format (projectors, decoder, momentum "
                                f"copies) left out" if mapped.ignored else ""))
    return make_backbone


class CheckpointFile:
    """A :class:`~harness.backbone_source.BackboneSource`: the backbone in one file, nothing pretrained."""

    def __init__(self, checkpoint: Checkpoint | str | Path):
        self.ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else read_checkpoint(checkpoint)

    def configure(self, cfg: RunConfig) -> tuple[RunConfig, RunConfig]:
        ckpt = self.ckpt
        cfg, notes = ckpt.format.configure(cfg, ckpt)
        res = resolved(cfg)
        notes += ckpt.format.check_config(ckpt, res)
        for note in notes:
            print(f"harness: {ckpt.path.name}: {note}", file=sys.stderr)
        return cfg, res

    def prepare(self, cfg: RunConfig) -> None:
        return None  # nothing to pretrain: the evaluation data is opened by itself

    def backbone(self, cfg: RunConfig, resolved: RunConfig, ds: Any, device: torch.device) -> SourcedBackbone:
        ckpt = self.ckpt
        make_backbone = backbone_factory(ckpt, cfg, ds, device)
        print(f"harness: {ckpt.path.name} ({ckpt.describe()}, sha256 {ckpt.sha256[:12]}): "
              f"{make_backbone.summary}", file=sys.stderr)  # type: ignore[attr-defined]
        ident = ckpt.format.identity(ckpt)
        return SourcedBackbone(make_backbone, epochs=ident["epochs"], steps=ident["steps"],
                               home=Path(cfg.workdir) / "checkpoints" / ckpt.sha256[:16],
                               config_hash=checkpoint_config_hash(ckpt.sha256, resolved),
                               pretrain_seed=ident["pretrain_seed"],
                               extra={"checkpoint_sha256": ckpt.sha256, "checkpoint_format": ckpt.format.name})
