"""What a table is made of: markers and marks, the measures, paper and measured columns, the selector
of store rows, and the row and table specifications (docs in :mod:`harness.tables`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

TABLES = (1, 2, 3, 4, 5, 6)  # the paper's Tables 1–5 and the harness's diagnostics table 6
PAPER_TABLES = (1, 2, 3, 4, 5)
MARKER = "<!-- harness tables: table={table} dataset={dataset} preset={preset} -->"
MARKER_RE = re.compile(r"<!-- harness tables: table=(\d+) dataset=(\S+) preset=(\S+) -->")

NOT_RUN = "not run"
PAPER_NA = "—"
NOT_APPLICABLE = "·"
WARN = "⚠"
FUSED = "‡"
OLD = "†"  # rows whose pretraining budget is not recorded (an older configuration of the harness)

PAPER_DATASETS = {"ntu60": "NTU-60", "ntu120": "NTU-120", "pku-mmd": "PKU-MMD"}
PRETTY_DATASETS = {**PAPER_DATASETS, "synthetic": "synthetic", "msr-action3d": "MSR Action3D", "nw-ucla": "NW-UCLA"}
FLOOR_HEADER = "untrained floor"  # the column beside every measured one: the same backbone before training


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
    scale: float = 100.0  # display factor: fractions in %, 1 for counts such as the effective rank
    optional: bool = False  # an extra measure shown only where the store has rows of it


MEASURES = {
    "recog": Measure("recog", "linear", "top1_best", "Recog.",
                     "linear-evaluation top-1 accuracy, **best-of** (the maximum test top-1 over the probe's "
                     "evaluations, which is what the papers report; docs/reference/protocols.md §1)", fused_metric="top1"),
    "retrieval": Measure("retrieval", "knn", "knn1", "Retrieval",
                         "kNN retrieval top-1 (k = 1, cosine on L2-normalised features; gallery = train split, "
                         "queries = test split; docs/reference/protocols.md §2)"),
    "recog_white": Measure("recog_white", "linear", "top1_whitened", "Recog. whitened",
                           "a second linear readout, **whitened**: a full-batch logistic regression on "
                           "PCA-whitened features (no learning rate; tells no information from badly scaled "
                           "information)"),
    "erank": Measure("erank", "features", "eff_rank", "eff. rank",
                     "the effective rank of the pooled test features (exp of the entropy of the normalised "
                     "singular values; 1 = collapsed to one direction)", scale=1.0),
    "top1_share": Measure("top1_share", "features", "top1_share", "top direction %",
                          "share of the feature variance in the first principal direction"),
    "mean_cos": Measure("mean_cos", "features", "mean_cos", "mean cosine ×100",
                        "mean cosine similarity between distinct test samples"),
    "mean_std": Measure("mean_std", "features", "mean_std", "std ×100",
                        "mean per-dimension std of the L2-normalised features (1/√D when isotropic)"),
    "semi@0.01": Measure("semi@0.01", "semi", "top1_best@0.01", "1 %",
                         "semi-supervised top-1, best-of, after fine-tuning the whole model on 1 % / 10 % of the "
                         "training labels (class-stratified subsets; docs/reference/protocols.md §3)"),
    "semi@0.1": Measure("semi@0.1", "semi", "top1_best@0.1", "10 %", ""),
    "mAP_a": Measure("mAP_a", "detection", "mAP_a", "mAP_a",
                     "action-detection mAP_a / mAP_v at θ = 0.5 from the official PKU-MMD scorer "
                     "(docs/reference/protocols.md §5–6), frame-wise head on the pretrained encoder",
                     sub_key="variant", sub_default="finetune", extra_equals=(("theta", 0.5),)),
    "mAP_v": Measure("mAP_v", "detection", "mAP_v", "mAP_v", "", sub_key="variant", sub_default="finetune",
                     extra_equals=(("theta", 0.5),)),
    "mAP_a_present": Measure("mAP_a_present", "detection", "mAP_a_present", "mAP_a present",
                             "on a subset of a dataset also **mAP_a present**: the same per-class AP averaged over "
                             "the classes with a test action, and **mAP_a trained**: over those with at least 5 "
                             "training actions too (the official mAP_a divides by every class of the dataset)",
                             sub_key="variant", sub_default="finetune", extra_equals=(("theta", 0.5),), optional=True),
    "mAP_a_trained": Measure("mAP_a_trained", "detection", "mAP_a_trained", "mAP_a trained", "", sub_key="variant",
                             sub_default="finetune", extra_equals=(("theta", 0.5),), optional=True),
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
    checkpoint: str = ""  # rows evaluated from this file (sha256; harness run --checkpoint); "" = pretrained here

    def describe(self) -> str:
        parts = [self.method if self.variant == "default" else f"{self.method} {self.variant}"]
        if self.encoder:
            parts.append(self.encoder)
        if self.fused:
            parts.append("J+M+B fused")
        elif self.modality not in (None, "joint"):
            parts.append(self.modality)
        if self.checkpoint:
            parts.append(f"--checkpoint sha256 {self.checkpoint[:12]}")
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
    extra_measures: tuple[str, ...] = ()  # measured beside the paper's, with no paper column (diagnostics)

    @property
    def measures(self) -> list[str]:
        out: list[str] = []
        for key in [c.measure for c in self.columns] + list(self.extra_measures):
            if key not in out:
                out.append(key)
        return out


EXTRA_GROUP = "Extra rows: harness runs, not in the paper"


