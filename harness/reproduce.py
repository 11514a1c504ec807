"""The runs a paper table or figure needs, and running them (``harness reproduce``).

A plan is a list of :class:`PlannedRun` (method, variant, encoder, modality, protocol, seeds, protocol
options) and, for Table 1's 3-stream row, a :class:`PlannedFuse`. :func:`execute` turns each run into a
:class:`~harness.config.RunConfig` (preset → ``--config`` YAML → the user's ``--set`` → the run's own
settings) and calls :func:`harness.commands.run_cmd.evaluate`, which reuses a finished pretraining run
with the same ``pretrain_hash`` and resumes an unfinished one. Before a run starts, the results store
is checked: a configuration whose rows are already recorded (same ``config_hash`` and protocol) is
skipped, so a killed ``harness reproduce`` simply continues when run again.

What each target needs:

* Table 1: ``linear`` for every method (USDRL with DSTE and STTR; for the 3-stream row also DSTE bone
  and motion streams, fused per seed as ``harness fuse`` does and recorded with modality ``jbm``);
* Table 2: ``semi``; Table 3: ``knn``; Table 4: ``detection`` with the whole model fine-tuned
  (``protocol.options.variant=finetune``, as in the paper) on the untrimmed version of the dataset
  (synthetic by default) or on ``--eval-dataset`` (a PKU-MMD folder);
* Table 5: ``linear`` + ``knn`` for the 7 rows (rows 1/4 ``contrastive`` STTR/DSTE, row 2 ``usdrl no_xc``
  STTR, rows 3/7 ``usdrl`` STTR/DSTE, rows 5/6 ``usdrl no_xc`` / ``single_grained`` DSTE);
* Figure 4: ``linear`` for USDRL (DSTE) at ``encoder.options.alpha`` ∈ {0, 0.25, 0.5, 0.75, 1}; the α runs other
  than the default are recorded with ``extra.overrides`` so tables never mistake them for Table 1 rows;
* Figure 5: the four pretrained DSTE backbones (``contrastive``, ``usdrl`` no_xc, single_grained, default).

A method that is not installed (not in :data:`harness.registry.METHODS`) is reported as skipped; a run
that fails is reported and the others go on.
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from .config import RunConfig, resolve, stable_hash
from .errors import HarnessError
from .results import ResultRow, append_rows, load_results

METHOD_ORDER = ("usdrl", "umurl", "mamp", "contrastive", "scdnet", "supervised", "random")
METHOD_LABELS = {"usdrl": "USDRL", "umurl": "UmURL", "mamp": "MAMP", "contrastive": "MoCo-v2 (harness)",
                 "scdnet": "SCD-Net (harness)", "supervised": "Supervised (reference)",
                 "random": "Random init (reference)"}
TABLE_PROTOCOL = {1: "linear", 2: "semi", 3: "knn", 4: "detection"}
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
LINEAR_SEEDS = (0, 1, 2)  # linear probes are cheap on cached features: three head seeds
TABLE5_ROWS = ((1, "contrastive", "default", "sttr"), (2, "usdrl", "no_xc", "sttr"), (3, "usdrl", "default", "sttr"),
               (4, "contrastive", "default", "dste"), (5, "usdrl", "no_xc", "dste"),
               (6, "usdrl", "single_grained", "dste"), (7, "usdrl", "default", "dste"))
FIGURE5_PANELS = (("contrastive", "default"), ("usdrl", "no_xc"), ("usdrl", "single_grained"), ("usdrl", "default"))


@dataclass(frozen=True)
class PlannedRun:
    target: str  # what it is for: "Table 5 row 2", "Figure 4 α=0.25"
    method: str
    protocol: str  # "" = pretraining only (Figure 5)
    variant: str = "default"
    encoder: str | None = None  # None: the config's encoder
    modality: str = "joint"
    seeds: tuple[int, ...] = (0,)
    protocol_options: tuple[tuple[str, Any], ...] = ()
    sweep: tuple[tuple[str, Any], ...] = ()  # settings a figure sweeps; recorded in extra.overrides

    def overrides(self) -> list[str]:
        out = [f"method.name={self.method}", f"method.variant={self.variant}", f"method.modality={self.modality}"]
        if self.encoder:
            out.append(f"encoder.name={self.encoder}")
        if self.protocol:
            out += [f"protocol.name={self.protocol}", f"protocol.seeds={list(self.seeds)}"]
            out += [f"protocol.options.{k}={json.dumps(v)}" for k, v in self.protocol_options]
        out += [f"{k}={json.dumps(v)}" for k, v in self.sweep]
        return out

    def describe_settings(self) -> str:
        parts = [f"{k}={v}" for k, v in self.protocol_options] + [f"{k}={v}" for k, v in self.sweep]
        return ", ".join(parts)


@dataclass(frozen=True)
class PlannedFuse:
    """Fuse the per-seed linear scores of three streams (J, B, M) into 3-stream rows (modality jbm)."""

    target: str
    streams: tuple[PlannedRun, ...]

    @property
    def method(self) -> str:
        return self.streams[0].method


PlanItem = PlannedRun | PlannedFuse


@dataclass
class Settings:
    preset: str = "cpu"
    dataset: str | None = None  # None: the preset's data.dataset
    workdir: str | None = None
    results: str | None = None
    config_file: str | None = None
    overrides: list[str] = field(default_factory=list)  # the user's --set values
    eval_dataset: str | None = None  # protocol.dataset for every protocol run (e.g. a PKU-MMD folder)

    def base(self) -> RunConfig:
        return resolve(self.preset, self.config_file, [*self.overrides, *self._locations()])

    def _locations(self) -> list[str]:
        return [f"{key}={value}" for value, key in ((self.dataset, "data.dataset"), (self.workdir, "workdir"),
                                                    (self.results, "results")) if value is not None]

    def config(self, run: PlannedRun) -> RunConfig:
        """preset → YAML → the user's --set → the run's own settings → dataset and folders."""
        extra = [f"protocol.dataset={self.eval_dataset}"] if self.eval_dataset and run.protocol else []
        return resolve(self.preset, self.config_file, [*self.overrides, *run.overrides(), *extra, *self._locations()])


# --- plans ------------------------------------------------------------------------------------------
def _method_runs(table: int, method: str, seeds: tuple[int, ...]) -> list[PlanItem]:
    protocol = TABLE_PROTOCOL[table]
    opts: tuple[tuple[str, Any], ...] = (("variant", "finetune"),) if protocol == "detection" else ()
    tag = f"Table {table}"
    if method == "usdrl":
        runs: list[PlanItem] = [
            PlannedRun(f"{tag}: USDRL (DSTE)", "usdrl", protocol, encoder="dste", seeds=seeds, protocol_options=opts),
            PlannedRun(f"{tag}: USDRL (STTR)", "usdrl", protocol, encoder="sttr", seeds=seeds, protocol_options=opts)]
        if table == 1:
            streams = [runs[0]] + [PlannedRun(f"{tag}: USDRL (DSTE) {m} stream", "usdrl", protocol, encoder="dste",
                                              modality=m, seeds=seeds) for m in ("bone", "motion")]
            runs += streams[1:] + [PlannedFuse(f"{tag}: 3s-USDRL (DSTE)", tuple(streams))]
        return runs
    label = METHOD_LABELS.get(method, method)
    modality = "jbm" if method == "umurl" else "joint"  # UmURL's representation is the fused J+M+B one
    return [PlannedRun(f"{tag}: {label}", method, protocol, modality=modality, seeds=seeds, protocol_options=opts)]


def plan(*, table: int | None = None, figure: int | None = None, methods: Sequence[str] | None = None,
         seeds: Sequence[int] | None = None, alphas: Sequence[float] = ALPHAS,
         default_alpha: float = 0.5) -> list[PlanItem]:
    """The runs one table or figure needs, in order, restricted to ``methods`` when given."""
    if (table is None) == (figure is None):
        raise HarnessError("choose one of --table N or --figure N")
    wanted = list(methods) if methods else list(METHOD_ORDER)
    items: list[PlanItem] = []
    if table is not None:
        if table in TABLE_PROTOCOL:
            protocol = TABLE_PROTOCOL[table]
            s = tuple(seeds) if seeds else (LINEAR_SEEDS if protocol == "linear" else (0,))
            for m in wanted:
                items += _method_runs(table, m, s)
        elif table == 5:
            for row, method, variant, encoder in TABLE5_ROWS:
                if method not in wanted:
                    continue
                for protocol in ("linear", "knn"):
                    s = tuple(seeds) if seeds else (LINEAR_SEEDS if protocol == "linear" else (0,))
                    items.append(PlannedRun(f"Table 5 row {row}", method, protocol, variant=variant,
                                            encoder=encoder, seeds=s))
        else:
            raise HarnessError(f"no table {table}: the paper has Tables 1-5")
    elif figure == 4:
        if "usdrl" in wanted:
            s = tuple(seeds) if seeds else LINEAR_SEEDS
            for a in alphas:
                sweep = () if float(a) == float(default_alpha) else (("encoder.options.alpha", float(a)),)
                items.append(PlannedRun(f"Figure 4 α={a:g}", "usdrl", "linear", encoder="dste", seeds=s, sweep=sweep))
    elif figure == 5:
        for method, variant in FIGURE5_PANELS:
            if method in wanted:
                items.append(PlannedRun(f"Figure 5 {method} {variant}", method, "", variant=variant, encoder="dste"))
    else:
        raise HarnessError(f"no figure {figure} to reproduce: Figure 4 (α sweep) and Figure 5 (t-SNE) have runs")
    return items


# --- running -------------------------------------------------------------------------------------
@dataclass
class Outcome:
    item: PlanItem
    status: str  # ran | recorded | reused | not installed | failed | skipped
    message: str = ""
    config_hash: str = ""
    rows: list[ResultRow] = field(default_factory=list)
    run_dir: str = ""


def installed_methods() -> set[str]:
    from .registry import METHODS

    return set(METHODS.names())


def recorded(store, config_hash: str, protocol: str) -> bool:
    if store.empty:
        return False
    return bool(((store["config_hash"].astype(str) == config_hash) & (store["protocol"].astype(str) == protocol)).any())


def fused_hash(stream_hashes: Sequence[str]) -> str:
    return stable_hash({"fuse": list(stream_hashes)})


def describe_status(item: PlanItem, settings: Settings, installed: set[str], store) -> tuple[str, str]:
    """(status, config hash) without running anything: for --dry-run."""
    if item.method not in installed:
        return "not installed", ""
    if isinstance(item, PlannedFuse):
        h = fused_hash([settings.config(s).config_hash for s in item.streams])
        return ("recorded" if recorded(store, h, "linear") else "to fuse"), h
    cfg = settings.config(item)
    if not item.protocol:
        from .engine.runs import finished_run

        return ("pretrained" if finished_run(cfg) is not None else "to pretrain"), cfg.pretrain_hash
    return ("recorded" if recorded(store, cfg.config_hash, item.protocol) else "to run"), cfg.config_hash


def _annotate(rows: list[ResultRow], run: PlannedRun) -> list[ResultRow]:
    """Record a figure's swept settings in each row's ``extra`` (JSON) so tables keep them apart."""
    if not run.sweep:
        return rows
    for r in rows:
        try:
            extra = json.loads(r.extra) if r.extra else {}
        except json.JSONDecodeError:
            extra = {"protocol_extra": r.extra}
        if not isinstance(extra, dict):
            extra = {"protocol_extra": extra}
        extra["overrides"] = dict(run.sweep)
        r.extra = json.dumps(extra, sort_keys=True)
    return rows


def _run_one(run: PlannedRun, settings: Settings, progress: bool) -> Outcome:
    cfg = settings.config(run)
    if not run.protocol:  # pretraining only (Figure 5)
        from .engine.loop import find_or_pretrain

        info = find_or_pretrain(cfg, progress=progress)
        return Outcome(run, "reused" if info.reused else "ran", f"backbone {info.backbone}", cfg.pretrain_hash,
                       run_dir=str(info.run_dir))
    from .commands.run_cmd import evaluate

    if recorded(load_results(cfg.results), cfg.config_hash, run.protocol):
        return Outcome(run, "recorded", "already in the results store", cfg.config_hash)
    rows = _annotate(evaluate(cfg, progress=progress, record=False), run)
    if rows:
        append_rows(cfg.results, rows)
    return Outcome(run, "ran", f"{len(rows)} row(s) recorded", cfg.config_hash, rows)


def _fuse(item: PlannedFuse, settings: Settings) -> Outcome:
    """Fuse the streams' per-seed linear scores as `harness fuse` does and record the rows (modality jbm)."""
    from .commands.fuse_cmd import fuse_scores
    from .engine.runs import run_dir_for
    import numpy as np

    cfgs = [settings.config(s) for s in item.streams]
    h = fused_hash([c.config_hash for c in cfgs])
    store = load_results(cfgs[0].results)
    if recorded(store, h, "linear"):
        return Outcome(item, "recorded", "already in the results store", h)
    first = store[(store["config_hash"].astype(str) == cfgs[0].config_hash)]
    if first.empty:
        return Outcome(item, "skipped", "the joint stream has no rows in the store", h)
    kind, split = str(first["dataset"].iloc[0]), str(first["split"].iloc[0])
    rows = []
    for seed in item.streams[0].seeds:
        files = [run_dir_for(c) / "eval" / f"linear-{c.config_hash}" / "scores" / f"linear-{kind}-{split}-seed{seed}.npz"
                 for c in cfgs]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            return Outcome(item, "skipped", f"stream score files are missing (another workdir?): {missing[0]}", h)
        fused, labels = fuse_scores([str(f) for f in files], [1.0] * len(files))
        top = np.argsort(-fused, axis=1)[:, :5]
        values = {"top1": float((top[:, 0] == labels).mean()), "top5": float((top == labels[:, None]).any(axis=1).mean())}
        extra = json.dumps({"files": [str(f) for f in files], "weights": [1.0] * len(files),
                            "streams": [c.config_hash for c in cfgs]}, sort_keys=True)
        base = cfgs[0]
        rows += [ResultRow(base.method.name, kind, "linear", metric, value, variant=base.method.variant,
                           encoder=base.encoder.name, modality="jbm", split=split, seed=seed, preset=base.preset,
                           epochs=base.train.epochs, config_hash=h, extra=extra) for metric, value in values.items()]
    append_rows(cfgs[0].results, rows)
    return Outcome(item, "ran", f"fused {len(cfgs)} streams, {len(rows)} row(s) recorded", h, rows)


