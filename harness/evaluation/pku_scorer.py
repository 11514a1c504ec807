"""PKU-MMD detection scoring (protocols.md §6–§8). Pure Python/NumPy, no torch.

Two scorers with different conventions, never to be mixed in one table:

* **Official** (:func:`official_ap`, ECHO960/PKU-MMD ``evaluate.py`` function ``ap``): continuous IoU
  without +1; proposals sorted by score ascending (stable); each proposal independently takes the
  best GT with IoU ≥ θ (same label and video, the later GT on ties) — not one-to-one, duplicates
  raise a GT's count; precision is evaluated right after each matched proposal is removed, with a
  running-max envelope that starts at the full set's precision, and recall is integrated from
  R(all) down. Aggregates (:func:`evaluate_official`): F1, pooled AP, mAP_a (classes 1..C summed and
  divided by C, 51 for PKU-MMD), mAP_v (over the videos that have a proposal file) and 2DAP
  (pooled AP averaged over θ = 0.05, 0.10, …, 1.00).
* **Community VOC-style mAP_a** (:func:`map_voc`, Simple-Skeleton-Detection ``eval_detect_mAP``):
  inclusive IoU (+1), descending score, first-best GT, duplicates are false positives, sentinel
  points, monotone precision, float32 arithmetic, mean over the classes present in the GT.

Input order matters only for ties, so it is fixed here: videos in sorted name order, then the
lines of each file. Pooled (all-class) proposal lists are class-major (label 1..C, then video, then
line), as in the official script. Ties in the VOC scorer keep that order (a stable sort; the
reference's NumPy quicksort leaves it unspecified).

Files (:func:`read_interval_file`): one line per interval, ``label,start,end,score`` (commas or
spaces) for predictions and ``label,start,end,confidence`` for PKU-MMD ground truth; the file name
is the video name, the same in both folders.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple, Sequence

import numpy as np

from harness.errors import DataError

PKU_NUM_CLASSES = 51
TWO_D_THETAS = tuple((i + 1) * 0.05 for i in range(20))  # 0.05 .. 1.00, computed as the script does
DEFAULT_SWEEP = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class Det(NamedTuple):
    """A proposal / detection: PKU label (1..C), start, end, score, video name."""

    label: int
    start: float
    end: float
    score: float
    video: str = ""


class GT(NamedTuple):
    """A ground-truth instance: PKU label (1..C), start, end, video; the confidence is ignored."""

    label: int
    start: float
    end: float
    video: str = ""


# --- overlaps ----------------------------------------------------------------------------------
def iou_official(s1: float, e1: float, s2: float, e2: float) -> float:
    """Continuous temporal IoU without +1 (may be ≤ 0 for disjoint intervals).

    ``(min(e1, e2) − max(s1, s2)) / (max(e1, e2) − min(s1, s2))``. A zero union (two identical
    points) is 0 here; the official script would divide by zero.
    """
    union = max(e1, e2) - min(s1, s2)
    if union == 0:
        return 0.0
    return (min(e1, e2) - max(s1, s2)) / union


def iou_inclusive(s1: float, e1: float, s2: float, e2: float) -> float:
    """VOC-style inclusive IoU (+1 on every length); 0 when the intervals do not overlap."""
    iw = min(e1, e2) - max(s1, s2) + 1
    if iw <= 0:
        return 0.0
    ua = (e1 - s1 + 1) + (e2 - s2 + 1) - iw
    return iw / float(ua)


# --- the official ap ---------------------------------------------------------------------------
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
    """The official PKU-MMD ``ap`` (§6) of a proposal set against a GT set."""
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


# --- pooled sets and aggregates ----------------------------------------------------------------
Props = Mapping[str, Sequence[Det]]
GTs = Mapping[str, Sequence[GT]]


def by_class(props: Props, gts: GTs, videos: Sequence[str]) -> dict[int, tuple[list[Det], list[GT]]]:
    """{label: (proposals, GTs)} of ``videos``, each list in video order, then line order.

    Items are re-tagged with the video key they are stored under.
    """
    out: dict[int, tuple[list[Det], list[GT]]] = {}
    for v in videos:
        for d in props.get(v, ()):
            out.setdefault(int(d.label), ([], []))[0].append(d._replace(video=v))
        for g in gts.get(v, ()):
            out.setdefault(int(g.label), ([], []))[1].append(g._replace(video=v))
    return out


def pooled(props: Props, gts: GTs, videos: Sequence[str], num_classes: int,
           label: int | None = None) -> tuple[list[Det], list[GT]]:
    """Proposals and GTs of ``videos`` (class-major: label, video, line), optionally one label only."""
    groups = by_class(props, gts, videos)
    labels = [label] if label is not None else range(1, num_classes + 1)
    p_out: list[Det] = []
    g_out: list[GT] = []
    for c in labels:
        p, g = groups.get(c, ([], []))
        p_out += p
        g_out += g
    return p_out, g_out


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

    ``videos=None`` is the official variant (§8): the videos that have a proposal file. Pass every
    test video for the SSD variant, where a video without detections scores 0.
    """
    videos = sorted(props) if videos is None else list(videos)
    per_video = {}
    for v in videos:
        p, g = pooled(props, gts, [v], num_classes)
        per_video[v] = official_ap(p, g, theta)
    return (sum(per_video.values()) / len(videos) if videos else 0.0), per_video


