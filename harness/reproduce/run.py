"""Running a plan: every configuration through :func:`harness.pipeline.evaluate`, resumable.

Before a run starts, the results store is checked: a configuration whose rows are already recorded
(same ``config_hash``, protocol and pretraining seed; in ``results.csv`` or in a campaign job's
pending side file, :mod:`harness.results.pending`) is skipped, so a killed ``harness reproduce``
continues when run again; a pretraining that was cut off resumes from its last checkpoint. A method
that is not installed is reported as skipped; a run that fails is reported and the others go on.
``record`` chooses where rows go: the store (``record_rows``, the default) or, in a campaign job
(:mod:`.worker`), the job's own side files.
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..config import stable_hash
from ..engine.loop import find_or_pretrain
from ..engine.runs import finished_run, run_dir_for
from ..errors import HarnessError
from ..evaluation.scores import fuse_scores
from ..pipeline import evaluate
from ..registry import METHODS, PROTOCOLS
from ..results import ResultRow, check_writable, record_rows
from ..results.pending import load_with_pending
from .plan import PlanItem, PlannedFuse, PlannedRun, Settings


@dataclass
class Outcome:
    item: PlanItem
    status: str  # ran | recorded | reused | not installed | failed | skipped
    message: str = ""
    config_hash: str = ""
    rows: list[ResultRow] = field(default_factory=list)
    run_dir: str = ""


def recorded(store, config_hash: str, protocol: str, pretrain_seed: int) -> bool:
    if store.empty:
        return False
    return bool(((store["config_hash"].astype(str) == config_hash) & (store["protocol"].astype(str) == protocol)
                 & (store["pretrain_seed"].astype(int) == int(pretrain_seed))).any())


def fused_hash(stream_hashes: Sequence[str]) -> str:
    return stable_hash({"fuse": list(stream_hashes)})


def describe_status(item: PlanItem, settings: Settings, store) -> tuple[str, str]:
    """(status, config hash) without running anything: for --dry-run."""
    if item.method not in METHODS:
        return "not installed", ""
    if isinstance(item, PlannedFuse):
        h = fused_hash([settings.config(s).config_hash for s in item.streams])
        return ("recorded" if recorded(store, h, item.protocol, item.pretrain_seed) else "to fuse"), h
    cfg = settings.config(item)
    if not item.protocol:
        return ("pretrained" if finished_run(cfg) is not None else "to pretrain"), cfg.pretrain_hash
    return ("recorded" if recorded(store, cfg.config_hash, item.protocol, item.pretrain_seed) else "to run"), \
        cfg.config_hash


def _annotate(rows: list[ResultRow], run: PlannedRun) -> list[ResultRow]:
    """Record a figure's swept settings in each row's ``extra`` (JSON) so tables keep them apart."""
    if not run.sweep:
        return rows
    return [r.add_extra(overrides=dict(run.sweep)) for r in rows]


Recorder = Callable[[str, list[ResultRow], Path], object]  # (store folder, rows, the run's folder)


def _run_one(run: PlannedRun, settings: Settings, progress: bool, record: Recorder) -> Outcome:
    cfg = settings.config(run)
    if not run.protocol:  # pretraining only (Figure 5)
        info = find_or_pretrain(cfg, progress=progress)
        return Outcome(run, "reused" if info.reused else "ran", f"backbone {info.backbone}", cfg.pretrain_hash,
                       run_dir=str(info.run_dir))
    if recorded(load_with_pending(cfg.results), cfg.config_hash, run.protocol, run.pretrain_seed):
        return Outcome(run, "recorded", "already in the results store", cfg.config_hash)
    rows = _annotate(evaluate(cfg, progress=progress, record=False), run)
    if rows:
        record(cfg.results, rows, run_dir_for(cfg))  # record_rows: a failed write saves the rows aside
    return Outcome(run, "ran", f"{len(rows)} row(s) recorded", cfg.config_hash, rows)


def _record_rows(store: str, rows: list[ResultRow], side_dir: Path) -> None:
    record_rows(store, rows, side_dir=side_dir)


def _fuse(item: PlannedFuse, settings: Settings, record: Recorder = _record_rows) -> Outcome:
    """Fuse the streams' per-seed scores as `harness fuse` does and record the rows (modality jbm)."""
    cfgs = [settings.config(s) for s in item.streams]
    h = fused_hash([c.config_hash for c in cfgs])
    store = load_with_pending(cfgs[0].results)
    if recorded(store, h, item.protocol, item.pretrain_seed):
        return Outcome(item, "recorded", "already in the results store", h)
    first = store[(store["config_hash"].astype(str) == cfgs[0].config_hash)
                  & (store["pretrain_seed"].astype(int) == item.pretrain_seed)]
    if first.empty:
        return Outcome(item, "skipped", "the joint stream has no rows in the store", h)
    kind, split = str(first["dataset"].iloc[0]), str(first["split"].iloc[0])
    protocol = PROTOCOLS.get(item.protocol)
    base = cfgs[0]  # Settings.config gives ResolvedConfigs
    rows = []
    for seed in item.streams[0].seeds:
        files = [protocol.score_file(run_dir_for(c) / "eval" / f"{item.protocol}-{c.config_hash}", kind, split, seed)
                 for c in cfgs]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            return Outcome(item, "skipped", f"stream score files are missing (another workdir?): {missing[0]}", h)
        fused, labels = fuse_scores([str(f) for f in files], [1.0] * len(files))
        top = np.argsort(-fused, axis=1)[:, :5]
        values = {"top1": float((top[:, 0] == labels).mean()), "top5": float((top == labels[:, None]).any(axis=1).mean())}
        extra = json.dumps({"files": [str(f) for f in files], "weights": [1.0] * len(files),
                            "streams": [c.config_hash for c in cfgs]}, sort_keys=True)
        rows += [ResultRow(base.method.name, kind, item.protocol, metric, value, variant=base.method.variant,
                           encoder=base.encoder.name, modality="jbm", split=split, seed=seed, preset=base.preset,
                           epochs=int(first["epochs"].iloc[0]), steps=int(first["steps"].iloc[0]),
                           pretrain_seed=item.pretrain_seed, config_hash=h, extra=extra)
                 for metric, value in values.items()]
    record(cfgs[0].results, rows, run_dir_for(cfgs[0]))
    return Outcome(item, "ran", f"fused {len(cfgs)} streams, {len(rows)} row(s) recorded", h, rows)


