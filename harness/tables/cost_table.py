"""Table 7: what each pretraining cost, from the results store alone (``<out>/table7.md``).

Every row a protocol measures on a backbone the harness pretrained carries that pretraining's cost in
``extra.cost`` (compact keys, :data:`harness.engine.cost.ROW_KEYS`; measured by the trainer and
recorded in the run's ``run.json``, :mod:`harness.engine.cost` says how). Table 7 reads nothing else.

**Rows.** One per (method, variant, encoder, modality) with rows in the store for the dataset and
preset, sweep rows (``extra.overrides``), fused ensembles and evaluated checkpoint files
(``harness run --checkpoint``: not our pretraining) left out. Among the rows that record a cost, the
pretraining configuration (``extra.cost.pcfg``: the configuration without its seed) whose newest row
is the latest is shown, with the newest row of each of its pretraining seeds. A row whose store rows
record no cost (their runs predate cost recording: every row committed before it) shows
``not recorded``; its pretraining steps come from the rows' ``steps`` column. No number is invented.

**Cells.** Parameters (backbone / method) and FLOPs are those of the configuration (the same for
every seed); wall-clock is the mean ± sample std over pretraining seeds, device-hours and clips/s
the mean, peak memory the largest. The untrained floor (``random``) trains nothing: zero wall-clock,
device-hours and training FLOPs, its parameters, ``·`` where a training measure does not apply.

A table without one recorded cost is not written (:func:`write_cost_table`, as ``harness tables``
treats the other tables); ``results/README.md`` lists it as not run (:mod:`harness.tables.index`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from .. import atomic
from ..registry import ENCODERS, METHODS
from ..results import STORE_NAME
from .model import MARKER, NOT_APPLICABLE, pretty_dataset
from .render import read_marker, table_path
from .specs import MODALITY_LABELS
from .store_frame import load_store

COST_TABLE = 7
NOT_RECORDED = "not recorded"
TITLE = "Table 7: Pretraining cost of every method (harness)"
HEADERS = ("Method", "Variant", "Encoder", "Modality", "params (backbone / method)", "train GFLOPs / clip (fwd)",
           "pretraining steps", "wall-clock (mean ± std)", "device-hours (mean)", "peak memory (max)",
           "clips/s (mean)", "hardware", "n (seeds)")


@dataclass
class CostRow:
    """One method (variant, encoder, modality) of the table and the costs behind it."""

    method: str
    variant: str
    encoder: str
    modality: str
    costs: list[dict[str, Any]] = field(default_factory=list)  # one per pretraining seed (its newest row's)
    seeds: list[int] = field(default_factory=list)
    steps: int = 0  # the rows' steps column (the newest row's), shown when no cost is recorded
    lines: list[int] = field(default_factory=list)  # the results.csv lines whose cost is shown
    superseded: int = 0  # other pretraining configurations of this row that recorded a cost

    @property
    def recorded(self) -> bool:
        return bool(self.costs)


@dataclass
class CostTable:
    dataset: str
    preset: str
    rows: list[CostRow]
    frame: pd.DataFrame

    @property
    def recorded(self) -> int:
        return sum(r.recorded for r in self.rows)

    @property
    def lines(self) -> list[int]:
        return [ln for r in self.rows for ln in r.lines]

    @property
    def seed_counts(self) -> list[int]:
        return [len(r.seeds) for r in self.rows if r.recorded]


# --- building -------------------------------------------------------------------------------------
def _order(method: str) -> tuple[float, str]:
    cls = METHODS.get(method) if method in METHODS else None
    return (float(getattr(cls, "table_order", 60)), method)


def _candidates(df: pd.DataFrame, dataset: str, preset: str) -> pd.DataFrame:
    if df.empty:
        return df
    keep = ((df["dataset"] == dataset) & (df["preset"] == preset) & ~df["_sweep"].astype(bool)
            & ~df["_fused"].astype(bool) & (df["_checkpoint"] == ""))
    return df[keep]


def _cost_of(extra: Any) -> dict[str, Any] | None:
    cost = extra.get("cost") if isinstance(extra, dict) else None
    return cost if isinstance(cost, dict) and cost else None


def _pick(rows: pd.DataFrame, key: tuple[str, str, str, str]) -> CostRow:
    row = CostRow(*key)
    newest = rows.sort_values(["date", "_line"]).iloc[-1]
    row.steps = int(pd.to_numeric(newest.get("steps", 0), errors="coerce") or 0)
    costs = [_cost_of(e) for e in rows["_extra"]]
    has = pd.Series([c is not None for c in costs], index=rows.index)
    if not has.any():
        return row
    rows = rows[has].assign(_cost=[c for c in costs if c is not None])
    rows = rows.assign(_pcfg=[str(c.get("pcfg") or c.get("ph") or f"config:{h}")
                              for c, h in zip(rows["_cost"], rows["config_hash"])])
    latest = rows.groupby("_pcfg").agg(date=("date", "max"), line=("_line", "max")).sort_values(["date", "line"])
    row.superseded = len(latest) - 1
    chosen = rows[rows["_pcfg"] == latest.index[-1]].sort_values(["date", "_line"])
    for pseed, r in chosen.groupby("_pseed", sort=True, dropna=False):
        last = r.iloc[-1]
        row.costs.append(last["_cost"])
        row.seeds.append(int(pseed) if not pd.isna(pseed) else -1)
        row.lines.append(int(last["_line"]))
    return row


def build_cost_table(df: pd.DataFrame, dataset: str, preset: str) -> CostTable:
    """Table 7 of ``dataset`` at ``preset`` from a prepared store (:func:`harness.tables.load_store`)."""
    rows: list[CostRow] = []
    base = _candidates(df, dataset, preset)
    if not base.empty:
        keys = ["method", "variant", "encoder", "modality"]
        for key, group in base.groupby(keys, sort=False):
            rows.append(_pick(group, tuple(str(k) for k in key)))  # type: ignore[arg-type]
    rows.sort(key=lambda r: (*_order(r.method), r.variant != "default", r.variant, r.encoder, r.modality))
    frame = pd.DataFrame([_cells(r) for r in rows], columns=list(HEADERS))
    return CostTable(dataset, preset, rows, frame)


# --- cells ----------------------------------------------------------------------------------------
def _values(costs: list[dict[str, Any]], key: str) -> list[float] | None:
    """Every seed's ``key`` as floats, or None when a seed does not record it."""
    out = []
    for c in costs:
        v = c.get(key)
        try:
            f = float(v)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(f):
            return None
        out.append(f)
    return out


