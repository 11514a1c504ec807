"""What a table is made of: markers and marks, the measures, paper and measured columns, the selector
of store rows, and the row and table specifications (docs in :mod:`harness.tables`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

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


EXTRA_GROUP = "Extra rows: harness runs, not in the paper"


