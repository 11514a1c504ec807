"""The paper's Tables 1–5 from the results store: row selection → pandas frames → markdown (tabulate).

Every measured number in a table comes from ``results.csv`` (:func:`harness.results.load_results`);
the paper's numbers come from :mod:`harness.paper`. Nothing else is read.

**Columns.** Each table keeps the paper's columns (headed "… (paper)") and adds measured columns
headed with what they really are: ``ours (<dataset> <split>, <preset>)``. A measured column sits right
after the paper column it corresponds to: the same dataset and split when the measured dataset is
one of the paper's (NTU-60, NTU-120, PKU-MMD), else the first paper column with the same split name
(synthetic ``xsub`` → beside "NTU-60 xsub"). That placement is for reading only: synthetic and MSR
Action3D numbers are never NTU/PKU numbers, and the header and the column names say so.

**Cells.** A measured cell is the mean ± sample standard deviation (ddof 1) over the seeds found in
the store (the rows' ``seed`` column: linear-probe / detection seeds, the subset seeds for the
semi-supervised protocol), in %, with the number of seeds: ``61.3 ± 0.8 (n=3)``. Which rows form a
cell:

* filter by dataset kind, preset, protocol, metric, split, and the row's method / variant / encoder /
  modality (:class:`Selector`); rows recorded by a sweep (``extra.overrides``, e.g. the Figure 4 α
  runs of ``harness reproduce``) never enter a table cell;
* if rows of several configurations (config hashes) qualify, the configuration whose newest row is
  the latest wins and the older ones are ignored (a re-run after a code or config change supersedes
  the earlier one); rows without a config hash (``harness fuse --record``) count one configuration per
  recording date;
* within that configuration, the latest row per seed is taken;
* a row whose value is NaN or missing is not dropped silently: the cell gets ⚠ and the row is listed
  under "Store problems" with its line in ``results.csv``; the mean is over the remaining seeds.

Marks: ``—`` the paper prints "-"; ``not run`` the harness implements the row but the store has no
row for the cell; ``·`` not applicable (a paper-only method the harness does not implement, or the
paper cell of an extra harness row). Every rendered file carries a legend.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from tabulate import tabulate

from . import atomic, paper
from .results import STORE_NAME, load_results

TABLES = (1, 2, 3, 4, 5)
MARKER = "<!-- harness tables: table={table} dataset={dataset} preset={preset} -->"
MARKER_RE = re.compile(r"<!-- harness tables: table=(\d+) dataset=(\S+) preset=(\S+) -->")

NOT_RUN = "not run"
PAPER_NA = "—"
NOT_APPLICABLE = "·"
WARN = "⚠"
FUSED = "‡"

PAPER_DATASETS = {"ntu60": "NTU-60", "ntu120": "NTU-120", "pku-mmd": "PKU-MMD"}
PRETTY_DATASETS = {**PAPER_DATASETS, "synthetic": "synthetic", "msr-action3d": "MSR Action3D"}


def pretty_dataset(kind: str) -> str:
    return PRETTY_DATASETS.get(kind, kind)


# --- what is measured --------------------------------------------------------------------------
@dataclass(frozen=True)
class Measure:
    key: str
    protocol: str
    metric: str
    label: str  # short name for a column header ("Recog.")
    what: str  # one sentence for the table header
    fused_metric: str | None = None  # the metric of fused 3-stream rows (harness fuse), if they count
    sub_key: str | None = None  # an ``extra`` key that splits measured columns (detection variant)
    sub_default: str = ""  # the sub column shown when the store has none
    extra_equals: tuple[tuple[str, Any], ...] = ()  # ``extra`` values a row must have when present


MEASURES = {
    "recog": Measure("recog", "linear", "top1_best", "Recog.",
                     "linear-evaluation top-1 accuracy, **best-of** (the maximum test top-1 over the probe's "
                     "evaluations, which is what the papers report; protocols.md §1)", fused_metric="top1"),
    "retrieval": Measure("retrieval", "knn", "knn1", "Retrieval",
                         "kNN retrieval top-1 (k = 1, cosine on L2-normalised features; gallery = train split, "
                         "queries = test split; protocols.md §2)"),
    "semi@0.01": Measure("semi@0.01", "semi", "top1_best@0.01", "1 %",
                         "semi-supervised top-1, best-of, after fine-tuning the whole model on 1 % / 10 % of the "
                         "training labels (class-stratified subsets; protocols.md §3)"),
    "semi@0.1": Measure("semi@0.1", "semi", "top1_best@0.1", "10 %", ""),
    "mAP_a": Measure("mAP_a", "detection", "mAP_a", "mAP_a",
                     "action-detection mAP_a / mAP_v at θ = 0.5 from the official PKU-MMD scorer "
                     "(protocols.md §5–6), frame-wise head on the pretrained encoder",
                     sub_key="variant", sub_default="finetune", extra_equals=(("theta", 0.5),)),
    "mAP_v": Measure("mAP_v", "detection", "mAP_v", "mAP_v", "", sub_key="variant", sub_default="finetune",
                     extra_equals=(("theta", 0.5),)),
}


@dataclass(frozen=True)
class PaperColumn:
    label: str
    measure: str
    dataset: str  # the paper's dataset kind
    split: str


@dataclass(frozen=True)
class MeasuredColumn:
    measure: str
    split: str
    sub: str = ""


# --- which store rows a table row reads ---------------------------------------------------------
@dataclass(frozen=True)
class Selector:
    method: str
    variant: str = "default"
    encoder: str | None = None  # None: any encoder
    modality: str | None = "joint"  # None: any modality
    fused: bool = False  # a 3-stream ensemble recorded by harness fuse (extra holds "weights")

    def describe(self) -> str:
        parts = [self.method if self.variant == "default" else f"{self.method} {self.variant}"]
        if self.encoder:
            parts.append(self.encoder)
        if self.fused:
            parts.append("J+M+B fused")
        elif self.modality not in (None, "joint"):
            parts.append(self.modality)
        return " · ".join(parts)


@dataclass
class RowSpec:
    label: str
    info: tuple[str, ...] = ()  # the leading descriptive cells (publisher, modality / row, what, encoder)
    paper: tuple[float | None, ...] | None = None  # None: not a paper row (extra harness row)
    selector: Selector | None = None  # None: a paper-only row
    group: str = ""  # a group header row above this one when the group changes
    expand_encoders: bool = False  # one row per encoder found in the store (extra rows)
    run_note: str = ""  # shown after the selector in the "harness run" column


@dataclass
class TableSpec:
    number: int
    title: str
    info_headers: tuple[str, ...]
    columns: tuple[PaperColumn, ...]
    rows: list[RowSpec]
    notes: tuple[str, ...] = ()

    @property
    def measures(self) -> list[str]:
        out: list[str] = []
        for c in self.columns:
            if c.measure not in out:
                out.append(c.measure)
        return out


# Harness methods and the paper rows they fill. (extra label, paper label, paper modality, selector,
# expand encoders, only in these tables). A harness row whose paper label is not in a table becomes an
# extra row of that table (marked as such), if the table's measure can hold it.
HARNESS_ROWS: tuple[tuple[str, str, str | None, Selector, bool, tuple[int, ...]], ...] = (
    ("USDRL (DSTE) (harness)", "USDRL (DSTE)", "J", Selector("usdrl", encoder="dste"), False, TABLES),
    ("USDRL (STTR) (harness)", "USDRL (STTR)", "J", Selector("usdrl", encoder="sttr"), False, TABLES),
    ("UmURL (harness)", "UmURL (2023)", "J+M+B", Selector("umurl", modality=None), False, TABLES),
    ("MAMP (harness)", "MAMP (2023)", "J", Selector("mamp"), False, TABLES),
    ("MoCo-v2 (harness)", "", None, Selector("contrastive"), True, TABLES),
    ("SCD-Net (harness)", "", None, Selector("scdnet"), True, TABLES),
    ("USDRL (DSTE), bone stream (harness)", "", None, Selector("usdrl", encoder="dste", modality="bone"),
     False, (1,)),
    ("USDRL (DSTE), motion stream (harness)", "", None, Selector("usdrl", encoder="dste", modality="motion"),
     False, (1,)),
    ("3s-USDRL (DSTE) (harness)", "3s-USDRL (DSTE)", "J+M+B",
     Selector("usdrl", encoder="dste", modality="jbm", fused=True), False, (1,)),
    ("Supervised (harness reference)", "", None, Selector("supervised"), True, TABLES),
    ("Random init (harness reference)", "", None, Selector("random"), True, TABLES),
)
EXTRA_GROUP = "Extra rows: harness runs, not in the paper"


def _paper_columns(labels: Sequence[str], measure: str, where: Sequence[tuple[str, str]]) -> tuple[PaperColumn, ...]:
    return tuple(PaperColumn(label, measure, ds, split) for label, (ds, split) in zip(labels, where))


def _attach_harness_rows(number: int, rows: list[RowSpec], modality_index: int | None) -> list[RowSpec]:
    """Give paper rows their harness selectors and append the harness rows the table lacks."""
    extras = []
    for extra_label, paper_label, paper_modality, sel, expand, tables in HARNESS_ROWS:
        if number not in tables:
            continue
        target = None
        for r in rows:
            if r.label == paper_label and paper_label and (
                    modality_index is None or paper_modality is None or r.info[modality_index] == paper_modality):
                target = r
                break
        if target is not None:
            target.selector = sel
        else:
            info = ("harness", {"joint": "J", "bone": "B", "motion": "M", "jbm": "J+M+B"}.get(sel.modality or "", "")) \
                if modality_index is not None else ()
            extras.append(RowSpec(extra_label, info=info, selector=sel, group=EXTRA_GROUP, expand_encoders=expand))
    return rows + extras


def table_specs() -> dict[int, TableSpec]:
    t1_cols = _paper_columns(paper.TABLE1_COLUMNS, "recog",
                             [("ntu60", "xsub"), ("ntu60", "xview"), ("ntu120", "xsub"), ("ntu120", "xset"),
                              ("pku-mmd", "xsub")])
    t1_rows = [RowSpec(name, info=(pub, mod), paper=vals, group=group) for group, name, pub, mod, vals in paper.TABLE1]
    t2_cols = tuple(PaperColumn(label, "semi@0.01" if "1 %" in label and "10 %" not in label else "semi@0.1",
                                "ntu60", "xsub" if "x-sub" in label else "xview") for label in paper.TABLE2_COLUMNS)
    t3_cols = _paper_columns(paper.TABLE3_COLUMNS, "retrieval",
                             [("ntu60", "xsub"), ("ntu60", "xview"), ("ntu120", "xsub"), ("ntu120", "xset")])
    t4_cols = (PaperColumn(paper.TABLE4_COLUMNS[0], "mAP_a", "pku-mmd", "xsub"),
               PaperColumn(paper.TABLE4_COLUMNS[1], "mAP_v", "pku-mmd", "xsub"))
    t5_cols = (PaperColumn("Recog.", "recog", "ntu60", "xsub"), PaperColumn("Retrieval", "retrieval", "ntu60", "xsub"))
    t5_sel = {1: Selector("contrastive", encoder="sttr"), 2: Selector("usdrl", "no_xc", "sttr"),
              3: Selector("usdrl", encoder="sttr"), 4: Selector("contrastive", encoder="dste"),
              5: Selector("usdrl", "no_xc", "dste"), 6: Selector("usdrl", "single_grained", "dste"),
              7: Selector("usdrl", encoder="dste")}
    t5_note = {1: "MoCo-v2 style", 2: "VAC ✓ XC ✗ MG-FD ✓", 3: "VAC ✓ XC ✓ MG-FD ✓",
               4: "MoCo-v2 style", 5: "VAC ✓ XC ✗ MG-FD ✓; row 5 or 6?",
               6: "VAC ✓ XC ✓ single-grained; row 5 or 6?", 7: "VAC ✓ XC ✓ MG-FD ✓"}
    t5_rows = [RowSpec(f"{row}", info=(what, enc), paper=vals, selector=t5_sel[row], run_note=t5_note[row])
               for row, what, enc, vals in paper.TABLE5]
    return {
        1: TableSpec(1, "Table 1 — Unsupervised action recognition (linear evaluation). J: joint, M: motion, B: bone",
                     ("Method", "Publisher", "Modality"), t1_cols, _attach_harness_rows(1, t1_rows, 1),
                     notes=("Rows with modality J+M+B in the \"3s-ensemble\" group are ensembles of three "
                            "separately trained streams; the harness fills 3s-USDRL (DSTE) from fused rows "
                            "(`harness fuse --record` or `harness reproduce --table 1`), whose value is the top-1 of "
                            "the summed per-stream softmax scores of the final-epoch linear heads (not best-of).",
                            "UmURL's J+M+B row is one model on the fused multi-modal representation (methods.md §2): "
                            "the harness `umurl` rows fill it.")),
        2: TableSpec(2, "Table 2 — Semi-supervised evaluation (entire model fine-tuned on 1 % / 10 % of the labels)",
                     ("Method",), t2_cols,
                     _attach_harness_rows(2, [RowSpec(n, paper=v) for n, v in paper.TABLE2], None),
                     notes=("Seeds are the labelled-subset seeds (`protocol.options.subset_seeds`): each seed "
                            "draws its own class-stratified subset and fine-tunes once.",)),
        3: TableSpec(3, "Table 3 — Action retrieval (kNN-1, cosine similarity)", ("Method",), t3_cols,
                     _attach_harness_rows(3, [RowSpec(n, paper=v) for n, v in paper.TABLE3], None),
                     notes=("kNN-1 is deterministic: one row per configuration (n=1) unless several seeds were "
                            "run.",)),
        4: TableSpec(4, "Table 4 — Action detection (PKU-MMD I xsub in the paper), overlap ratio θ = 0.5",
                     ("Method",), t4_cols,
                     _attach_harness_rows(4, [RowSpec(n, paper=v) for n, v in paper.TABLE4], None),
                     notes=("The paper pretrains on NTU-60 xsub and fine-tunes the whole model as a frame-wise "
                            "classifier; measured columns name the detection variant of `protocol.options` "
                            "(`finetune` = the whole network trains, as in the paper; `linear` = frozen encoder).",
                            "mAP_a and mAP_v come from the official PKU-MMD scorer (mAP_a over all classes of the "
                            "dataset, mAP_v over all test videos).")),
        5: TableSpec(5, "Table 5 — Ablation (NTU-60 xsub in the paper). Recog. = linear top-1, Retrieval = kNN-1",
                     ("Row", "What the paper's text establishes", "Encoder"), t5_cols, t5_rows,
                     notes=("The paper's VAC / XC / MG-FD check marks are lost in its text rendering; the rows "
                            "are mapped as paper-tables.md establishes: rows 1 and 4 = negative-based pretraining "
                            "(harness `contrastive`, STTR / DSTE); rows 3 and 7 = the full model (`usdrl` default; "
                            "they equal Table 1 and Table 3); row 2 = `usdrl no_xc` with STTR.",
                            "Rows 5 and 6 are the two partial DSTE variants (without XC; single-grained). **Their "
                            "order is unknown in the paper**: the harness puts `usdrl no_xc` in row 5 and "
                            "`usdrl single_grained` in row 6, an arbitrary choice.")),
    }


# --- the store ------------------------------------------------------------------------------------
def _parse_extra(text: Any) -> dict[str, Any]:
    if not isinstance(text, str) or not text.strip():
        return {}
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return {"_raw": text}
    return obj if isinstance(obj, dict) else {"_raw": obj}


_SCORE_SPLIT = (re.compile(r"^(?:linear|semi|detection)-.+-(?P<split>[^-]+)-seed\d+\.npz$"),
                re.compile(r"^knn-.+-(?P<split>[^-]+)\.npz$"))


def _split_from_files(files: Any) -> str:
    """The split named by protocol score files (``linear-<kind>-<split>-seed<k>.npz``), if they agree."""
    if not isinstance(files, list):
        return ""
    found = set()
    for f in files:
        name = Path(str(f)).name
        for pat in _SCORE_SPLIT:
            m = pat.match(name)
            if m:
                found.add(m.group("split"))
                break
    return found.pop() if len(found) == 1 else ""


def prepare_store(df: pd.DataFrame) -> pd.DataFrame:
    """The store with parsed helper columns: ``_value`` (float, NaN when bad), ``_seed``, ``_line``,
    ``_extra`` (dict), ``_fused``, ``_sweep``."""
    df = df.copy()
    for col in ("method", "dataset", "protocol", "metric", "variant", "encoder", "modality", "split", "preset",
                "config_hash", "date", "extra"):
        if col not in df.columns:
            df[col] = ""
        df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
    if "value" not in df.columns:
        df["value"] = ""
    if "seed" not in df.columns:
        df["seed"] = 0
    df["_line"] = np.arange(len(df), dtype=np.int64) + 2  # line 1 is the CSV header
    df["_value"] = pd.to_numeric(df["value"], errors="coerce").astype(float)
    df["_seed"] = pd.to_numeric(df["seed"], errors="coerce")
    df["_extra"] = [_parse_extra(e) for e in df["extra"]]
    df["_fused"] = [isinstance(e, dict) and "weights" in e for e in df["_extra"]]
    df["_sweep"] = [bool(e.get("overrides")) for e in df["_extra"]]
    # harness fuse --record leaves split empty; its score file names carry it
    split = df["split"].tolist()
    for i, (s, fused, extra) in enumerate(zip(split, df["_fused"], df["_extra"])):
        if fused and not s:
            split[i] = _split_from_files(extra.get("files"))
    df["split"] = split
    return df


def load_store(results_dir: str | Path) -> pd.DataFrame:
    return prepare_store(load_results(results_dir))


# --- cells ------------------------------------------------------------------------------------------
@dataclass
class Cell:
    values: list[float] = field(default_factory=list)  # finite values (fractions), one per seed
    seeds: list[Any] = field(default_factory=list)
    bad: list[dict[str, Any]] = field(default_factory=list)  # store rows with a NaN / missing value
    config_hash: str = ""
    superseded: int = 0  # configurations ignored because a later one exists
    fused: bool = False
    no_preset: bool = False  # fused rows that carry no preset

    @property
    def measured(self) -> bool:
        return bool(self.values or self.bad)

    def text(self) -> str:
        if not self.measured:
            return NOT_RUN
        marks = (f" {WARN}" if self.bad else "") + (f" {FUSED}" if self.fused else "")
        if not self.values:
            return f"NaN{marks}"
        v = 100.0 * np.asarray(self.values, dtype=float)
        if len(v) == 1:
            return f"{v[0]:.1f} (n=1){marks}"
        return f"{v.mean():.1f} ± {v.std(ddof=1):.1f} (n={len(v)}){marks}"

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan


def _row_mask(df: pd.DataFrame, sel: Selector, measure: Measure, col: MeasuredColumn, dataset: str,
              preset: str, encoder: str | None) -> pd.Series:
    m = (df["dataset"] == dataset) & (df["protocol"] == measure.protocol) & (df["split"] == col.split)
    m &= df["method"] == sel.method
    m &= ~df["_sweep"].astype(bool)
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
    enc = encoder or sel.encoder
    if enc:
        m &= df["encoder"] == enc
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


def pick_cell(rows: pd.DataFrame) -> Cell:
    """The latest configuration's rows (one per seed, the latest) → a Cell."""
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
    per_seed = per_seed.groupby("_seedkey", sort=True, dropna=False).tail(1).sort_values("_line")
    cell = Cell(config_hash=str(group), superseded=len(latest) - 1,
                fused=bool(chosen["_fused"].any()), no_preset=bool((chosen["preset"] == "").any()))
    for r in per_seed.to_dict("records"):
        value, seed = r["_value"], r["_seed"]
        seed_ok = not pd.isna(seed)
        if math.isfinite(value) and seed_ok:
            cell.values.append(float(value))
            cell.seeds.append(int(seed))
            continue
        what = "value" if not math.isfinite(value) else "seed"
        raw = r["value"] if what == "value" else r["seed"]
        cell.bad.append({"line": int(r["_line"]), "what": what, "raw": "" if raw is None else str(raw),
                         **{k: str(r[k]) for k in ("method", "variant", "encoder", "modality", "protocol",
                                                   "metric", "split", "seed", "config_hash")}})
    return cell


