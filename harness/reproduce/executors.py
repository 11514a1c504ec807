"""Where campaign jobs run: submitit executors and their settings (``harness reproduce --executor``).

- ``inprocess`` (default): no jobs, today's loop in the calling process.
- ``debug``: submitit's ``DebugExecutor``, every job in the calling process, one after the other,
  through the same job code (state files, side files) as a real executor: for tests and debugging.
- ``local``: submitit's ``LocalExecutor``, one process per job on this machine, at most ``--jobs``
  at once; with ``--gpus-per-job G`` job slot *s* sees GPUs ``s·G … s·G+G−1`` (``CUDA_VISIBLE_DEVICES``).
- ``slurm``: submitit's ``SlurmExecutor``, one SLURM job array (``--array=0-N%P``, P =
  ``--array-parallelism``, default ``--jobs``) for the pretraining jobs and one for the untrained
  floors (which need one task and one GPU at most). ``--gpus-per-job G`` > 1 asks for G tasks per node
  (one per GPU, the DDP ranks; :mod:`.worker`); ``--slurm-option KEY=VALUE`` passes any other sbatch
  option (a submitit parameter name such as ``account``, ``qos``, ``mem``, ``constraint``, or any
  sbatch long option, which goes to ``additional_parameters``).

:func:`sbatch_script` renders the array's sbatch file with submitit's own template, without a
cluster (``harness reproduce --executor slurm --dry-run`` writes it for inspection).
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HarnessError

EXECUTORS = ("inprocess", "local", "slurm", "debug")
LOCAL_TIMEOUT_MIN = 7 * 24 * 60  # the local executor's own default is 2 minutes
SIGNAL_DELAY_S = 120  # SLURM sends USR2 this long before the time limit: time for the requeue


@dataclass
class ExecutorOptions:
    kind: str = "inprocess"
    jobs: int = 1  # at most this many jobs at once
    slurm_partition: str | None = None
    slurm_time: str | None = None  # minutes, or [D-]HH:MM[:SS]; every job's time limit
    gpus_per_job: int = 0
    cpus_per_job: int | None = None
    array_parallelism: int | None = None  # default: jobs
    slurm_options: dict[str, str] = field(default_factory=dict)
    wait: bool = True  # wait for the jobs, fold their rows, fuse and render
    poll_s: float = 0.0  # 0: 1 s locally, 60 s on SLURM

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise HarnessError(f"--executor {self.kind!r}: choose one of {', '.join(EXECUTORS)}")
        if self.jobs < 1:
            raise HarnessError(f"--jobs must be at least 1, got {self.jobs}")
        if self.gpus_per_job < 0 or (self.cpus_per_job is not None and self.cpus_per_job < 1):
            raise HarnessError("--gpus-per-job must be >= 0 and --cpus-per-job >= 1")
        if self.kind == "inprocess" and self.jobs > 1:
            raise HarnessError("--jobs N runs jobs side by side: choose --executor local, slurm or debug")

    @property
    def poll(self) -> float:
        return self.poll_s or (60.0 if self.kind == "slurm" else 1.0)

    @property
    def timeout_min(self) -> int:
        return timeout_minutes(self.slurm_time) if self.slurm_time else LOCAL_TIMEOUT_MIN

    def tasks(self, pretrains: bool = True) -> int:
        """Tasks per job: one per GPU for a pretraining on several GPUs, else one."""
        return self.gpus_per_job if pretrains and self.gpus_per_job > 1 else 1

    def gpus(self, pretrains: bool = True) -> int:
        return self.gpus_per_job if pretrains else min(self.gpus_per_job, 1)


def parse_options(values: list[str]) -> dict[str, str]:
    out = {}
    for text in values:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise HarnessError(f"--slurm-option {text!r}: expected KEY=VALUE (e.g. account=myproject)")
        out[key.strip()] = value.strip()
    return out


def timeout_minutes(text: str) -> int:
    """SLURM's time formats (minutes, MM:SS, HH:MM:SS, D-HH[:MM[:SS]]) as whole minutes (rounded up)."""
    text = str(text).strip()
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not m:
        raise HarnessError(f"--slurm-time {text!r}: expected minutes or [D-]HH:MM[:SS] (e.g. 240 or 1-12:00:00)")
    days, a, b, c = (int(x) if x else None for x in m.groups())
    if days is not None:  # D-HH[:MM[:SS]]
        seconds = days * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    elif c is not None:  # HH:MM:SS
        seconds = a * 3600 + b * 60 + c
    elif b is not None:  # MM:SS
        seconds = a * 60 + b
    else:
        seconds = a * 60
    if seconds <= 0:
        raise HarnessError(f"--slurm-time {text!r} is no time at all")
    return -(-seconds // 60)


def slurm_parameters(opts: ExecutorOptions, *, name: str, pretrains: bool = True) -> dict[str, Any]:
    """The SlurmExecutor parameters (submitit's native names) of one job array."""
    from submitit.slurm.slurm import _get_default_parameters

    gpus, tasks = opts.gpus(pretrains), opts.tasks(pretrains)
    params: dict[str, Any] = {"job_name": name, "time": opts.timeout_min, "nodes": 1, "ntasks_per_node": tasks,
                              "signal_delay_s": SIGNAL_DELAY_S,
                              "array_parallelism": opts.array_parallelism or opts.jobs}
    if gpus:
        params["gpus_per_node"] = gpus
    if opts.cpus_per_job:
        params["cpus_per_task"] = max(1, opts.cpus_per_job // tasks)
    if opts.slurm_partition:
        params["partition"] = opts.slurm_partition
    known = set(_get_default_parameters())
    extra: dict[str, Any] = {}
    for key, value in opts.slurm_options.items():
        native = key.replace("-", "_")
        flag = True if value.lower() in ("", "true", "yes") else value  # e.g. exclusive=true: a bare --exclusive
        if native in known and native not in ("additional_parameters", "setup", "srun_args"):
            params[native] = flag
        else:
            extra[key.replace("_", "-")] = flag
    if extra:
        params["additional_parameters"] = extra
    return params


def submitit_command(folder: Path) -> str:
    return " ".join([shlex.quote(sys.executable), "-u -m submitit.core._submit", shlex.quote(str(folder))])


def sbatch_script(folder: Path, params: dict[str, Any], count: int) -> str:
    """The sbatch file submitit submits for an array of ``count`` jobs with ``params``."""
    from submitit.slurm.slurm import _make_sbatch_string

    return _make_sbatch_string(command=submitit_command(folder), folder=folder, map_count=count, **params)


def submitit_folder(campaign: Path) -> Path:
    return campaign / "submitit" / "%j"


def make_executor(opts: ExecutorOptions, campaign: Path, *, name: str, pretrains: bool = True):
    """A submitit executor for ``opts.kind`` writing under ``<campaign>/submitit/``."""
    import submitit

    folder = submitit_folder(campaign)
    if opts.kind == "debug":
        return submitit.DebugExecutor(folder)
    if opts.kind == "local":
        ex = submitit.LocalExecutor(folder, max_num_timeout=3)
        ex.update_parameters(timeout_min=opts.timeout_min, tasks_per_node=opts.tasks(pretrains),
                             signal_delay_s=SIGNAL_DELAY_S)
        return ex
    if opts.kind == "slurm":
        try:
            ex = submitit.SlurmExecutor(folder, max_num_timeout=3)
        except RuntimeError as exc:  # no srun here
            raise HarnessError(f"--executor slurm: {exc} (submit from a login node of the cluster; "
                               f"--dry-run writes the sbatch file without one)") from None
        ex.update_parameters(**slurm_parameters(opts, name=name, pretrains=pretrains))
        return ex
    raise HarnessError(f"--executor {opts.kind}: no submitit executor")


def local_gpus(opts: ExecutorOptions, slot: int, pretrains: bool = True) -> dict[str, Any]:
    """The local executor's GPU parameters for a job in slot ``slot`` (its own GPUs; none on a CPU)."""
    g = opts.gpus(pretrains)
    if not g:
        return {"gpus_per_node": 0, "visible_gpus": ()}
    first = slot * opts.gpus_per_job
    return {"gpus_per_node": g, "visible_gpus": tuple(range(first, first + g))}
