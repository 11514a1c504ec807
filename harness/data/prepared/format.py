"""The one on-disk form for every dataset ("prepared dataset").

A prepared folder holds::

    meta.json        what the folder is: format/version, kind, shapes, classes, topology, splits
    data.npy         float32 (N, 3, T_max, V, M), opened memory-mapped (NTU-120 is ~20 GB)
    lengths.npy      int32 (N,)  valid frames per sample (frames [0, length) are real)
    samples.csv      one row per sample: name, label, subject, camera, setup, replication
                     (-1 where unknown); untrimmed datasets have label -1
    splits.npz       "<split>/<part>" → int64 sample indices, e.g. "xsub/train", "xsub/test"
    intervals.csv    untrimmed only: sample, label, start, end (0-based, end exclusive)

Folders are written by :class:`PreparedWriter` under a temporary name and renamed into place only
when complete, so a failed prepare never leaves a half-written folder. :func:`open_prepared`
validates the folder and opens the array memory-mapped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from ... import atomic
from ...errors import DataError
from ..topology import Topology

FORMAT = "harness-prepared"
VERSION = 1
SAMPLE_COLUMNS = ("name", "label", "subject", "camera", "setup", "replication")
INTERVAL_COLUMNS = ("sample", "label", "start", "end")


@dataclass
class PreparedDataset:
    root: Path
    meta: dict[str, Any]
    data: np.ndarray  # memmap (N, 3, T_max, V, M)
    lengths: np.ndarray
    samples: pd.DataFrame
    _splits: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    intervals: pd.DataFrame | None = None

    # --- shape and labels ---------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.meta["kind"]

    @property
    def subset(self) -> str:
        """What part of its dataset the folder holds ("" = all of it), from ``meta.json`` ``source``."""
        return str(self.meta.get("source", {}).get("subset", "") or "")

    @property
    def num_samples(self) -> int:
        return int(self.data.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    @property
    def class_names(self) -> list[str]:
        return list(self.meta["class_names"])

    @property
    def max_frames(self) -> int:
        return int(self.data.shape[2])

    @property
    def num_joints(self) -> int:
        return int(self.data.shape[3])

    @property
    def num_persons(self) -> int:
        return int(self.data.shape[4])

    @property
    def untrimmed(self) -> bool:
        return bool(self.meta.get("untrimmed", False))

    @cached_property
    def topology(self) -> Topology:
        return Topology.from_dict(self.meta["topology"], self.root / "meta.json")

    @cached_property
    def labels(self) -> np.ndarray:
        return self.samples["label"].to_numpy(dtype=np.int64)

    # --- splits ---------------------------------------------------------------------------
    @property
    def split_names(self) -> list[str]:
        return sorted({k.split("/")[0] for k in self._splits})

    def split_parts(self, split: str) -> list[str]:
        return sorted(k.split("/")[1] for k in self._splits if k.split("/")[0] == split)

    def indices(self, split: str, part: str) -> np.ndarray:
        key = f"{split}/{part}"
        if key not in self._splits:
            from ...errors import UnknownNameError
            raise UnknownNameError(f"split of {self.root}", key, list(self._splits))
        return self._splits[key]

    def split_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for key, idx in self._splits.items():
            split, part = key.split("/")
            out.setdefault(split, {})[part] = int(len(idx))
        return out

    # --- access ---------------------------------------------------------------------------
    def clip(self, i: int) -> np.ndarray:
        """The valid frames of sample i, (3, length, V, M), as a copy."""
        return np.array(self.data[i, :, : int(self.lengths[i])])

    def video_intervals(self, i: int) -> pd.DataFrame:
        if self.intervals is None:
            raise DataError(self.root, "this dataset is trimmed: it has no intervals")
        return self.intervals[self.intervals["sample"] == i]

    @cached_property
    def fingerprint(self) -> str:
        """A short content id: meta.json, the small files in full and 16 evenly spaced 64 KiB blocks
        of data.npy. A pretraining run records it, so a run made on other data is never reused."""
        h = hashlib.sha256(json.dumps(self.meta, sort_keys=True, default=str).encode())
        for name in ("samples.csv", "lengths.npy", "splits.npz", "intervals.csv"):
            path = self.root / name
            h.update(name.encode() + (path.read_bytes() if path.is_file() else b"-"))
        data = self.root / "data.npy"
        size = data.stat().st_size
        h.update(str(size).encode())
        block = 1 << 16
        with open(data, "rb") as fh:
            for k in range(16):
                fh.seek(max(size - block, 0) * k // 15)
                h.update(fh.read(block))
        return h.hexdigest()[:16]

    def info(self) -> dict[str, Any]:
        return {
            "path": str(self.root),
            "kind": self.kind,
            "num_samples": self.num_samples,
            "num_classes": self.num_classes,
            "shape": list(self.data.shape),
            "topology": self.topology.name,
            "num_joints": self.num_joints,
            "num_persons": self.num_persons,
            "max_frames": self.max_frames,
            "untrimmed": self.untrimmed,
            "num_intervals": 0 if self.intervals is None else int(len(self.intervals)),
            "splits": self.split_counts(),
            "source": self.meta.get("source", {}),
        }


def open_prepared(root: str | Path) -> PreparedDataset:
    """Open and validate a prepared folder without reading the array into memory."""
    root = Path(root)
    meta_path = root / "meta.json"
    if not root.is_dir():
        raise DataError(root, "not a folder (expected a prepared dataset; see `harness data prepare`)")
    if not meta_path.exists():
        raise DataError(root, "no meta.json: not a prepared dataset (see `harness data prepare`)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(meta_path, f"invalid JSON: {exc}", line=exc.lineno) from None
    if meta.get("format") != FORMAT:
        raise DataError(meta_path, f"format is {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise DataError(meta_path, f"version {meta.get('version')} is not supported (expected {VERSION})")
    try:
        data = np.load(root / "data.npy", mmap_mode="r")
        lengths = np.load(root / "lengths.npy")
    except (OSError, ValueError) as exc:
        raise DataError(root, f"cannot open arrays: {exc}") from None
    if data.ndim != 5 or data.shape[1] != 3 or data.dtype != np.float32:
        raise DataError(root / "data.npy", f"expected float32 (N, 3, T, V, M), got {data.dtype} {data.shape}")
    n = data.shape[0]
    if lengths.shape != (n,):
        raise DataError(root / "lengths.npy", f"expected shape ({n},), got {lengths.shape}")
    if n and (lengths.min() < 0 or lengths.max() > data.shape[2]):
        raise DataError(root / "lengths.npy", f"lengths must lie in [0, {data.shape[2]}]")
    samples = pd.read_csv(root / "samples.csv", keep_default_na=False)
    missing = [c for c in SAMPLE_COLUMNS if c not in samples.columns]
    if missing or len(samples) != n:
        raise DataError(root / "samples.csv", f"expected {n} rows with columns {SAMPLE_COLUMNS}; "
                                             f"got {len(samples)} rows, missing {missing}")
    with np.load(root / "splits.npz") as z:
        splits = {k: z[k].astype(np.int64) for k in z.files}
    for key, idx in splits.items():
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise DataError(root / "splits.npz", f"split {key} has indices outside [0, {n})")
    intervals = None
    if meta.get("untrimmed"):
        intervals = pd.read_csv(root / "intervals.csv")
    ds = PreparedDataset(root, meta, data, lengths.astype(np.int64), samples, splits, intervals)
    ds.topology  # validates the stored topology
    if data.shape[3] != ds.topology.num_joints:
        raise DataError(meta_path, f"topology has {ds.topology.num_joints} joints, data has {data.shape[3]}")
    return ds


class PreparedWriter:
    """Write a prepared folder atomically.

    Usage::

        with PreparedWriter(out, kind="msr-action3d", topology=MSR20, num_samples=N, max_frames=T,
                            num_persons=1, class_names=names) as w:
            for i, (clip, row) in enumerate(...):
                w.set_sample(i, clip, **row)     # clip: (3, t, V, M), t <= max_frames
            w.add_split("xsub", "train", idx)
        # the folder appears at `out` only here, after validation
    """

    def __init__(self, out: str | Path, *, kind: str, topology: Topology, num_samples: int,
                 max_frames: int, num_persons: int, class_names: Sequence[str],
                 untrimmed: bool = False, source: dict[str, Any] | None = None,
                 overwrite: bool = False):
        self.out = Path(out)
        self.kind, self.topology, self.untrimmed = kind, topology, untrimmed
        self.shape = (num_samples, 3, max_frames, topology.num_joints, num_persons)
        self.class_names = list(class_names)
        self.source = source or {}
        self.overwrite = overwrite
        self.rows: list[dict[str, Any] | None] = [None] * num_samples
        self.splits: dict[str, np.ndarray] = {}
        self.intervals: list[tuple[int, int, int, int]] = []

    def __enter__(self) -> "PreparedWriter":
        self._ctx = atomic.atomic_dir(self.out, overwrite=self.overwrite)
        self.tmp = self._ctx.__enter__()
        self.data = np.lib.format.open_memmap(self.tmp / "data.npy", mode="w+", dtype=np.float32,
                                              shape=self.shape)
        self.lengths = np.zeros(self.shape[0], dtype=np.int32)
        return self

    def set_sample(self, i: int, clip: np.ndarray, *, name: str, label: int = -1, subject: int = -1,
                   camera: int = -1, setup: int = -1, replication: int = -1) -> None:
        c, t, v, m = clip.shape
        if c != 3 or v != self.shape[3] or m > self.shape[4] or t > self.shape[2]:
            raise DataError(name, f"clip shape {clip.shape} does not fit (3, <={self.shape[2]}, "
                                  f"{self.shape[3]}, <={self.shape[4]})")
        if not np.isfinite(clip).all():
            raise DataError(name, "contains NaN or Inf coordinates")
        self.data[i, :, :t, :, :m] = clip
        self.lengths[i] = t
        self.rows[i] = dict(name=name, label=int(label), subject=int(subject), camera=int(camera),
                            setup=int(setup), replication=int(replication))

    def set_samples(self, start: int, clips: np.ndarray, lengths: np.ndarray,
                    rows: Iterable[dict[str, Any]]) -> None:
        """Bulk write: clips (n, 3, T_max, V, M) already padded; lengths (n,)."""
        n = len(clips)
        if not np.isfinite(clips).all():
            raise DataError(self.out, f"samples {start}..{start + n - 1} contain NaN or Inf")
        self.data[start:start + n] = clips
        self.lengths[start:start + n] = lengths
        for k, row in enumerate(rows):
            self.rows[start + k] = {c: row.get(c, -1) for c in SAMPLE_COLUMNS}

    def add_split(self, split: str, part: str, indices: Sequence[int] | np.ndarray) -> None:
        self.splits[f"{split}/{part}"] = np.asarray(indices, dtype=np.int64)

    def add_interval(self, sample: int, label: int, start: int, end: int) -> None:
        """One labelled action [start, end) of an untrimmed sample (0-based frames)."""
        self.intervals.append((int(sample), int(label), int(start), int(end)))

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._finish()
        except BaseException as err:
            self._ctx.__exit__(type(err), err, err.__traceback__)
            raise
        else:
            self._ctx.__exit__(exc_type, exc, tb)

    def _finish(self) -> None:
        missing = [i for i, r in enumerate(self.rows) if r is None]
        if missing:
            raise DataError(self.out, f"{len(missing)} samples were never written (first: {missing[0]})")
        self.data.flush()
        del self.data
        np.save(self.tmp / "lengths.npy", self.lengths)
        samples = pd.DataFrame(self.rows, columns=list(SAMPLE_COLUMNS))
        labels = samples["label"].to_numpy()
        nc = len(self.class_names)
        if not self.untrimmed and ((labels < 0) | (labels >= nc)).any():
            bad = int(np.flatnonzero((labels < 0) | (labels >= nc))[0])
            raise DataError(samples["name"][bad], f"label {labels[bad]} outside [0, {nc})")
        samples.to_csv(self.tmp / "samples.csv", index=False)
        np.savez(self.tmp / "splits.npz", **self.splits)
        if self.untrimmed:
            iv = pd.DataFrame(self.intervals, columns=list(INTERVAL_COLUMNS))
            for row in iv.itertuples():
                name = samples["name"][row.sample] if 0 <= row.sample < len(samples) else row.sample
                if not 0 <= row.label < nc:
                    raise DataError(name, f"interval label {row.label} outside [0, {nc})")
                if not (0 <= row.start < row.end <= self.lengths[row.sample]):
                    raise DataError(name, f"interval [{row.start}, {row.end}) outside the video's "
                                          f"{self.lengths[row.sample]} frames")
            iv.to_csv(self.tmp / "intervals.csv", index=False)
        meta = {
            "format": FORMAT, "version": VERSION, "kind": self.kind,
            "num_samples": self.shape[0], "max_frames": self.shape[2], "num_joints": self.shape[3],
            "num_persons": self.shape[4], "num_classes": nc, "class_names": self.class_names,
            "untrimmed": self.untrimmed, "topology": self.topology.to_dict(),
            "splits": {k: int(len(v)) for k, v in self.splits.items()}, "source": self.source,
        }
        atomic.write_json(self.tmp / "meta.json", meta)
        open_prepared(self.tmp)  # validate before it becomes visible


def check_prepared(ds: PreparedDataset, chunk: int = 256) -> list[str]:
    """Scan a prepared dataset for NaNs, empty or all-zero samples and bad labels (chunked)."""
    problems: list[str] = []
    names = ds.samples["name"].tolist()
    for start in range(0, ds.num_samples, chunk):
        block = np.asarray(ds.data[start:start + chunk])
        finite = np.isfinite(block).reshape(len(block), -1).all(axis=1)
        absmax = np.nan_to_num(np.abs(block)).reshape(len(block), -1).max(axis=1)
        for k in range(len(block)):
            i = start + k
            if not finite[k]:
                problems.append(f"{names[i]} (sample {i}): NaN or Inf coordinates")
            if ds.lengths[i] == 0:
                problems.append(f"{names[i]} (sample {i}): empty (0 valid frames)")
            elif absmax[k] == 0:
                problems.append(f"{names[i]} (sample {i}): all coordinates are zero")
    if not ds.untrimmed:
        bad = np.flatnonzero((ds.labels < 0) | (ds.labels >= ds.num_classes))
        problems += [f"{names[i]} (sample {i}): label {ds.labels[i]} outside [0, {ds.num_classes})" for i in bad]
    else:
        for row in ds.intervals.itertuples():
            if not (0 <= row.start < row.end <= ds.lengths[row.sample]):
                problems.append(f"{names[row.sample]}: interval [{row.start}, {row.end}) outside the video")
            if not 0 <= row.label < ds.num_classes:
                problems.append(f"{names[row.sample]}: interval label {row.label} outside [0, {ds.num_classes})")
    return problems
