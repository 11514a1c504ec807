"""PKU-MMD raw files: video names, skeleton files and label files (and the class-name list).

Raw layout (docs/reference/data-formats.md §6)::

    ROOT/skeleton/<video>.txt   one line per frame: 150 floats, body 1 then body 2 (25 joints × xyz,
                                Kinect v2 order as NTU); body 2 is all zeros when absent
    ROOT/label/<video>.txt      one line per action: label,start,end,confidence (commas or spaces),
                                labels 1..51; confidence (1 slight, 2 strong) is read and ignored

Video names are ``NNNN-V`` in Phase I (e.g. ``0002-L``) and ``AxxNyy-V`` in Phase II (sequence
group xx, subject yy); V is the Kinect view L, M or R. Columns in samples.csv: ``camera`` = view
(L 1, M 2, R 3), ``setup`` = the sequence number (NNNN or xx), ``subject`` = yy in Phase II and −1
in Phase I (its names do not carry the subject).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ....errors import DataError
from ..text_tables import content_lines, read_float_table, read_text

NUM_CLASSES = 51  # Phase II's 41 actions keep their Phase I ids, as the references do (§6)
NUM_PERSONS = 2
FLOATS_PER_FRAME = NUM_PERSONS * 25 * 3
VIEWS = {"L": 1, "M": 2, "R": 3}
_NAME_PATTERNS = {1: re.compile(r"^(\d{4})-([LMR])$"), 2: re.compile(r"^A(\d{2})N(\d{2})-([LMR])$")}
_NAME_EXAMPLES = {1: "0002-L", 2: "A01N01-L"}
SKELETON_SUFFIXES = (".txt", ".skeleton")
LABEL_SUFFIXES = (".txt", ".label")


# --- names ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PkuVideo:
    name: str
    phase: int
    sequence: int  # Phase I: NNNN; Phase II: the sequence group xx
    subject: int  # Phase II: yy; Phase I: -1 (unknown from the name)
    view: str  # L, M or R

    @property
    def camera(self) -> int:
        return VIEWS[self.view]

    def columns(self) -> dict[str, int]:
        return {"subject": self.subject, "camera": self.camera, "setup": self.sequence}


def infer_phase(name: str) -> int | None:
    for phase, pattern in _NAME_PATTERNS.items():
        if pattern.match(name):
            return phase
    return None


def parse_video_name(name: str, phase: int, path: str | Path | None = None, line: int | None = None) -> PkuVideo:
    m = _NAME_PATTERNS[phase].match(name)
    if not m:
        other = infer_phase(name)
        hint = f" (it looks like a Phase {other} name: pass --phase {other})" if other else ""
        raise DataError(path or name, f"{name!r} is not a Phase {phase} video name like "
                                      f"{_NAME_EXAMPLES[phase]!r}{hint}", line=line)
    if phase == 1:
        return PkuVideo(name, 1, int(m.group(1)), -1, m.group(2))
    return PkuVideo(name, 2, int(m.group(1)), int(m.group(2)), m.group(3))


# --- skeletons and labels ---------------------------------------------------------------------


def read_skeleton(path: str | Path) -> np.ndarray:
    """One skeleton file → float32 (T, 2, 25, 3): frames, bodies, joints, xyz."""
    table = read_float_table(path, FLOATS_PER_FRAME, what="frame")
    return table.reshape(-1, NUM_PERSONS, 25, 3)


def to_clip(frames: np.ndarray) -> np.ndarray:
    """(T, M, V, 3) → the prepared layout (3, T, V, M)."""
    return frames.transpose(3, 0, 2, 1)


def scan_frames(path: str | Path) -> np.ndarray:
    """A cheap first pass over a skeleton file: for each frame line, whether it is written as zeros.

    Gives the frame count (the array's length) before the real parse, so max_frames is known when
    the output is allocated. A frame counts as zero when the line has no digit 1–9 (e.g. "0.000000
    -0.0 0e+00"); the real parse later checks every value.
    """
    try:
        with open(path, "rb") as fh:
            return np.array([line.strip(b" \t\r\n0.-+eE,") == b"" for line in fh
                             if line.strip() and not line.lstrip().startswith(b"#")], dtype=bool)
    except OSError as exc:
        raise DataError(path, f"cannot read: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class Action:
    label: int  # 1..51, as in the file
    start: int  # as in the file
    end: int
    line: int

    def frames(self, convention: str) -> tuple[int, int]:
        """0-based [start, end) of the action in the video under the end convention."""
        return (self.start, self.end) if convention == "exclusive" else (self.start - 1, self.end)


def read_labels(path: str | Path, convention: str = "exclusive") -> list[Action]:
    """A label file → its actions; checks the label range and start < end (file and line on error)."""
    actions = []
    for number, line in content_lines(read_text(path)):
        fields = [f for f in re.split(r"[,\s]+", line) if f]
        if len(fields) not in (3, 4):
            raise DataError(path, f"expected 'label,start,end,confidence', found {len(fields)} values",
                            line=number)
        try:
            label, start, end = (_as_int(f) for f in fields[:3])
        except ValueError as exc:
            raise DataError(path, f"label, start and end must be integers: {exc}", line=number) from None
        if not 1 <= label <= NUM_CLASSES:
            raise DataError(path, f"label {label} is outside 1..{NUM_CLASSES}", line=number)
        if start >= end:
            raise DataError(path, f"start {start} is not before end {end}", line=number)
        first = 0 if convention == "exclusive" else 1
        if start < first:
            raise DataError(path, f"start {start} is below the first frame ({first} with "
                                  f"--end-convention {convention})", line=number)
        actions.append(Action(label, start, end, number))
    return actions


def _as_int(text: str) -> int:
    value = float(text)  # accepts "12" and "12.0"
    if not value.is_integer():
        raise ValueError(f"{text!r} is not a whole number")
    return int(value)


def read_class_names(path: str | Path) -> list[str]:
    return [line for _, line in content_lines(read_text(path))]
