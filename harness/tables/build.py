"""One table from the store: measured columns, the layout beside the paper's columns, the cells."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..floors import floor_backbone
from ..registry import ENCODERS
from .annotate import StoreFacts, annotate, compare
from .cells import Cell, measured_cell
from .checkpoint_rows import checkpoint_rows
from .model import (FLOOR_HEADER, MEASURES, NOT_APPLICABLE, PAPER_NA, MeasuredColumn, Selector,
                    TableSpec, pretty_dataset)
from .specs import MODALITY_LABELS, paper_datasets, table_specs


def floor_selector(sel: Selector) -> Selector | None:
    """The floor of a row: the untrained backbone the row's method trains (same encoder and modality);
    None for fused ensembles, the floor's own rows and methods that are not installed."""
    backbone = None if sel.fused else floor_backbone(sel.method, sel.encoder, sel.modality)
    if backbone is None:
        return None
    floor, encoder, modality = backbone
    return Selector(floor, "default", encoder, modality)

# --- building one table -------------------------------------------------------------------------
@dataclass
class BuiltTable:
    spec: TableSpec
    dataset: str
    preset: str
    frame: pd.DataFrame
    measured_columns: list[MeasuredColumn]
    cells: dict[tuple[str, MeasuredColumn], Cell]  # (row label, column) → cell
    floors: dict[tuple[str, MeasuredColumn], Cell]  # (row label, column) → the row's untrained-floor cell
    problems: list[dict[str, Any]]
    superseded: int
    splits: list[str]
    subsets: list[str] = dataclasses.field(default_factory=list)  # the rows' ``extra.dataset_subset`` labels

    def cell(self, row_label: str, measure: str, split: str | None = None, sub: str | None = None) -> Cell:
        for (label, col), c in self.cells.items():
            if label == row_label and col.measure == measure and (split is None or col.split == split) and (
                    sub is None or col.sub == sub):
                return c
        raise KeyError((row_label, measure, split))


def measured_columns(spec: TableSpec, df: pd.DataFrame, dataset: str, preset: str,
                     default_split: str = "xsub") -> list[MeasuredColumn]:
    """One measured column per (measure, split, sub) found in the store for this dataset and preset."""
    base = df[(df["dataset"] == dataset) & (~df["_sweep"].astype(bool))
              & ((df["preset"] == preset) | (df["_fused"].astype(bool) & (df["preset"] == "")))]
    splits_all: set[str] = set()
    per_measure: dict[str, tuple[set[str], set[str]]] = {}
    for key in spec.measures:
        m = MEASURES[key]
        metrics = {m.metric} | ({m.fused_metric} if m.fused_metric else set())
        rows = base[(base["protocol"] == m.protocol) & base["metric"].isin(metrics)]
        if m.optional and rows.empty:  # a column only where the store has the measure
            continue
        if m.fused_metric:  # only fused rows count with the fused metric (a plain top1 is the final value)
            rows = rows[(rows["metric"] == m.metric) | rows["_fused"].astype(bool)]
        splits = {s for s in rows["split"] if s}
        subs = {str(e.get(m.sub_key, "")) for e in rows["_extra"]} if m.sub_key else {""}
        per_measure[key] = (splits, subs)
        splits_all |= splits
    if not splits_all:
        splits_all = {default_split}
    # every measure gets the same splits, so a missing protocol shows as "not run" beside the others
    order = _split_order(spec, dataset, splits_all)
    cols = []
    for key in per_measure:
        m = MEASURES[key]
        subs = per_measure[key][1] if m.sub_key else {""}
        subs = {s for s in subs if s} or {m.sub_default}
        if m.sub_key:  # the paper's setting first
            sub_list = sorted(subs, key=lambda s: (s != m.sub_default, s))
        else:
            sub_list = [""]
        for split in order:
            for sub in sub_list:
                cols.append(MeasuredColumn(key, split, sub))
    return cols


def _split_order(spec: TableSpec, dataset: str, splits: set[str]) -> list[str]:
    paper_order = [c.split for c in spec.columns if dataset not in paper_datasets() or c.dataset == dataset]
    return sorted(splits, key=lambda s: (paper_order.index(s) if s in paper_order else len(paper_order), s))


def _paper_partner(spec: TableSpec, col: MeasuredColumn, dataset: str) -> int | None:
    """Index of the paper column a measured column is shown beside, or None (appended at the end)."""
    measure = MEASURES[col.measure].beside or col.measure  # a measure laid out beside another: that one's place
    for i, pc in enumerate(spec.columns):
        if pc.measure != measure:
            continue
        if dataset in paper_datasets():
            if pc.dataset == dataset and pc.split == col.split:
                return i
        elif pc.split == col.split:
            return i
    return None


def measured_header(spec: TableSpec, col: MeasuredColumn, dataset: str, preset: str) -> str:
    multi = len(spec.measures) > 1
    what = f" {MEASURES[col.measure].label}" if multi else ""
    sub = f", {col.sub}" if col.sub else ""
    return f"ours{what} ({pretty_dataset(dataset)} {col.split}{sub}, {preset})"


def floor_header(spec: TableSpec, col: MeasuredColumn) -> str:
    multi = len(spec.measures) > 1
    what = f" {MEASURES[col.measure].label}" if multi else ""
    sub = f", {col.sub}" if col.sub else ""
    return f"{FLOOR_HEADER}{what} ({col.split}{sub})"


def _fmt_paper(v: float | None) -> str:
    return PAPER_NA if v is None else f"{v:.1f}"


