"""Frame posteriors → action intervals (docs/reference/protocols.md §5.1 and §5.2). Pure NumPy.

Every function takes per-frame posteriors ``(L, 1 + C)`` — column 0 is the background, column c the
class c (1-based, the PKU-MMD label) — and returns intervals ``(label, start, end, score)`` with
``end`` exclusive, in frames of the posterior array.

§5.1 ("naive", SSD ``get_segments``), composed by :func:`frames_to_intervals`:

1. optionally pad to a fixed length with background rows (P(bg) = 1) — the reference pads every
   video to 9,000 frames (:func:`pad_background`);
2. mean filter with half-width ``k`` (:func:`smooth_posteriors`): frame i averages the frames
   ``[max(i − k, 0), min(i + k, L − 1))``, i.e. k frames before, the frame itself and k − 1 after —
   a **2k-frame window** (k = 10 ↔ the 20-frame window). The last array frame never contributes;
3. activity ``1 − y[t, 0] ≥ threshold`` (0.4); every maximal active run ``[s, e)`` is one interval
   whose class is the argmax of the run-mean of the (smoothed) class columns and whose score is
   that mean (:func:`get_segments`).

Harness rule ``split`` (:func:`split_segments`): §5.1's active runs, each cut where the smoothed
posteriors' most likely class changes and the new class holds for at least ``min_len`` frames
(shorter flickers stay with the piece before them). Real recordings pack actions of different
classes with gaps of a few frames, which the 2k-frame mean filter bridges; §5.1 then reports the
pair as one interval of one class.

§5.2 (USDRL+): :func:`class_threshold_segments`, one interval per maximal run of ``p_c > 0.02`` for
every class c, scored by the run-mean of ``p_c``; classes may overlap, nothing is smoothed.
"""

from __future__ import annotations

import numpy as np

Interval = tuple[int, int, int, float]  # (label 1..C, start, end exclusive, score)

PKU_PAD_FRAMES = 9000  # the reference pads every test video's posteriors to this many frames


def _as_posteriors(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"posteriors must be (frames, 1 + classes) with at least one class, got {x.shape}")
    return x


def pad_background(x: np.ndarray, pad_to: int) -> np.ndarray:
    """Append background rows (P(bg) = 1, classes 0) up to ``pad_to`` frames.

    Arrays already at least ``pad_to`` long are returned unchanged (the reference's fixed array would
    simply be too short for them).
    """
    x = np.asarray(x, dtype=np.float64)
    if pad_to <= len(x):
        return x
    pad = np.zeros((pad_to - len(x),) + x.shape[1:], dtype=np.float64)
    pad[:, 0] = 1.0
    return np.concatenate([x, pad], axis=0)


def smooth_posteriors(x: np.ndarray, k: int) -> np.ndarray:
    """The §5.1 mean filter: ``y[i] = mean(x[max(i − k, 0) : min(i + k, L − 1)])`` (end exclusive).

    Summation is sequential over the window's frames (what ``np.mean(x[a:b], axis=0)`` does on a
    2-D array), vectorised over i. ``k <= 0`` returns a copy (no smoothing). A one-frame array has an
    empty window; its only frame is returned unchanged.
    """
    x = np.asarray(x, dtype=np.float64)
    if k <= 0 or len(x) <= 1:
        return x.copy()
    n = len(x)
    i = np.arange(n)
    lo = np.maximum(i - k, 0)
    hi = np.minimum(i + k, n - 1)
    count = hi - lo  # >= 1 for every i when n >= 2 and k >= 1
    acc = np.zeros_like(x)
    for j in range(2 * k):
        rows = np.flatnonzero(j < count)
        if len(rows) == 0:
            break
        acc[rows] += x[lo[rows] + j]
    shape = (n,) + (1,) * (x.ndim - 1)
    return acc / count.reshape(shape)