def execute(items: Iterable[PlanItem], settings: Settings, *, progress: bool = True,
            log: Callable[[str], None] = print, record: Recorder = _record_rows,
            check_store: bool = True) -> list[Outcome]:
    """Run the plan in order; a missing method is skipped, a failing run is reported, the rest go on.
    ``record`` stores each evaluation's rows; ``check_store``: prove the store writable first."""
    items = list(items)
    if check_store and any(i.method in METHODS and (isinstance(i, PlannedFuse) or i.protocol) for i in items):
        check_writable(settings.base().results)  # before the first run, not after hours of them
    outcomes: list[Outcome] = []
    for k, item in enumerate(items, 1):
        head = f"[{k}/{len(items)}] {item.target}: {describe(item)}"
        if item.method not in METHODS:
            out = Outcome(item, "not installed",
                          f"method {item.method!r} is not installed (installed: {', '.join(METHODS.names())})")
        else:
            try:
                out = _fuse(item, settings, record) if isinstance(item, PlannedFuse) else \
                    _run_one(item, settings, progress, record)
            except KeyboardInterrupt:
                raise
            except HarnessError as exc:
                out = Outcome(item, "failed", str(exc))
            except Exception as exc:  # a bug in one method must not lose the others' results
                traceback.print_exc(file=sys.stderr)
                out = Outcome(item, "failed", f"{type(exc).__name__}: {exc}")
        log(f"{head} — {out.status}{': ' + out.message if out.message else ''}")
        outcomes.append(out)
    return outcomes


def describe(item: PlanItem) -> str:
    if isinstance(item, PlannedFuse):
        return f"fuse {' + '.join(s.modality or 'joint' for s in item.streams)} of {item.method} " \
               f"{item.streams[0].encoder or ''} {item.protocol}".replace("  ", " ")
    parts = [item.method]
    if item.variant != "default":
        parts.append(item.variant)
    parts.append(item.encoder or "(default encoder)")
    if item.modality:
        parts.append(item.modality)
    parts.append(item.protocol or "pretrain only")
    parts.append(f"pretrain seed {item.pretrain_seed}")
    return " ".join(parts)


PLAN_HEADERS = ["#", "for", "method", "variant", "encoder", "modality", "protocol", "pretrain seed", "seeds",
                "settings", "status"]


def plan_table(items: Sequence[PlanItem], settings: Settings, *, check: bool = True) -> list[list[str]]:
    """Rows for printing a plan (``PLAN_HEADERS``)."""
    store = load_with_pending(settings.base().results) if check else None
    out = []
    for k, item in enumerate(items, 1):
        if isinstance(item, PlannedFuse):
            s0 = item.streams[0]
            rec = [item.target, s0.method, s0.variant, s0.encoder or "(default)", "jbm (fused J+M+B)", item.protocol,
                   str(item.pretrain_seed), ",".join(map(str, s0.seeds)), "fuse of the stream runs above"]
        else:
            seeds = _describe_seeds(item, settings)
            rec = [item.target, item.method, item.variant, item.encoder or "(default)", item.modality or "(default)",
                   item.protocol or "pretrain only", str(item.pretrain_seed), seeds, item.describe_settings()]
        status = describe_status(item, settings, store)[0] if check else ""
        out.append([str(k), *rec, status])
    return out


def _describe_seeds(item: PlannedRun, settings: Settings) -> str:
    """The protocol's own account of its seeds (a subset seed list, or none for kNN)."""
    if not item.protocol:
        return "—"
    try:
        return PROTOCOLS.get(item.protocol)(settings.config(item)).describe_seeds()
    except HarnessError:
        return ",".join(map(str, item.seeds))
