"""The NTU RGB+D ``.skeleton`` parser: one file → x, y, z of the first 4 bodies of each frame.

File layout (docs/reference/data-formats.md §1), CRLF text::

    frameCount
    per frame:  bodyCount
      per body: 10 values (bodyID clippedEdges ... trackingState)
                25
                25 lines of 12 values: x y z depthX depthY colorX colorY orientationWXYZ trackingState

Every malformed input raises DataError naming the file and the 1-based line.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ....errors import DataError
from ..limits import check_float32

NUM_JOINTS = 25
MAX_BODIES = 4  # bodies read per frame; further ones are dropped (docs/reference/data-formats.md §4 step 1)
BODY_INFO_VALUES = 10
JOINT_VALUES = 12
BODY_LINES = 2 + NUM_JOINTS  # body-info line, joint count line, one line per joint


@dataclass
class SkeletonFile:
    path: Path
    joints: np.ndarray  # float64 (MAX_BODIES, T, 25, 3): x y z of the first 4 bodies per frame
    body_counts: np.ndarray  # int (T,): bodies listed in each frame (may exceed 4)

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[1])


class _Lines:
    """The file's lines with a cursor; every error names the file and the 1-based line."""

    def __init__(self, path: Path, lines: list[str]):
        self.path, self.lines, self.pos = path, lines, 0

    def error(self, message: str, line: int | None = None) -> DataError:
        return DataError(self.path, message, line=self.pos + 1 if line is None else line)

    def next(self, what: str) -> str:
        if self.pos >= len(self.lines):
            raise self.error(f"file ends early (truncated?): expected {what}")
        text = self.lines[self.pos]
        self.pos += 1
        return text

    def next_int(self, what: str) -> int:
        text = self.next(what)
        try:
            return int(text)
        except ValueError:
            raise self.error(f"expected {what} (one integer), got {text.strip()[:60]!r}", self.pos) from None


