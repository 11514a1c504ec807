"""PKU-MMD splits: the 4-line split files, ``--split-file [NAME=]FILE`` arguments, and the
built-in splits used without split files.

``--split-file [NAME=]FILE`` reads the 4-line split files ("Training videos: ", list,
"Validataion videos: " (sic), list; the second list is the test part). NAME defaults to ``xsub``
when the file name mentions "subject", ``xview`` for "view", else the file's stem. Without split
files the built-in splits of docs/reference/data-formats.md §6 are used: Phase I ``xsub`` (test = videos
0291–0334, train = 0002–0246, 0251–0290, 0335–0364), Phase II ``xsub`` (test subjects N02, N03,
N07) and ``xview`` (test view L).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ....errors import DataError, HarnessError
from .raw_files import PkuVideo, parse_video_name
from ..text_tables import read_text


def read_split_file(path: str | Path) -> dict[str, list[str]]:
    """The 4-line split format → {"train": names, "test": names} (the validation list is the test)."""
    path = Path(path)
    lines = [(n, line.strip()) for n, line in enumerate(read_text(path).splitlines(), start=1) if line.strip()]
    if len(lines) != 4:
        raise DataError(path, f"expected 4 non-empty lines ('Training videos:', list, "
                              f"'Validataion videos:', list), found {len(lines)}")
    (n1, head1), (n2, train), (n3, head2), (n4, test) = lines
    if not head1.lower().startswith("training"):
        raise DataError(path, f"expected 'Training videos:', found {head1[:40]!r}", line=n1)
    if not head2.lower().startswith(("validataion", "validation", "test")):
        raise DataError(path, f"expected 'Validataion videos:', found {head2[:40]!r}", line=n3)
    parts = {"train": _name_list(train), "test": _name_list(test)}
    for part, number in (("train", n2), ("test", n4)):
        seen: set[str] = set()
        for name in parts[part]:
            if name in seen:
                raise DataError(path, f"{name!r} is listed twice", line=number)
            seen.add(name)
    both = sorted(set(parts["train"]) & set(parts["test"]))
    if both:
        raise DataError(path, f"{both[0]!r} is in both the training and the validation list", line=n4)
    return parts


def _name_list(line: str) -> list[str]:
    return [n.strip() for n in line.split(",") if n.strip()]  # tolerates the trailing ", "


def split_name_for(path: str | Path) -> str:
    stem = Path(path).stem.lower()
    if "subject" in stem or "xsub" in stem:
        return "xsub"
    if "view" in stem or "xview" in stem:
        return "xview"
    return Path(path).stem


def parse_split_arguments(items: Iterable[str]) -> dict[str, Path]:
    """``[NAME=]FILE`` arguments → {split name: file}."""
    out: dict[str, Path] = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not sep or Path(item).exists():
            name, file = split_name_for(item), item
        if name in out:
            raise HarnessError(f"two split files are both named {name!r} ({out[name]} and {file}); "
                               "name them with NAME=FILE")
        out[name] = Path(file)
    return out


def phase1_xsub_part(video: PkuVideo) -> str | None:
    """The Phase I cross-subject split rule (identical to pkuv1_cross_subject.txt)."""
    n = video.sequence
    if 291 <= n <= 334:
        return "test"
    if 2 <= n <= 246 or 251 <= n <= 290 or 335 <= n <= 364:
        return "train"
    return None


PHASE2_TEST_SUBJECTS = (2, 3, 7)


def builtin_splits(videos: list[PkuVideo], phase: int) -> dict[str, dict[str, list[str]]]:
    rules = {"xsub": phase1_xsub_part} if phase == 1 else {
        "xsub": lambda v: "test" if v.subject in PHASE2_TEST_SUBJECTS else "train",
        "xview": lambda v: "test" if v.view == "L" else "train",
    }
    splits = {}
    for split, rule in rules.items():
        parts: dict[str, list[str]] = {"train": [], "test": []}
        for v in videos:
            part = rule(v)
            if part:
                parts[part].append(v.name)
        splits[split] = parts
    return splits


def resolve_splits(split_files: dict[str, Path], videos: list[PkuVideo], phase: int,
                   allow_missing: bool) -> dict[str, dict[str, list[str]]]:
    if not split_files:
        return builtin_splits(videos, phase)
    present = {v.name for v in videos}
    splits = {}
    for split, path in split_files.items():
        parts = read_split_file(path)
        for part, names in parts.items():
            for name in names:
                parse_video_name(name, phase, path)
            missing = [n for n in names if n not in present]
            if missing and not allow_missing:
                raise DataError(path, f"{len(missing)} {part} video(s) have no skeleton file, e.g. "
                                      f"{missing[0]!r} (pass "
                                      "--allow-missing-videos to leave them out)")
            parts[part] = [n for n in names if n in present]
        splits[split] = parts
    return splits
