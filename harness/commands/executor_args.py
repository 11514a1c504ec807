"""The ``--executor`` flags ``harness reproduce`` and ``harness tune`` share (docs/campaigns.md)."""

from __future__ import annotations

import argparse

EXECUTOR_HELP = ("inprocess (default: everything in this process), local (one process per job on this machine, "
                 "submitit LocalExecutor), slurm (SLURM job arrays, submitit), debug (submitit DebugExecutor: jobs "
                 "one by one in this process)")


def add_executor_arguments(p: argparse.ArgumentParser, *, what: str = "job") -> None:
    g = p.add_argument_group("jobs (docs/campaigns.md)")
    g.add_argument("--executor", choices=("inprocess", "local", "slurm", "debug"), default="inprocess",
                   help=EXECUTOR_HELP)
    g.add_argument("--jobs", type=int, default=1, help=f"at most this many {what}s at once (default 1)")
    g.add_argument("--slurm-partition", help="SLURM partition")
    g.add_argument("--slurm-time", help="time limit per job: minutes or [D-]HH:MM[:SS] (a job cut off at its limit "
                                        "is requeued and resumes)")
    g.add_argument("--gpus-per-job", type=int, default=0,
                   help="GPUs per job; > 1 runs the pretraining as one DDP task per GPU (default 0; local: 1 when "
                        "this machine has CUDA)")
    g.add_argument("--cpus-per-job", type=int, help="CPUs per job (SLURM --cpus-per-task × tasks; CPU jobs get as "
                                                   "many torch threads)")
    g.add_argument("--array-parallelism", type=int, help="SLURM: jobs of the array running at once (default --jobs)")
    g.add_argument("--slurm-option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other sbatch option, e.g. account=proj, qos=high, mem=64G, constraint=a100 (repeatable)")
    g.add_argument("--no-wait", action="store_true",
                   help="SLURM: submit and return; the same command later folds, fuses and renders")


def executor_options(args: argparse.Namespace):
    from ..reproduce.executors import ExecutorOptions, parse_options

    gpus = args.gpus_per_job
    if args.executor == "local" and not gpus:
        import torch

        gpus = 1 if torch.cuda.is_available() else 0
    return ExecutorOptions(kind=args.executor, jobs=args.jobs, slurm_partition=args.slurm_partition,
                           slurm_time=args.slurm_time, gpus_per_job=gpus, cpus_per_job=args.cpus_per_job,
                           array_parallelism=args.array_parallelism, slurm_options=parse_options(args.slurm_option),
                           wait=not args.no_wait)