def measured_cell(df: pd.DataFrame, sel: Selector, measure: Measure, col: MeasuredColumn, dataset: str,
                  preset: str, encoder: str | None = None) -> Cell:
    return pick_cell(df[_row_mask(df, sel, measure, col, dataset, preset, encoder)])


# --- building one table -------------------------------------------------------------------------
@dataclass
class BuiltTable:
    spec: TableSpec
    dataset: str
    preset: str
    frame: pd.DataFrame
    measured_columns: list[MeasuredColumn]
    cells: dict[tuple[str, MeasuredColumn], Cell]  # (row label, column) → cell
    problems: list[dict[str, Any]]
    superseded: int
    splits: list[str]

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
    for key in spec.measures:
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
    paper_order = [c.split for c in spec.columns if dataset not in PAPER_DATASETS or c.dataset == dataset]
    return sorted(splits, key=lambda s: (paper_order.index(s) if s in paper_order else len(paper_order), s))


def _paper_partner(spec: TableSpec, col: MeasuredColumn, dataset: str) -> int | None:
    """Index of the paper column a measured column is shown beside, or None (appended at the end)."""
    for i, pc in enumerate(spec.columns):
        if pc.measure != col.measure:
            continue
        if dataset in PAPER_DATASETS:
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


def _fmt_paper(v: float | None) -> str:
    return PAPER_NA if v is None else f"{v:.1f}"


