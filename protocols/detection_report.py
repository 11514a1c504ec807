"""What the detection protocol reports beyond the official scores: mAP_a over class subsets, the
window time scale it chose, and per-video diagnostics that show a collapsed or merging head at once.

**Class subsets.** The official mAP_a sums AP over all C classes and divides by C, so on a subset of
a dataset (the PKU-MMD I interaction videos hold 8 of the 51 classes almost exclusively) a class with
no test action counts as AP 0. Two labelled means sit beside it:

* ``mAP_a_present``: over the classes with at least one test action (the ground truth's classes);
* ``mAP_a_trained``: over the classes with at least one test action *and* at least
  ``min_train_actions`` (5) training actions — the classes a head can have learnt at all.

On a complete dataset (every class in both splits, as NTU-style PKU-MMD I and the synthetic set)
all three agree.

**Diagnostics** (``diagnostics.csv`` in the run folder, one row per test video, totals in
``metrics.json``): the share of action frames whose argmax posterior is their class, of background
frames called background, the numbers of predicted and true intervals, and how many predicted
intervals cover true actions of two or more classes (merged neighbours). :func:`warnings_for`
turns them into the lines ``harness run`` prints.
"""

from __future__ import annotations

import csv
import io
from typing import Iterable

import numpy as np

from harness.data.prepared.format import PreparedDataset
from harness.evaluation import pku_scorer as S

from .detection_data import frame_targets

MIN_TRAIN_ACTIONS = 5
COLLAPSE_ACTION_ACC = 0.05  # under this share of action frames right, the head says "background"


def median_action_frames(ds: PreparedDataset, train_idx: np.ndarray) -> float:
    """Median length in frames of the training videos' actions (0 if there is none)."""
    lengths = [int(r.end) - int(r.start) for i in train_idx for r in ds.video_intervals(int(i)).itertuples()]
    return float(np.median(lengths)) if lengths else 0.0


def auto_frame_step(ds: PreparedDataset, train_idx: np.ndarray, frames: int) -> int:
    """``frame_step = 0``: the step at which a window of ``frames`` frames spans about one median
    training action (as a pretraining clip, resampled to ``frames``, shows one action)."""
    return _step_for(median_action_frames(ds, train_idx), frames)


def _step_for(median: float, frames: int) -> int:
    return max(1, int(round(median / frames))) if median else 1


def time_scale_note(ds: PreparedDataset, train_idx: np.ndarray, frames: int, step: int) -> str | None:
    """A line for the user when a fixed ``frame_step`` makes windows span under 2/3 or over 3/2 of
    the median training action (on PKU-MMD I the ``cpu`` step 4 spans 128 frames against 77)."""
    median = median_action_frames(ds, train_idx)
    span = frames * step
    if not median or 2 / 3 <= span / median <= 3 / 2:
        return None
    return (f"windows span {span} frames ({frames} frames at step {step}), the median training action "
            f"{median:g}: protocol.options.frame_step=0 fits the step to the actions "
            f"({_step_for(median, frames)} here)")


def class_subsets(ds: PreparedDataset, train_idx: np.ndarray, test_idx: np.ndarray,
                  min_train: int = MIN_TRAIN_ACTIONS) -> dict[str, list[int]]:
    """1-based classes of the ``present`` and ``trained`` means."""
    def counts(idx: np.ndarray) -> dict[int, int]:
        out: dict[int, int] = {}
        for i in idx:
            for label in ds.video_intervals(int(i))["label"].astype(int):
                out[label + 1] = out.get(label + 1, 0) + 1
        return out

    train, test = counts(train_idx), counts(test_idx)
    present = sorted(test)
    return {"present": present, "trained": [c for c in present if train.get(c, 0) >= min_train]}


def subset_scores(props: S.Props, gts: S.GTs, subsets: dict[str, list[int]], thetas: Iterable[float],
                  num_classes: int) -> dict[str, dict[float, float]]:
    """``{subset: {θ: mean official AP over the subset's classes}}`` (0 for an empty subset)."""
    out: dict[str, dict[float, float]] = {name: {} for name in subsets}
    for t in thetas:
        _, per_class = S.map_action(props, gts, t, num_classes)
        for name, classes in subsets.items():
            out[name][t] = float(np.mean([per_class[c - 1] for c in classes])) if classes else 0.0
    return out


def _merged(dets: list[S.Det], gts: list[S.GT]) -> int:
    """Predicted intervals that overlap true actions of two or more classes."""
    n = 0
    for d in dets:
        classes = {g.label for g in gts if min(d.end, g.end) > max(d.start, g.start)}
        n += len(classes) >= 2
    return n


def video_diagnostics(ds: PreparedDataset, files: dict[str, int], post: list[np.ndarray],
                      props: S.Props, gts: S.GTs) -> list[dict]:
    """One row per test video: frame accuracy on action and background frames, interval counts."""
    rows = []
    for (v, i), p in zip(files.items(), post):
        target = frame_targets(ds, i)
        pred = np.asarray(p).argmax(axis=1)[: len(target)]
        action = target > 0
        rows.append({"video": v[:-4], "frames": int(len(target)), "action_frames": int(action.sum()),
                     "action_frames_right": int((pred[action] == target[action]).sum()),
                     "background_frames": int((~action).sum()),
                     "background_frames_right": int((pred[~action] == 0).sum()),
                     "true_intervals": len(gts[v]), "predicted_intervals": len(props[v]),
                     "merged_intervals": _merged(props[v], gts[v])})
    return rows


def totals(rows: list[dict]) -> dict[str, float]:
    """The diagnostics summed over videos, with the two frame accuracies."""
    keys = ("frames", "action_frames", "action_frames_right", "background_frames", "background_frames_right",
            "true_intervals", "predicted_intervals", "merged_intervals")
    out: dict[str, float] = {k: int(sum(r[k] for r in rows)) for k in keys}
    out["frame_acc_action"] = out["action_frames_right"] / out["action_frames"] if out["action_frames"] else 0.0
    out["frame_acc_background"] = (out["background_frames_right"] / out["background_frames"]
                                   if out["background_frames"] else 0.0)
    return out


def diagnostics_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()


def warnings_for(tot: dict[str, float]) -> list[str]:
    """What a user must see at once: a head that calls (nearly) every action frame background, or
    intervals that swallow neighbouring actions of other classes."""
    out = []
    if tot["action_frames"] and tot["frame_acc_action"] < COLLAPSE_ACTION_ACC:
        out.append(f"the frame head has collapsed to background: {100 * tot['frame_acc_action']:.1f} % of the "
                   f"{int(tot['action_frames'])} action frames get their class "
                   f"({100 * tot['frame_acc_background']:.1f} % of background frames are background)")
    if tot["predicted_intervals"] and tot["merged_intervals"] / tot["predicted_intervals"] >= 0.25:
        out.append(f"{int(tot['merged_intervals'])} of {int(tot['predicted_intervals'])} predicted intervals span "
                   f"true actions of two or more classes (short gaps merged; {int(tot['true_intervals'])} true "
                   "intervals): try protocol.options.segments=split or a smaller smooth_k")
    return out
