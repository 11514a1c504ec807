"""A study in a journal file (``--storage journal:PATH``): Optuna's ``JournalStorage`` on a
``JournalFileBackend``, with the heartbeat RDB storages have.

A journal file is an append-only log of study operations, guarded by a lock file made with
``link``/``symlink`` (atomic on NFSv2+), so workers on many machines can share one study on a shared
filesystem without a database server (SQLite's own locking is not safe over NFS). Optuna's
``JournalStorage`` has no heartbeat: a worker that dies leaves its trial RUNNING for ever, which
``harness tune`` counts against ``--trials``. :class:`HeartbeatJournalStorage` adds it the way
``RDBStorage`` does (``BaseHeartbeat``): the worker running a trial stamps the trial's system
attribute ``harness:heartbeat`` every :data:`~.storage.HEARTBEAT_S` seconds (Optuna's heartbeat
thread), and a RUNNING trial whose last stamp (or start) is older than the grace period is failed by
the next worker and retried with the same weights (``fail_stale_trials`` → the retry callback).
Machines' clocks must agree to well within the grace period (5 minutes).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.storages import JournalStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

PREFIX = "journal:"
BEAT_ATTR = "harness:heartbeat"


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """``JournalStorage`` whose RUNNING trials carry a heartbeat (see the module docstring)."""

    def __init__(self, path: str, *, heartbeat_interval: int, grace_period: int,
                 stale_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(JournalFileBackend(str(path)))
        self._beat_interval, self._grace, self._stale_callback = heartbeat_interval, grace_period, stale_callback

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, BEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat: Any = trial.system_attrs.get(BEAT_ATTR)
            if beat is None:
                beat = trial.datetime_start.timestamp() if trial.datetime_start else now
            if now - float(beat) > self._grace:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._beat_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self._stale_callback


def journal_path(url: str) -> str | None:
    """The file of a ``journal:PATH`` storage URL (None for any other URL)."""
    return url[len(PREFIX):] if url.startswith(PREFIX) else None
