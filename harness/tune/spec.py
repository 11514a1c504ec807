"""What a study is: :class:`TuneSpec` (everything a worker process needs, sent to it as JSON) and
:func:`make_spec`, which checks the arguments, builds the dataset once and names the study.

The validation split is part of a study's description: a seeded, class-stratified hold-out of
``data.split``'s train part (``data.options.holdout``); trials pretrain on the rest.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import RunConfig, stable_hash
from ..resolve import ResolvedConfig, resolved
from ..data.prepared.kinds import resolve_dataset
from ..data.prepared.format import PreparedDataset
from ..engine.distributed import ShardedBatches
from ..engine.loop import split_holdout, train_indices
from ..engine.schedule import budget_steps, epochs_for
from ..errors import HarnessError, UnknownNameError
from ..registry import METHODS
from .space import DEFAULT_PARAMS, DEFAULT_SPREAD, paper_weights, resolve_params, search_space

DEFAULT_VAL_FRACTION = 0.2
PRUNERS = ("median", "none")


@dataclass
class TuneSpec:
    base: dict[str, Any]  # RunConfig.to_dict() of every trial before its weights (dataset = folder)
    space: dict[str, list[float]]  # field → [low, high], sampled log-uniformly
    paper: dict[str, float]
    trials: int  # finished (complete + pruned) trials the study should reach
    study: str
    storage: str
    trials_dir: str
    eval_every: int  # epochs between intermediate kNN evaluations
    pruner: str = "median"  # median | none
    startup_trials: int = 3  # MedianPruner: trials finished before any pruning
    seed: int = 0
    threads: int = 0  # torch threads per worker process; 0 = leave torch's default

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "TuneSpec":
        return cls(**json.loads(text))


def storage_url(storage: str | None, workdir: str | Path, study: str) -> str:
    """``--storage``: an RDB URL as given; ``journal:PATH`` with PATH made absolute (workers may start
    elsewhere); ``journal`` alone: ``<workdir>/studies/<study>.journal``; none: SQLite."""
    if not storage:
        return default_storage(workdir, study)
    if storage == "journal":
        return f"journal:{(Path(workdir) / 'studies' / f'{study}.journal').resolve()}"
    if storage.startswith("journal:"):
        return f"journal:{Path(storage[len('journal:'):]).expanduser().resolve()}"
    return storage


def default_storage(workdir: str | Path, study: str) -> str:
    return f"sqlite:///{(Path(workdir) / 'studies' / f'{study}.db').resolve()}"


def study_identity(cfg: ResolvedConfig, space: dict[str, tuple[float, float]], holdout: dict[str, Any]) -> dict:
    """What makes two studies the same: the pretraining configuration, the space and the hold-out."""
    return {"pretrain": cfg.pretrain_dict(), "preset": cfg.preset,
            "space": {k: [float(lo), float(hi)] for k, (lo, hi) in sorted(space.items())},
            "holdout": holdout}


def validation_indices(ds: PreparedDataset, cfg: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    """(pretraining samples, validation samples) of a trial config with ``data.options.holdout``."""
    spec = cfg.data.options.get("holdout")
    if not spec:
        raise HarnessError("tuning needs data.options.holdout (the validation hold-out)")
    val = split_holdout(ds, ds.indices(cfg.data.split, "train"), spec)[1]
    return train_indices(ds, cfg), val


def planned_epochs(ds: PreparedDataset, cfg: RunConfig, indices: np.ndarray) -> int:
    """Epochs a trial's pretraining runs: the budget (``train.steps``, or ``train.epochs`` when steps
    is 0) over the single-process loader's steps per epoch, as :class:`harness.engine.trainer.Trainer`
    counts them."""
    t = cfg.train
    per_epoch = len(ShardedBatches(ds, indices, t.batch_size, shuffle=True, seed=t.seed))
    if t.max_steps_per_epoch > 0:
        per_epoch = min(per_epoch, t.max_steps_per_epoch)
    return epochs_for(budget_steps(t.steps, t.epochs, per_epoch), per_epoch)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def make_spec(cfg: RunConfig, *, params: str | list[str] = DEFAULT_PARAMS, trials: int,
              study: str | None = None, storage: str | None = None, workers: int = 1,
              spread: float = DEFAULT_SPREAD, val_fraction: float = DEFAULT_VAL_FRACTION, val_seed: int = 0,
              eval_every: int = 0, pruner: str = "median", startup_trials: int = 3,
              seed: int = 0) -> tuple[TuneSpec, dict[str, Any]]:
    """Check the arguments, build the dataset once and describe the study; returns (spec, identity).

    Names and options are checked before any data is built. Every trial then opens the prepared
    folder directly (``data.dataset`` = its path) with ``data.options.holdout`` set.
    """
    if trials < 1:
        raise HarnessError(f"--trials must be at least 1, got {trials}")
    if workers < 1:
        raise HarnessError(f"--workers must be at least 1, got {workers}")
    if eval_every < 0:
        raise HarnessError(f"--eval-every must be >= 0 (0 = a fifth of the epochs), got {eval_every}")
    if pruner not in PRUNERS:
        raise UnknownNameError("pruner", pruner, list(PRUNERS))
    if not 0 < val_fraction < 1:
        raise HarnessError(f"--val-fraction must lie in (0, 1), got {val_fraction}")
    if cfg.data.options.get("holdout"):
        raise HarnessError("data.options.holdout is set by harness tune (--val-fraction, --val-seed)")
    method_cls = METHODS.get(cfg.method.name)
    fields_ = resolve_params(method_cls, params)
    paper = paper_weights(method_cls, cfg, fields_)
    space = search_space(paper, spread)
    holdout = {"fraction": float(val_fraction), "seed": int(val_seed)}
    checked = resolved(cfg)  # every other setting (budget, encoder options, ...) checked before data is built

    ds = resolve_dataset(cfg.data, cfg.workdir)
    if ds.untrimmed:
        raise HarnessError(f"{ds.root}: tuning needs a trimmed (labelled) dataset")
    base = copy.deepcopy(cfg)
    base.data.dataset = str(Path(ds.root).resolve())
    base.data.options["holdout"] = holdout
    kept, val = validation_indices(ds, base)
    if len(val) == 0:
        raise HarnessError(f"split {cfg.data.split}/train is too small for a {val_fraction:.0%} validation hold-out")

    identity = study_identity(checked, space, holdout)
    name = study or f"{cfg.method.name}-{cfg.preset}-{stable_hash(identity, 8)}"
    spec = TuneSpec(base=base.to_dict(), space={k: [lo, hi] for k, (lo, hi) in space.items()}, paper=paper,
                    trials=trials, study=name, storage=storage_url(storage, cfg.workdir, name),
                    trials_dir=str((Path(cfg.workdir) / "studies" / name).resolve()),
                    eval_every=eval_every or max(1, planned_epochs(ds, base, kept) // 5), pruner=pruner,
                    startup_trials=startup_trials, seed=seed,
                    threads=max(1, cpu_count() // workers) if workers > 1 else 0)
    return spec, identity
