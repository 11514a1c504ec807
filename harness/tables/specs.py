"""The paper's Tables 1–5 as :class:`TableSpec`: the paper's rows and columns (:mod:`harness.paper`)
with the harness rows each registered method declares (``Method.rows()``) attached."""

from __future__ import annotations

from typing import Sequence

from .. import paper
from ..contracts import TableRow
from ..registry import METHODS
from .model import EXTRA_GROUP, PaperColumn, RowSpec, Selector, TableSpec

def _paper_columns(labels: Sequence[str], measure: str, where: Sequence[tuple[str, str]]) -> tuple[PaperColumn, ...]:
    return tuple(PaperColumn(label, measure, ds, split) for label, (ds, split) in zip(labels, where))


MODALITY_LABELS = {"joint": "J", "bone": "B", "motion": "M", "jbm": "J+M+B"}


def method_rows() -> list[tuple[type, TableRow]]:
    """Every registered method's table rows, in the order extra rows are listed (``TableRow.order``,
    else the method's ``table_order``; rows of one method keep their declared order)."""
    out = []
    for entry in METHODS.entries():
        cls = entry.obj
        for i, row in enumerate(cls.rows()):
            key = row.order if row.order is not None else getattr(cls, "table_order", 60)
            out.append((key, entry.name, i, cls, row))
    return [(cls, row) for *_, cls, row in sorted(out, key=lambda o: o[:3])]


def _paper_row_mapping(number: int) -> str:
    """"row 1 = `contrastive` (STTR); …": which harness run fills each paper row of table ``number``."""
    found = []
    for cls, row in method_rows():
        label = row.paper_label(number)
        if label is not None:
            run = cls.name if row.variant == "default" else f"{cls.name} {row.variant}"
            found.append((label, f"row {label} = `{run}` ({(row.encoder or cls.default_encoder).upper()})"))
    return "; ".join(text for _, text in sorted(found))


def selector_for(name: str, row: TableRow) -> Selector:
    return Selector(name, row.variant, row.encoder, "jbm" if row.fuse else row.modality, fused=bool(row.fuse))


def _attach_harness_rows(number: int, rows: list[RowSpec], modality_index: int | None) -> list[RowSpec]:
    """Give paper rows their harness selectors (the rows methods say they fill) and append every other
    method row of this table as an extra row."""
    extras = []
    for cls, row in method_rows():
        if number not in row.tables:
            continue
        sel = selector_for(cls.name, row)
        paper_label = row.paper_label(number)
        mod = MODALITY_LABELS.get(sel.modality or cls.default_modality, "")
        target = None
        for r in rows:
            if paper_label and r.label == paper_label and (modality_index is None or r.info[modality_index] == mod):
                target = r
                break
        if target is not None:
            target.selector = sel
            target.run_note = row.note_for(number)
        else:
            if modality_index is not None:  # Table 1: publisher, modality
                info: tuple[str, ...] = ("harness", mod)
            elif number == 5:  # Table 5: what the row is, encoder
                info = (f"extra harness row ({cls.paradigm or cls.name})", (row.encoder or "").upper())
            else:
                info = ()
            extras.append(RowSpec(row.label, info=info, selector=sel, group=EXTRA_GROUP,
                                  expand_encoders=row.encoder is None, run_note=row.note_for(number)))
    return rows + extras


def paper_datasets() -> frozenset[str]:
    """The dataset kinds the paper's columns report (the tables compare ours with the paper's only there)."""
    return frozenset(c.dataset for spec in table_specs().values() for c in spec.columns)


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
    t5_rows = [RowSpec(f"{row}", info=(what, enc), paper=vals) for row, what, enc, vals in paper.TABLE5]
    return {
        1: TableSpec(1, "Table 1 — Unsupervised action recognition (linear evaluation). J: joint, M: motion, B: bone",
                     ("Method", "Publisher", "Modality"), t1_cols, _attach_harness_rows(1, t1_rows, 1),
                     notes=("Rows with modality J+M+B in the \"3s-ensemble\" group are ensembles of three "
                            "separately trained streams; the harness fills 3s-USDRL (DSTE) from fused rows "
                            "(`harness fuse --record` or `harness reproduce --table 1`), whose value is the top-1 of "
                            "the summed per-stream softmax scores of the final-epoch linear heads (not best-of).",
                            "UmURL's J+M+B row is one model on the fused multi-modal representation (docs/reference/methods.md §2): "
                            "the harness `umurl` rows fill it.",
                            "Beside the paper's SGD probe: the whitened readout (a logistic regression on "
                            "PCA-whitened features, which needs no learning rate) and the effective rank of the "
                            "features (Table 6 has every collapse diagnostic).",),
                     extra_measures=("recog_white", "erank")),
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
                     ("Row", "What the paper's text establishes", "Encoder"), t5_cols,
                     _attach_harness_rows(5, t5_rows, None),
                     notes=("The paper's VAC / XC / MG-FD check marks are lost in its text rendering; the rows "
                            "are mapped as docs/reference/paper-tables.md establishes, each by the method row that "
                            f"says it fills it: {_paper_row_mapping(5)}.",
                            "Rows 5 and 6 are the two partial DSTE variants (without XC; single-grained). **Their "
                            "order is unknown in the paper**: the mapping above is an arbitrary choice.")),
        6: TableSpec(6, "Table 6 — Collapse diagnostics of the pooled features (harness; not in the paper)",
                     ("Method",), (), _attach_harness_rows(6, [], None),
                     notes=("On the test part of the split, from the frozen backbone (the features linear probing "
                            "and kNN read); protocol `features`. A representation has collapsed when most of its "
                            "variance lies in one direction (top direction ≥ 90 %) or its effective rank is below "
                            "2; `harness run` warns then.",
                            "mean cosine and std are ×100; std is that of the L2-normalised features, 100/√D for an "
                            "isotropic cloud of D dimensions.",),
                     extra_measures=("erank", "top1_share", "mean_cos", "mean_std")),
    }


