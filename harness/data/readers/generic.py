"""Your own skeleton dataset → a prepared folder (``harness data prepare generic``).

Layout (docs/datasets.md has a worked example that the tests build)::

    MYDATA/
      sequences/<name>.npy     (T, V, 3) or (T, M, V, 3) numbers, or
      sequences/<name>.csv     one frame per line: V×3 numbers per person, person after person
      sequences/<name>.txt       (x1 y1 z1 x2 y2 z2 ...; commas or spaces)
      labels.csv               trimmed clips: name,label[,subject,camera,setup,replication,split]
        or intervals.csv       untrimmed videos: name,label,start,end (0-based frames, end exclusive)
      topology.json            joints and bones (see Topology.from_dict), or --topology ntu25|msr20|FILE
      classes.txt              optional: one class name per line; a label is its 0-based line index
      splits.csv               optional: name,split,part (e.g. clip7,xsub,train)

Labels are 0-based class indices or class names. With classes.txt they must be one of its names or
indices. Without it, integer labels make classes "0".."K-1" (K = the largest label + 1), and any
non-integer label makes every label a name, the classes being the sorted distinct names.

Splits: a ``split`` column in labels.csv gives each clip's part (train, test, ...) of the split
named by ``--split-name`` (default ``default``); splits.csv can name any number of splits. Untrimmed
datasets use splits.csv. Every sequence file is a video of an untrimmed dataset; a trimmed
dataset's samples are the rows of labels.csv, in order (sequence files it does not name are
ignored and counted in meta.json).

Every problem is reported with its file and line: a wrong joint count for the topology, NaN or Inf,
a label out of range, an interval outside its sequence, a name that has no sequence file, an
unknown name in splits.csv.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DataError, HarnessError, UnknownNameError
from ...registry import DATASETS
from ..prepared.kinds import DatasetKind
from .limits import check_float32, check_npy_file
from ..prepared.format import PreparedWriter
from .text_tables import Row, content_lines, read_csv_table, read_float_table, read_text, sniff_delimiter, suggest
from ..topology import BUILTIN_TOPOLOGIES, Topology, get_topology

SEQUENCE_SUFFIXES = (".npy", ".csv", ".txt")
META_COLUMNS = ("subject", "camera", "setup", "replication")
_PART = re.compile(r"^[A-Za-z0-9_.-]+$")


# --- sequences --------------------------------------------------------------------------------


@dataclass
class SequenceFile:
    name: str
    path: Path
    frames: int = 0
    persons: int = 0


def find_sequences(folder: Path) -> dict[str, SequenceFile]:
    if not folder.is_dir():
        raise DataError(folder, "folder not found: put one file per sequence here "
                                f"(<name>{', <name>'.join(SEQUENCE_SUFFIXES)})")
    found: dict[str, SequenceFile] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in SEQUENCE_SUFFIXES or not path.is_file():
            continue
        if path.stem in found:
            raise DataError(path, f"two files for sequence {path.stem!r} ({found[path.stem].path.name} "
                                  f"and {path.name}); keep one")
        found[path.stem] = SequenceFile(path.stem, path)
    if not found:
        raise DataError(folder, f"no sequence files ({', '.join(SEQUENCE_SUFFIXES)})")
    return found


def probe_sequence(seq: SequenceFile, joints: int) -> None:
    """Frame and person counts without reading the numbers (npy header / line count + first line)."""
    if seq.path.suffix.lower() == ".npy":
        shape = _npy(seq.path, mmap=True).shape
        _check_npy_shape(seq.path, shape, joints)
        seq.frames, seq.persons = shape[0], 1 if len(shape) == 3 else shape[1]
        return
    lines = list(content_lines(read_text(seq.path)))
    if not lines:
        raise DataError(seq.path, "has no frames")
    number, first = lines[0]
    width = len(first.split(",")) if "," in first else len(first.split())
    seq.frames, seq.persons = len(lines), _persons_from_width(seq.path, number, width, joints)


def read_sequence(seq: SequenceFile, joints: int) -> np.ndarray:
    """A sequence file → float32 (T, M, V, 3), every value checked."""
    if seq.path.suffix.lower() == ".npy":
        arr = np.asarray(_npy(seq.path, mmap=False))
        _check_npy_shape(seq.path, arr.shape, joints)
        if arr.ndim == 3:
            arr = arr[:, None]
        bad = np.argwhere(~np.isfinite(arr))
        if len(bad):
            t, m, v, _ = bad[0]
            raise DataError(seq.path, f"frame {t} (0-based), person {m}, joint {v} is NaN or Inf")
        check_float32(arr, seq.path, lambda i: "frame {} (0-based), person {}, joint {}".format(
            *np.unravel_index(i, arr.shape)[:3]))
        return arr.astype(np.float32)
    table = read_float_table(seq.path, None, delimiter=sniff_delimiter(seq.path), what="frame")
    persons = _persons_from_width(seq.path, None, table.shape[1], joints)
    return table.reshape(len(table), persons, joints, 3)


def _npy(path: Path, mmap: bool) -> np.ndarray:
    check_npy_file(path)  # the header's shape against the file's size, before numpy allocates it
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(path, f"not a readable .npy array: {exc}") from None
    if not np.issubdtype(arr.dtype, np.number):
        raise DataError(path, f"holds {arr.dtype} values, expected numbers")
    return arr


def _check_npy_shape(path: Path, shape: tuple[int, ...], joints: int) -> None:
    if len(shape) not in (3, 4) or shape[-1] != 3:
        raise DataError(path, f"shape {shape}: expected (T, V, 3) or (T, M, V, 3)")
    if shape[-2] != joints:
        raise DataError(path, f"shape {shape} has {shape[-2]} joints; the topology has {joints}")
    if shape[0] == 0:
        raise DataError(path, "has no frames")


def _persons_from_width(path: Path, line: int | None, width: int, joints: int) -> int:
    per_person = joints * 3
    if width == 0 or width % per_person:
        raise DataError(path, f"a frame has {width} numbers; expected a multiple of {per_person} "
                              f"({joints} joints × xyz per person)", line=line)
    return width // per_person


# --- labels and classes -------------------------------------------------------------------------


class ClassResolver:
    """Turns label cells (0-based indices or class names) into class indices, checking ranges."""

    def __init__(self, classes_file: Path | None, rows: list[Row]):
        self.names: list[str]
        if classes_file is not None:
            self.names = [line for _, line in content_lines(read_text(classes_file))]
            if not self.names:
                raise DataError(classes_file, "no class names")
            dupes = sorted({n for n in self.names if self.names.count(n) > 1})
            if dupes:
                raise DataError(classes_file, f"class {dupes[0]!r} is listed twice")
            self.source = classes_file
        elif all(_is_int(r["label"]) for r in rows):
            for r in rows:
                r.int("label", minimum=0)
            top = max((int(float(r["label"])) for r in rows), default=-1)
            self.names = [str(i) for i in range(top + 1)]
            self.source = None
        else:
            self.names = sorted({r["label"] for r in rows})
            self.source = None
        self.index = {n: i for i, n in enumerate(self.names)}

    def __call__(self, row: Row) -> int:
        raw = row["label"]
        if raw == "":
            raise row.error("column 'label' is empty")
        if raw in self.index:  # a class name (checked first: names may look like numbers)
            return self.index[raw]
        if _is_int(raw):
            label = int(float(raw))
            if not 0 <= label < len(self.names):
                raise row.error(f"label {label} is outside 0..{len(self.names) - 1} "
                                f"({len(self.names)} classes{' in ' + self.source.name if self.source else ''})")
            return label
        raise row.error(f"label {raw!r} is not a class in {self.source.name if self.source else 'the labels'}"
                        f"{suggest(raw, self.names)}")


def _is_int(text: str) -> bool:
    try:
        return float(text).is_integer()
    except ValueError:
        return False


# --- splits -------------------------------------------------------------------------------------


def read_splits(path: Path, known: dict[str, int]) -> dict[str, dict[str, list[int]]]:
    """splits.csv → {split: {part: sample indices}}; names must be samples of the dataset."""
    splits: dict[str, dict[str, list[int]]] = {}
    seen: dict[tuple[str, str], int] = {}
    for row in read_csv_table(path, ("name", "split", "part")):
        name, split, part = row["name"], row["split"], row["part"]
        if name not in known:
            raise row.error(f"unknown sequence name {name!r}{suggest(name, known)}")
        for what, value in (("split", split), ("part", part)):
            if not _PART.match(value):
                raise row.error(f"{what} {value!r} must be letters, digits, '_', '-' or '.'")
        if (name, split) in seen:
            raise row.error(f"{name!r} is already in split {split!r} (line {seen[name, split]})")
        seen[name, split] = row.line
        splits.setdefault(split, {}).setdefault(part, []).append(known[name])
    return splits


# --- prepare ------------------------------------------------------------------------------------


def load_topology(root: Path, choice: str | None) -> Topology:
    if choice:
        try:
            return get_topology(choice)
        except UnknownNameError:
            raise UnknownNameError("topology (a built-in name or a .json file)", choice,
                                   list(BUILTIN_TOPOLOGIES)) from None
    if (root / "topology.json").exists():
        return Topology.from_json(root / "topology.json")
    raise DataError(root, "no topology: add topology.json or pass --topology "
                          f"{'|'.join(BUILTIN_TOPOLOGIES)}|FILE.json")


def prepare_generic(raw: str | Path, out: str | Path, *, topology: str | None = None,
                    split_name: str = "default", overwrite: bool = False) -> Path:
    root = Path(raw)
    if not root.is_dir():
        raise DataError(root, "not a folder (expected sequences/, labels.csv or intervals.csv, topology.json)")
    labels_path, intervals_path = root / "labels.csv", root / "intervals.csv"
    if labels_path.exists() and intervals_path.exists():
        raise DataError(root, "has both labels.csv (trimmed) and intervals.csv (untrimmed); keep one")
    if not labels_path.exists() and not intervals_path.exists():
        raise DataError(root, "needs labels.csv (trimmed clips) or intervals.csv (untrimmed videos)")
    if not _PART.match(split_name):
        raise HarnessError(f"--split-name {split_name!r} must be letters, digits, '_', '-' or '.'")
    topo = load_topology(root, topology)
    files = find_sequences(root / "sequences")
    classes_file = root / "classes.txt" if (root / "classes.txt").exists() else None
    untrimmed = intervals_path.exists()
    if untrimmed:
        rows = read_csv_table(intervals_path, ("name", "label", "start", "end"))
        samples = list(files.values())
        meta_rows: list[Row] = []
    else:
        rows = read_csv_table(labels_path, ("name", "label"), (*META_COLUMNS, "split"))
        samples, meta_rows = _trimmed_samples(rows, files, labels_path)
    classes = ClassResolver(classes_file, rows)
    labels = [classes(r) for r in rows]  # checks every label before the slow part
    for seq in samples:
        probe_sequence(seq, topo.num_joints)
    index = {seq.name: i for i, seq in enumerate(samples)}
    intervals = _intervals(rows, labels, samples, index) if untrimmed else []

    splits = read_splits(root / "splits.csv", index) if (root / "splits.csv").exists() else {}
    if not untrimmed and any(r.has("split") for r in rows):
        if split_name in splits:
            raise DataError(root / "splits.csv", f"split {split_name!r} is also given by the 'split' column "
                                                 "of labels.csv; rename one (--split-name)")
        splits[split_name] = {}
        for i, r in enumerate(rows):
            if r.has("split"):
                if not _PART.match(r["split"]):
                    raise r.error(f"split part {r['split']!r} must be letters, digits, '_', '-' or '.'")
                splits[split_name].setdefault(r["split"], []).append(i)

    source = {"raw": str(root.resolve()), "layout": "generic",
              "unused_sequence_files": len(files) - len({s.name for s in samples})}
    with PreparedWriter(out, kind="generic", topology=topo, num_samples=len(samples),
                        max_frames=max(s.frames for s in samples), num_persons=max(s.persons for s in samples),
                        class_names=classes.names, untrimmed=untrimmed, source=source,
                        overwrite=overwrite) as writer:
        for i, seq in enumerate(samples):
            frames = read_sequence(seq, topo.num_joints)
            meta = {c: meta_rows[i].int(c, -1, minimum=-1) for c in META_COLUMNS} if meta_rows else {}
            writer.set_sample(i, frames.transpose(3, 0, 2, 1), name=seq.name,
                              label=-1 if untrimmed else labels[i], **meta)
        for sample, label, start, end in intervals:
            writer.add_interval(sample, label, start, end)
        for split, parts in splits.items():
            for part, idx in parts.items():
                writer.add_split(split, part, sorted(idx))
    return Path(out)


def _trimmed_samples(rows: list[Row], files: dict[str, SequenceFile],
                     labels_path: Path) -> tuple[list[SequenceFile], list[Row]]:
    samples, first_line = [], {}
    for r in rows:
        name = r["name"]
        if name in first_line:
            raise r.error(f"{name!r} is listed twice (also on line {first_line[name]})")
        first_line[name] = r.line
        if name not in files:
            raise r.error(f"no sequence file sequences/{name}{{{','.join(SEQUENCE_SUFFIXES)}}}"
                          f"{suggest(name, files)}")
        for column in META_COLUMNS:
            r.int(column, -1, minimum=-1)  # fail here, before any sequence is read
        samples.append(files[name])
    if not samples:
        raise DataError(labels_path, "has no rows")
    return samples, rows


def _intervals(rows: list[Row], labels: list[int], samples: list[SequenceFile],
               index: dict[str, int]) -> list[tuple[int, int, int, int]]:
    out = []
    for r, label in zip(rows, labels):
        name = r["name"]
        if name not in index:
            raise r.error(f"unknown sequence name {name!r}{suggest(name, index)}")
        start, end = r.int("start", minimum=0), r.int("end", minimum=0)
        frames = samples[index[name]].frames
        if start >= end:
            raise r.error(f"start {start} is not before end {end} (end is exclusive)")
        if end > frames:
            raise r.error(f"interval [{start}, {end}) ends beyond the sequence's {frames} frames")
        out.append((index[name], label, start, end))
    return out


@DATASETS.register("generic")
class Generic(DatasetKind):
    """Your own dataset: sequences/ + labels.csv or intervals.csv + topology (docs/datasets.md)."""

    name = "generic"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.description = ("Prepare your own dataset. --raw is a folder with sequences/, labels.csv "
                              "(trimmed) or intervals.csv (untrimmed), and topology.json. See docs/datasets.md.")
        parser.add_argument("--topology", help="ntu25, msr20 or a topology .json (default: RAW/topology.json)")
        parser.add_argument("--split-name", default="default",
                            help="the split that labels.csv's 'split' column fills (default: default)")

    @classmethod
    def prepare(cls, args: argparse.Namespace) -> list[Path]:
        if not args.raw:
            raise HarnessError("generic needs --raw FOLDER (see docs/datasets.md)")
        return [prepare_generic(args.raw, args.out, topology=args.topology, split_name=args.split_name,
                                overwrite=args.overwrite)]