def _count(n: float) -> str:
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f}"


def _g(v: float) -> str:
    return "0" if v == 0 else f"{v:.3g}"


def _duration(values: list[float]) -> str:
    mean = float(np.mean(values))
    scale, unit = (1.0, "s") if mean < 120 else (60.0, "min") if mean < 7200 else (3600.0, "h")
    text = f"{mean / scale:.3g} {unit}" if mean else "0 s"
    if len(values) > 1:
        text = f"{mean / scale:.3g} ± {float(np.std(values, ddof=1)) / scale:.2g} {unit}"
    return text


def _unit_h(unit: str) -> str:
    return {"GPU": "GPU-h", "CPU thread": "CPU-thread-h"}.get(unit, f"{unit}-h")


def _hardware(c: dict[str, Any]) -> str:
    name = str(c.get("hw") or "?")
    n, unit = c.get("n"), str(c.get("unit") or "")
    if isinstance(n, (int, float)) and unit:
        count = int(n)
        return f"{name}, {count} {unit}{'s' if count != 1 else ''}"
    return name


def _cells(r: CostRow) -> list[str]:
    enc_label = getattr(ENCODERS.get(r.encoder), "label", "") if r.encoder in ENCODERS else ""
    method = METHODS.get(r.method).display_label() if r.method in METHODS else r.method
    info = [method, r.variant, enc_label or r.encoder.upper(), MODALITY_LABELS.get(r.modality, r.modality)]
    if not r.recorded:
        return info[:4] + [NOT_RECORDED, NOT_RECORDED, str(r.steps)] + [NOT_RECORDED] * 5 + ["0"]
    costs = r.costs
    first = costs[-1]
    steps = _values(costs, "steps")
    trained = bool(steps) and max(steps) > 0
    bb, params = first.get("bb_params"), first.get("params")
    params_text = (f"{_count(float(bb))} / {_count(float(params))}"
                   if isinstance(bb, (int, float)) and isinstance(params, (int, float)) else NOT_RECORDED)
    flops, fwd = _values(costs, "flops"), _values(costs, "fwd_flops")
    if flops is None:
        flops_text = NOT_RECORDED
    else:
        flops_text = _g(max(flops) / 1e9) + (f" ({_g(max(fwd) / 1e9)})" if fwd and trained else "")
    steps_text = str(int(max(steps))) if steps else str(r.steps)
    wall, dev_h, clips = _values(costs, "wall_s"), _values(costs, "dev_h"), _values(costs, "clips_s")
    wall_text = NOT_RECORDED if wall is None else _duration(wall)
    units = sorted({_unit_h(str(c.get("unit") or "device")) for c in costs})
    dev_text = NOT_RECORDED if dev_h is None else f"{_g(float(np.mean(dev_h)))} {'/'.join(units)}"
    if not trained:
        peak_text = clips_text = NOT_APPLICABLE  # nothing was trained: no training step to measure
    else:
        gpu, rss = _values(costs, "gpu_mib"), _values(costs, "rss_mib")
        peak_text = (f"GPU {max(gpu):,.0f} MiB" if gpu else f"RSS {max(rss):,.0f} MiB" if rss else NOT_RECORDED)
        clips_text = NOT_RECORDED if clips is None else (
            f"{np.mean(clips):,.0f}" if np.mean(clips) >= 100 else f"{np.mean(clips):.3g}")
    hardware = "; ".join(dict.fromkeys(_hardware(c) for c in costs))
    return info + [params_text, flops_text, steps_text, wall_text, dev_text, peak_text, clips_text, hardware,
                   str(len(r.seeds))]