def _encoders_for(df: pd.DataFrame, sel: Selector, dataset: str, preset: str, protocols: set[str]) -> list[str]:
    rows = df[(df["method"] == sel.method) & (df["dataset"] == dataset) & (df["preset"] == preset)
              & df["protocol"].isin(protocols) & (df["variant"] == sel.variant) & ~df["_sweep"].astype(bool)]
    return sorted({e for e in rows["encoder"]})


def build_table(number: int, df: pd.DataFrame, dataset: str, preset: str, default_split: str = "xsub") -> BuiltTable:
    """Table ``number`` as a pandas frame of strings, with the cells behind it."""
    spec = table_specs()[number]
    # only this dataset and preset (and fused rows without a preset) can fill a cell
    df = df[(df["dataset"] == dataset) & ((df["preset"] == preset) | (df["preset"] == ""))]
    mcols = measured_columns(spec, df, dataset, preset, default_split)
    partners: dict[int | None, list[MeasuredColumn]] = {}
    for c in mcols:
        partners.setdefault(_paper_partner(spec, c, dataset), []).append(c)
    layout: list[tuple[str, Any]] = []  # ("paper", PaperColumn) | ("ours", MeasuredColumn)
    for i, pc in enumerate(spec.columns):
        layout.append(("paper", pc))
        layout += [("ours", c) for c in partners.get(i, [])]
    layout += [("ours", c) for c in partners.get(None, [])]
    headers = list(spec.info_headers) + ["harness run"]
    headers += [f"{x.label} (paper)" if kind == "paper" else measured_header(spec, x, dataset, preset)
                for kind, x in layout]
    protocols = {MEASURES[k].protocol for k in spec.measures}
    records: list[list[str]] = []
    cells: dict[tuple[str, MeasuredColumn], Cell] = {}
    problems: list[dict[str, Any]] = []
    superseded = 0
    group = None
    for row in spec.rows:
        if row.group and row.group != group:
            group = row.group
            records.append([f"*{group}*"] + [""] * (len(headers) - 1))
        encoders: list[str | None] = [None]
        if row.selector is not None and row.expand_encoders and row.selector.encoder is None:
            encoders = list(_encoders_for(df, row.selector, dataset, preset, protocols)) or [None]
        for enc in encoders:
            label = row.label if enc is None or len(encoders) == 1 and not enc else f"{row.label}, {enc.upper()}"
            if row.selector is None:
                run = ""
            else:
                run = row.selector.describe() + (f" · {enc}" if enc and not row.selector.encoder else "")
                run += f" ({row.run_note})" if row.run_note else ""
            rec = [label, *row.info, run]
            for kind, x in layout:
                if kind == "paper":
                    idx = spec.columns.index(x)
                    rec.append(NOT_APPLICABLE if row.paper is None else _fmt_paper(row.paper[idx]))
                    continue
                if row.selector is None:
                    rec.append(NOT_APPLICABLE)
                    continue
                cell = measured_cell(df, row.selector, MEASURES[x.measure], x, dataset, preset, enc)
                cells[(label, x)] = cell
                superseded += cell.superseded
                for b in cell.bad:
                    problems.append({**b, "table_row": label, "column": measured_header(spec, x, dataset, preset)})
                rec.append(cell.text())
            records.append(rec)
    frame = pd.DataFrame(records, columns=headers)
    splits = sorted({c.split for c in mcols})
    return BuiltTable(spec, dataset, preset, frame, mcols, cells, problems, superseded, splits)


