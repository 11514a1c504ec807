"""Interval files for the PKU-MMD scorers: reading prediction and ground-truth folders, writing
prediction files.

One line per interval, ``label,start,end,score`` (commas or spaces) for predictions and
``label,start,end,confidence`` for PKU-MMD ground truth (docs/reference/data-formats.md §6; the
confidence is ignored, docs/reference/protocols.md §6 "Inputs"). The file name is the video name,
the same in both folders; the official scorer reads GT only for videos with a proposal file
(docs/reference/protocols.md §6, §8).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

from harness.errors import DataError

from .pku_types import GT, PKU_NUM_CLASSES, Det


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
