"""Pretraining entry points: ``pretrain(cfg) → RunInfo`` and ``find_or_pretrain(cfg)``.

:func:`pretrain` opens the dataset (or takes an opened one), holds the run's lock and hands the work
to :class:`harness.engine.trainer.Trainer`, which documents the loop itself. :func:`find_or_pretrain`
reuses a finished run with the same ``pretrain_hash`` made on the same data, and trains it otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import RunConfig
from ..resolve import resolved
from ..data.prepared.kinds import resolve_dataset
from ..data.prepared.format import PreparedDataset
from ..errors import HarnessError
from . import distributed as dd
from .amp import resolve_amp
from .device import resolve_device, torch_threads  # re-exported: callers import them from here too
from .runs import RunInfo, finished_run, recorded_fingerprint, retire_stale_run, run_dir_for, run_lock
from .trainer import EpochHook, NonFiniteLossError, StartHook, StepHook, Trainer

__all__ = ["pretrain", "find_or_pretrain", "resolve_device", "train_indices", "split_holdout", "torch_threads",
           "NonFiniteLossError"]


def split_holdout(ds: PreparedDataset, idx: np.ndarray, spec: Any) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out): a seeded, class-stratified hold-out of ``idx`` (``data.options.holdout``).

    ``spec`` is ``{"fraction": f, "seed": s}``: from every class of ``idx`` (by label, in class
    order) round(f·n) samples, at most n − 1, are held out with NumPy's generator seeded by
    (s, 11). Both parts come back sorted. ``harness tune`` pretrains on the kept part and scores
    kNN on the held-out one, so tuning never sees the test split.
    """
    if not isinstance(spec, dict) or set(spec) - {"fraction", "seed"} or "fraction" not in spec:
        raise HarnessError(f"data.options.holdout must be a mapping {{fraction: F, seed: S}}, got {spec!r}")
    fraction, seed = float(spec["fraction"]), int(spec.get("seed", 0))
    if not 0.0 < fraction < 1.0:
        raise HarnessError(f"data.options.holdout.fraction must lie in (0, 1), got {fraction}")
    idx = np.asarray(idx, dtype=np.int64)
    labels = ds.samples["label"].to_numpy()[idx]
    rng = np.random.default_rng([seed, 11])
    held = []
    for c in np.unique(labels):
        members = idx[labels == c]
        n_out = min(int(round(fraction * len(members))), len(members) - 1)
        if n_out > 0:
            held.append(members[rng.permutation(len(members))[:n_out]])
    out = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    return np.setdiff1d(idx, out), out


def train_indices(ds: PreparedDataset, cfg: RunConfig) -> np.ndarray:
    """The pretraining samples: split ``data.split`` part "train", capped by max_train_samples.

    With ``data.options.holdout`` the held-out part (:func:`split_holdout`) is left out first.
    The cap keeps a seeded (data.seed) random subset, in dataset order.
    """
    idx = ds.indices(cfg.data.split, "train")
    if cfg.data.options.get("holdout"):
        idx = split_holdout(ds, idx, cfg.data.options["holdout"])[0]
    cap = cfg.data.max_train_samples
    if cap and cap < len(idx):
        rng = np.random.default_rng([cfg.data.seed, 7])
        idx = np.sort(idx[rng.choice(len(idx), size=cap, replace=False)])
    if len(idx) == 0:
        raise HarnessError(f"{ds.root}: split {cfg.data.split}/train is empty")
    return idx


def pretrain(cfg: RunConfig, *, resume: str | os.PathLike = "auto", progress: bool = True,
             on_step_end: StepHook | None = None, on_epoch_end: EpochHook | None = None,
             wait_for_lock: bool = False, on_start: StartHook | None = None,
             dataset: PreparedDataset | None = None) -> RunInfo:
    """Pretrain ``cfg.method`` on ``cfg.data`` (or the already opened ``dataset``) and export its backbone.

    resume: "auto" continues from ``<run>/checkpoints/last.pt`` when it exists, "never" starts
    over, a path resumes from that checkpoint (or run folder). A checkpoint whose pretrain_hash
    differs from ``cfg``'s is refused. The hooks are for tests and tools: an exception raised by
    one stops the run as a kill would (the checkpoints written so far stay valid). ``on_start``
    gets the method itself (e.g. to evaluate ``method.backbone()`` from ``on_epoch_end``).
    """
    cfg = resolved(cfg)  # every setting checked before anything is opened or written; the run holds this form
    _, _, local_rank = dd.env_world()
    device = resolve_device(cfg.train.device, local_rank)
    amp = resolve_amp(cfg.train.amp, device)
    if str(resume) not in ("auto", "never") and not Path(resume).exists():
        raise HarnessError(f"--resume {resume}: no such checkpoint (use auto, never or a path)")
    env = dd.setup(device.type)
    try:
        run_dir = run_dir_for(cfg)
        ds = dataset if dataset is not None else _open_data(cfg, env)
        indices = train_indices(ds, cfg)
        if env.is_main:
            retire_stale_run(run_dir, ds.fingerprint)
        if device.type == "cuda":
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        with torch_threads(cfg.train.num_threads):
            trainer = Trainer(cfg, ds, indices, run_dir, env, device, amp)  # a rejected method writes nothing
            with run_lock(run_dir, wait=wait_for_lock, enabled=env.is_main):
                return trainer.run_all(resume, progress, on_step_end, on_epoch_end, on_start)
    finally:
        dd.teardown(env)


def _open_data(cfg: RunConfig, env: dd.DistEnv) -> PreparedDataset:
    if env.enabled and not env.is_main:
        dd.barrier()  # rank 0 builds an auto-prepared dataset first
        return resolve_dataset(cfg.data, cfg.workdir)
    ds = resolve_dataset(cfg.data, cfg.workdir)
    if env.enabled:
        dd.barrier()
    return ds


def find_or_pretrain(cfg: RunConfig, *, progress: bool = True, dataset: PreparedDataset | None = None) -> RunInfo:
    """The finished run with ``cfg``'s pretrain_hash if one exists (reused), else train it.

    An unfinished run of the same configuration is resumed; a run being trained by another process
    is waited for. ``dataset`` is the opened pretraining dataset, when the caller has it already.
    """
    cfg = resolved(cfg)
    found = finished_run(cfg)
    if found is not None:
        made_on = recorded_fingerprint(found.run_dir)
        if made_on is not None and dataset is None:
            dataset = resolve_dataset(cfg.data, cfg.workdir)
        if made_on is None or made_on == dataset.fingerprint:
            found.reused = True
            return found
        # made on other data: pretrain() moves it aside and trains afresh
    return pretrain(cfg, resume="auto", progress=progress, wait_for_lock=True, dataset=dataset)