def active_runs(active: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True as ``[(start, end_exclusive), ...]``."""
    a = np.asarray(active, dtype=bool)
    if a.size == 0:
        return []
    edges = np.diff(np.concatenate([[0], a.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), ends.tolist()))


def get_segments(scores: np.ndarray, threshold: float = 0.4) -> list[Interval]:
    """§5.1 steps 2–4 on (already smoothed) posteriors: one interval per maximal active run.

    A frame is active when ``1 − scores[t, 0] >= threshold``. The run's class is the argmax of the
    run-mean over columns 1..C (the first on ties) and its score is that mean.
    """
    y = _as_posteriors(scores)
    out: list[Interval] = []
    for s, e in active_runs(1.0 - y[:, 0] >= threshold):
        mean = y[s:e, 1:].mean(axis=0)
        c = int(np.argmax(mean))
        out.append((c + 1, int(s), int(e), float(mean[c])))
    return out


def frames_to_intervals(posteriors: np.ndarray, k: int = 10, threshold: float = 0.4,
                        pad_to: int = 0) -> list[Interval]:
    """The whole §5.1 rule: pad (``pad_to`` > 0; the reference uses 9,000), smooth (window 2k), segment.

    Intervals are in frames of the padded array, so a run may reach past the real frames (as in the
    reference, which does not clip them).
    """
    return get_segments(_padded_smoothed(posteriors, k, pad_to), threshold)


def _padded_smoothed(posteriors: np.ndarray, k: int, pad_to: int) -> np.ndarray:
    """§5.1 steps 1–2, shared by ``naive`` and ``split``: pad (``pad_to`` > 0), then smooth."""
    x = _as_posteriors(posteriors)
    if pad_to > 0:
        x = pad_background(x, pad_to)
    return smooth_posteriors(x, k)


def split_run(y: np.ndarray, start: int, end: int, min_len: int) -> list[Interval]:
    """One active run ``[start, end)`` of smoothed posteriors ``y`` → one interval per stretch of one
    most likely class lasting ``min_len`` frames or more (shorter stretches join the stretch before
    them, the first one the stretch after it); neighbours that end up with the same class are one."""
    cls = y[start:end, 1:].argmax(axis=1)
    bounds = [0, *(np.flatnonzero(np.diff(cls)) + 1).tolist(), end - start]
    pieces: list[list[int]] = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if pieces and b - a < min_len:
            pieces[-1][1] = b
        else:
            pieces.append([a, b])
    if len(pieces) > 1 and pieces[0][1] - pieces[0][0] < min_len:
        first = pieces.pop(0)
        pieces[0][0] = first[0]
    out: list[Interval] = []
    for a, b in pieces:
        mean = y[start + a:start + b, 1:].mean(axis=0)
        c = int(np.argmax(mean))
        if out and out[-1][0] == c + 1:
            a = out.pop()[1] - start
            mean = y[start + a:start + b, 1:].mean(axis=0)
        out.append((c + 1, start + a, start + b, float(mean[c])))
    return out


def split_segments(posteriors: np.ndarray, k: int = 10, threshold: float = 0.4, pad_to: int = 0,
                   min_len: int = 20) -> list[Interval]:
    """§5.1 (pad, smooth, active runs), each run split at lasting class changes (:func:`split_run`)."""
    y = _padded_smoothed(posteriors, k, pad_to)
    out: list[Interval] = []
    for s, e in active_runs(1.0 - y[:, 0] >= threshold):
        out += split_run(y, int(s), int(e), max(int(min_len), 1))
    return out


def class_threshold_segments(posteriors: np.ndarray, threshold: float = 0.02) -> list[Interval]:
    """§5.2: for each class c ≥ 1 every maximal run of ``p_c > threshold`` → (c, u, v, mean p_c).

    Ordered by class, then start. Background (column 0) is never a class.
    """
    x = _as_posteriors(posteriors)
    out: list[Interval] = []
    for c in range(1, x.shape[1]):
        col = x[:, c]
        for s, e in active_runs(col > threshold):
            out.append((c, int(s), int(e), float(col[s:e].mean())))
    return out


SEGMENT_RULES = ("naive", "split", "class_threshold")


def segments_by_rule(posteriors: np.ndarray, rule: str = "naive", *, k: int = 10, threshold: float = 0.4,
                     pad_to: int = 0, min_len: int = 20, class_threshold: float = 0.02) -> list[Interval]:
    """One of :data:`SEGMENT_RULES` by name (the detection protocol's ``segments`` option)."""
    if rule == "class_threshold":
        return class_threshold_segments(posteriors, class_threshold)
    if rule == "split":
        return split_segments(posteriors, k=k, threshold=threshold, pad_to=pad_to, min_len=min_len)
    if rule == "naive":
        return frames_to_intervals(posteriors, k=k, threshold=threshold, pad_to=pad_to)
    raise ValueError(f"unknown segments rule {rule!r}; one of {', '.join(SEGMENT_RULES)}")
