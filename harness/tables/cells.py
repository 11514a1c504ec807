"""Which store rows fill a cell, and what the cell shows."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .model import FUSED, NOT_RUN, OLD, VERDICT_MARKS, WARN, Measure, MeasuredColumn, Selector

# --- cells ------------------------------------------------------------------------------------------
@dataclass
class Cell:
    """One table cell: the mean ± sample std over pretraining seeds of the per-seed means over the
    protocol's own seeds (probe / subset / detection-head seeds)."""

    values: list[float] = field(default_factory=list)  # one per pretraining seed (mean over its probe seeds)
    seeds: list[Any] = field(default_factory=list)  # the pretraining seeds
    probe_seeds: list[int] = field(default_factory=list)  # protocol seeds averaged within each pretraining seed
    scale: float = 100.0  # display factor (100: fractions shown in %)
    bad: list[dict[str, Any]] = field(default_factory=list)  # store rows with a NaN / missing value
    config_hash: str = ""
    superseded: int = 0  # configurations ignored because a later one exists
    fused: bool = False
    no_preset: bool = False  # fused rows that carry no preset
    unrecorded_budget: bool = False  # rows from before stores recorded the pretraining budget (steps 0)
    lines: list[int] = field(default_factory=list)  # the results.csv lines of the rows read (harness.tables.index)
    records: dict[int, list[dict[str, Any]]] = field(default_factory=dict, repr=False)  # pretraining seed → its rows
    subset: str = ""  # the rows' extra.dataset_subset
    # filled in by harness.tables.build (harness.tables.statistics):
    interval: Any = None  # Interval of the mean (None: fewer than two pretraining seeds)
    versus: Any = None  # Interval of the paired difference from the row's untrained floor (None: no test)
    collapsed: list[int] = field(default_factory=list)  # pretraining seeds whose features collapsed
    per_sample: Any = None  # SeedMatrix from the rows' per-sample predictions, when every row has them

    @property
    def measured(self) -> bool:
        return bool(self.values or self.bad)

    def text(self) -> str:
        if not self.measured:
            return NOT_RUN
        marks = (f" {WARN}" if self.bad else "") + (f" {FUSED}" if self.fused else "") \
            + (f" {OLD}" if self.unrecorded_budget else "")
        if not self.values:
            return f"NaN{marks}"
        marks = VERDICT_MARKS.get(getattr(self.versus, "verdict", ""), "") + marks
        if self.collapsed:
            marks += f" {WARN} collapsed {len(self.collapsed)}/{len(self.seeds)}"
        v = self.scale * np.asarray(self.values, dtype=float)
        if len(v) == 1:
            return f"{v[0]:.1f} (n=1){marks}"
        ci = "" if self.interval is None else \
            f" [{self.scale * self.interval.lo:.1f}, {self.scale * self.interval.hi:.1f}]"
        return f"{v.mean():.1f} ± {v.std(ddof=1):.1f} (n={len(v)}){ci}{marks}"

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else math.nan

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan


def _row_mask(df: pd.DataFrame, sel: Selector, measure: Measure, col: MeasuredColumn, dataset: str,
              preset: str) -> pd.Series:
    m = (df["dataset"] == dataset) & (df["protocol"] == measure.protocol) & (df["split"] == col.split)
    m &= df["method"] == sel.method
    m &= ~df["_sweep"].astype(bool)
    m &= df["_checkpoint"] == sel.checkpoint  # evaluated files never mix with rows pretrained here
    if sel.fused:
        if measure.fused_metric is None:
            return m & False
        m &= df["_fused"].astype(bool) & (df["metric"] == measure.fused_metric)
        m &= (df["preset"] == preset) | (df["preset"] == "")
        if sel.encoder:
            m &= df["encoder"].isin([sel.encoder, ""])
        if sel.modality:
            m &= df["modality"] == sel.modality
        return m
    m &= ~df["_fused"].astype(bool) & (df["metric"] == measure.metric) & (df["preset"] == preset)
    m &= df["variant"] == sel.variant
    if sel.encoder:
        m &= df["encoder"] == sel.encoder
    if sel.modality:
        m &= df["modality"] == sel.modality
    if measure.sub_key:
        subs = [e.get(measure.sub_key, "") for e in df["_extra"]]
        m &= pd.Series([s == col.sub for s in subs], index=df.index)
    for key, want in measure.extra_equals:
        ok = [key not in e or _same(e[key], want) for e in df["_extra"]]
        m &= pd.Series(ok, index=df.index)
    return m


def _same(a: Any, b: Any) -> bool:
    try:
        return math.isclose(float(a), float(b))
    except (TypeError, ValueError):
        return a == b


def pick_cell(rows: pd.DataFrame, scale: float = 100.0) -> Cell:
    """The latest configuration's rows → a Cell: within it the latest row per (pretraining seed,
    protocol seed); the protocol seeds are averaged within each pretraining seed, and the cell holds
    one value per pretraining seed."""
    if rows.empty:
        return Cell()
    rows = rows.copy()
    rows["_group"] = [h if h else f"date:{d}" for h, d in zip(rows["config_hash"], rows["date"])]
    latest = rows.groupby("_group").agg(date=("date", "max"), line=("_line", "max"))
    latest = latest.sort_values(["date", "line"])
    group = latest.index[-1]
    chosen = rows[rows["_group"] == group].sort_values(["date", "_line"])
    per_seed = chosen.assign(_seedkey=chosen["_seed"].astype(object).where(chosen["_seed"].notna(),
                                                                           chosen["seed"].astype(str)))
    per_seed = per_seed.groupby(["_pseed", "_seedkey"], sort=True, dropna=False).tail(1).sort_values("_line")
    cell = Cell(config_hash=str(group), superseded=len(latest) - 1, scale=scale,
                fused=bool(chosen["_fused"].any()), no_preset=bool((chosen["preset"] == "").any()),
                unrecorded_budget=bool(chosen["_no_budget"].any()))
    cell.subset = next((str(e["dataset_subset"]) for e in chosen["_extra"] if e.get("dataset_subset")), "")
    good: dict[int, list[float]] = {}
    for r in per_seed.to_dict("records"):
        cell.lines.append(int(r["_line"]))
        value, seed = r["_value"], r["_seed"]
        seed_ok = not pd.isna(seed) and not pd.isna(r["_pseed"])
        if math.isfinite(value) and seed_ok:
            good.setdefault(int(r["_pseed"]), []).append(float(value))
            cell.records.setdefault(int(r["_pseed"]), []).append(r)
            continue
        what = "value" if not math.isfinite(value) else "seed"
        raw = r["value"] if what == "value" else r["seed"]
        cell.bad.append({"line": int(r["_line"]), "what": what, "raw": "" if raw is None else str(raw),
                         **{k: str(r[k]) for k in ("method", "variant", "encoder", "modality", "protocol",
                                                   "metric", "split", "seed", "config_hash")}})
    for pseed in sorted(good):
        cell.values.append(float(np.mean(good[pseed])))
        cell.seeds.append(pseed)
        cell.probe_seeds.append(len(good[pseed]))
    return cell


def measured_cell(df: pd.DataFrame, sel: Selector, measure: Measure, col: MeasuredColumn, dataset: str,
                  preset: str) -> Cell:
    return pick_cell(df[_row_mask(df, sel, measure, col, dataset, preset)], scale=measure.scale)


