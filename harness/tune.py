"""``harness tune``: an Optuna search over a method's loss weights (docs/tuning.md).

Each ``--params`` name is a float field of the method's ``Options`` (aliases: sim, vac, xc/xcorr,
var/variance, cov/covariance, offdiag, domain, instance → ``*_weight``). A weight whose starting
value is v (the paper's, i.e. the resolved ``method.options``) is sampled log-uniformly in
[v / spread, v · spread] (spread 10 by default). The starting weights are enqueued as the study's
first trial, once per study.

Objective: kNN-1 accuracy (cosine, L2-normalised pooled features, :func:`knn_predict`) of the
pretrained backbone on a VALIDATION split carved from ``data.split``'s train part: a seeded,
class-stratified hold-out (``data.options.holdout``, :func:`harness.engine.loop.split_holdout`).
The trial pretrains on the rest (the engine leaves the held-out samples out), the gallery is that
rest, the queries are the held-out samples; the test part is never read. Every ``eval_every``
epochs the same kNN accuracy is computed on the current ``method.backbone()`` from the engine's
``on_epoch_end`` hook and reported to Optuna's MedianPruner, which may stop the trial
(``optuna.TrialPruned`` raised from the hook; the run folder is left as a failed run with valid
checkpoints). A trial whose loss turns NaN/Inf counts as pruned ("diverged").

Storage: an Optuna RDB URL (SQLite ``<workdir>/studies/<study>.db`` by default; PostgreSQL or
MySQL to share a study between machines), opened with ``load_if_exists`` so a study resumes.
``trials`` is the number of finished (complete or pruned) trials the study should reach: each
worker checks the budget (running and waiting trials included) before asking for a trial, and a
trial that still finds the budget spent when it starts is failed at once ("over_budget"), so
parallel workers never overshoot. Trial ``n`` pretrains under ``<workdir>/studies/<study>/
trial-NNNN/``; a trial retried after its worker died (heartbeat) continues in its original folder.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .config import RunConfig, from_dict, stable_hash
from .errors import HarnessError, UnknownNameError

ALIASES: dict[str, str] = {
    "sim": "sim_weight", "vac": "vac_weight", "xc": "xc_weight", "xcorr": "xc_weight",
    "var": "variance_weight", "variance": "variance_weight", "cov": "covariance_weight",
    "covariance": "covariance_weight", "offdiag": "offdiag_weight", "domain": "domain_weight",
    "instance": "instance_weight",
}
DEFAULT_PARAMS = "sim,vac,xc"
DEFAULT_SPREAD = 10.0
DEFAULT_VAL_FRACTION = 0.2
HEARTBEAT_S = 60  # a worker's heartbeat; a RUNNING trial silent for GRACE_S is failed and retried
GRACE_S = 300
SQLITE_TIMEOUT_S = 300  # how long a worker waits for SQLite's write lock
PAPER_ATTR = "harness_paper"  # user attr of the enqueued starting-weights trial
Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- the search space ------------------------------------------------------------------------
def resolve_params(method_cls: type, names: str | list[str]) -> list[str]:
    """``"sim,vac,xcorr"`` → Options field names; unknown names raise UnknownNameError (suggestions)."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",")]
    names = [n for n in names if n]
    if not names:
        raise HarnessError("--params needs at least one name, e.g. --params sim,vac,xc")
    opts = getattr(method_cls, "Options", None)
    if opts is None or not dataclasses.is_dataclass(opts):
        raise HarnessError(f"method {getattr(method_cls, 'name', method_cls)!r} has no Options to tune")
    floats = [f.name for f in fields(opts) if f.type in (float, "float")]
    known = sorted(set(floats) | {a for a, f in ALIASES.items() if f in floats})
    out: list[str] = []
    for name in names:
        fname = ALIASES.get(name, name)
        if fname not in floats:
            raise UnknownNameError(f"tuning parameter of {getattr(method_cls, 'name', '?')}", name, known)
        if fname not in out:
            out.append(fname)
    return out