def evaluate_official(props: Props, gts: GTs, theta: float = 0.5, num_classes: int = PKU_NUM_CLASSES,
                      two_d: bool = True) -> dict:
    """The official script's printout (§6): F1, AP, mAP_a, mAP_v, 2DAP, over the videos with proposals.

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


# --- community VOC-style mAP_a (§7) ------------------------------------------------------------
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


def evaluate_all(props: Props, gts: GTs, theta: float = 0.5, num_classes: int = PKU_NUM_CLASSES,
                 sweep: Sequence[float] = DEFAULT_SWEEP, two_d: bool = True) -> dict:
    """Everything ``harness eval-detection`` prints: official metrics, VOC mAP_a, mAP_v variants, θ sweep.

    * ``mAP_a``, ``mAP_v``, ``F1``, ``AP``, ``2DAP``: official, over the videos with proposals;
    * ``mAP_v_all``: official per-video ``ap`` averaged over every video with GT or proposals (the
      SSD variant, §8);
    * ``mAP_a_voc``: community VOC-style mAP_a over every video with GT or proposals (§7).
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


# --- files -------------------------------------------------------------------------------------
def parse_interval_line(text: str, path: str | Path, line: int, *, kind: str,
                        num_classes: int) -> tuple[int, float, float, float] | None:
    """One ``label,start,end,score`` line (commas or spaces) → a tuple; ``None`` for a blank line.

    ``kind`` is ``"prediction"`` (exactly 4 fields) or ``"gt"`` (3 or 4; the confidence is ignored
    and read as 1.0 when absent). Labels must be integers in 1..num_classes, numbers finite and
    ``start <= end``; anything else is a :class:`DataError` naming the file and line.
    """
    fields = text.replace(",", " ").split()
    if not fields:
        return None
    allowed = (4,) if kind == "prediction" else (3, 4)
    what = "label,start,end,score" if kind == "prediction" else "label,start,end,confidence"
    if len(fields) not in allowed:
        raise DataError(path, f"expected {what} ({' or '.join(map(str, allowed))} fields), "
                              f"got {len(fields)}: {text.strip()!r}", line=line)
    try:
        nums = [float(f) for f in fields]
    except ValueError:
        raise DataError(path, f"not a number in {text.strip()!r} (expected {what})", line=line) from None
    if not all(math.isfinite(x) for x in nums):
        raise DataError(path, f"non-finite value in {text.strip()!r}", line=line)
    label, start, end = nums[:3]
    rest = nums[3] if len(nums) == 4 else 1.0
    if not label.is_integer():
        raise DataError(path, f"label {fields[0]!r} is not an integer", line=line)
    if not 1 <= label <= num_classes:
        raise DataError(path, f"label {int(label)} outside 1..{num_classes}", line=line)
    if end < start:
        raise DataError(path, f"end {fields[2]} is before start {fields[1]}", line=line)
    return int(label), start, end, rest


def read_interval_file(path: str | Path, *, kind: str = "prediction",
                       num_classes: int = PKU_NUM_CLASSES) -> list:
    """A prediction file → list[Det], or a PKU-MMD label file (``kind="gt"``) → list[GT].

    The video of each item is the file name.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read: {exc}") from None
    video = path.name
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        parsed = parse_interval_line(line, path, n, kind=kind, num_classes=num_classes)
        if parsed is None:
            continue
        label, start, end, last = parsed
        out.append(Det(label, start, end, last, video) if kind == "prediction" else GT(label, start, end, video))
    return out


def list_interval_files(folder: str | Path) -> list[Path]:
    """The regular, non-hidden files of a folder, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def read_folder(folder: str | Path, *, kind: str = "prediction",
                num_classes: int = PKU_NUM_CLASSES) -> dict[str, list]:
    """Every file of ``folder`` → {file name: items}."""
    return {p.name: read_interval_file(p, kind=kind, num_classes=num_classes) for p in list_interval_files(folder)}


def format_intervals(items: Iterable[tuple]) -> str:
    """``label,start,end,score`` lines; floats are written with ``repr`` so they read back exactly."""
    lines = []
    for label, start, end, score in (tuple(x)[:4] for x in items):
        lines.append(f"{int(label)},{_num(start)},{_num(end)},{float(score)!r}")
    return "".join(line + "\n" for line in lines)


def _num(x: float) -> str:
    x = float(x)
    return str(int(x)) if x.is_integer() else repr(x)