def execute(items: Iterable[PlanItem], settings: Settings, *, progress: bool = True,
            log: Callable[[str], None] = print) -> list[Outcome]:
    """Run the plan in order; a missing method is skipped, a failing run is reported, the rest go on."""
    items = list(items)
    installed = installed_methods()
    outcomes: list[Outcome] = []
    for k, item in enumerate(items, 1):
        head = f"[{k}/{len(items)}] {item.target}: {describe(item)}"
        if item.method not in installed:
            out = Outcome(item, "not installed",
                          f"method {item.method!r} is not installed (installed: {', '.join(sorted(installed))})")
        else:
            try:
                out = _fuse(item, settings) if isinstance(item, PlannedFuse) else _run_one(item, settings, progress)
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
        return f"fuse {' + '.join(s.modality for s in item.streams)} of {item.method} " \
               f"{item.streams[0].encoder or ''} linear".replace("  ", " ")
    parts = [item.method]
    if item.variant != "default":
        parts.append(item.variant)
    parts.append(item.encoder or "(config encoder)")
    if item.modality != "joint":
        parts.append(item.modality)
    parts.append(item.protocol or "pretrain only")
    return " ".join(parts)


def plan_table(items: Sequence[PlanItem], settings: Settings, *, check: bool = True) -> list[list[str]]:
    """Rows for printing a plan: #, target, method, variant, encoder, modality, protocol, seeds, settings, status."""
    installed = installed_methods() if check else set()
    store = load_results(settings.base().results) if check else None
    base = settings.base()
    out = []
    for k, item in enumerate(items, 1):
        if isinstance(item, PlannedFuse):
            s0 = item.streams[0]
            rec = [item.target, s0.method, s0.variant, s0.encoder or base.encoder.name, "jbm (fused J+M+B)", "linear",
                   ",".join(map(str, s0.seeds)), "fuse of the three stream runs above"]
        else:
            if item.protocol == "semi":
                seeds = "subset " + ",".join(map(str, _semi_seeds(settings.config(item))))
            elif item.protocol in ("", "knn"):
                seeds = "—"
            else:
                seeds = ",".join(map(str, item.seeds))
            rec = [item.target, item.method, item.variant, item.encoder or base.encoder.name, item.modality,
                   item.protocol or "pretrain only", seeds, item.describe_settings()]
        status = describe_status(item, settings, installed, store)[0] if check else ""
        out.append([str(k), *rec, status])
    return out


def _semi_seeds(cfg: RunConfig) -> list[int]:
    from .registry import PROTOCOLS

    try:
        return list(PROTOCOLS.get("semi")(cfg).options.subset_seeds)
    except HarnessError:
        return list(cfg.protocol.seeds)


PLAN_HEADERS = ["#", "for", "method", "variant", "encoder", "modality", "protocol", "seeds", "settings", "status"]
