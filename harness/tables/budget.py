"""Budget points: a method's probe accuracy at each number of pretraining steps, beside its floor.

Read from several results stores (the campaign store at the ``cpu`` preset's 320 steps and the budget
study's ``results/budget-*/``; :func:`folder_stores`). Per dataset, preset, measure (linear "Recog."
best-of, kNN "Retrieval"), split, method (method, variant, encoder, modality) and ``steps``, a
:class:`BudgetPoint` is the tables' cell rule applied to that store's rows with that budget (latest
configuration; protocol seeds averaged within each pretraining seed; values in %). Rows of a
pretraining method that record no budget (``steps`` 0, an older harness) have no place on the axis and
are left out. Its floor is the untrained backbone of the same encoder and modality
(:func:`harness.tables.build.floor_selector`) **as measured in the same store**.

**Above the floor** (:func:`compare`) is a test over pretraining seeds: a paired t test on the per-seed
differences (method − floor) when both were measured on the same pretraining seeds (a pair shares the
seed, which seeds the run before the method is built, and the probe's seeds), else Welch's t
(scipy.stats), with the 95 % interval of the difference: ``above`` (difference > 0, p < 0.05),
``below`` (difference < 0, p < 0.05), ``tie`` (p ≥ 0.05: the interval covers 0), ``n<2`` when a side
has fewer than two seeds. A probe-accuracy criterion: the stores record no training loss (it is in
each run's ``metrics.jsonl``, and run folders are not committed). :mod:`harness.figures_budget` draws
the points; :mod:`harness.tables.index` lists the methods not above their floor per store and budget.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..registry import ENCODERS, METHODS
from .build import floor_selector
from .cells import _row_mask, pick_cell
from .model import MEASURES, MeasuredColumn, Selector
from .specs import MODALITY_LABELS
from .statistics import paired_difference, welch_difference

MEASURE_KEYS = ("recog", "retrieval")  # linear best-of and kNN-1
ALPHA = 0.05  # the test's level: p ≥ ALPHA (the 95 % interval covers 0) is a tie
ABOVE, BELOW, TIE, UNTESTED, NO_FLOOR = "above", "below", "tie", "n<2", "no floor"


@dataclass(frozen=True, order=True)
class MethodKey:
    method: str
    variant: str
    encoder: str
    modality: str

    @property
    def label(self) -> str:
        name = METHODS.get(self.method).display_label() if self.method in METHODS else self.method
        if self.variant != "default":
            name += f" {self.variant}"
        enc = (getattr(ENCODERS.get(self.encoder), "label", "") if self.encoder in ENCODERS else "") \
            or self.encoder.upper()
        mod = "" if self.modality == "joint" else f", {MODALITY_LABELS.get(self.modality, self.modality)}"
        return f"{name} ({enc}{mod})"

    @property
    def selector(self) -> Selector:
        return Selector(self.method, self.variant, self.encoder, self.modality)


@dataclass
class Comparison:
    """The method − floor difference over pretraining seeds (in %), its test and verdict."""

    test: str = ""  # "paired t", "Welch t" or ""
    diff: float = math.nan
    low: float = math.nan  # 95 % interval of the difference
    high: float = math.nan
    p: float = math.nan
    verdict: str = NO_FLOOR


@dataclass
class BudgetPoint:
    dataset: str
    preset: str
    measure: str  # MEASURES key
    split: str
    key: MethodKey
    steps: int
    store: str  # the store's name relative to the folder ("results.csv", "budget-640/results.csv")
    values: list[float]  # % per pretraining seed
    seeds: list[int]
    floor_values: list[float] = field(default_factory=list)
    floor_seeds: list[int] = field(default_factory=list)
    floor_key: MethodKey | None = None
    cmp: Comparison = field(default_factory=Comparison)
    lines: list[int] = field(default_factory=list)  # the store lines read (method and floor)
    newest: str = ""  # the newest row's date, for choosing between stores at the same budget
    drawn: bool = False

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else 0.0

    @property
    def floor_mean(self) -> float:
        return float(np.mean(self.floor_values)) if self.floor_values else math.nan

    @property
    def floor_std(self) -> float:
        return float(np.std(self.floor_values, ddof=1)) if len(self.floor_values) > 1 else 0.0

    @property
    def near_floor(self) -> bool:
        """Not above the floor: below it or a tie (the test cannot tell them apart)."""
        return self.cmp.verdict in (TIE, BELOW)


# --- the test -----------------------------------------------------------------------------------
def compare(values: Sequence[float], seeds: Sequence[int], floor_values: Sequence[float],
              floor_seeds: Sequence[int]) -> Comparison:
    """Paired t on the per-seed differences when both sides have the same pretraining seeds, else
    Welch: the tables' own tests (:mod:`harness.tables.statistics`), so a figure note and a table
    mark never disagree."""
    if not floor_values:
        return Comparison()
    a, b = np.asarray(values, float), np.asarray(floor_values, float)
    if len(a) < 2 or len(b) < 2:
        return Comparison(diff=float(a.mean() - b.mean()) if len(a) and len(b) else math.nan, verdict=UNTESTED)
    if sorted(seeds) == sorted(floor_seeds):
        fb = dict(zip(floor_seeds, b))
        test, iv = "paired t", paired_difference(a, [fb[s] for s in seeds])
    else:
        test, iv = "Welch t", welch_difference(a, b)
    verdict = TIE if iv.p >= ALPHA else ABOVE if iv.estimate > 0 else BELOW
    return Comparison(test, iv.estimate, iv.lo, iv.hi, iv.p, verdict)


# --- points from the stores -----------------------------------------------------------------------
def _keys(df: pd.DataFrame) -> list[MethodKey]:
    plain = df[~df["_fused"].astype(bool) & ~df["_sweep"].astype(bool) & (df["_checkpoint"] == "")]
    found = set(zip(plain["method"], plain["variant"], plain["encoder"], plain["modality"]))
    return sorted(MethodKey(*k) for k in found
                  if k[0] in METHODS and not getattr(METHODS.get(k[0]), "is_floor", False))


def store_points(df: pd.DataFrame, store: str) -> list[BudgetPoint]:
    """Every (dataset, preset, measure, split, method, steps) point of one prepared store, with the
    floor this store measured and the test against it."""
    points: list[BudgetPoint] = []
    if df.empty:
        return points
    steps_col = pd.to_numeric(df["steps"], errors="coerce").fillna(0).astype(int) if "steps" in df.columns \
        else pd.Series(0, index=df.index)
    df = df.assign(_steps=steps_col)
    for mkey in MEASURE_KEYS:
        measure = MEASURES[mkey]
        rows = df[(df["protocol"] == measure.protocol) & (df["metric"] == measure.metric)]
        for (dataset, preset, split), grp in rows.groupby(["dataset", "preset", "split"], sort=True):
            if not preset or not split:
                continue
            col = MeasuredColumn(mkey, split)
            floors: dict[Selector, object] = {}
            for key in _keys(grp):
                fsel = floor_selector(key.selector)
                mine = grp[_row_mask(grp, key.selector, measure, col, dataset, preset)]
                for steps in sorted(set(mine["_steps"]) - {0}):  # 0: a budget the row does not record
                    cell = pick_cell(mine[mine["_steps"] == steps], scale=measure.scale)
                    if not cell.values:
                        continue
                    p = BudgetPoint(str(dataset), str(preset), mkey, str(split), key, int(steps), store,
                                    [cell.scale * v for v in cell.values], [int(s) for s in cell.seeds],
                                    lines=list(cell.lines))
                    p.newest = str(mine[mine["_line"].isin(set(cell.lines))]["date"].max())
                    if fsel is not None:
                        if fsel not in floors:
                            floors[fsel] = pick_cell(grp[_row_mask(grp, fsel, measure, col, dataset, preset)],
                                                     scale=measure.scale)
                        fcell = floors[fsel]
                        p.floor_key = MethodKey(fsel.method, fsel.variant, str(fsel.encoder), str(fsel.modality))
                        p.floor_values = [fcell.scale * v for v in fcell.values]
                        p.floor_seeds = [int(s) for s in fcell.seeds]
                        p.lines += list(fcell.lines)
                        p.cmp = compare(p.values, p.seeds, p.floor_values, p.floor_seeds)
                    points.append(p)
    return points


def budget_points(stores: Mapping[str, pd.DataFrame]) -> list[BudgetPoint]:
    """The points of several stores (name → :func:`harness.tables.load_store`). When two stores hold the
    same method at the same budget, the one whose newest row is the latest wins (the cell rule: a re-run
    supersedes). A method is ``drawn`` where it has points at two budgets or more."""
    best: dict[tuple, BudgetPoint] = {}
    for name, df in stores.items():
        for p in store_points(df, name):
            k = (p.dataset, p.preset, p.measure, p.split, p.key, p.steps)
            if k not in best or p.newest > best[k].newest:
                best[k] = p
    points = sorted(best.values(), key=lambda p: (p.dataset, p.preset, MEASURE_KEYS.index(p.measure), p.split,
                                                  p.key.label, p.steps))
    budgets: dict[tuple, set[int]] = {}
    for p in points:
        budgets.setdefault((p.dataset, p.preset, p.measure, p.split, p.key), set()).add(p.steps)
    for p in points:
        p.drawn = len(budgets[(p.dataset, p.preset, p.measure, p.split, p.key)]) > 1
    return points


def folder_stores(root: str | Path) -> dict[str, pd.DataFrame]:
    """The stores :func:`harness.tables.index.index_stores` finds under ``root``, read and prepared."""
    from ..results import STORE_NAME
    from .index import index_stores
    from .store_frame import load_store

    root = Path(root)
    return {(str((f / STORE_NAME).relative_to(root)) if f != root else STORE_NAME): load_store(f)
            for f in index_stores(root)}


def pairs(points: Iterable[BudgetPoint]) -> list[tuple[str, str]]:
    """The (dataset, preset) pairs with at least one drawn curve."""
    return sorted({(p.dataset, p.preset) for p in points if p.drawn})


# --- the files ------------------------------------------------------------------------------------
CSV_FIELDS = ("dataset", "preset", "measure", "metric", "split", "method", "variant", "encoder", "modality",
              "label", "steps", "store", "n", "mean", "std", "seeds", "floor_n", "floor_mean", "floor_std",
              "test", "diff", "ci_low", "ci_high", "p", "verdict", "drawn")


def _num(x: float, digits: int = 3) -> str:
    return "" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def points_csv(points: Sequence[BudgetPoint]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for p in points:
        w.writerow([p.dataset, p.preset, p.measure, MEASURES[p.measure].metric, p.split, p.key.method,
                    p.key.variant, p.key.encoder, p.key.modality, p.key.label, p.steps, p.store, p.n,
                    _num(p.mean), _num(p.std), " ".join(map(str, p.seeds)), len(p.floor_values),
                    _num(p.floor_mean), _num(p.floor_std), p.cmp.test, _num(p.cmp.diff), _num(p.cmp.low),
                    _num(p.cmp.high), _num(p.cmp.p, 4), p.cmp.verdict, int(p.drawn)])
    return out.getvalue()


def _ms(mean: float, std: float, n: int) -> str:
    if not math.isfinite(mean):
        return "—"
    return f"{mean:.1f} ± {std:.1f}" if n > 1 else f"{mean:.1f}"


def _verdict_text(c: Comparison) -> str:
    if c.verdict in (NO_FLOOR, UNTESTED):
        return c.verdict
    return f"{c.verdict} ({c.diff:+.1f} [{c.low:+.1f}, {c.high:+.1f}], p {c.p:.2g}, {c.test})"


def near_floor_rows(points: Sequence[BudgetPoint]) -> list[tuple[str, str, str, int, str, str]]:
    """Per (store, dataset, preset, steps, measure split): the methods not above their floor there."""
    groups: dict[tuple, list[BudgetPoint]] = {}
    for p in points:
        groups.setdefault((p.store, p.dataset, p.preset, p.steps, MEASURE_KEYS.index(p.measure), p.split), []).append(p)
    out = []
    for (store, dataset, preset, steps, mi, split), ps in sorted(groups.items()):
        near = [f"{p.key.label} {'↓' if p.cmp.verdict == BELOW else '≈'} {p.cmp.diff:+.1f}"
                for p in sorted(ps, key=lambda p: p.key.label) if p.near_floor]
        above = sum(p.cmp.verdict == ABOVE for p in ps)
        out.append((store, dataset, preset, steps, f"{MEASURES[MEASURE_KEYS[mi]].label} ({split})",
                    f"{', '.join(near) or 'none'} ({len(near)} of {len(ps)} methods; {above} above)"))
    return out


def provenance(points: Sequence[BudgetPoint], stores: Mapping[str, pd.DataFrame], dataset: str, preset: str
               ) -> tuple[list[int], int, str, str]:
    """(n per drawn point, store rows read, newest row's code version, its date) of one budget figure."""
    mine = [p for p in points if p.dataset == dataset and p.preset == preset]
    used = []
    for name in sorted({p.store for p in mine}):
        df = stores[name]
        lines = {ln for p in mine if p.store == name for ln in p.lines}
        used.append(df[df["_line"].isin(lines)])
    rows = pd.concat(used) if used else pd.DataFrame()
    if rows.empty:
        return [p.n for p in mine if p.drawn], 0, "—", "—"
    newest = rows.sort_values(["date", "_line"]).iloc[-1]
    version = str(newest.get("code_version", "") or "") or "not recorded"
    return [p.n for p in mine if p.drawn], len(rows), version, str(newest["date"]) or "not recorded"