# --- markdown ----------------------------------------------------------------------------------------
def _header_text(t: BuiltTable) -> list[str]:
    spec = t.spec
    ds = pretty_dataset(t.dataset)
    measured = [c for c in t.cells.values() if c.measured]
    whats = [MEASURES[k].what for k in spec.measures if MEASURES[k].what]
    lines = [
        MARKER.format(table=spec.number, dataset=t.dataset, preset=t.preset),
        f"# {spec.title}",
        "",
        f"- **Measured dataset: {ds}** (split{'s' if len(t.splits) > 1 else ''} {', '.join(t.splits)}), "
        f"**preset: {t.preset}**. Every \"ours\" number comes from the results store (`{STORE_NAME}`), "
        f"as rendered by `harness tables`; {len(measured)} measured cell(s).",
        "- Paper columns: the USDRL paper (AAAI 2025), transcribed in `harness/paper.py` "
        "(`../shared/specs/paper-tables.md`).",
        f"- Measured metric: {'; '.join(whats)}. Numbers in %, mean ± sample standard deviation over seeds "
        "(n = number of seeds).",
    ]
    if t.dataset not in PAPER_DATASETS:
        paper_sets = list(dict.fromkeys(PAPER_DATASETS[c.dataset] for c in spec.columns))
        lines.append(
            f"- **These measured numbers are {ds} numbers, not {' / '.join(paper_sets)} numbers.** Each \"ours\" "
            "column sits beside the paper column with the same split name for reading only; the absolute "
            "values are not comparable.")
    return lines


