"""Evaluate the backbone in a checkpoint file with a protocol, without pretraining.

:func:`evaluate_checkpoint` is :func:`harness.pipeline.evaluate` for ``--checkpoint PATH``: the file
is read weights-only and its format recognised (:func:`~harness.checkpoints.read_checkpoint`); the
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

from ..config import RunConfig, stable_hash
from ..contracts import ProtocolContext, build_method
from ..engine.device import resolve_device, torch_threads
from ..pipeline import base_row_for, collapse_warning, eval_dataset, label_subset
from ..registry import PROTOCOLS
from ..results import ResultRow, check_writable, record_rows
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
    resolved = cfg.resolved()
    fmt = ckpt.format
    info = fmt.data_info(ckpt, ds, resolved.data.frames)

    def build() -> tuple[Any, Any]:
        with torch.random.fork_rng(devices=[]):  # building must not move the global RNG
            method = build_method(cfg, info)
        return method, method.backbone()

    method, backbone = build()
    mapped = fmt.backbone_state(ckpt, method)
    opts = ", ".join(f"{k}={v}" for k, v in resolved.encoder.options.items())
    built_as = (f"method {resolved.method.name}, encoder {resolved.encoder.name} ({opts}), data.frames "
                f"{info.frames}, {info.joints} joints × {info.persons} person(s)")
    check_tensors(ckpt, mapped, backbone, file_name=lambda k: fmt.file_name(ckpt, k), built_as=built_as,
                  hint=suggest_sets(fmt.shapes(ckpt), resolved))
    state = mapped.tensors

    def make_backbone() -> torch.nn.Module:
        bb = build()[1]
        bb.load_state_dict(state, strict=True)
        return bb.to(device).eval()

    make_backbone.summary = (f"{len(state)} backbone tensors loaded into {resolved.encoder.name}"  # type: ignore[attr-defined]
                             + (f"; {mapped.ignored} other tensors of the format (projectors, decoder, momentum "
                                f"copies) left out" if mapped.ignored else ""))
    return make_backbone


def tag_rows(rows: list[ResultRow], ckpt: Checkpoint) -> list[ResultRow]:
    """Add the file's identity to each row's ``extra`` (a JSON object)."""
    return [r.add_extra(checkpoint_sha256=ckpt.sha256, checkpoint_format=ckpt.format.name) for r in rows]


def evaluate_checkpoint(cfg: RunConfig, checkpoint: Checkpoint | str | Path, *, progress: bool = True,
                        record: bool = True) -> list[ResultRow]:
    """Evaluate the backbone in ``checkpoint`` with ``cfg.protocol``; record the rows."""
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else read_checkpoint(checkpoint)
    cfg, notes = ckpt.format.configure(cfg, ckpt)
    resolved = cfg.resolved()
    notes += ckpt.format.check_config(ckpt, resolved)
    for note in notes:
        print(f"harness: {ckpt.path.name}: {note}", file=sys.stderr)
    if record:
        check_writable(cfg.results)
    protocol = PROTOCOLS.get(cfg.protocol.name)(cfg)
    ds = eval_dataset(cfg, protocol, None)
    device = resolve_device(cfg.train.device)
    with torch_threads(cfg.train.num_threads):
        make_backbone = backbone_factory(ckpt, cfg, ds, device)
        print(f"harness: {ckpt.path.name} ({ckpt.describe()}, sha256 {ckpt.sha256[:12]}): "
              f"{make_backbone.summary}", file=sys.stderr)
        if not protocol.untrimmed:
            warning = collapse_warning(make_backbone(), ds, resolved)
            if warning:
                print(warning, file=sys.stderr)
    ident = ckpt.format.identity(ckpt)
    base_row = base_row_for(resolved, ds, epochs=ident["epochs"], steps=ident["steps"])
    base_row.update(config_hash=checkpoint_config_hash(ckpt.sha256, resolved), pretrain_seed=ident["pretrain_seed"])
    run_dir = Path(cfg.workdir) / "checkpoints" / ckpt.sha256[:16] / "eval" / f"{cfg.protocol.name}-{base_row['config_hash']}"
    ctx = ProtocolContext(cfg=cfg, dataset=ds, make_backbone=make_backbone, device=device, run_dir=run_dir,
                          base_row=base_row)
    with torch_threads(cfg.train.num_threads):
        rows = label_subset(tag_rows(protocol.run(ctx), ckpt), ds)
    if record and rows:
        record_rows(cfg.results, rows, side_dir=run_dir)
    return rows
