"""Per-class results of a dataset from the per-sample predictions kept beside the store
(:mod:`harness.results.predictions`): ``<out>/per_class.md`` and confusion-matrix PNGs, written by
``harness tables``.

**Which rows.** For every registered protocol measure (the metrics the tables show: linear
``top1_best`` and ``top1_whitened``, kNN ``knn1``, semi ``top1_best@f``, detection ``mAP_a``, ...)
the rows of the dataset and preset that record predictions (``extra.predictions``), without sweep
rows, split into columns by method, variant, encoder, modality, evaluated checkpoint, the measure's
sub column (the detection variant) and the dataset subset. Within a column the rows are chosen as the
tables choose a cell's (:func:`harness.tables.cells.pick_cell`): the configuration with the newest row,
then the newest row per (pretraining seed, protocol seed).

**What is shown.** Recognition (predictions of kind ``classification``): per class, the share of its
test samples predicted as that class, in %, averaged over the protocol's seeds within each
pretraining seed, then over pretraining seeds (``n`` in the header); the last line is the overall
accuracy recomputed from the same predictions. The column with the highest recorded mean value gets
a confusion-matrix figure (rows: true class, normalised to 1; summed over its rows). Detection
(``intervals``): per class the official PKU-MMD ``ap`` (:mod:`harness.evaluation.pku_official`) at
the file's θ, averaged the same way; its mean over classes is the official mAP_a. Class names come
from the prepared dataset's ``meta.json`` as recorded in the predictions, else indices.

Every predictions file is verified as it is read (:func:`harness.results.load_predictions`); one that
fails is listed under "Predictions problems" and left out, never read.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from .. import atomic
from ..results import PredictionsError, load_predictions
from ..results.predictions import CLASSIFICATION, INTERVALS, Predictions
from .cells import _same
from .model import MEASURES, pretty_dataset
from .store_frame import load_store

NAME = "per_class.md"
NO_PREDICTIONS = "no per-sample predictions recorded for these rows"


@dataclass
class Column:
    """One method's rows of one measure, and what their predictions give per class."""

    label: str
    rows: list[dict[str, Any]]
    preds: list[tuple[int, Predictions]] = field(default_factory=list)  # (pretraining seed, predictions)
    per_class: np.ndarray | None = None  # (C,) mean over pretraining seeds of the per-seed means
    overall: float = math.nan  # the same mean of the metric recomputed from the predictions
    value: float = math.nan  # the same mean of the rows' recorded values
    n: int = 0  # pretraining seeds


@dataclass
class Section:
    protocol: str
    metric: str
    kind: str
    columns: list[Column]
    class_names: list[str]
    support: np.ndarray  # test samples (recognition) or test actions (detection) per class
    figure: Path | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class PerClassReport:
    path: Path | None = None  # per_class.md, None when nothing was written
    figures: list[Path] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # predictions files that failed verification
    note: str = ""  # why nothing was written


def _label(r: dict[str, Any], sub: str) -> str:
    text = r["method"] + ("" if r["variant"] in ("", "default") else f" {r['variant']}")
    inner = [r["encoder"]] + ([r["modality"]] if r["modality"] not in ("", "joint") else [])
    text += f" ({', '.join(x for x in inner if x)})"
    if r["_checkpoint"]:
        text += f", checkpoint {r['_checkpoint'][:8]}"
    if sub:
        text += f" [{sub}]"
    if r["_extra"].get("dataset_subset"):
        text += f" [subset: {r['_extra']['dataset_subset']}]"
    return text


def _pick(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The newest configuration's rows, the newest per (pretraining seed, protocol seed)."""
    rows = rows.assign(_group=[h if h else f"date:{d}" for h, d in zip(rows["config_hash"], rows["date"])])
    latest = rows.groupby("_group").agg(date=("date", "max"), line=("_line", "max")).sort_values(["date", "line"])
    chosen = rows[rows["_group"] == latest.index[-1]].sort_values(["date", "_line"])
    return chosen.groupby(["_pseed", "seed"], sort=True, dropna=False).tail(1).sort_values("_line").to_dict("records")


def _store_row(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if not k.startswith("_")}


def _per_class(pred: Predictions, num_classes: int) -> np.ndarray:
    if pred.kind == INTERVALS:
        from ..evaluation import pku_scorer as S

        props, gts = pred.detections()
        return np.asarray(S.map_action(props, gts, float(pred.meta["theta"]), num_classes)[1], dtype=float)
    label, correct = pred["label"].astype(np.int64), pred.correct()
    hits = np.bincount(label, weights=correct, minlength=num_classes)[:num_classes]
    total = np.bincount(label, minlength=num_classes)[:num_classes]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, hits / np.maximum(total, 1), np.nan)