def paper_weights(method_cls: type, cfg: RunConfig, params: list[str]) -> dict[str, float]:
    """The starting weights: the method's resolved options (the paper's unless --set changes them)."""
    opts = method_cls.resolve_options(cfg)
    out = {p: float(getattr(opts, p)) for p in params}
    for p, v in out.items():
        if not (v > 0 and math.isfinite(v)):
            raise HarnessError(f"{p} is {v} in this configuration: a log-uniform range needs a positive "
                               f"starting value (set one with --set method.options.{p}=VALUE)")
    return out


def search_space(paper: dict[str, float], spread: float) -> dict[str, tuple[float, float]]:
    if not spread > 1:
        raise HarnessError(f"--spread must be > 1, got {spread}")
    return {p: (v / spread, v * spread) for p, v in paper.items()}


def validation_indices(ds, cfg: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    """(pretraining samples, validation samples) of a trial config with ``data.options.holdout``."""
    from .engine.loop import split_holdout, train_indices

    spec = cfg.data.options.get("holdout")
    if not spec:
        raise HarnessError("tuning needs data.options.holdout (the validation hold-out)")
    val = split_holdout(ds, ds.indices(cfg.data.split, "train"), spec)[1]
    return train_indices(ds, cfg), val


# --- what a worker needs ---------------------------------------------------------------------
@dataclass
class TuneSpec:
    base: dict[str, Any]  # RunConfig.to_dict() of every trial before its weights (dataset = folder)
    space: dict[str, list[float]]  # field → [low, high], sampled log-uniformly
    paper: dict[str, float]
    trials: int  # finished (complete + pruned) trials the study should reach
    study: str
    storage: str
    trials_dir: str
    eval_every: int
    pruner: str = "median"  # median | none
    startup_trials: int = 3  # MedianPruner: trials finished before any pruning
    seed: int = 0
    threads: int = 0  # torch threads per worker process; 0 = leave torch's default

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "TuneSpec":
        return cls(**json.loads(text))


def _optuna():
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def default_storage(workdir: str | Path, study: str) -> str:
    return f"sqlite:///{(Path(workdir) / 'studies' / f'{study}.db').resolve()}"


def make_storage(url: str):
    """An RDBStorage with a heartbeat (dead workers' trials are failed and retried) and, for SQLite,
    a long lock timeout so several processes can share one file."""
    optuna = _optuna()
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    retry_cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) \
        or optuna.storages.RetryFailedTrialCallback
    retry = retry_cls(max_retry=3, inherit_intermediate_values=True)
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
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" below issues BEGIN itself

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened while the storage was set up do not have the hooks


def _pruner(spec: TuneSpec):
    optuna = _optuna()
    if spec.pruner == "none":
        return optuna.pruners.NopPruner()
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec.startup_trials, n_warmup_steps=0)
    raise UnknownNameError("pruner", spec.pruner, ["median", "none"])


def open_study(spec: TuneSpec, *, create: bool = False, sampler=None, pruner=None):
    optuna = _optuna()
    storage = make_storage(spec.storage)
    pruner = pruner if pruner is not None else _pruner(spec)
    if create:
        return optuna.create_study(study_name=spec.study, storage=storage, direction="maximize",
                                   sampler=sampler, pruner=pruner, load_if_exists=True)
    return optuna.load_study(study_name=spec.study, storage=storage, sampler=sampler, pruner=pruner)


def _counted_states():
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.PRUNED)


def budget_used(study, below: int | None = None, *, waiting: bool = True) -> int:
    """Trials that count or will: complete, pruned, running and (``waiting``) waiting ones, all or
    those numbered below ``below``."""
    from optuna.trial import TrialState

    states = _counted_states() + (TrialState.RUNNING,) + ((TrialState.WAITING,) if waiting else ())
    trials = study.get_trials(deepcopy=False, states=states)
    return len([t for t in trials if below is None or t.number < below])


def finished(study) -> int:
    return len(study.get_trials(deepcopy=False, states=_counted_states()))


def ensure_paper_trial(study, paper: dict[str, float]) -> bool:
    """Enqueue the starting weights as the study's first trial, once per study; True if enqueued."""
    if study.user_attrs.get("harness_paper_enqueued"):
        return False
    study.enqueue_trial(dict(paper), user_attrs={PAPER_ATTR: True}, skip_if_exists=True)
    study.set_user_attr("harness_paper_enqueued", True)
    return True


# --- one trial -------------------------------------------------------------------------------
class OverBudget(Exception):
    """The study already has its trials (a race between workers): this trial is failed unrun."""


