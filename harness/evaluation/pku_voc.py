"""The community VOC-style mAP_a (Simple-Skeleton-Detection ``eval_detect_mAP``;
docs/reference/protocols.md §7).

Inclusive IoU (+1; compared with the official one in §9.2), descending score, first-best GT,
duplicates are false positives, sentinel points, monotone precision, float32 arithmetic, mean over
the classes present in the GT — not a fixed 51. Ties keep the input order of
:mod:`harness.evaluation.pku_types` (a stable sort; the reference's NumPy quicksort leaves it
unspecified). Never mix its numbers with the official scorer's in one table.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .pku_types import GT, Det, GTs, Props, by_class


def iou_inclusive(s1: float, e1: float, s2: float, e2: float) -> float:
    """VOC-style inclusive IoU (+1 on every length); 0 when the intervals do not overlap."""
    iw = min(e1, e2) - max(s1, s2) + 1
    if iw <= 0:
        return 0.0
    ua = (e1 - s1 + 1) + (e2 - s2 + 1) - iw
    return iw / float(ua)


def voc_ap(rec: np.ndarray, prec: np.ndarray) -> np.float32:
    """VOC all-point AP in float32: sentinels (0, 1) / (0, 0), monotone precision, Σ Δrec·prec."""
    mrec = np.concatenate([[0.0], np.asarray(rec, dtype=np.float32), [1.0]]).astype(np.float32)
    mprec = np.concatenate([[0.0], np.asarray(prec, dtype=np.float32), [0.0]]).astype(np.float32)
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return np.sum(np.dot(mrec[i] - mrec[i - 1], mprec[i]))


def voc_class_ap(dets: Sequence[Det], gts: Sequence[GT], theta: float = 0.5) -> np.float32:
    """VOC-style AP of one class: ``dets`` and ``gts`` are that class's, pooled over videos."""
    by_video: dict[str, list[GT]] = {}
    for g in gts:
        by_video.setdefault(g.video, []).append(g)
    taken = {v: [False] * len(b) for v, b in by_video.items()}
    scores = np.array([d.score for d in dets], dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    tp = np.zeros(len(dets))
    fp = np.zeros(len(dets))
    for rank, i in enumerate(order):
        d = dets[i]
        ovmax, jmax = 0.0, -1
        for j, g in enumerate(by_video.get(d.video, ())):
            ov = iou_inclusive(d.start, d.end, g.start, g.end)
            if ov > ovmax:
                ovmax, jmax = ov, j
        if jmax >= 0 and ovmax >= theta and not taken[d.video][jmax]:
            tp[rank] = 1
            taken[d.video][jmax] = True
        else:
            fp[rank] = 1
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    npos = len(gts)
    rec = tp / npos
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = tp / (fp + tp)
    return voc_ap(rec, prec)


def map_voc(props: Props, gts: GTs, theta: float = 0.5,
            videos: Sequence[str] | None = None) -> tuple[float, dict[int, float]]:
    """Community mAP_a: mean (float32) over the classes present in the GT of ``videos``.

    ``videos=None`` means every video with GT plus every video with detections (SSD evaluates all
    test videos). Detections of classes absent from the GT are ignored.
    """
    videos = sorted(set(gts) | set(props)) if videos is None else list(videos)
    groups = by_class(props, gts, videos)
    classes = sorted(c for c, (_, g) in groups.items() if g)
    per_class: dict[int, float] = {}
    aps = []
    for c in classes:
        ap = voc_class_ap(*groups[c], theta)
        aps.append(ap)
        per_class[c] = float(ap)
    if not aps:
        return 0.0, per_class
    return float(np.mean(np.asarray(aps, dtype=np.float32))), per_class
