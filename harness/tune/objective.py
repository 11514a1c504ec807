"""One trial: pretrain with the trial's weights on the kept train samples, score kNN-1 on the
held-out ones, report intermediate scores to the pruner.

Every ``eval_every`` epochs the engine's ``on_epoch_end`` hook measures the same kNN accuracy on the
current ``method.backbone()`` and reports it (step = completed epochs); the pruner may stop the trial
(``optuna.TrialPruned`` raised from the hook leaves the run folder as a failed run with valid
checkpoints). The last epoch, the one that spends the budget (``train.steps``, or ``train.epochs``
when steps is 0), gives the objective value and is not reported as an intermediate one. A trial
whose loss turns NaN/Inf counts as pruned ("diverged").
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import optuna

from ..config import RunConfig, from_dict
from ..resolve import ResolvedConfig, resolved
from ..data.prepared.kinds import resolve_dataset
from ..engine.device import resolve_device
from ..engine.loop import NonFiniteLossError, pretrain
from ..evaluation.features import extract_features
from ..errors import HarnessError
from ..evaluation.nearest import knn_predict
from .spec import TuneSpec, validation_indices
from .storage import PAPER_ATTR, budget_used

Log = Callable[[str], None]


def stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class OverBudget(Exception):
    """The study already has its trials (a race between workers): this trial is failed unrun."""


def knn1_accuracy(backbone, ds, gallery: np.ndarray, queries: np.ndarray, *, frames: int,
                  batch_size: int, device) -> float:
    """kNN-1 (cosine) accuracy of ``queries`` against ``gallery``, on pooled backbone features."""
    g, gl = extract_features(backbone, ds, gallery, frames=frames, batch_size=batch_size, device=device)
    q, ql = extract_features(backbone, ds, queries, frames=frames, batch_size=batch_size, device=device)
    pred = knn_predict(g, gl, q, k=1, num_classes=ds.num_classes).argmax(1)
    return float((pred == ql.to(pred.device)).float().mean().item())


def _system_attrs(trial: optuna.Trial) -> dict[str, Any]:
    # a retried trial's "failed_trial" system attribute names the trial it repeats (optuna's
    # RetryFailedTrialCallback); the public Trial has no reader for system attributes
    return trial.study._storage.get_trial_system_attrs(trial._trial_id)


def trial_config(spec: TuneSpec, params: dict[str, float], folder: int) -> ResolvedConfig:
    """The base configuration with the trial's weights, pretraining in ``trial-NNNN``."""
    cfg = from_dict(copy.deepcopy(spec.base))
    cfg.method.options.update({k: float(v) for k, v in params.items()})
    cfg.workdir = str(Path(spec.trials_dir) / f"trial-{folder:04d}")
    return resolved(cfg)


class Objective:
    """The study's objective: pretrain on the kept train samples, score kNN-1 on the held-out ones."""

    def __init__(self, spec: TuneSpec, log: Log = stderr_log, prefix: str = ""):
        self.spec, self.log, self.prefix = spec, log, prefix
        self.base = from_dict(copy.deepcopy(spec.base))
        self.ds = resolve_dataset(self.base.data, self.base.workdir)

    def __call__(self, trial: optuna.Trial) -> float:
        spec = self.spec
        if budget_used(trial.study, below=trial.number) >= spec.trials:
            trial.set_user_attr("over_budget", True)
            raise OverBudget(f"trial {trial.number}: the study already has {spec.trials} trials")
        params = {p: trial.suggest_float(p, lo, hi, log=True) for p, (lo, hi) in spec.space.items()}
        folder = int(_system_attrs(trial).get("failed_trial", trial.number))  # a retry continues there
        cfg = trial_config(spec, params, folder)
        gallery, queries = validation_indices(self.ds, cfg)
        device = resolve_device(cfg.train.device)
        every = max(1, spec.eval_every)
        state: dict[str, Any] = {"method": None, "acc": {}, "total_steps": None}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in params.items())
        paper = " (paper weights)" if trial.user_attrs.get(PAPER_ATTR) else ""
        self.log(f"{self.prefix}trial {trial.number}{paper}: {shown}")
        t0 = time.perf_counter()

        def evaluate() -> float:
            return knn1_accuracy(state["method"].backbone(), self.ds, gallery, queries,
                                 frames=cfg.data.frames, batch_size=cfg.protocol.batch_size, device=device)

        def on_start(method) -> None:
            state["method"] = method
            state["total_steps"] = method.info.total_steps  # the budget the engine derived

        def on_epoch_end(done: int, record: dict[str, Any]) -> None:
            last = record["step"] >= state["total_steps"]
            if done % every and not last:
                return
            acc = evaluate()
            state["acc"][done] = acc
            if last:
                return  # the final value is the objective, not an intermediate one
            trial.report(acc, done)
            if trial.should_prune():
                trial.set_user_attr("pruned_at_epoch", done)
                raise optuna.TrialPruned(f"val kNN-1 {acc:.4f} at epoch {done} is below the median")

        trial.set_user_attr("workdir", cfg.workdir)
        trial.set_user_attr("pretrain_hash", cfg.pretrain_hash)
        try:
            run = pretrain(cfg, resume="auto", progress=False, on_start=on_start, on_epoch_end=on_epoch_end,
                           dataset=self.ds)
        except optuna.TrialPruned as exc:
            trial.set_user_attr("val_knn1_by_epoch", {str(k): v for k, v in state["acc"].items()})
            self.log(f"{self.prefix}trial {trial.number}: pruned ({exc}), {time.perf_counter() - t0:.1f} s")
            raise
        except NonFiniteLossError as exc:
            trial.set_user_attr("diverged", str(exc))
            self.log(f"{self.prefix}trial {trial.number}: pruned, the loss diverged at epoch {exc.epoch}")
            raise optuna.TrialPruned(f"non-finite loss at epoch {exc.epoch}") from None
        if state["method"] is None:
            raise HarnessError(f"method {cfg.method.name!r} does not pretrain: there is nothing to tune")
        if run.epochs not in state["acc"]:  # the run had finished before (a retried trial): score it now
            state["acc"][run.epochs] = evaluate()
        value = state["acc"][run.epochs]
        trial.set_user_attr("val_knn1_by_epoch", {str(k): v for k, v in state["acc"].items()})
        self.log(f"{self.prefix}trial {trial.number}: val kNN-1 {value:.4f} "
                 f"({len(queries)} queries, {len(gallery)} gallery), {time.perf_counter() - t0:.1f} s")
        return value
