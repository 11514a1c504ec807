"""A plan as campaign jobs, and each job's state file (``harness reproduce --executor``).

**One job = one planned pretraining** with every protocol run that reuses it: the plan's runs are
grouped by the pretraining configuration they resolve to (``pretrain_hash``, the name of the run
folder ``<method>-<pretrain_hash>``), in the plan's order. Floors (untrained backbones) are jobs
too; fused items (3-stream ensembles) are not: they read their streams' score files and run in the
submitting process once the stream jobs are done. A method that is not installed is reported, not run.

**The campaign folder** ``<workdir>/campaigns/<table|figure>-<preset>/`` holds, per job key,
``jobs/<key>.submitted.json`` (written by the submitter: executor, scheduler job id, log files, the
submission's token) and ``jobs/<key>.json`` (written by the job itself: running, requeued, done or
failed, host and pid, every run's outcome, the error's last line). Each file has one writer and is
replaced atomically; a job state of an older submission (another token) is ignored. submitit's own
files (pickles, ``*_log.out``/``*_log.err``) are under ``submitit/``.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import atomic
from ..engine.runs import finished_run
from ..registry import METHODS
from ..results.pending import load_with_pending
from .plan import PlanItem, PlannedFuse, PlannedRun, Settings
from .run import recorded


@dataclass(frozen=True)
class CampaignJob:
    key: str  # <method>-<pretrain_hash>: the run folder's name, and the job's name everywhere
    method: str
    pretrain_hash: str
    pretrain_seed: int
    items: tuple[PlannedRun, ...]
    pretrains: bool = True  # False: an untrained floor (no pretraining, one task is enough)

    @property
    def label(self) -> str:
        first = self.items[0]
        more = f" (+{len(self.items) - 1} run(s))" if len(self.items) > 1 else ""
        return f"{first.target}{more}"


@dataclass
class Grouping:
    jobs: list[CampaignJob] = field(default_factory=list)
    fused: list[PlannedFuse] = field(default_factory=list)
    missing: list[PlannedRun] = field(default_factory=list)  # methods that are not installed


def group_jobs(items: list[PlanItem], settings: Settings) -> Grouping:
    """The plan's runs grouped by pretraining configuration (see the module docstring)."""
    out = Grouping()
    groups: dict[str, list[PlannedRun]] = {}
    meta: dict[str, tuple[str, str, int, bool]] = {}
    for item in items:
        if item.method not in METHODS:
            out.missing.append(item)
        elif isinstance(item, PlannedFuse):
            out.fused.append(item)
        else:
            cfg = settings.config(item)
            key = f"{cfg.method.name}-{cfg.pretrain_hash}"
            groups.setdefault(key, []).append(item)
            meta[key] = (cfg.method.name, cfg.pretrain_hash, item.pretrain_seed,
                         bool(getattr(METHODS.get(cfg.method.name), "pretrains", True)))
    for key, runs in groups.items():
        method, pretrain_hash, seed, pretrains = meta[key]
        out.jobs.append(CampaignJob(key, method, pretrain_hash, seed, tuple(runs), pretrains))
    return out


def run_done(run: PlannedRun, settings: Settings, store) -> bool:
    """A planned run whose rows are recorded (store or pending), or whose pretraining has finished."""
    cfg = settings.config(run)
    if not run.protocol:
        return finished_run(cfg) is not None
    return recorded(store, cfg.config_hash, run.protocol, run.pretrain_seed)


def job_done(job: CampaignJob, settings: Settings, store=None) -> bool:
    store = load_with_pending(settings.base().results) if store is None else store
    return all(run_done(r, settings, store) for r in job.items)


# --- the campaign folder and the state files ------------------------------------------------------
def campaign_dir(settings: Settings, name: str) -> Path:
    return Path(settings.base().workdir) / "campaigns" / f"{name}-{settings.preset}"


def _jobs_dir(campaign: Path) -> Path:
    return campaign / "jobs"


def submitted_path(campaign: Path, key: str) -> Path:
    return _jobs_dir(campaign) / f"{key}.submitted.json"


def state_path(campaign: Path, key: str) -> Path:
    return _jobs_dir(campaign) / f"{key}.json"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def write_submitted(campaign: Path, key: str, **fields: Any) -> dict[str, Any]:
    record = {"key": key, "submitted_at": now(), "host": socket.gethostname(), **fields}
    atomic.write_json(submitted_path(campaign, key), record)
    return record


def write_state(campaign: Path, key: str, token: str, state: str, **fields: Any) -> None:
    """The job's own state (``running``, ``requeued``, ``done``, ``failed``), keeping earlier fields."""
    old = _read(state_path(campaign, key)) or {}
    if old.get("token") != token:
        old = {}
    record = {**old, "key": key, "token": token, "state": state, "updated_at": now(), **fields}
    atomic.write_json(state_path(campaign, key), record)


def job_state(campaign: Path, key: str) -> dict[str, Any] | None:
    """What is known of the latest submission of job ``key``: the submitter's record with the job's
    own state over it (``state``: queued until the job has written one; None: never submitted)."""
    sub = _read(submitted_path(campaign, key))
    own = _read(state_path(campaign, key))
    if sub is None:
        return own
    if own is None or own.get("token") != sub.get("token"):
        return {**sub, "state": sub.get("state", "queued")}
    return {**sub, **own}


def process_alive(record: dict[str, Any]) -> bool | None:
    """Whether the job's process lives: True/False when it runs (or waits, with the local executor) on
    this host, None when that cannot be told from here (another node: ask the scheduler)."""
    pid, host = record.get("pid"), record.get("running_on")
    if not pid and record.get("executor") == "local":  # not started yet: its controller process
        pid, host = record.get("scheduler_id"), record.get("host")
    if not pid or host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def last_error_line(log: str | None, limit: int = 64 * 1024) -> str:
    """The last line of a log file that reads like an error (else its last non-empty line)."""
    if not log:
        return ""
    try:
        with open(log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            lines = [x.strip() for x in fh.read().decode("utf-8", "replace").splitlines() if x.strip()]
    except OSError:
        return ""
    markers = ("Error", "error:", "Exception", "Killed", "FAILED", "Traceback")
    for line in reversed(lines):
        if any(m in line for m in markers) and not line.startswith("Traceback"):
            return line[:300]
    return lines[-1][:300] if lines else ""
