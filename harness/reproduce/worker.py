"""What one campaign job runs, in its own process (submitit pickles a :class:`JobTask` and calls it).

The job runs its planned runs in order through :func:`harness.reproduce.execute`, exactly as an
in-process ``harness reproduce`` would (same configurations, same seeds), except that each
evaluation's rows go to the job's own side files (:func:`harness.results.pending.write_pending`)
instead of ``results.csv``. After every run it rewrites its state file (:mod:`.jobs`).

**Several tasks** (SLURM ``--ntasks-per-node`` = ``--gpus-per-job``): every task joins the
pretraining under DDP, with ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``
exported from submitit's job environment (what :mod:`harness.engine.distributed` reads, as under
``torchrun``); then task 0 leaves the process group and evaluates alone, the others exit.

**Preemption and time limits**: submitit catches the scheduler's signal (``USR2``, SLURM sends it
``signal_delay_s`` before the end) and calls :meth:`JobTask.checkpoint`, which marks the state
``requeued`` and hands back a fresh task (attempt + 1) that submitit requeues. The training state is
the run folder's ``checkpoints/last.pt`` (written at epoch ends, at least every 10 minutes of
training, and every ``train.checkpoint_every`` epochs): the requeued task finds the unfinished run
and resumes from it (``--resume auto``); finished runs and recorded evaluations are skipped.
"""

from __future__ import annotations

import os
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

import submitit

from ..engine.loop import find_or_pretrain
from ..results.pending import write_pending
from .jobs import CampaignJob, now, write_state
from .plan import Settings
from .run import Outcome, execute

DIST_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def outcome_record(out: Outcome) -> dict[str, Any]:
    return {"target": out.item.target, "status": out.status, "message": out.message,
            "config_hash": out.config_hash, "run_dir": out.run_dir}


def _log_paths() -> dict[str, str]:
    try:
        paths = submitit.JobEnvironment().paths
    except Exception:  # noqa: BLE001 - not inside a submitit job (called directly, e.g. in a test)
        return {}
    return {"log": str(paths.stderr), "stdout": str(paths.stdout)}


def _job_env() -> tuple[int, int, str]:
    """(global rank, number of tasks, scheduler job id) of this task (0, 1, "" outside submitit)."""
    try:
        env = submitit.JobEnvironment()
    except Exception:  # noqa: BLE001
        return 0, 1, ""
    return env.global_rank, env.num_tasks, str(env.job_id)


class JobTask(submitit.helpers.Checkpointable):
    """One campaign job: its runs, the settings of the campaign, where its state file lives."""

    def __init__(self, job: CampaignJob, settings: Settings, campaign: str, token: str, attempt: int = 1):
        self.job, self.settings, self.campaign, self.token, self.attempt = job, settings, campaign, token, attempt
        self._checkpointed = False

    # submitit calls this on the scheduler's signal (rank 0 only) and requeues what it returns
    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        self._checkpointed = True
        write_state(Path(self.campaign), self.job.key, self.token, "requeued", attempt=self.attempt,
                    requeued_at=now(), error="cut off (preempted or at its time limit): requeued, resumes "
                                             "from the run's last checkpoint")
        return submitit.helpers.DelayedSubmission(
            JobTask(self.job, self.settings, self.campaign, self.token, self.attempt + 1))

    def _state(self, state: str, **fields: Any) -> None:
        write_state(Path(self.campaign), self.job.key, self.token, state, **fields)

    def _record(self, store: str, rows: list, side_dir: Path) -> None:
        write_pending(store, rows, job=self.job.key)

    def __call__(self) -> dict[str, Any]:
        rank, tasks, job_id = _job_env()
        if tasks > 1:
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
        if rank == 0:
            self._state("running", pid=os.getpid(), running_on=socket.gethostname(), attempt=self.attempt,
                        scheduler_id=job_id, started_at=now(), tasks=tasks, error="", **_log_paths())
        try:
            if tasks > 1 and self.job.pretrains:  # every task trains (DDP); task 0 evaluates afterwards
                find_or_pretrain(self.settings.config(self.job.items[0]), progress=False)
            if rank > 0:
                return {"key": self.job.key, "state": "done", "rank": rank}
            for var in DIST_VARS:  # the evaluations run in one process
                os.environ.pop(var, None)
            return self._run_items()
        except BaseException as exc:
            if rank == 0 and not self._checkpointed:
                line = f"{type(exc).__name__}: {exc}".strip().splitlines()
                self._state("failed", error=line[-1] if line else type(exc).__name__, finished_at=now())
            if isinstance(exc, Exception):  # a bug outside the runs: reported, the job ends failed
                traceback.print_exc(file=sys.stderr)
                return {"key": self.job.key, "state": "failed", "error": str(exc)}
            raise  # a kill, an interrupt, submitit's requeue exit

    def _run_items(self) -> dict[str, Any]:
        outcomes: list[dict[str, Any]] = []
        for item in self.job.items:
            (out,) = execute([item], self.settings, progress=False, record=self._record, check_store=False,
                             log=lambda line: print(line, flush=True))
            outcomes.append(outcome_record(out))
            self._state("running", outcomes=outcomes)
        failed = [o for o in outcomes if o["status"] == "failed"]
        error = f"{failed[0]['target']}: {failed[0]['message']}".splitlines()[-1] if failed else ""
        state = "failed" if failed else "done"
        self._state(state, outcomes=outcomes, error=error, finished_at=now())
        return {"key": self.job.key, "state": state, "outcomes": outcomes, "error": error}
