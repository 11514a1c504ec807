"""Windows and per-frame targets of untrimmed videos for the detection protocol
(docs/reference/protocols.md §5).

A window reads ``frames`` frames, every ``step``-th one, so it spans ``frames · step`` video frames;
frames past a video's end read as zeros. Targets are label + 1 on every interval [start, end) of
``intervals.csv`` and 0 (background) elsewhere (§5.1 "Data"; §5.2 uses the same 0 = background,
1..C = classes).
"""

from __future__ import annotations

import numpy as np

from harness.data.prepared.format import PreparedDataset


def frame_targets(ds: PreparedDataset, i: int) -> np.ndarray:
    """Per-frame targets of video i: label + 1 on its intervals (later rows win overlaps), 0 elsewhere."""
    t = np.zeros(int(ds.lengths[i]), dtype=np.int64)
    for row in ds.video_intervals(i).itertuples():
        t[int(row.start):int(row.end)] = int(row.label) + 1
    return t


def window_frames(start: int, frames: int, step: int, length: int) -> np.ndarray:
    """The video frames a window reads: ``start``, ``start + step``, … (``frames`` of them), cut at
    the video's end."""
    idx = start + step * np.arange(frames)
    return idx[idx < length]


def read_window(ds: PreparedDataset, i: int, start: int, frames: int, step: int = 1) -> np.ndarray:
    """(3, frames, V, M) from video i: every ``step``-th frame from ``start``; frames past the video
    are zero."""
    idx = window_frames(start, frames, step, int(ds.lengths[i]))
    out = np.zeros((3, frames) + ds.data.shape[3:], dtype=np.float32)
    if len(idx):
        out[:, : len(idx)] = ds.data[i, :, idx[0]:idx[-1] + 1:step]
    return out


def window_starts(length: int, frames: int, stride: int) -> list[int]:
    """Sliding-window starts covering every frame of a video; the last window ends at the video's end."""
    last = max(length - frames, 0)
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return starts
