"""Submitting a plan as jobs, waiting for them, folding their rows in (``harness reproduce --executor``).

:func:`run_campaign` groups the plan into jobs (:mod:`.jobs`), skips every job whose runs are all
recorded, builds the auto-prepared datasets once (jobs must not build the same folder at once),
submits the rest (:mod:`.executors`; at most ``--jobs`` at once), waits, folds the jobs' side files
into ``results.csv`` (:func:`harness.results.pending.fold_pending`) and then runs the fused items in
this process. A job that fails is reported with its log file and the others go on. It returns one
:class:`~.run.Outcome` per planned item, as :func:`~.run.execute` does.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from ..errors import HarnessError
from ..results import check_writable
from ..results.pending import fold_pending, load_with_pending
from .executors import ExecutorOptions, local_gpus, make_executor
from .jobs import (CampaignJob, campaign_dir, group_jobs, job_done, job_state, last_error_line, process_alive,
                   write_state, write_submitted)
from .plan import PlanItem, Settings
from .run import Outcome, execute

Log = Callable[[str], None]
ACTIVE = ("queued", "running", "requeued")
SLURM_ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY",
               "BOOT_FAIL", "DEADLINE")


def job_settings(settings: Settings, opts: ExecutorOptions) -> Settings:
    """The settings jobs run with: on a CPU-only machine one torch thread per job (``--cpus-per-job``
    threads on SLURM) unless ``--set train.num_threads=…`` says otherwise (not part of any hash)."""
    if any(o.split("=", 1)[0].strip() == "train.num_threads" for o in settings.overrides):
        return settings
    threads = 0
    if opts.gpus_per_job == 0 and opts.kind in ("local", "slurm"):  # debug jobs run here, one at a time
        import torch

        if opts.kind == "slurm":
            threads = opts.cpus_per_job or 0
        elif not torch.cuda.is_available():
            threads = 1
    if not threads:
        return settings
    return dataclasses.replace(settings, overrides=[*settings.overrides, f"train.num_threads={threads}"])


def prepare_datasets(jobs: list[CampaignJob], settings: Settings, log: Log) -> None:
    """Open (and so build, when auto-prepared) every dataset the jobs read, once, here."""
    from ..data.prepared.kinds import resolve_dataset
    from ..pipeline import eval_dataset
    from ..registry import PROTOCOLS

    seen: set[str] = set()
    for job in jobs:
        for run in job.items:
            cfg = settings.config(run)
            try:
                key = repr(cfg.data)
                if key not in seen:
                    seen.add(key)
                    resolve_dataset(cfg.data, cfg.workdir)
                if run.protocol:
                    protocol = PROTOCOLS.get(run.protocol)(cfg)
                    key = repr((cfg.data, cfg.protocol.dataset, protocol.untrimmed))
                    if key not in seen:
                        seen.add(key)
                        eval_dataset(cfg, protocol, None)
            except HarnessError as exc:  # the job reports it as its own failure
                log(f"  (dataset of {run.target} not prepared here: {exc})")


def _still_active(campaign: Path, job: CampaignJob) -> dict[str, Any] | None:
    """The state of a submission of ``job`` that still runs or waits (None: none, or it is dead)."""
    st = job_state(campaign, job.key)
    if not st or st.get("state") not in ACTIVE or st.get("executor") == "debug":
        return None
    alive = process_alive(st)
    if alive is not None:
        return st if alive else None
    if st.get("executor") == "slurm" and st.get("scheduler_id"):  # unfinished work: ask SLURM (sacct)
        try:
            import submitit

            state = submitit.SlurmJob(campaign / "submitit" / "%j", st["scheduler_id"]).state.upper()
        except Exception:  # noqa: BLE001 - no sacct here: trust the state file
            return st
        if state.split()[0] in SLURM_ENDED:
            return None
    return st


@dataclasses.dataclass
class Running:
    job: CampaignJob
    handle: Any  # a submitit Job
    slot: int = 0


def _finish(campaign: Path, run: Running, token: str, log: Log) -> None:
    """Collect a job that ended: a crash the job could not report itself is written into its state."""
    job, handle = run.job, run.handle
    try:
        result = handle.result()
        state = (result or {}).get("state", "done")
        error = (result or {}).get("error", "")
    except Exception as exc:  # noqa: BLE001 - killed, out of memory, cancelled, requeued too often
        state, error = "failed", (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        log_file = str(handle.paths.stderr) if getattr(handle, "paths", None) is not None else ""
        own = job_state(campaign, job.key) or {}
        if own.get("state") != "failed":
            write_state(campaign, job.key, token, "failed", error=last_error_line(log_file) or error, log=log_file)
    st = job_state(campaign, job.key) or {}
    where = f" (log: {st['log']})" if st.get("log") and state == "failed" else ""
    log(f"job {job.key}: {state}{': ' + (st.get('error') or error) if state == 'failed' else ''}{where}")


def _submit_all(jobs: list[CampaignJob], settings: Settings, opts: ExecutorOptions, campaign: Path, name: str,
                log: Log) -> None:
    from .worker import JobTask

    tokens = {job.key: uuid.uuid4().hex[:12] for job in jobs}

    def task(job: CampaignJob) -> JobTask:
        return JobTask(job, settings, str(campaign), tokens[job.key])

    def submitted(job: CampaignJob, handle: Any) -> None:
        paths = getattr(handle, "paths", None)
        write_submitted(campaign, job.key, token=tokens[job.key], executor=opts.kind, state="queued",
                        scheduler_id=str(handle.job_id), items=[r.target for r in job.items],
                        log=str(paths.stderr) if paths is not None else "")

    if opts.kind == "slurm":  # one array per kind of job; SLURM runs --array-parallelism at once
        handles: list[Running] = []
        for pretrains in (True, False):
            group = [j for j in jobs if j.pretrains == pretrains]
            if not group:
                continue
            ex = make_executor(opts, campaign, name=f"harness-{name}", pretrains=pretrains)
            with ex.batch():
                pending = [ex.submit(task(j)) for j in group]
            for job, handle in zip(group, pending):
                submitted(job, handle)
                handles.append(Running(job, handle))
        log(f"submitted {len(handles)} job(s) to SLURM: {', '.join(sorted({str(h.handle.job_id).split('_')[0] for h in handles}))}")
        if opts.wait:
            _wait(handles, [], opts, campaign, tokens, log, lambda *a: None)
        return

    # local / debug: at most --jobs at once, each job in a slot of its own (its GPUs)
    slots = opts.jobs
    if opts.kind == "local" and opts.gpus_per_job:
        import torch

        slots = max(1, min(slots, torch.cuda.device_count() // opts.gpus_per_job))
    executors = {p: make_executor(opts, campaign, name=name, pretrains=p) for p in (True, False)}
    queue = list(jobs)
    free = list(range(slots))

    def start(job: CampaignJob) -> Running:
        slot = free.pop(0)
        ex = executors[job.pretrains]
        if opts.kind == "local":
            ex.update_parameters(**local_gpus(opts, slot, job.pretrains))
        handle = ex.submit(task(job))
        submitted(job, handle)
        log(f"job {job.key} started ({job.label}; {len(job.items)} run(s))")
        return Running(job, handle, slot)

    _wait([], queue, opts, campaign, tokens, log, start, free)


def _wait(running: list[Running], queue: list[CampaignJob], opts: ExecutorOptions, campaign: Path,
          tokens: dict[str, str], log: Log, start: Callable[[CampaignJob], Running], free: list[int] | None = None
          ) -> None:
    while running or queue:
        while queue and free:
            running.append(start(queue.pop(0)))
        if opts.kind == "debug":  # a debug job runs when asked for its result
            done = running[:1]
        else:
            done = [r for r in running if r.handle.done()]
        for r in done:
            _finish(campaign, r, tokens[r.job.key], log)
            running.remove(r)
            if free is not None:
                free.append(r.slot)
                free.sort()
        if not done:
            time.sleep(opts.poll)


def run_campaign(items: list[PlanItem], settings: Settings, opts: ExecutorOptions, name: str, *,
                 log: Log = print) -> list[Outcome]:
    """Run the plan as jobs (see the module docstring); one Outcome per planned item, in order."""
    store_dir = settings.base().results
    check_writable(store_dir)
    campaign = campaign_dir(settings, name)
    fold_pending(store_dir)  # rows an earlier, interrupted submitter left pending
    grouping = group_jobs(items, settings)
    store = load_with_pending(store_dir)
    todo, waiting = [], []
    for job in grouping.jobs:
        if job_done(job, settings, store):
            log(f"job {job.key}: every run recorded — skipped ({job.label})")
        elif (st := _still_active(campaign, job)) is not None:
            waiting.append(job)
            log(f"job {job.key}: already {st['state']} as {st.get('scheduler_id') or '?'} — not submitted again")
        else:
            todo.append(job)
    runs = job_settings(settings, opts)
    if todo:
        prepare_datasets(todo, runs, log)
        log(f"{len(todo)} job(s) to run with --executor {opts.kind} (at most {opts.jobs} at once), "
            f"campaign folder {campaign}")
        _submit_all(todo, runs, opts, campaign, name, log)
    if todo and not opts.wait:
        log("not waiting (--no-wait): `harness reproduce ... --status` shows the jobs; the same command "
            "again folds their rows, fuses and renders once they are done")
    report = fold_pending(store_dir)
    if report.files:
        log(f"folded {report.added} row(s) from {report.files} job side file(s) into {Path(store_dir) / 'results.csv'}")
    for path, what in report.problems:
        log(f"  pending file left in place: {path}: {what}")
    return collect_outcomes(items, grouping, settings, campaign, log, active=bool(waiting) or not opts.wait,
                            submitted={j.key for j in todo})


def collect_outcomes(items: list[PlanItem], grouping, settings: Settings, campaign: Path, log: Log, *,
                     active: bool, submitted: set[str]) -> list[Outcome]:
    """One Outcome per item: the records of the jobs submitted now, the store for the others, the fused
    items run here (unless jobs still run)."""
    by_target: dict[str, Outcome] = {}
    store = load_with_pending(settings.base().results)
    for job in grouping.jobs:
        st = job_state(campaign, job.key) or {}
        recs = {o["target"]: o for o in st.get("outcomes", [])} if job.key in submitted else {}
        for run in job.items:
            rec = recs.get(run.target)
            if rec is not None:
                by_target[run.target] = Outcome(run, rec["status"], rec["message"], rec["config_hash"],
                                                run_dir=rec.get("run_dir", ""))
            elif job_done(dataclasses.replace(job, items=(run,)), settings, store):
                by_target[run.target] = Outcome(run, "recorded", "already in the results store",
                                                settings.config(run).config_hash)
            else:
                where = f" (log: {st['log']})" if st.get("log") else ""
                status = "queued" if st.get("state") in ACTIVE else "failed"
                by_target[run.target] = Outcome(run, status, f"job {job.key} {st.get('state', 'not run')}: "
                                                f"{st.get('error') or 'no rows'}{where}")
    fused = [] if active else execute(grouping.fused, settings, log=log)
    by_target.update({o.item.target: o for o in fused})
    out = []
    for item in items:
        if item.target in by_target:
            out.append(by_target[item.target])
        elif item in grouping.missing:
            out += execute([item], settings, log=lambda line: None)
        else:
            out.append(Outcome(item, "queued", "waits for its stream jobs"))
    return out