def knn1_accuracy(backbone, ds, gallery: np.ndarray, queries: np.ndarray, *, frames: int,
                  batch_size: int, device) -> float:
    """kNN-1 (cosine) accuracy of ``queries`` against ``gallery``, on pooled backbone features."""
    from harness.evaluation.features import extract_features
    from harness.evaluation.knn import knn_predict

    g, gl = extract_features(backbone, ds, gallery, frames=frames, batch_size=batch_size, device=device)
    q, ql = extract_features(backbone, ds, queries, frames=frames, batch_size=batch_size, device=device)
    pred = knn_predict(g, gl, q, k=1, num_classes=ds.num_classes).argmax(1)
    return float((pred == ql.to(pred.device)).float().mean().item())


def _system_attrs(trial) -> dict[str, Any]:
    return trial.study._storage.get_trial_system_attrs(trial._trial_id)


def trial_config(spec: TuneSpec, params: dict[str, float], folder: int) -> RunConfig:
    cfg = from_dict(copy.deepcopy(spec.base))
    cfg.method.options.update({k: float(v) for k, v in params.items()})
    cfg.workdir = str(Path(spec.trials_dir) / f"trial-{folder:04d}")
    return cfg


class Objective:
    """The study's objective: pretrain on the kept train samples, score kNN-1 on the held-out ones."""

    def __init__(self, spec: TuneSpec, log: Log = _stderr, prefix: str = ""):
        from .data.kinds import resolve_dataset

        self.spec, self.log, self.prefix = spec, log, prefix
        base = from_dict(copy.deepcopy(spec.base))
        self.ds = resolve_dataset(base.data, base.workdir)
        self.base = base

    def __call__(self, trial) -> float:
        optuna = _optuna()
        from .engine.loop import NonFiniteLossError, pretrain, resolve_device

        spec = self.spec
        if budget_used(trial.study, below=trial.number) >= spec.trials:
            trial.set_user_attr("over_budget", True)
            raise OverBudget(f"trial {trial.number}: the study already has {spec.trials} trials")
        params = {p: trial.suggest_float(p, lo, hi, log=True) for p, (lo, hi) in spec.space.items()}
        folder = int(_system_attrs(trial).get("failed_trial", trial.number))  # a retry continues there
        cfg = trial_config(spec, params, folder)
        gallery, queries = validation_indices(self.ds, cfg)
        device = resolve_device(cfg.train.device)
        epochs = cfg.train.epochs
        every = max(1, spec.eval_every)
        state: dict[str, Any] = {"method": None, "acc": {}}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in params.items())
        paper = " (paper weights)" if trial.user_attrs.get(PAPER_ATTR) else ""
        self.log(f"{self.prefix}trial {trial.number}{paper}: {shown}")
        t0 = time.perf_counter()

        def evaluate() -> float:
            return knn1_accuracy(state["method"].backbone(), self.ds, gallery, queries,
                                 frames=cfg.data.frames, batch_size=cfg.protocol.batch_size, device=device)

        def on_start(method) -> None:
            state["method"] = method

        def on_epoch_end(done: int, record: dict[str, Any]) -> None:
            if done % every and done != epochs:
                return
            acc = evaluate()
            state["acc"][done] = acc
            if done == epochs:
                return  # the final value is the objective, not an intermediate one
            trial.report(acc, done)
            if trial.should_prune():
                trial.set_user_attr("pruned_at_epoch", done)
                raise optuna.TrialPruned(f"val kNN-1 {acc:.4f} at epoch {done} is below the median")

        trial.set_user_attr("workdir", cfg.workdir)
        trial.set_user_attr("pretrain_hash", cfg.pretrain_hash)
        try:
            pretrain(cfg, resume="auto", progress=False, on_start=on_start, on_epoch_end=on_epoch_end)
        except optuna.TrialPruned as exc:
            trial.set_user_attr("val_knn1_by_epoch", {str(k): v for k, v in state["acc"].items()})
            self.log(f"{self.prefix}trial {trial.number}: pruned ({exc}), {time.perf_counter() - t0:.1f} s")
            raise
        except NonFiniteLossError as exc:
            trial.set_user_attr("diverged", str(exc))
            self.log(f"{self.prefix}trial {trial.number}: pruned, the loss diverged at epoch {exc.epoch}")
            raise optuna.TrialPruned(f"non-finite loss at epoch {exc.epoch}") from None
        if epochs not in state["acc"]:  # the run had finished before (a retried trial): score it now
            state["acc"][epochs] = evaluate()
        value = state["acc"][epochs]
        trial.set_user_attr("val_knn1_by_epoch", {str(k): v for k, v in state["acc"].items()})
        self.log(f"{self.prefix}trial {trial.number}: val kNN-1 {value:.4f} "
                 f"({len(queries)} queries, {len(gallery)} gallery), {time.perf_counter() - t0:.1f} s")
        return value


