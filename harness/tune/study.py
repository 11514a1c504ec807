"""The whole study: create or resume it, run the workers until it has its trials, write the best
weights (:func:`run_study`, what ``harness tune`` calls)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ..config import RunConfig, from_dict
from ..data.prepared.kinds import resolve_dataset
from ..errors import HarnessError
from .objective import Log, stderr_log
from .report import TuneResult, atomic_write_best, summarize
from .spec import make_spec, validation_indices
from .storage import budget_used, create_study, finished, open_study
from .workers import run_worker, spawn_workers, submit_workers


def run_study(cfg: RunConfig, *, workers: int = 1, out: str | Path | None = None, log: Log = stderr_log,
              executor: Any = None, **kwargs: Any) -> TuneResult:
    """Create or resume the study, run ``workers`` processes until it has ``trials``, write best.yaml.

    ``kwargs`` are :func:`~harness.tune.spec.make_spec`'s (params, trials, study, storage, spread,
    val_fraction, ...). ``executor`` (:class:`harness.reproduce.executors.ExecutorOptions`, kind
    local, slurm or debug): the workers are ``executor.jobs`` submitit jobs instead. Worker failures
    are reported after the best so far is written.
    """
    jobs = executor is not None and executor.kind != "inprocess"
    spec, identity = make_spec(cfg, workers=executor.jobs if jobs else workers, **kwargs)
    if jobs and executor.kind == "slurm":  # a worker's threads: its job's CPUs, not this machine's share
        spec.threads = executor.cpus_per_job or 0
        if spec.storage.startswith("sqlite:"):
            raise HarnessError("--executor slurm: SQLite is not safe on a shared filesystem; give the workers "
                               "--storage journal:PATH (a journal file on the shared filesystem) or a database URL")
    st = create_study(spec, identity)
    base = from_dict(copy.deepcopy(spec.base))
    gallery, val = validation_indices(resolve_dataset(base.data, base.workdir), base)
    hold = base.data.options["holdout"]
    log(f"study {spec.study!r} at {spec.storage}: {finished(st)} of {spec.trials} trials finished; validation = "
        f"{len(val)} held-out {cfg.data.split}/train samples ({hold['fraction']:.0%}, seed {hold['seed']}), "
        f"gallery/pretraining = {len(gallery)}")
    ran = 0
    codes: list[int] = []
    if budget_used(st, waiting=False) < spec.trials:
        if jobs:
            folder = Path(spec.trials_dir) / "jobs"
            log(f"{executor.jobs} worker job(s) with --executor {executor.kind} (logs under {folder / 'submitit'})")
            codes = submit_workers(spec, executor, folder)
        elif workers == 1:
            ran = run_worker(spec, 0, log=log)
        else:
            codes = spawn_workers(spec, workers)
    result = summarize(open_study(spec), spec, list(spec.space))
    result.ran_here, result.workers = ran, codes
    out_path = Path(out) if out else Path(cfg.workdir) / "studies" / f"{spec.study}-best.yaml"
    atomic_write_best(out_path, cfg, result, spec)
    result.out = str(out_path)
    bad = [(i, c) for i, c in enumerate(codes, 1) if c != 0]
    if bad:
        raise HarnessError(f"worker(s) {', '.join(f'{i} (exit {c})' for i, c in bad)} failed; the best so far "
                           f"is in {out_path}; run the same command again to resume the study")
    return result
