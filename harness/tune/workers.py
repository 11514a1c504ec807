"""Worker processes: each runs trials on the shared storage until the study has its trials.

``--workers 1`` runs :func:`run_worker` in the calling process; ``--workers K`` starts K processes
``python -m harness.tune I`` (:mod:`harness.tune.__main__` → :func:`worker_main`), each reading the
:class:`~harness.tune.spec.TuneSpec` as JSON on stdin. Before asking for a trial a worker checks the
budget (running trials included); a trial that still finds it spent when it starts is failed at once
(:class:`~harness.tune.objective.OverBudget`), so parallel workers never overshoot.
"""

from __future__ import annotations

import subprocess
import sys

import optuna
import torch

from ..config import stable_hash
from ..errors import HarnessError
from .objective import Log, Objective, OverBudget, stderr_log
from .spec import TuneSpec
from .storage import COUNTED, budget_used, load_study, make_pruner, make_storage

WORKER_MODULE = "harness.tune"  # ``python -m harness.tune I`` runs harness/tune/__main__.py


def run_worker(spec: TuneSpec, worker: int = 0, *, log: Log = stderr_log, pruner=None) -> int:
    """One worker: run trials until the study has ``spec.trials``; returns how many it ran."""
    if spec.threads > 0:
        torch.set_num_threads(spec.threads)
    storage = make_storage(spec.storage)
    pruner = pruner if pruner is not None else make_pruner(spec)
    existing = len(load_study(spec, storage).get_trials(deepcopy=False))
    # a sampler seed that differs per worker and per resumption, so no two draw the same weights
    seed = int(stable_hash([spec.seed, worker, existing], 8), 16)
    study = load_study(spec, storage, pruner=pruner, sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True))
    objective = Objective(spec, log, prefix=f"[worker {worker}] " if worker else "")
    stop = optuna.study.MaxTrialsCallback(spec.trials, states=COUNTED)
    ran = 0
    while True:
        optuna.storages.fail_stale_trials(study)  # a dead worker's trial goes back in the queue
        # room for one more: a waiting trial (the paper's, a retry) is taken first by optimize
        if budget_used(study, waiting=False) >= spec.trials:
            break
        study.optimize(objective, n_trials=1, callbacks=[stop], catch=(OverBudget,), gc_after_trial=True)
        ran += 1
    return ran


def worker_main(argv: list[str]) -> int:
    """``python -m harness.tune WORKER`` with the TuneSpec as JSON on stdin (spawned by run_study)."""
    worker = int(argv[0]) if argv else 0
    spec = TuneSpec.from_json(sys.stdin.read())
    try:
        run_worker(spec, worker)
    except HarnessError as exc:
        stderr_log(f"[worker {worker}] error: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def spawn_workers(spec: TuneSpec, workers: int) -> list[int]:
    """Start ``workers`` processes (``python -m harness.tune I``) on the shared storage; wait for all
    and return their exit codes. If this process is interrupted, they are terminated."""
    procs: list[subprocess.Popen] = []
    text = spec.to_json()
    try:
        for i in range(1, workers + 1):
            p = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, str(i)], stdin=subprocess.PIPE, text=True)
            p.stdin.write(text)
            p.stdin.close()
            procs.append(p)
        return [p.wait() for p in procs]
    except BaseException:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait()
        raise


def worker_job(spec_json: str, worker: int) -> int:
    """One worker as a submitit job (``harness tune --executor local|slurm|debug``): trials it ran."""
    return run_worker(TuneSpec.from_json(spec_json), worker)


def submit_workers(spec: TuneSpec, opts, folder) -> list[int]:
    """Run ``opts.jobs`` workers as submitit jobs (:mod:`harness.reproduce.executors`) on the shared
    storage; wait for all and return their exit codes (0, or 1 for a worker that failed, whose log
    file is named on stderr)."""
    from ..reproduce.executors import local_gpus, make_executor

    ex = make_executor(opts, folder, name=f"tune-{spec.study}")
    text = spec.to_json()
    if opts.kind == "slurm":
        with ex.batch():
            jobs = [ex.submit(worker_job, text, i) for i in range(1, opts.jobs + 1)]
    else:
        jobs = []
        for i in range(1, opts.jobs + 1):
            if opts.kind == "local":
                ex.update_parameters(**local_gpus(opts, i - 1))
            jobs.append(ex.submit(worker_job, text, i))
    codes = []
    for i, job in enumerate(jobs, 1):
        try:
            job.result()
            codes.append(0)
        except Exception as exc:  # noqa: BLE001 - a dead worker: the others' trials are in the study
            stderr_log(f"[worker {i}] failed: {str(exc).strip().splitlines()[-1:]} (log: {job.paths.stderr})")
            codes.append(1)
    return codes
