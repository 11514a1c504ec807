"""``harness reproduce --status``: every planned run's state, from files alone.

The state of a run is read, in this order, from

1. the results store and the jobs' pending side files: **done** when its rows are recorded (a
   pretraining-only run: when its run folder has finished);
2. its job's state files in the campaign folder (:mod:`.jobs`): **queued** (submitted, not started,
   or requeued after a preemption or its time limit), **running** (its process lives, or runs on
   another node), **failed** (the job said so, or its process on this host is gone without a word;
   with the log file and the error's last line);
3. its run folder (``run.json``, ``.lock``): **running** while a process holds the lock (an
   in-process ``harness reproduce``), **failed** with the run's error, else **to run** (an
   interrupted pretraining says where it resumes).

No scheduler is asked: finished work is known from the store and the files.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from ..engine.runs import read_run_json, run_dir_for
from ..registry import METHODS
from ..results.pending import load_with_pending
from .jobs import campaign_dir, job_state, last_error_line, process_alive, run_done
from .plan import PlanItem, PlannedFuse, PlannedRun, Settings
from .run import describe, fused_hash, recorded

STATUS_HEADERS = ["#", "for", "run", "pretrain seed", "state", "job", "detail"]
STATES = ("done", "running", "queued", "failed", "to run", "not installed")


def _lock_held(run_dir: Path) -> bool:
    """Whether a process holds the run's lock (it is being trained right now, on this host)."""
    lock = run_dir / ".lock"
    if not lock.is_file():
        return False
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return False
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        with contextlib.suppress(OSError):
            fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def progress(run_dir: Path) -> str:
    info = read_run_json(run_dir) or {}
    if not info:
        return ""
    total = info.get("total_steps")
    step = info.get("global_step", 0)
    return f"pretraining step {step}/{total}" if total else f"pretraining epoch {info.get('epochs', 0)}"


def _from_run_folder(run: PlannedRun, settings: Settings) -> tuple[str, str]:
    run_dir = run_dir_for(settings.config(run))
    info = read_run_json(run_dir) or {}
    status = info.get("status")
    if status == "running" and _lock_held(run_dir):
        return "running", progress(run_dir)
    if status == "failed":
        return "failed", f"{run_dir}: {info.get('error') or 'failed'}"
    if status == "running":  # nobody holds the lock: a killed pretraining, resumed by the next run
        return "to run", f"interrupted at {progress(run_dir)}; resumes from its last checkpoint"
    return "to run", ""


def _from_job(run: PlannedRun, settings: Settings, st: dict[str, Any]) -> tuple[str, str] | None:
    state = st.get("state")
    log = st.get("log") or ""
    where = f"log {log}" if log else ""
    mine = next((o for o in st.get("outcomes", []) if o.get("target") == run.target), None)
    if mine is not None and mine.get("status") == "failed":
        message = ((mine.get("message") or "").strip().splitlines() or ["failed"])[-1]
        return "failed", "; ".join(x for x in (where, message) if x)
    if state in ("queued", "requeued"):
        attempt = f", attempt {st['attempt'] + 1}" if state == "requeued" and st.get("attempt") else ""
        why = "requeued after a preemption or its time limit" if state == "requeued" else "submitted"
        return "queued", f"{why} as {st.get('scheduler_id') or '?'}{attempt}"
    if state == "running":
        if process_alive(st) is False:
            error = last_error_line(log) or "no error in the log"
            return "failed", f"process {st.get('pid')} on {st.get('running_on')} ended without a word " \
                             f"(killed?); {where}; last line: {error}"
        done_here = mine is not None
        detail = "evaluated, recording" if done_here else progress(run_dir_for(settings.config(run)))
        return "running", f"{detail or 'started'} on {st.get('running_on') or '?'}"
    if state == "failed":
        error = st.get("error") or last_error_line(log) or "failed"
        return "failed", "; ".join(x for x in (where, error) if x)
    return None  # done: the job ran it and the store says the rest


def status_rows(items: list[PlanItem], settings: Settings, name: str) -> list[list[str]]:
    """One row per planned item (``STATUS_HEADERS``)."""
    store = load_with_pending(settings.base().results)
    campaign = campaign_dir(settings, name)
    out = []
    for k, item in enumerate(items, 1):
        key, detail = "", ""
        if item.method not in METHODS:
            state = "not installed"
        elif isinstance(item, PlannedFuse):
            h = fused_hash([settings.config(s).config_hash for s in item.streams])
            if recorded(store, h, item.protocol, item.pretrain_seed):
                state = "done"
            else:
                streams = all(run_done(s, settings, store) for s in item.streams)
                state = "to run"
                detail = "fused in the submitting process" + ("" if streams else " once its streams are done")
        else:
            cfg = settings.config(item)
            key = f"{cfg.method.name}-{cfg.pretrain_hash}"
            st = job_state(campaign, key)
            if run_done(item, settings, store):
                state = "done"
            else:
                state, detail = (st and _from_job(item, settings, st)) or _from_run_folder(item, settings)
        out.append([str(k), item.target, describe(item), str(item.pretrain_seed), state, key, detail])
    return out


def status_counts(rows: list[list[str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[4]] = counts.get(row[4], 0) + 1
    return {s: counts[s] for s in STATES if s in counts}