def _overall(pred: Predictions, per_class: np.ndarray) -> float:
    return float(np.mean(per_class)) if pred.kind == INTERVALS else pred.accuracy()


def _support(pred: Predictions, num_classes: int) -> np.ndarray:
    if pred.kind == INTERVALS:
        return np.bincount(pred["gt_label"].astype(np.int64) - 1, minlength=num_classes)[:num_classes]
    return np.bincount(pred["label"].astype(np.int64), minlength=num_classes)[:num_classes]


def _seed_mean(items: list[tuple[int, Any]]) -> tuple[Any, int]:
    """Mean over the protocol seeds within each pretraining seed, then over pretraining seeds."""
    by_seed: dict[int, list[Any]] = {}
    for pseed, x in items:
        by_seed.setdefault(int(pseed), []).append(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a class without test samples stays NaN ("—")
        per = [np.nanmean(np.asarray(v, dtype=float), axis=0) for v in by_seed.values()]
        return np.nanmean(np.stack(per), axis=0), len(per)


def _measures() -> list[tuple[str, str, str, tuple]]:
    """(protocol, metric, sub key, extra_equals) of every registered measure, in registry order."""
    return [(m.protocol, m.metric, m.sub_key or "", m.extra_equals) for m in MEASURES.values()]


def collect(results: str | Path, dataset: str, preset: str) -> PerClassReport:
    """The sections of per_class.md from the store and its predictions (nothing written)."""
    report = PerClassReport()
    df = load_store(results)
    df = df[(df["dataset"] == dataset) & (df["preset"] == preset) & ~df["_sweep"].astype(bool)
            & ~df["_fused"].astype(bool)]
    if df.empty:
        report.note = f"the store has no rows of {dataset}/{preset}"
        return report
    has = [bool(e.get("predictions")) for e in df["_extra"]]
    df = df[pd.Series(has, index=df.index)]
    if df.empty:
        report.note = NO_PREDICTIONS
        return report
    seen_files: set[frozenset] = set()
    for protocol, metric, sub_key, equals in _measures():
        rows = df[(df["protocol"] == protocol) & (df["metric"] == metric)]
        if equals:
            ok = [all(k not in e or _same(e[k], want) for k, want in equals) for e in rows["_extra"]]
            rows = rows[pd.Series(ok, index=rows.index, dtype=bool)]
        if rows.empty:
            continue
        labels = pd.Series([_label(r, str(r["_extra"].get(sub_key, "")) if sub_key else "")
                            for r in rows.to_dict("records")], index=rows.index)
        columns = [Column(label, _pick(rows[labels == label])) for label in sorted(set(labels))]
        files = frozenset(r["_extra"]["predictions"] for c in columns for r in c.rows)
        if files in seen_files:  # another metric of the same predictions (detection mAP_v beside mAP_a)
            continue
        seen_files.add(files)
        section = _section(results, protocol, metric, columns, report)
        if section is not None:
            report.sections.append(section)
    if not report.sections and not report.problems:
        report.note = NO_PREDICTIONS + " (none of the tables' measures)"
    report.sections.sort(key=lambda s: s.kind != CLASSIFICATION)  # recognition first, then detection
    return report


def _section(results: str | Path, protocol: str, metric: str, columns: list[Column],
             report: PerClassReport) -> Section | None:
    for col in columns:
        for r in col.rows:
            try:
                col.preds.append((int(r["_pseed"]), load_predictions(results, _store_row(r))))
            except PredictionsError as exc:
                report.problems.append(f"{protocol} {metric}, {col.label}, results.csv line {r['_line']}: {exc}")
    columns = [c for c in columns if c.preds]
    if not columns:
        return None
    first = columns[0].preds[0][1]
    kinds = {p.kind for c in columns for _, p in c.preds}
    num_classes = max(p.num_classes for c in columns for _, p in c.preds)
    notes = []
    if len(kinds) > 1:
        notes.append(f"predictions of several kinds ({', '.join(sorted(kinds))}); shown as {first.kind}")
    prints = {p.meta.get("dataset_fingerprint") for c in columns for _, p in c.preds} - {None}
    if len(prints) > 1:
        notes.append(f"the rows were measured on {len(prints)} different copies of the data (fingerprints "
                     f"{', '.join(sorted(prints))})")
    for col in columns:
        per = [(s, _per_class(p, num_classes)) for s, p in col.preds]
        col.per_class, col.n = _seed_mean(per)
        col.overall = float(_seed_mean([(s, _overall(p, pc)) for (s, p), (_, pc) in zip(col.preds, per)])[0])
        col.value = float(_seed_mean([(int(r["_pseed"]), r["_value"]) for r in col.rows])[0])
    names = first.class_names if first.num_classes == num_classes else [str(i) for i in range(num_classes)]
    return Section(protocol, metric, first.kind, columns, names, _support(first, num_classes), notes=notes)


# --- rendering ---------------------------------------------------------------------------------------
def _pct(x: float) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{100 * x:.1f}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def confusion_figure(section: Section, out_dir: Path) -> Path:
    """The confusion matrix of the best column of a recognition section (rows normalised), as PNG."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    best = max(section.columns, key=lambda c: (c.value if math.isfinite(c.value) else -math.inf))
    c = len(section.class_names)
    cm = sum(confusion_matrix(p["label"], p["pred"], labels=list(range(c))) for _, p in best.preds)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = min(4 + 0.22 * c, 16)  # NTU-120: 16 inches, ticks every 10 classes
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ticks = list(range(c)) if c <= 60 else list(range(0, c, 10))
    names = [f"{i} {section.class_names[i]}" if c <= 60 else str(i) for i in ticks]
    ax.set_xticks(ticks, names, rotation=90, fontsize=7)
    ax.set_yticks(ticks, names, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{section.protocol} {section.metric}: {best.label}\n"
                 f"(rows: true class, normalised; {len(best.preds)} evaluation(s), n={best.n})", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    path = out_dir / f"confusion-{_slug(section.protocol)}-{_slug(section.metric)}.png"
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def render(report: PerClassReport, dataset: str, preset: str) -> str:
    lines = [f"<!-- per-class results: {dataset} {preset} (harness tables) -->",
             f"# Per-class results: {pretty_dataset(dataset)}, preset {preset}", "",
             "- From the per-sample predictions kept beside the store (`predictions/*.npz`, each verified "
             "against its checksums and its row before it is read); rows chosen as the tables choose a cell's "
             "(newest configuration, newest row per pretraining and protocol seed).",
             "- Recognition: per class, the % of its test samples predicted as that class; detection: per class "
             "the official PKU-MMD AP at the file's θ, in %. Each value is averaged over the protocol's seeds "
             "within a pretraining seed, then over pretraining seeds (n). \"—\": the class has no test sample "
             "(the official mAP_a still counts such a class as AP 0).",
             "- Last line: the metric recomputed from the same predictions (accuracy; for detection the mean "
             "per-class AP, the official mAP_a), with the recorded value beside it.", ""]
    for s in report.sections:
        what = "accuracy" if s.kind == CLASSIFICATION else f"AP (official, θ = {s.columns[0].preds[0][1].meta['theta']:g})"
        lines += [f"## {s.protocol} `{s.metric}`: per-class {what}", ""]
        lines += [f"- note: {n}" for n in s.notes]
        headers = ["class", "test samples" if s.kind == CLASSIFICATION else "test actions"]
        headers += [f"{c.label} (n={c.n})" for c in s.columns]
        # a class without test samples or actions shows "—" (the official mAP_a still counts it as AP 0)
        body = [[f"{i} {name}" if name != str(i) else str(i), int(s.support[i])]
                + [_pct(float(c.per_class[i]) if s.support[i] else math.nan) for c in s.columns]
                for i, name in enumerate(s.class_names)]
        body.append(["**recomputed (recorded)**", int(s.support.sum())]
                    + [f"**{_pct(c.overall)}** ({_pct(c.value)})" for c in s.columns])
        lines += [tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), ""]
        if s.figure is not None:
            best = max(s.columns, key=lambda c: (c.value if math.isfinite(c.value) else -math.inf))
            lines += [f"Confusion matrix of the best recorded column ({best.label}): [{s.figure.name}]({s.figure.name})",
                      ""]
    if report.problems:
        lines += ["## Predictions problems", "", "Rows whose predictions could not be trusted (left out above):", ""]
        lines += [f"- {p}" for p in report.problems] + [""]
    return "\n".join(lines)


def write_per_class(results: str | Path, out_dir: str | Path, *, dataset: str, preset: str,
                    figures: bool = True) -> PerClassReport:
    """Write ``out_dir/per_class.md`` (and the confusion matrices) when the dataset's rows recorded
    predictions; else write nothing and say why in ``report.note``."""
    out_dir = Path(out_dir)
    report = collect(results, dataset, preset)
    if not report.sections and not report.problems:
        return report
    if figures:
        for s in report.sections:
            if s.kind == CLASSIFICATION:
                s.figure = confusion_figure(s, out_dir)
                report.figures.append(s.figure)
    report.path = out_dir / NAME
    atomic.write_text(report.path, render(report, dataset, preset))
    return report