def read_skeleton(path: str | Path, max_bodies: int = MAX_BODIES) -> SkeletonFile:
    """Parse one ``.skeleton`` file. Raises DataError (file and line) on any malformed input."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read: {exc.strerror or exc}") from None
    if not raw.strip():
        raise DataError(path, "empty file")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(path, "not a text .skeleton file (non-ASCII bytes)", line=line) from None
    cur = _Lines(path, text.splitlines())
    num_frames = cur.next_int("the frame count")
    if num_frames <= 0:
        raise cur.error(f"frame count is {num_frames}: the file holds no frames", 1)
    # nothing is allocated from the claimed count: the loop below stops where the file does, so a
    # corrupt count (10^12 frames) is an error at the file's end, not a multi-terabyte allocation
    counts: list[int] = []
    blocks: list[tuple[int, int, int]] = []  # (frame, body, first joint line index), bodies < max_bodies
    for t in range(num_frames):
        claim = "" if num_frames <= len(cur.lines) else f" of the {num_frames} that line 1 claims"
        count = cur.next_int(f"the body count of frame {t + 1}{claim}")
        if count < 0:
            raise cur.error(f"negative body count {count}", cur.pos)
        left = len(cur.lines) - cur.pos
        # a count the rest of the file cannot hold; up to MAX_BODIES it reads as a cut file ("ends early" below)
        if count > max_bodies and count * BODY_LINES > left:
            raise cur.error(f"frame {t + 1} claims {count} bodies, which would take {count * BODY_LINES} lines "
                            f"({BODY_LINES} per body), but only {left} lines follow: the body count is corrupt",
                            cur.pos)
        counts.append(count)
        for b in range(count):
            info = cur.next(f"the body-info line of frame {t + 1}, body {b + 1}")
            if len(info.split()) != BODY_INFO_VALUES:
                raise cur.error(f"expected {BODY_INFO_VALUES} body-info values (bodyID ... trackingState), "
                                f"got {len(info.split())}", cur.pos)
            joints = cur.next_int(f"the joint count of frame {t + 1}, body {b + 1}")
            if joints != NUM_JOINTS:
                raise cur.error(f"expected {NUM_JOINTS} joints (Kinect v2), got {joints}", cur.pos)
            if cur.pos + NUM_JOINTS > len(cur.lines):
                cur.pos = len(cur.lines)
                raise cur.error(f"file ends early (truncated?) inside frame {t + 1}, body {b + 1}")
            blocks.append((t, b, cur.pos))
            cur.pos += NUM_JOINTS
    for extra in range(cur.pos, len(cur.lines)):
        if cur.lines[extra].strip():
            raise cur.error(f"unexpected content after the last of the {num_frames} frames", extra + 1)
    body_counts = np.array(counts, dtype=np.int64)
    values = _parse_joint_blocks(cur, [start for _, _, start in blocks])
    joints_out = np.zeros((max_bodies, num_frames, NUM_JOINTS, 3), dtype=np.float64)
    keep = [k for k, (_, b, _) in enumerate(blocks) if b < max_bodies]
    if keep:
        frames = np.array([blocks[k][0] for k in keep])
        bodies = np.array([blocks[k][1] for k in keep])
        joints_out[bodies, frames] = values[keep]
    return SkeletonFile(path, joints_out, body_counts)


def _parse_joint_blocks(cur: _Lines, starts: Sequence[int]) -> np.ndarray:
    """x, y, z of every joint line of every body in one vectorised parse → (blocks, 25, 3).

    Every line must hold 12 numbers (one C-level parse of the whole block); x, y, z must be finite
    and within float32's range, which the prepared data uses.
    """
    if not starts:
        return np.zeros((0, NUM_JOINTS, 3))
    lines = cur.lines
    chunk = [lines[i] for s in starts for i in range(s, s + NUM_JOINTS)]
    counts = np.fromiter(map(len, map(str.split, chunk)), dtype=np.int64, count=len(chunk))
    wrong = np.flatnonzero(counts != JOINT_VALUES)
    if len(wrong):
        k = int(wrong[0])
        raise cur.error(f"expected {JOINT_VALUES} joint values (x y z depthX depthY colorX colorY "
                        f"orientationWXYZ trackingState), got {counts[k]}", _line_of(starts, k))
    try:  # pandas' C tokenizer: every column checked, faster than converting x, y, z alone in Python
        values = pd.read_csv(io.StringIO("\n".join(chunk)), sep=r"\s+", header=None, dtype=np.float64,
                             engine="c").to_numpy().reshape(-1)
    except ValueError:  # a token that is not a number: find it for the message
        values = None
    if values is None or len(values) != len(chunk) * JOINT_VALUES:
        for k, line in enumerate(chunk):
            for name, v in zip(COLUMN_NAMES, line.split()):
                try:
                    float(v)
                except ValueError:
                    raise cur.error(f"{name} {v[:30]!r} is not a number", _line_of(starts, k)) from None
        raise cur.error("joint lines could not be read as numbers", _line_of(starts, 0))  # pragma: no cover
    xyz = values.reshape(len(chunk), JOINT_VALUES)[:, :3]
    bad = ~np.isfinite(xyz).all(axis=1)
    if bad.any():
        raise cur.error("NaN or infinite coordinate (x y z)", _line_of(starts, int(np.argmax(bad))))
    check_float32(xyz, cur.path, lambda i: f"{'xyz'[i % 3]} coordinate", lambda i: _line_of(starts, i // 3))
    return np.ascontiguousarray(xyz).reshape(len(starts), NUM_JOINTS, 3)


COLUMN_NAMES = ("x", "y", "z", "depthX", "depthY", "colorX", "colorY", "orientationW", "orientationX",
                "orientationY", "orientationZ", "trackingState")


def _line_of(starts: Sequence[int], k: int) -> int:
    """1-based file line of the k-th joint line in block order."""
    return starts[k // NUM_JOINTS] + k % NUM_JOINTS + 1