# --- markdown -------------------------------------------------------------------------------------
LEGEND = (
    f"`{NOT_RECORDED}`: the store rows of this method do not record their pretraining's cost: their runs "
    "were pretrained before the harness recorded it (a run reused since keeps its old `run.json`; pretraining "
    "it afresh records it). The pretraining steps are the rows' own `steps` column",
    f"`{NOT_APPLICABLE}` not applicable: nothing was trained (the untrained floor `random`), so there is no "
    "training step to measure",
)


def render_cost_markdown(t: CostTable, store_problems: list[dict[str, Any]] | tuple = ()) -> str:
    ds = pretty_dataset(t.dataset)
    superseded = sum(r.superseded for r in t.rows)
    lines = [
        MARKER.format(table=COST_TABLE, dataset=t.dataset, preset=t.preset),
        f"# {TITLE}",
        "",
        f"- **Measured dataset: {ds}**, **preset: {t.preset}**. Every number comes from the results store "
        f"(`{STORE_NAME}`): each row measured on a backbone the harness pretrained carries that pretraining's cost "
        "(`extra.cost`), measured by the harness while it trained and recorded in the run's `run.json` "
        f"(`harness/engine/cost.py`), as rendered by `harness tables`; {t.recorded} of {len(t.rows)} row(s) "
        "recorded.",
        "- A harness table: the paper reports no cost. Numbers are measured on the hardware each row names; "
        "numbers of different hardware (a CPU thread, a GPU) are not comparable.",
        "- **params**: parameters of the exported backbone (what the protocols evaluate) / trainable parameters of "
        "the method (encoder, projectors, predictors, heads; a frozen momentum copy not counted).",
        "- **train GFLOPs / clip**: one training step, the method's forward and its backward, per clip (forward "
        "alone in parentheses), counted once with `torch.utils.flop_counter.FlopCounterMode` on the first "
        "training batch (the training batch size): 2 FLOPs per multiply-accumulate of matrix multiplications, "
        "convolutions and attention; the views (augmentation), the optimizer step, norms, activations and "
        "element-wise ops are not counted.",
        "- **wall-clock**: the training loop over all sessions of the run (batch reads, views, forward, backward, "
        "optimizer steps, logging, the first steps' warm-up); not dataset preparation, model building, the FLOP "
        "count, checkpoint writes, the export or evaluation. Mean ± sample std over pretraining seeds.",
        "- **device-hours**: wall-clock × devices: GPU-hours on CUDA (one GPU per process), CPU-thread-hours on "
        "the CPU (torch threads × processes); a CPU-thread-hour is not a GPU-hour.",
        "- **peak memory**: on a GPU the peak of tensor allocations during the training steps "
        "(`torch.cuda.max_memory_allocated`), on the CPU the process's peak resident set (which also covers "
        "dataset preparation); the largest over pretraining seeds. **clips/s**: training clips read / wall-clock.",
        "",
        tabulate(t.frame, headers="keys", tablefmt="github", showindex=False, disable_numparse=True),
        "",
        "**Legend**",
        "",
        *[f"- {x}" for x in LEGEND],
        "",
        "**Notes**",
        "",
        "- One row per method, variant, encoder and modality with rows in the store for this dataset and preset "
        "(sweep rows, fused ensembles and evaluated checkpoint files left out). Where several pretraining "
        "configurations recorded a cost, the one with the newest row is shown; within it, the newest row of "
        "each pretraining seed." + (f" {superseded} older configuration(s) were superseded in this table."
                                     if superseded else ""),
        "",
    ]
    if store_problems:
        lines += ["**Store problems** (lines no row could be read from)", ""]
        lines += [f"- `{STORE_NAME}` line {p['line']}: not read, {p['what']} "
                  "(`harness results check --repair` moves it aside)" for p in store_problems]
        lines.append("")
    return "\n".join(lines)


# --- writing --------------------------------------------------------------------------------------
@dataclass
class CostReport:
    table: CostTable
    path: Path | None = None  # written; None when no row records a cost
    removed: Path | None = None  # a placeholder an earlier render left, deleted


def write_cost_table(results_dir: str | Path, out_dir: str | Path, *, dataset: str, preset: str,
                     df: pd.DataFrame | None = None) -> CostReport:
    """Write ``<out_dir>/table7.md`` when at least one row records a cost; else write nothing and delete
    a placeholder an earlier render left at that path (same table, dataset and preset marker)."""
    df = load_store(results_dir) if df is None else df
    t = build_cost_table(df, dataset, preset)
    report = CostReport(t)
    path = table_path(out_dir, COST_TABLE)
    if not t.recorded:
        if path.is_file() and read_marker(path) == (COST_TABLE, dataset, preset):
            path.unlink()
            report.removed = path
        return report
    atomic.write_text(path, render_cost_markdown(t, list(df.attrs.get("store_problems", ()))))
    report.path = path
    return report
