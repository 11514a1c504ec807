"""PKU-MMD detection scoring (docs/reference/protocols.md §6–§9): everything ``harness eval-detection``
and the detection protocol report. Pure Python/NumPy, no torch.

Two scorers with different conventions, never to be mixed in one table:

* the **official** PKU-MMD ``ap`` and its aggregates F1, AP, mAP_a, mAP_v, 2DAP
  (:mod:`harness.evaluation.pku_official`, docs/reference/protocols.md §6);
* the **community VOC-style** mAP_a (:mod:`harness.evaluation.pku_voc`, docs/reference/protocols.md
  §7).

The mAP_v variants are §8; the test vectors of §9 are in tests/test_pku_scorer.py. The items and
their pooling order are :mod:`harness.evaluation.pku_types`; interval files are read and written by
:mod:`harness.evaluation.pku_files`. This module combines them in :func:`evaluate_all` and
re-exports their public names, so ``from harness.evaluation import pku_scorer as S`` reaches them
all (``S.Det``, ``S.official_ap``, ``S.map_voc``, ``S.read_folder``, ``S.format_intervals``, ...).
"""

from __future__ import annotations

from typing import Sequence

from .pku_files import format_intervals, list_interval_files, parse_interval_line, read_folder, read_interval_file
from .pku_official import (TWO_D_THETAS, evaluate_official, iou_official, map_action, map_video, official_ap,
                           official_f1, official_match, official_pr, two_d_ap)
from .pku_types import GT, PKU_NUM_CLASSES, Det, GTs, Props, by_class, pooled
from .pku_voc import iou_inclusive, map_voc, voc_ap, voc_class_ap

__all__ = [
    "DEFAULT_SWEEP", "GT", "PKU_NUM_CLASSES", "TWO_D_THETAS", "Det", "GTs", "Props", "by_class",
    "evaluate_all", "evaluate_official", "format_intervals", "iou_inclusive", "iou_official",
    "list_interval_files", "map_action", "map_video", "map_voc", "official_ap", "official_f1",
    "official_match", "official_pr", "parse_interval_line", "pooled", "read_folder",
    "read_interval_file", "two_d_ap", "voc_ap", "voc_class_ap",
]

DEFAULT_SWEEP = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def evaluate_all(props: Props, gts: GTs, theta: float = 0.5, num_classes: int = PKU_NUM_CLASSES,
                 sweep: Sequence[float] = DEFAULT_SWEEP, two_d: bool = True) -> dict:
    """Everything ``harness eval-detection`` prints: official metrics, VOC mAP_a, mAP_v variants, θ sweep.

    * ``mAP_a``, ``mAP_v``, ``F1``, ``AP``, ``2DAP``: official, over the videos with proposals;
    * ``mAP_v_all``: official per-video ``ap`` averaged over every video with GT or proposals (the
      SSD variant, docs/reference/protocols.md §8);
    * ``mAP_a_voc``: community VOC-style mAP_a over every video with GT or proposals
      (docs/reference/protocols.md §7).
    """
    off = evaluate_official(props, gts, theta, num_classes, two_d=two_d)
    all_videos = sorted(set(gts) | set(props))
    m_v_all, _ = map_video(props, gts, theta, all_videos, num_classes)
    m_voc, voc_per_class = map_voc(props, gts, theta, all_videos)
    all_p, all_g = pooled(props, gts, sorted(props), num_classes)
    rows = []
    for t in sweep:
        m_a_t, _ = map_action(props, gts, t, num_classes)
        m_v_t, _ = map_video(props, gts, t, None, num_classes)
        rows.append({"theta": t, "mAP_a": m_a_t, "mAP_v": m_v_t, "AP": official_ap(all_p, all_g, t),
                     "mAP_a_voc": map_voc(props, gts, t, all_videos)[0]})
    return {
        "theta": theta,
        "num_classes": num_classes,
        "mAP_a": off["mAP_a"],
        "mAP_v": off["mAP_v"],
        "mAP_a_voc": m_voc,
        "mAP_v_all": m_v_all,
        "F1": off["F1"],
        "AP": off["AP"],
        "2DAP": off.get("2DAP"),
        "precision": off["precision"],
        "recall": off["recall"],
        "num_videos": off["num_videos"],
        "num_videos_all": len(all_videos),
        "num_proposals": off["num_proposals"],
        "num_gt": off["num_gt"],
        "per_class_ap": off["per_class"],
        "per_class_ap_voc": {str(k): v for k, v in voc_per_class.items()},
        "per_video_ap": off["per_video"],
        "sweep": rows,
    }
