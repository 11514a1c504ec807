"""Pretrain (or reuse) a backbone, then evaluate it with a protocol: what ``harness run`` and
``harness reproduce`` do for every configuration.

:func:`evaluate` checks the whole configuration first (every plugin option resolved, the protocol
built), opens the pretraining dataset once, finds or trains the run with its ``pretrain_hash``
(:func:`harness.engine.find_or_pretrain`), opens the evaluation dataset once (the same object when
it is the same data), and hands both to the protocol through a :class:`ProtocolContext`. The rows
carry the run's identity: method, variant, the encoder actually trained, modality, dataset, preset,
``config_hash`` (the configuration without its pretraining seed), ``pretrain_seed`` and the
pretraining budget. With ``checkpoint=`` the same steps evaluate the backbone in a file: both are a
backbone source (:mod:`harness.backbone_source`) that :func:`evaluate_source` evaluates.
"""
from __future__ import annotations

import dataclasses
import sys
from typing import Any

import torch

from .backbone_source import BackboneSource, PretrainedRun
from .checkpoints.file_source import CheckpointFile
from .config import RunConfig
from .contracts import ProtocolContext
from .data.prepared.kinds import resolve_dataset
from .data.prepared.format import PreparedDataset
from .engine.device import resolve_device, torch_threads
from .evaluation.collapse import collapsed, feature_statistics
from .evaluation.features import extract_features
from .registry import PROTOCOLS
from .results import ResultRow, check_writable, record_rows


def evaluate(cfg: RunConfig, *, progress: bool = True, record: bool = True, checkpoint: Any = None) -> list[ResultRow]:
    """Pretrain or reuse ``cfg``'s run, evaluate it with ``cfg.protocol`` and record the rows.

    ``checkpoint`` (a path or a read :class:`harness.checkpoints.Checkpoint`): evaluate the backbone in
    that file instead, without pretraining (:class:`harness.checkpoints.file_source.CheckpointFile`)."""
    source: BackboneSource = PretrainedRun(progress=progress) if checkpoint is None else CheckpointFile(checkpoint)
    return evaluate_source(cfg, source, record=record)


def evaluate_source(cfg: RunConfig, source: BackboneSource, *, record: bool = True) -> list[ResultRow]:
    """Evaluate the backbone ``source`` hands over with ``cfg.protocol``; record the rows."""
    cfg, resolved = source.configure(cfg)
    if record:
        check_writable(cfg.results)  # before hours of work whose rows could not be stored
    protocol = PROTOCOLS.get(cfg.protocol.name)(cfg)
    ds = eval_dataset(cfg, protocol, source.prepare(cfg))
    device = resolve_device(cfg.train.device)
    with torch_threads(cfg.train.num_threads):
        bb = source.backbone(cfg, resolved, ds, device)
        if not protocol.untrimmed:
            warning = collapse_warning(bb.make_backbone(), ds, resolved)
            if warning:
                print(warning, file=sys.stderr)
    base_row = base_row_for(resolved, ds, epochs=bb.epochs, steps=bb.steps)
    if bb.config_hash:
        base_row["config_hash"] = bb.config_hash
    if bb.pretrain_seed is not None:
        base_row["pretrain_seed"] = bb.pretrain_seed
    run_dir = bb.home / "eval" / f"{cfg.protocol.name}-{bb.config_hash or resolved.config_hash}"
    ctx = ProtocolContext(cfg=cfg, dataset=ds, make_backbone=bb.make_backbone, device=device, run_dir=run_dir,
                          base_row=base_row)
    with torch_threads(cfg.train.num_threads):
        rows = protocol.run(ctx)
    if bb.extra:
        rows = [r.add_extra(**bb.extra) for r in rows]
    rows = label_subset(rows, ds)
    if record and rows:
        record_rows(cfg.results, rows, side_dir=run_dir)  # a failed write prints the rows and saves them aside
    return rows


def label_subset(rows: list, ds: PreparedDataset) -> list:
    """Rows measured on part of a dataset (``PreparedDataset.subset``) say so in ``extra.dataset_subset``,
    so no table shows them as numbers of the whole dataset."""
    return [r.add_extra(dataset_subset=ds.subset) for r in rows] if ds.subset else rows


def eval_dataset(cfg: RunConfig, protocol: Any, train_ds: PreparedDataset | None) -> PreparedDataset:
    """The protocol's dataset: ``protocol.dataset`` (transfer) or the pretraining data, as the protocol
    asks for it (untrimmed videos for detection); the already opened ``train_ds`` when it is the same."""
    data = protocol.eval_data(dataclasses.replace(cfg.data, dataset=cfg.protocol.dataset or cfg.data.dataset))
    if train_ds is not None and data == cfg.data and not protocol.untrimmed:
        return train_ds
    return resolve_dataset(data, cfg.workdir, untrimmed=protocol.untrimmed)


def base_row_for(resolved: RunConfig, ds: PreparedDataset, *, epochs: int, steps: int) -> dict[str, Any]:
    """The identity every row of this run carries (from the resolved configuration)."""
    return dict(method=resolved.method.name, variant=resolved.method.variant, encoder=resolved.encoder.name,
                modality=resolved.method.modality, dataset=ds.kind, protocol=resolved.protocol.name,
                preset=resolved.preset, epochs=int(epochs), steps=int(steps),
                pretrain_seed=resolved.train.seed, config_hash=resolved.config_hash)


COLLAPSE_SAMPLES = 2048  # test clips the collapse check reads (the full statistics: protocol ``features``)


def collapse_warning(backbone: torch.nn.Module, ds: PreparedDataset, resolved: RunConfig) -> str | None:
    """A warning when the backbone's pooled features on (up to 2,048 of) the evaluation split's test
    clips have collapsed (:func:`harness.evaluation.collapse.collapsed`), else None."""
    split = resolved.protocol.split or resolved.data.split
    idx = ds.indices(split, "test")[:COLLAPSE_SAMPLES]
    if len(idx) < 2:
        return None
    x, _ = extract_features(backbone, ds, idx, frames=resolved.data.frames, batch_size=resolved.protocol.batch_size,
                            device=next(backbone.parameters(), torch.empty(0)).device)  # the raw-joint baseline has none
    stats = feature_statistics(x)
    if not collapsed(stats):
        return None
    return (f"harness: warning: the {resolved.method.name} backbone ({resolved.encoder.name}) has collapsed on "
            f"{ds.kind} {split}/test: {stats['top1_share']:.0%} of the feature variance lies in one direction, "
            f"effective rank {stats['eff_rank']:.1f} of {int(stats['dims'])} (`--protocol features` records the "
            f"diagnostics)")
