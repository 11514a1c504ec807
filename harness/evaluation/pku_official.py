"""The official PKU-MMD scorer (ECHO960/PKU-MMD ``evaluate.py``, function ``ap``) and its aggregates.

* Overlap: continuous IoU without +1 (docs/reference/protocols.md §6, "Overlap"; conventions compared
  in §9.2).
* Matching (§6): proposals sorted by score ascending (stable); each proposal independently takes the
  best GT with IoU ≥ θ (same label and video, the later GT on ties) — not one-to-one, duplicates
  raise a GT's count.
* ``ap`` (§6, "Sweep"): precision is evaluated right after each matched proposal is removed, with a
  running-max envelope that starts at the full set's precision; recall is integrated from R(all) down.
* Aggregates (§6, "Aggregates printed by the official script"): F1, pooled AP, mAP_a (classes 1..C
  summed and divided by C, 51 for PKU-MMD), mAP_v (over the videos that have a proposal file; the
  other variants are §8) and 2DAP (pooled AP averaged over θ = 0.05, 0.10, …, 1.00).

Test vectors: §9.1 (single class, single video) and §9.4 (end to end).
"""

from __future__ import annotations

from typing import Sequence

from .pku_types import GT, PKU_NUM_CLASSES, Det, GTs, Props, by_class, pooled

TWO_D_THETAS = tuple((i + 1) * 0.05 for i in range(20))  # 0.05 .. 1.00, computed as the script does


def iou_official(s1: float, e1: float, s2: float, e2: float) -> float:
    """Continuous temporal IoU without +1 (may be ≤ 0 for disjoint intervals;
    docs/reference/protocols.md §6).

    ``(min(e1, e2) − max(s1, s2)) / (max(e1, e2) − min(s1, s2))``. A zero union (two identical
    points) is 0 here; the official script would divide by zero.
    """
    union = max(e1, e2) - min(s1, s2)
    if union == 0:
        return 0.0
    return (min(e1, e2) - max(s1, s2)) / union


def _pr(positive: int, proposals: int, ground: int) -> tuple[float, float]:
    if proposals == 0 or ground == 0:
        return 0.0, 0.0
    return positive / proposals, positive / ground


def official_match(proposals: Sequence[Det], gts: Sequence[GT], theta: float) -> list[int]:
    """For each proposal, the index of its GT (best IoU ≥ θ, same label and video, later wins ties), or −1."""
    groups: dict[tuple[int, str], list[int]] = {}
    for j, g in enumerate(gts):
        groups.setdefault((int(g.label), g.video), []).append(j)
    out = []
    for p in proposals:
        best, best_iou = -1, 0.0
        for j in groups.get((int(p.label), p.video), ()):
            g = gts[j]
            o = iou_official(p.start, p.end, g.start, g.end)
            if o < theta:
                continue
            if best != -1 and o < best_iou:
                continue
            best, best_iou = j, o
        out.append(best)
    return out


def official_ap(proposals: Sequence[Det], gts: Sequence[GT], theta: float = 0.5) -> float:
    """The official PKU-MMD ``ap`` (docs/reference/protocols.md §6) of a proposal set against a GT set."""
    order = sorted(range(len(proposals)), key=lambda i: proposals[i].score)  # stable, ascending
    props = [proposals[i] for i in order]
    assign = official_match(props, gts, theta)
    count = [0] * len(gts)
    for g in assign:
        if g != -1:
            count[g] += 1
    positive = sum(1 for c in count if c > 0)
    n, n_gt = len(props), len(gts)
    best, r_prev = _pr(positive, n, n_gt)
    score = 0.0
    for g in assign:
        n -= 1
        if g == -1:
            continue
        count[g] -= 1
        if count[g] == 0:
            positive -= 1
        p, r = _pr(positive, n, n_gt)
        if p > best:
            best = p
        score += best * (r_prev - r)
        r_prev = r
    return score


def official_pr(proposals: Sequence[Det], gts: Sequence[GT], theta: float = 0.5) -> tuple[float, float]:
    """Set precision and recall: (distinct GTs covered)/#proposals and /#GT; (0, 0) if either is empty."""
    assign = official_match(proposals, gts, theta)
    positive = len({g for g in assign if g != -1})
    return _pr(positive, len(proposals), len(gts))


def official_f1(proposals: Sequence[Det], gts: Sequence[GT], theta: float = 0.5) -> float:
    p, r = official_pr(proposals, gts, theta)
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def map_action(props: Props, gts: GTs, theta: float = 0.5, num_classes: int = PKU_NUM_CLASSES,
               videos: Sequence[str] | None = None) -> tuple[float, list[float]]:
    """Official mAP_a: per-class ``ap`` pooled over ``videos`` (default: those with proposals), / C."""
    videos = sorted(props) if videos is None else list(videos)
    groups = by_class(props, gts, videos)
    per_class = [official_ap(*groups.get(c, ([], [])), theta) for c in range(1, num_classes + 1)]
    return (sum(per_class) / num_classes if num_classes else 0.0), per_class


def map_video(props: Props, gts: GTs, theta: float = 0.5, videos: Sequence[str] | None = None,
              num_classes: int = PKU_NUM_CLASSES) -> tuple[float, dict[str, float]]:
    """mAP_v: official ``ap`` per video (all classes, labels must match) averaged over ``videos``.

    ``videos=None`` is the official variant (docs/reference/protocols.md §8): the videos that have a
    proposal file. Pass every test video for the SSD variant, where a video without detections
    scores 0.
    """
    videos = sorted(props) if videos is None else list(videos)
    per_video = {}
    for v in videos:
        p, g = pooled(props, gts, [v], num_classes)
        per_video[v] = official_ap(p, g, theta)
    return (sum(per_video.values()) / len(videos) if videos else 0.0), per_video


def evaluate_official(props: Props, gts: GTs, theta: float = 0.5, num_classes: int = PKU_NUM_CLASSES,
                      two_d: bool = True) -> dict:
    """The official script's printout (docs/reference/protocols.md §6): F1, AP, mAP_a, mAP_v, 2DAP,
    over the videos with proposals.

    ``props`` holds one entry per proposal file (an empty list for an empty file); GT is read only
    for those videos.
    """
    videos = sorted(props)
    all_p, all_g = pooled(props, gts, videos, num_classes)
    precision, recall = official_pr(all_p, all_g, theta)
    m_a, per_class = map_action(props, gts, theta, num_classes, videos)
    m_v, per_video = map_video(props, gts, theta, videos, num_classes)
    out = {
        "theta": theta,
        "precision": precision,
        "recall": recall,
        "F1": 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall),
        "AP": official_ap(all_p, all_g, theta),
        "mAP_a": m_a,
        "mAP_v": m_v,
        "per_class": per_class,
        "per_video": per_video,
        "num_videos": len(videos),
        "num_proposals": len(all_p),
        "num_gt": len(all_g),
    }
    if two_d:
        out["2DAP"] = two_d_ap(all_p, all_g)
    return out


def two_d_ap(all_props: Sequence[Det], all_gts: Sequence[GT]) -> float:
    """2DAP: the pooled official AP averaged over θ = 0.05, 0.10, …, 1.00."""
    return sum(official_ap(all_props, all_gts, t) for t in TWO_D_THETAS) / len(TWO_D_THETAS)