def run_worker(spec: TuneSpec, worker: int = 0, *, log: Log = _stderr, pruner=None) -> int:
    """One worker: run trials until the study has ``spec.trials``; returns how many it ran."""
    optuna = _optuna()
    if spec.threads > 0:
        import torch

        torch.set_num_threads(spec.threads)
    storage = make_storage(spec.storage)
    pruner = pruner if pruner is not None else _pruner(spec)
    existing = len(optuna.load_study(study_name=spec.study, storage=storage).get_trials(deepcopy=False))
    # a sampler seed that differs per worker and per resumption, so no two draw the same weights
    seed = int(stable_hash([spec.seed, worker, existing], 8), 16)
    study = optuna.load_study(study_name=spec.study, storage=storage, pruner=pruner,
                              sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True))
    objective = Objective(spec, log, prefix=f"[worker {worker}] " if worker else "")
    stop = optuna.study.MaxTrialsCallback(spec.trials, states=_counted_states())
    ran = 0
    while True:
        optuna.storages.fail_stale_trials(study)  # a dead worker's trial goes back in the queue
        # room for one more: a waiting trial (the paper's, a retry) is taken first by optimize
        if budget_used(study, waiting=False) >= spec.trials:
            break
        study.optimize(objective, n_trials=1, callbacks=[stop], catch=(OverBudget,), gc_after_trial=True)
        ran += 1
    return ran