LEGEND = (
    f"`{PAPER_NA}` the paper prints \"-\" (no value)",
    f"`{NOT_RUN}` the harness implements this row, but the results store has no row for this cell "
    "(run `harness reproduce --table N`)",
    f"`{NOT_APPLICABLE}` not applicable: a paper-only method the harness does not implement, or the paper "
    "cell of an extra harness row",
    f"`{WARN}` at least one store row of this cell has a NaN or missing value (listed under \"Store problems\"; "
    "the mean is over the other seeds)",
    f"`{FUSED}` 3-stream ensemble (J+M+B) fused by `harness fuse`: top-1 of the summed per-stream softmax "
    "scores of the final-epoch heads, not best-of",
    "*Extra rows* are harness runs the paper does not have (marked \"(harness)\" / \"(harness reference)\")",
    "\"harness run\": the method, variant, encoder (and modality) the measured cells read from the store",
)


def render_markdown(t: BuiltTable) -> str:
    parts = _header_text(t)
    parts += ["", tabulate(t.frame, headers="keys", tablefmt="github", showindex=False, disable_numparse=True), ""]
    parts.append("**Legend**")
    parts.append("")
    parts += [f"- {x}" for x in LEGEND]
    parts.append("")
    notes = list(t.spec.notes)
    notes.append("Where several configurations (config hashes) recorded the same cell, the latest one is shown "
                 "(its newest row decides); within it, the latest row per seed."
                 + (f" {t.superseded} older configuration(s) were superseded in this table." if t.superseded else ""))
    if any(c.no_preset for c in t.cells.values() if c.measured):
        notes.append("Some fused rows carry no preset (older `harness fuse --record`); they are shown under the "
                     "requested preset.")
    parts.append("**Notes**")
    parts.append("")
    parts += [f"- {n}" for n in notes]
    parts.append("")
    if t.problems:
        parts.append("**Store problems** (rows kept out of the means)")
        parts.append("")
        for p in sorted(t.problems, key=lambda p: p["line"]):
            parts.append(f"- `{STORE_NAME}` line {p['line']}: {p['method']} {p['variant']} {p['encoder']} "
                         f"{p['modality']} {p['protocol']} {p['metric']} split {p['split']} seed {p['seed']!s} "
                         f"(config {p['config_hash'] or '—'}): {p['what']} is "
                         f"{'missing' if not p['raw'] else repr(p['raw'])} — row \"{p['table_row']}\", "
                         f"column \"{p['column']}\"")
        parts.append("")
    return "\n".join(parts)


