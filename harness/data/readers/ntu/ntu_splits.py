"""NTU RGB+D sample names, benchmark splits and the missing-skeleton lists (docs/reference/data-formats.md §1–2).

One function, :func:`training_mask`, decides train/test membership for every split from the
performer, camera and setup numbers. ``harness data prepare ntu60|ntu120`` uses it on numbers parsed
from file names, and :func:`statistics_splits` uses it on the CTR-GCN statistics files, where the
published split sizes can be checked exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ....errors import DataError, UnknownNameError

NAME_PATTERN = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")

NTU60_TRAIN_PERFORMERS = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU120_TRAIN_PERFORMERS = NTU60_TRAIN_PERFORMERS + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89,
    91, 92, 93, 94, 95, 97, 98, 100, 103)
TRAIN_CAMERAS = (2, 3)  # cross-view: camera 1 is the test view
TRAIN_SETUPS = tuple(range(2, 33, 2))  # cross-setup: even setups train

# the named splits of each dataset, in the order they are written
SPLITS = {"ntu60": ("xsub", "xview"), "ntu120": ("xsub", "xset")}
# NTU-60 is exactly setups 1-17 and actions 1-60 of NTU-120
LIMITS = {"ntu60": {"setup": 17, "action": 60}, "ntu120": {"setup": 32, "action": 120}}
# UmURL/USDRL call the cross-setup folder "xsetup"
SPLIT_ALIASES = {"xsetup": "xset", "cs": "xsub", "cv": "xview", "csub": "xsub", "cset": "xset"}


@dataclass(frozen=True)
class NtuName:
    """The numbers in ``SsssCcccPpppRrrrAaaa`` (all 1-based as written; ``label`` is 0-based)."""

    name: str
    setup: int
    camera: int
    performer: int
    replication: int
    action: int

    @property
    def label(self) -> int:
        return self.action - 1


def parse_name(name: str, *, source: str | Path | None = None, line: int | None = None) -> NtuName:
    """Parse a sample name; a path or a ``.skeleton`` suffix is fine. Raises DataError otherwise."""
    stem = Path(name).name.split(".")[0]
    m = NAME_PATTERN.fullmatch(stem)
    if m is None:
        raise DataError(source if source is not None else name,
                        f"{stem!r} is not an NTU sample name (expected SsssCcccPpppRrrrAaaa, "
                        "e.g. S001C002P003R002A013)", line=line)
    return NtuName(stem, *(int(g) for g in m.groups()))


def canonical_split(dataset: str, split: str) -> str:
    """``xsetup`` → ``xset`` etc.; unknown split names raise with suggestions."""
    split = SPLIT_ALIASES.get(split, split)
    if split not in SPLITS[dataset]:
        raise UnknownNameError(f"{dataset} split", split, list(SPLITS[dataset]))
    return split


def training_mask(dataset: str, split: str, *, performer: np.ndarray, camera: np.ndarray,
                  setup: np.ndarray) -> np.ndarray:
    """True where a sample is in the training part of `split` (the rule of every NTU codebase)."""
    split = canonical_split(dataset, split)
    if split == "xsub":
        train = NTU60_TRAIN_PERFORMERS if dataset == "ntu60" else NTU120_TRAIN_PERFORMERS
        return np.isin(np.asarray(performer), train)
    if split == "xview":
        return np.isin(np.asarray(camera), TRAIN_CAMERAS)
    return np.isin(np.asarray(setup), TRAIN_SETUPS)


def split_indices(dataset: str, split: str, *, performer: np.ndarray, camera: np.ndarray,
                  setup: np.ndarray) -> dict[str, np.ndarray]:
    """``{"train": idx, "test": idx}`` (int64, ascending) for one split."""
    train = training_mask(dataset, split, performer=performer, camera=camera, setup=setup)
    return {"train": np.flatnonzero(train).astype(np.int64), "test": np.flatnonzero(~train).astype(np.int64)}


# --- missing-skeleton lists --------------------------------------------------------------------

RESOURCES = Path(__file__).resolve().parent / "resources"
OFFICIAL_MISSING = {"ntu60": RESOURCES / "ntu60_missing_skeletons.txt",
                    "ntu120": RESOURCES / "ntu120_missing_skeletons.txt"}


def read_missing_list(path: str | Path) -> list[str]:
    """Sample names from a missing-skeleton list.

    Accepts the official lists (a 3-line header such as "302 of the captured samples ...", then one
    name a line) and header-less lists (CTR-GCN's copy). Names may carry a ``.skeleton`` suffix.
    When the header states a count, the list must hold exactly that many names.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read the missing-skeleton list: {exc}") from None
    names: list[str] = []
    stated: int | None = None
    for lineno, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        stem = text.split(".")[0]
        if NAME_PATTERN.fullmatch(stem):
            names.append(stem)
        elif lineno <= 3 and not names:  # header
            m = re.match(r"(\d+)\s", text)
            if m and stated is None:
                stated = int(m.group(1))
        else:
            raise DataError(path, f"{text[:60]!r} is not an NTU sample name", line=lineno)
    if stated is not None and stated != len(names):
        raise DataError(path, f"the header says {stated} samples but the list has {len(names)} names")
    if len(set(names)) != len(names):
        dup = next(n for i, n in enumerate(names) if n in names[:i])
        raise DataError(path, f"{dup} is listed twice")
    return names


def official_missing(dataset: str) -> list[str]:
    """The official missing-skeleton names shipped with the harness (302 for NTU-60, 535 for NTU-120)."""
    return read_missing_list(OFFICIAL_MISSING[dataset])


# --- CTR-GCN statistics files -----------------------------------------------------------------

STAT_COLUMNS = ("setup", "camera", "performer", "replication", "label")


@dataclass
class NtuStatistics:
    """The per-sample columns of ``statistics/`` (label is 0-based here; ``label.txt`` is 1-based)."""

    names: list[str]
    setup: np.ndarray
    camera: np.ndarray
    performer: np.ndarray
    replication: np.ndarray
    label: np.ndarray

    def splits(self, dataset: str) -> dict[str, dict[str, np.ndarray]]:
        return {s: split_indices(dataset, s, performer=self.performer, camera=self.camera, setup=self.setup)
                for s in SPLITS[dataset]}


def _read_int_column(path: Path, n: int) -> np.ndarray:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(path, f"cannot read: {exc.strerror or exc}") from None
    if len(lines) != n:
        raise DataError(path, f"has {len(lines)} lines but skes_available_name.txt has {n}: not line-aligned")
    out = np.empty(n, dtype=np.int64)
    for i, text in enumerate(lines):
        try:
            out[i] = int(text)
        except ValueError:
            raise DataError(path, f"{text[:40]!r} is not an integer", line=i + 1) from None
    return out


def read_statistics(folder: str | Path) -> NtuStatistics:
    """Read CTR-GCN's ``skes_available_name.txt`` and its line-aligned columns, cross-checked.

    Every column must agree with the numbers in the sample name on the same line.
    """
    folder = Path(folder)
    names_path = folder / "skes_available_name.txt"
    try:
        names = names_path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(names_path, f"cannot read: {exc.strerror or exc}") from None
    names = [n.strip() for n in names]
    numbers = np.empty((len(names), 5), dtype=np.int64)  # setup camera performer replication action
    for i, n in enumerate(names):
        m = NAME_PATTERN.fullmatch(n)
        if m is None:
            parse_name(n, source=names_path, line=i + 1)  # raises with the reason
        numbers[i] = m.groups()
    cols = {c: _read_int_column(folder / f"{c}.txt", len(names)) for c in STAT_COLUMNS}
    for k, c in enumerate(STAT_COLUMNS):  # label.txt holds the action number (1-based)
        bad = np.flatnonzero(numbers[:, k] != cols[c])
        if len(bad):
            i = int(bad[0])
            raise DataError(folder / f"{c}.txt", f"says {cols[c][i]} for {names[i]} "
                                                 f"(the name says {numbers[i, k]})", line=i + 1)
    return NtuStatistics(names, cols["setup"], cols["camera"], cols["performer"],
                         cols["replication"], cols["label"] - 1)


def statistics_splits(folder: str | Path, dataset: str) -> dict[str, dict[str, np.ndarray]]:
    """Rebuild the benchmark splits from a statistics folder: ``{split: {"train", "test"}}``."""
    return read_statistics(folder).splits(dataset)


def split_counts(splits: dict[str, dict[str, np.ndarray]]) -> dict[str, tuple[int, int]]:
    return {s: (len(p["train"]), len(p["test"])) for s, p in splits.items()}