def _worker_main(argv: list[str]) -> int:
    """``python -m harness.tune WORKER`` with the TuneSpec as JSON on stdin (spawned by run_study)."""
    worker = int(argv[0]) if argv else 0
    spec = TuneSpec.from_json(sys.stdin.read())
    try:
        run_worker(spec, worker)
    except HarnessError as exc:
        _stderr(f"[worker {worker}] error: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


# --- the whole study -------------------------------------------------------------------------
@dataclass
class TuneResult:
    study: str
    storage: str
    params: list[str]
    paper: dict[str, float]
    space: dict[str, list[float]]
    complete: int
    pruned: int
    failed: int
    best_number: int
    best_value: float
    best_params: dict[str, float]
    paper_number: int | None
    paper_value: float | None  # None when the paper trial was pruned or has not finished
    paper_state: str
    out: str = ""
    ran_here: int = 0
    workers: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def study_identity(cfg: RunConfig, space: dict[str, tuple[float, float]], holdout: dict[str, Any]) -> dict:
    return {"pretrain": cfg.pretrain_dict(), "preset": cfg.preset,
            "space": {k: [float(lo), float(hi)] for k, (lo, hi) in sorted(space.items())},
            "holdout": holdout}


def _check_identity(study, identity: dict[str, Any]) -> None:
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


def make_spec(cfg: RunConfig, *, params: str | list[str] = DEFAULT_PARAMS, trials: int,
              study: str | None = None, storage: str | None = None, workers: int = 1,
              spread: float = DEFAULT_SPREAD, val_fraction: float = DEFAULT_VAL_FRACTION, val_seed: int = 0,
              eval_every: int = 0, pruner: str = "median", startup_trials: int = 3,
              seed: int = 0) -> tuple[TuneSpec, dict[str, Any]]:
    """Check the arguments, build the dataset once and describe the study; returns (spec, identity).

    Names and options are checked before any data is built. Every trial then opens the prepared
    folder directly (``data.dataset`` = its path) with ``data.options.holdout`` set.
    """
    from .data.kinds import resolve_dataset
    from .registry import METHODS

    if trials < 1:
        raise HarnessError(f"--trials must be at least 1, got {trials}")
    if workers < 1:
        raise HarnessError(f"--workers must be at least 1, got {workers}")
    if pruner not in ("median", "none"):
        raise UnknownNameError("pruner", pruner, ["median", "none"])
    if not 0 < val_fraction < 1:
        raise HarnessError(f"--val-fraction must lie in (0, 1), got {val_fraction}")
    if cfg.data.options.get("holdout"):
        raise HarnessError("data.options.holdout is set by harness tune (--val-fraction, --val-seed)")
    method_cls = METHODS.get(cfg.method.name)
    fields_ = resolve_params(method_cls, params)
    paper = paper_weights(method_cls, cfg, fields_)
    space = search_space(paper, spread)
    holdout = {"fraction": float(val_fraction), "seed": int(val_seed)}

    ds = resolve_dataset(cfg.data, cfg.workdir)
    if ds.untrimmed:
        raise HarnessError(f"{ds.root}: tuning needs a trimmed (labelled) dataset")
    base = copy.deepcopy(cfg)
    base.data.dataset = str(Path(ds.root).resolve())
    base.data.options["holdout"] = holdout
    _, val = validation_indices(ds, base)
    if len(val) == 0:
        raise HarnessError(f"split {cfg.data.split}/train is too small for a {val_fraction:.0%} validation hold-out")

    identity = study_identity(cfg, space, holdout)
    name = study or f"{cfg.method.name}-{cfg.preset}-{stable_hash(identity, 8)}"
    spec = TuneSpec(base=base.to_dict(), space={k: [lo, hi] for k, (lo, hi) in space.items()}, paper=paper,
                    trials=trials, study=name, storage=storage or default_storage(cfg.workdir, name),
                    trials_dir=str((Path(cfg.workdir) / "studies" / name).resolve()),
                    eval_every=eval_every or max(1, cfg.train.epochs // 5), pruner=pruner,
                    startup_trials=startup_trials, seed=seed,
                    threads=max(1, _cpu_count() // workers) if workers > 1 else 0)
    return spec, identity


def create_study(spec: TuneSpec, identity: dict[str, Any]):
    """Create (or load) the study, check it was made for this configuration, enqueue the paper trial."""
    st = open_study(spec, create=True)
    _check_identity(st, identity)
    ensure_paper_trial(st, spec.paper)
    return st


def run_study(cfg: RunConfig, *, workers: int = 1, out: str | Path | None = None, log: Log = _stderr,
              **kwargs: Any) -> TuneResult:
    """Create or resume the study, run ``workers`` processes until it has ``trials``, write best.yaml.

    ``kwargs`` are :func:`make_spec`'s (params, trials, study, storage, spread, val_fraction, ...).
    """
    spec, identity = make_spec(cfg, workers=workers, **kwargs)
    st = create_study(spec, identity)
    base = from_dict(copy.deepcopy(spec.base))
    from .data.kinds import resolve_dataset

    gallery, val = validation_indices(resolve_dataset(base.data, base.workdir), base)
    hold = base.data.options["holdout"]
    log(f"study {spec.study!r} at {spec.storage}: {finished(st)} of {spec.trials} trials finished; validation = "
        f"{len(val)} held-out {cfg.data.split}/train samples ({hold['fraction']:.0%}, seed {hold['seed']}), "
        f"gallery/pretraining = {len(gallery)}")
    ran = 0
    codes: list[int] = []
    if budget_used(st, waiting=False) < spec.trials:
        if workers == 1:
            ran = run_worker(spec, 0, log=log)
        else:
            codes = _spawn_workers(spec, workers)
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


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _spawn_workers(spec: TuneSpec, workers: int) -> list[int]:
    """Start ``workers`` processes (``python -m harness.tune I``) on the shared storage; wait for all."""
    procs: list[subprocess.Popen] = []
    text = spec.to_json()
    try:
        for i in range(1, workers + 1):
            p = subprocess.Popen([sys.executable, "-m", "harness.tune", str(i)], stdin=subprocess.PIPE, text=True)
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


def summarize(study, spec: TuneSpec, params: list[str]) -> TuneResult:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = {s: sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise HarnessError(f"study {spec.study!r} has no complete trial yet ({counts[TrialState.PRUNED]} pruned, "
                           f"{counts[TrialState.FAIL]} failed)")
    best = max(complete, key=lambda t: (t.value, -t.number))
    papers = sorted((t for t in trials if t.user_attrs.get(PAPER_ATTR)),
                    key=lambda t: (t.state != TrialState.COMPLETE, t.state != TrialState.PRUNED, t.number))
    paper = papers[0] if papers else None
    return TuneResult(
        study=spec.study, storage=spec.storage, params=params, paper=spec.paper, space=spec.space,
        complete=counts[TrialState.COMPLETE], pruned=counts[TrialState.PRUNED], failed=counts[TrialState.FAIL],
        best_number=best.number, best_value=float(best.value), best_params={p: float(best.params[p]) for p in params},
        paper_number=None if paper is None else paper.number,
        paper_value=float(paper.value) if paper is not None and paper.state == TrialState.COMPLETE else None,
        paper_state="absent" if paper is None else paper.state.name.lower())


def best_yaml(cfg: RunConfig, result: TuneResult, spec: TuneSpec) -> str:
    """The best weights as a config file for ``harness run --config``; everything else as comments."""
    import yaml

    from .config import resolve

    options = dict(cfg.method.options)
    options.update(result.best_params)
    body = {"method": {"name": cfg.method.name, "variant": cfg.method.variant, "modality": cfg.method.modality,
                       "options": options}}
    paper = "pruned" if result.paper_value is None else f"{result.paper_value:.4f}"
    hold = spec.base["data"]["options"]["holdout"]
    lines = [
        f"# harness tune: the best loss weights of study {result.study!r} ({result.storage})",
        f"# method {cfg.method.name} (variant {cfg.method.variant}, modality {cfg.method.modality}, "
        f"encoder {cfg.encoder.name}), preset {cfg.preset}, dataset {cfg.data.dataset}, split {cfg.data.split}",
        f"# objective: kNN-1 on a {hold['fraction']:.0%} class-stratified hold-out (seed {hold['seed']}) of "
        f"{cfg.data.split}/train, pretraining on the rest; the test split was not used",
        f"# best: trial {result.best_number}, val kNN-1 {result.best_value:.4f}; paper weights "
        f"(trial {result.paper_number}): {paper}; {result.complete} complete, {result.pruned} pruned trials",
        "# search: " + ", ".join(f"{k} log-uniform [{lo:.4g}, {hi:.4g}] (paper {result.paper[k]:.4g})"
                                 for k, (lo, hi) in result.space.items()),
    ]
    plain = resolve(cfg.preset)
    skip = ("workdir", "results", "method.", "data.dataset", "protocol.")
    changed = [(k, v) for k, v in _changed_keys(plain.to_dict(), cfg.to_dict()) if not k.startswith(skip)]
    if changed:
        lines.append("# tuned with: " + " ".join(f"--set {k}={v}" for k, v in changed))
    lines.append(f"# use: harness run --preset {cfg.preset} --config THIS_FILE --protocol linear")
    return "\n".join(lines) + "\n" + yaml.safe_dump(body, sort_keys=False)


def _changed_keys(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k in b:
        key = f"{prefix}{k}"
        if isinstance(b[k], dict) and isinstance(a.get(k), dict) and not key.endswith("options"):
            out += _changed_keys(a[k], b[k], key + ".")
        elif a.get(k) != b[k]:
            out.append((key, json.dumps(b[k]) if not isinstance(b[k], str) else b[k]))
    return out


def atomic_write_best(path: Path, cfg: RunConfig, result: TuneResult, spec: TuneSpec) -> None:
    from . import atomic

    atomic.write_text(path, best_yaml(cfg, result, spec))


def result_table(result: TuneResult) -> str:
    from tabulate import tabulate

    paper_col = f"paper (trial {result.paper_number})" if result.paper_number is not None else "paper"
    rows = [(p, f"{result.paper[p]:.6g}", f"{result.best_params[p]:.6g}") for p in result.params]
    paper_val = "pruned" if result.paper_value is None else f"{result.paper_value:.4f}"
    rows.append(("val kNN-1", paper_val, f"{result.best_value:.4f}"))
    return tabulate(rows, headers=["", paper_col, f"best (trial {result.best_number})"], disable_numparse=True)


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