def table_path(out_dir: str | Path, number: int) -> Path:
    return Path(out_dir) / f"table{number}.md"


@dataclass
class WriteReport:
    paths: list[Path]
    problems: list[dict[str, Any]]
    tables: dict[int, BuiltTable]


def write_tables(results_dir: str | Path, out_dir: str | Path, *, dataset: str, preset: str,
                 tables: Iterable[int] = TABLES, default_split: str = "xsub") -> WriteReport:
    """Render the tables from ``results_dir/results.csv`` into ``out_dir/tableN.md`` (atomic writes)."""
    df = load_store(results_dir)
    paths, problems, built = [], [], {}
    for n in tables:
        if n not in TABLES:
            raise ValueError(f"no table {n}: the paper has tables {', '.join(map(str, TABLES))}")
        t = build_table(n, df, dataset, preset, default_split)
        path = table_path(out_dir, n)
        atomic.write_text(path, render_markdown(t))
        paths.append(path)
        problems += [{**p, "table": n} for p in t.problems]
        built[n] = t
    return WriteReport(paths, problems, built)


def read_marker(path: str | Path) -> tuple[int, str, str] | None:
    """(table, dataset, preset) from a rendered table's first line, or None."""
    try:
        first = Path(path).read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError):
        return None
    m = MARKER_RE.match(first.strip())
    return (int(m.group(1)), m.group(2), m.group(3)) if m else None
