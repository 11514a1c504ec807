"""Where a study lives: an Optuna RDB storage (SQLite by default, PostgreSQL/MySQL to share one
between machines) or a journal file (``journal:PATH``, :mod:`.journal`: machines sharing a
filesystem, no server) that several worker processes use at once.

SQLite gets a long lock timeout and BEGIN IMMEDIATE transactions, so that exactly one process pops
each waiting trial. A study made by ``harness tune`` carries its identity (configuration, space,
hold-out) and is refused for another one; the starting weights are enqueued once per study; the
budget counts complete and pruned trials (and, before a trial is asked for, running ones).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from sqlalchemy import event

from ..errors import HarnessError, UnknownNameError
from .journal import HeartbeatJournalStorage, journal_path
from .spec import PRUNERS, TuneSpec

HEARTBEAT_S = 60  # a worker's heartbeat; a RUNNING trial silent for GRACE_S is failed and retried
GRACE_S = 300
SQLITE_TIMEOUT_S = 300  # how long a worker waits for SQLite's write lock
PAPER_ATTR = "harness_paper"  # user attr of the enqueued starting-weights trial
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)  # the states --trials counts


def quiet_optuna() -> None:
    """Optuna's per-trial INFO lines and experimental-feature warnings would drown the harness's log."""
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def make_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDBStorage with a heartbeat (dead workers' trials are failed and retried) and, for SQLite,
    a long lock timeout so several processes can share one file; for ``journal:PATH`` a journal
    file storage with the same heartbeat (:class:`~.journal.HeartbeatJournalStorage`)."""
    quiet_optuna()
    kwargs: dict[str, Any] = {}
    journal = journal_path(url)
    if url.startswith("sqlite:"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    retry_cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) \
        or optuna.storages.RetryFailedTrialCallback
    retry = retry_cls(max_retry=3, inherit_intermediate_values=True)
    if journal is not None:
        try:
            return HeartbeatJournalStorage(journal, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                           stale_callback=retry)
        except OSError as exc:
            raise HarnessError(f"cannot open study journal {journal}: {exc.strerror or exc}") from None
    try:
        try:
            storage = optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                                 heartbeat_stale_trial_callback=retry, **kwargs)
        except TypeError:  # optuna < 4.9
            storage = optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                                 failed_trial_callback=retry, **kwargs)
    except Exception as exc:  # bad URL, missing driver, unreachable server
        raise HarnessError(f"cannot open study storage {url}: {exc}") from None
    if url.startswith("sqlite:"):
        _serialize_sqlite_transactions(storage.engine)
    return storage


def _serialize_sqlite_transactions(engine) -> None:
    """Make every SQLite transaction take the write lock when it begins (BEGIN IMMEDIATE).

    Python's sqlite3 runs a transaction's SELECTs before it takes any lock, so optuna's
    read-check-write that moves a WAITING trial to RUNNING is not atomic there: two workers could
    both pop the enqueued paper trial and train it twice. Taking the lock at BEGIN serialises the
    (short) storage transactions across processes; the busy timeout above makes the others wait.
    """

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" below issues BEGIN itself

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened while the storage was set up do not have the hooks


def make_pruner(spec: TuneSpec) -> optuna.pruners.BasePruner:
    if spec.pruner == "none":
        return optuna.pruners.NopPruner()
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec.startup_trials, n_warmup_steps=0)
    raise UnknownNameError("pruner", spec.pruner, list(PRUNERS))


def open_study(spec: TuneSpec, *, create: bool = False, sampler=None, pruner=None) -> optuna.Study:
    storage = make_storage(spec.storage)
    pruner = pruner if pruner is not None else make_pruner(spec)
    if create:
        return optuna.create_study(study_name=spec.study, storage=storage, direction="maximize",
                                   sampler=sampler, pruner=pruner, load_if_exists=True)
    return load_study(spec, storage, sampler=sampler, pruner=pruner)


def load_study(spec: TuneSpec, storage: optuna.storages.BaseStorage, **kwargs: Any) -> optuna.Study:
    """The existing study ``spec.study`` in ``storage`` (``kwargs``: sampler, pruner)."""
    try:
        return optuna.load_study(study_name=spec.study, storage=storage, **kwargs)
    except KeyError:  # optuna's "Record does not exist"
        raise HarnessError(f"study {spec.study!r} does not exist in {spec.storage}") from None


def budget_used(study: optuna.Study, below: int | None = None, *, waiting: bool = True) -> int:
    """Trials that count or will: complete, pruned, running and (``waiting``) waiting ones, all or
    those numbered below ``below``."""
    states = COUNTED + (TrialState.RUNNING,) + ((TrialState.WAITING,) if waiting else ())
    trials = study.get_trials(deepcopy=False, states=states)
    return len([t for t in trials if below is None or t.number < below])


def finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=COUNTED))


def ensure_paper_trial(study: optuna.Study, paper: dict[str, float]) -> bool:
    """Enqueue the starting weights as the study's first trial, once per study; True if enqueued."""
    if study.user_attrs.get("harness_paper_enqueued"):
        return False
    study.enqueue_trial(dict(paper), user_attrs={PAPER_ATTR: True}, skip_if_exists=True)
    study.set_user_attr("harness_paper_enqueued", True)
    return True


def check_identity(study: optuna.Study, identity: dict[str, Any]) -> None:
    """Record a new study's identity; refuse a study made by something else or for another one."""
    old = study.user_attrs.get("harness_identity")
    if old is None:
        if study.get_trials(deepcopy=False):
            raise HarnessError(f"study {study.study_name!r} was not made by harness tune; use another --study")
        study.set_user_attr("harness_identity", identity)
        return
    if old != identity:
        diff = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
        raise HarnessError(f"study {study.study_name!r} was made for a different configuration (differs in: "
                           f"{', '.join(diff)}); pass the same arguments to resume it, or a new --study")


def create_study(spec: TuneSpec, identity: dict[str, Any]) -> optuna.Study:
    """Create (or load) the study, check it was made for this configuration, enqueue the paper trial."""
    st = open_study(spec, create=True)
    check_identity(st, identity)
    ensure_paper_trial(st, spec.paper)
    return st
