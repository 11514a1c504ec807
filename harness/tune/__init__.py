"""``harness tune``: an Optuna search over a method's loss weights (docs/tuning.md).

Each ``--params`` name is a float field of the method's ``Options`` or an alias the method declares
(``Method.tunable``, e.g. USDRL's sim, vac, xc/xcorr → ``*_weight``). A weight whose starting value
is v (the resolved ``method.options``: the paper's unless changed) is sampled log-uniformly in
[v / spread, v · spread]; the starting weights are the study's first trial, enqueued once.

Objective: kNN-1 accuracy of the pretrained backbone on a validation hold-out carved from
``data.split``'s train part (``data.options.holdout``); trials pretrain on the rest and the test part
is never read. Intermediate accuracies every ``eval_every`` epochs feed Optuna's MedianPruner.
The study lives in an Optuna RDB storage (SQLite by default) and resumes; ``trials`` is the number
of finished (complete or pruned) trials it should reach, never overshot by parallel workers.

Modules, one job each:

- :mod:`.space`: parameter names → Options fields, starting weights, log-uniform ranges;
- :mod:`.spec`: :class:`TuneSpec` (what a worker needs), the validation split, :func:`make_spec`;
- :mod:`.storage`: Optuna storage (SQLite BEGIN IMMEDIATE), study open/create, identity, budget;
- :mod:`.objective`: one trial (pretrain + held-out kNN-1, pruning from the epoch hook);
- :mod:`.workers`: :func:`run_worker`, worker processes (``python -m harness.tune I``);
- :mod:`.report`: the summary, the best weights as YAML, the result table;
- :mod:`.run`: :func:`run_study`, the whole study.
"""

from __future__ import annotations

from .objective import Log, Objective, OverBudget, knn1_accuracy, trial_config
from .report import TuneResult, atomic_write_best, best_yaml, result_table, summarize
from .study import run_study
from .space import DEFAULT_PARAMS, DEFAULT_SPREAD, float_fields, paper_weights, resolve_params, search_space
from .spec import (DEFAULT_VAL_FRACTION, TuneSpec, default_storage, make_spec, planned_epochs, study_identity,
                   validation_indices)
from .storage import (GRACE_S, HEARTBEAT_S, PAPER_ATTR, SQLITE_TIMEOUT_S, budget_used, check_identity,
                      create_study, ensure_paper_trial, finished, load_study, make_storage, open_study)
from .workers import run_worker, spawn_workers, worker_main

__all__ = [
    "DEFAULT_PARAMS", "DEFAULT_SPREAD", "DEFAULT_VAL_FRACTION", "GRACE_S", "HEARTBEAT_S", "PAPER_ATTR",
    "SQLITE_TIMEOUT_S", "Log", "Objective", "OverBudget", "TuneResult", "TuneSpec", "atomic_write_best",
    "best_yaml", "budget_used", "check_identity", "create_study", "default_storage", "ensure_paper_trial",
    "finished", "float_fields", "knn1_accuracy", "load_study", "make_spec", "make_storage", "open_study",
    "paper_weights", "planned_epochs", "resolve_params", "result_table", "run_study", "run_worker",
    "search_space", "spawn_workers", "study_identity", "summarize", "trial_config", "validation_indices",
    "worker_main",
]