def _expansions(df: pd.DataFrame, sel: Selector, dataset: str, preset: str, protocols: set[str]
                ) -> list[tuple[str, str | None]]:
    """The (encoder, modality) pairs found in the store for a row that shows every encoder: only the
    row's modality when it names one, else every modality found (the floor's rows)."""
    rows = df[(df["method"] == sel.method) & (df["dataset"] == dataset) & (df["preset"] == preset)
              & df["protocol"].isin(protocols) & (df["variant"] == sel.variant) & ~df["_sweep"].astype(bool)
              & (df["_checkpoint"] == sel.checkpoint)]
    if sel.modality is not None:
        rows = rows[rows["modality"] == sel.modality]
        return sorted({(e, None) for e in rows["encoder"]})
    return sorted(set(zip(rows["encoder"], rows["modality"])))


def _expanded_label(label: str, encoder: str, modality: str | None) -> str:
    tag = "" if modality in (None, "joint") else MODALITY_LABELS.get(modality, modality)
    own = getattr(ENCODERS.get(encoder), "label", "") if encoder in ENCODERS else ""
    return f"{label}, {own or encoder.upper()}" + (f" ({tag})" if tag else "")


def build_table(number: int, df: pd.DataFrame, dataset: str, preset: str, default_split: str = "xsub") -> BuiltTable:
    """Table ``number`` as a pandas frame of strings, with the cells behind it."""
    spec = table_specs()[number]
    store_dir = df.attrs.get("store_dir")
    # only this dataset and preset (and fused rows without a preset) can fill a cell
    df = df[(df["dataset"] == dataset) & ((df["preset"] == preset) | (df["preset"] == ""))]
    facts = StoreFacts.of(df, store_dir)
    mcols = measured_columns(spec, df, dataset, preset, default_split)
    partners: dict[int | None, list[MeasuredColumn]] = {}
    for c in mcols:
        partners.setdefault(_paper_partner(spec, c, dataset), []).append(c)
    layout: list[tuple[str, Any]] = []  # ("paper", PaperColumn) | ("ours", MeasuredColumn)
    for i, pc in enumerate(spec.columns):
        layout.append(("paper", pc))
        for c in partners.get(i, []):
            layout += [("ours", c), ("floor", c)]
    for c in partners.get(None, []):
        layout += [("ours", c), ("floor", c)]
    headers = list(spec.info_headers) + ["harness run"]
    headers += [f"{x.label} (paper)" if kind == "paper" else measured_header(spec, x, dataset, preset)
                if kind == "ours" else floor_header(spec, x) for kind, x in layout]
    protocols = {MEASURES[k].protocol for k in spec.measures}
    records: list[list[str]] = []
    cells: dict[tuple[str, MeasuredColumn], Cell] = {}
    floors: dict[tuple[str, MeasuredColumn], Cell] = {}
    problems: list[dict[str, Any]] = []
    superseded = 0
    group = None
    for row in spec.rows + checkpoint_rows(spec, df, protocols):  # evaluated files: rows of their own
        if row.group and row.group != group:
            group = row.group
            records.append([f"*{group}*"] + [""] * (len(headers) - 1))
        expansions: list[tuple[str | None, str | None]] = [(None, None)]
        if row.selector is not None and row.expand_encoders and row.selector.encoder is None:
            expansions = list(_expansions(df, row.selector, dataset, preset, protocols)) or [(None, None)]
        for enc, mod in expansions:
            label = row.label if enc is None else _expanded_label(row.label, enc, mod)
            sel = row.selector
            if sel is not None and enc is not None:  # this row reads one encoder (and modality) of the store
                sel = dataclasses.replace(sel, encoder=enc, modality=mod if mod is not None else sel.modality)
            if sel is None:
                run = ""
            else:
                run = sel.describe() + (f" ({row.run_note})" if row.run_note else "")
            info = list(row.info)  # an expanded row's own encoder and stream, not the method's defaults
            if enc is not None and "Encoder" in spec.info_headers:
                info[spec.info_headers.index("Encoder") - 1] = enc.upper()
            if mod is not None and "Modality" in spec.info_headers:
                info[spec.info_headers.index("Modality") - 1] = MODALITY_LABELS.get(mod, mod)
            rec = [label, *info, run]
            for kind, x in layout:
                if kind == "paper":
                    idx = spec.columns.index(x)
                    rec.append(NOT_APPLICABLE if row.paper is None else _fmt_paper(row.paper[idx]))
                    continue
                if sel is None:
                    rec.append(NOT_APPLICABLE)
                    continue
                if kind == "floor":  # computed with the row's own cell, which comes first
                    fcell = floors.get((label, x))
                    rec.append(NOT_APPLICABLE if fcell is None else fcell.text())
                    continue
                measure = MEASURES[x.measure]
                cell = measured_cell(df, sel, measure, x, dataset, preset)
                annotate(cell, measure, dataset, x.split, facts)
                fsel = floor_selector(sel)
                if fsel is not None:
                    floors[(label, x)] = fcell = measured_cell(df, fsel, measure, x, dataset, preset)
                    annotate(fcell, measure, dataset, x.split, facts)
                    compare(cell, fcell)
                cells[(label, x)] = cell
                superseded += cell.superseded
                for b in cell.bad:
                    problems.append({**b, "table_row": label, "column": measured_header(spec, x, dataset, preset)})
                rec.append(cell.text())
            records.append(rec)
    frame = pd.DataFrame(records, columns=headers)
    splits = sorted({c.split for c in mcols})
    subsets = sorted({str(e.get("dataset_subset")) for e in df["_extra"] if e.get("dataset_subset")})
    return BuiltTable(spec, dataset, preset, frame, mcols, cells, floors, problems, superseded, splits, subsets)


