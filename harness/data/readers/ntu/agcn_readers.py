"""Readers of NTU arrays made by other codebases: each split part becomes a :class:`PartSource`
(its names, labels and a generator of sample blocks) for :func:`harness.data.readers.ntu.agcn.write_import`.

- 2s-AGCN / UmURL / USDRL folders: ``{train,val}_data_joint.npy`` float (N, 3, T, 25, 2),
  ``{train,val}_num_frame.npy`` (N,), and ``{train,val}_label.pkl`` — a pickled tuple
  ``(file names, 0-based labels)``, read with the restricted unpickler — or ``{train,val}_label.npy``.
- CTR-GCN / MAMP ``.npz``: ``x_train`` (N, 300, 150) with 150 = 2 persons × 25 joints × xyz,
  one-hot ``y_train`` (N, C), ``x_test``, ``y_test``.

Large inputs (NTU-120 is ~20 GB) are never loaded whole: ``.npy`` files are memory-mapped and
``.npz`` members are streamed out of the zip, and samples are copied a chunk at a time.

Valid lengths and what is stored past them:

- AGCN: the length is ``num_frame`` clamped to the array's T (CMD/PCM3 PKU files store the
  uncut length; their feeders clamp the same way). Frames past it hold step (a)'s cyclic padding
  in these files; they are zeroed here, since feeders only read [0, num_frame).
- CTR-GCN: the length is the number of frames with any non-zero coordinate (the CTR-GCN feeder
  counts frames whose coordinate *sum* is non-zero, which differs only if coordinates cancel
  exactly). Frames from that count on are zeroed, as the feeder reads only [0, count).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ....errors import DataError
from ..limits import check_data_size, check_npy_file, read_npy_header
from .ntu_rgbd import NUM_JOINTS, NUM_PERSONS
from ..pickles import safe_load_pickle


def _labels_from_array(arr: np.ndarray, source: Path) -> np.ndarray:
    """0-based int labels from (N,) integers or (N, C) one-hot rows."""
    arr = np.asarray(arr)
    if arr.ndim == 2:
        ones = arr == 1
        if not (ones.sum(1) == 1).all() or not ((arr == 0) | ones).all():
            row = int(np.flatnonzero((ones.sum(1) != 1) | ~((arr == 0) | ones).all(1))[0])
            raise DataError(source, f"row {row} is not one-hot (expected exactly one 1, the rest 0)")
        return ones.argmax(1).astype(np.int64)
    if arr.ndim != 1:
        raise DataError(source, f"labels must be (N,) or one-hot (N, C), got shape {arr.shape}")
    if arr.dtype.kind == "f" and not (arr == np.round(arr)).all():
        raise DataError(source, "labels are not whole numbers")
    if arr.dtype.kind not in "iuf":
        raise DataError(source, f"labels have dtype {arr.dtype}, expected integers")
    return arr.astype(np.int64)


# --- what each importer hands to the writer ---------------------------------------------------

@dataclass
class PartSource:
    """One split part: its size, names and labels, and a generator of (start, clips, lengths) blocks
    with clips float32 (n, 3, T, 25, 2), frames from `lengths` on already zero."""

    part: str  # "train" | "test"
    origin: Path
    num: int
    frames: int
    names: list[str]
    labels: np.ndarray
    blocks: Callable[[], Iterator[tuple[int, np.ndarray, np.ndarray]]] = field(repr=False)
    label_origin: Path | None = None  # the file the labels came from, for error messages

    @property
    def label_file(self) -> Path:
        return self.label_origin or self.origin


# --- AGCN / UmURL folders ---------------------------------------------------------------------

def _load_npy(path: Path, mmap: bool) -> np.ndarray:
    if not path.exists():
        raise DataError(path, "missing (expected the AGCN/UmURL layout: {train,val}_data_joint.npy, "
                              "{train,val}_num_frame.npy, {train,val}_label.pkl or .npy)")
    check_npy_file(path)  # the header's shape against the file's size, before numpy allocates it
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(path, f"cannot read as .npy: {exc}") from None


def _agcn_labels(folder: Path, part: str, n: int) -> tuple[list[str], np.ndarray, Path]:
    pkl, npy = folder / f"{part}_label.pkl", folder / f"{part}_label.npy"
    if pkl.exists():
        obj = safe_load_pickle(pkl)
        if not (isinstance(obj, (tuple, list)) and len(obj) == 2):
            raise DataError(pkl, f"expected a pickled (names, labels) pair, got {type(obj).__name__}")
        names, labels = obj
        names = [str(x) for x in names]
        labels = _labels_from_array(np.asarray(labels), pkl)
        origin = pkl
    elif npy.exists():
        labels = _labels_from_array(_load_npy(npy, mmap=False), npy)
        names = [f"{part}_{i:06d}" for i in range(len(labels))]
        origin = npy
    else:
        raise DataError(folder, f"no {part}_label.pkl or {part}_label.npy")
    if len(names) != n or len(labels) != n:
        raise DataError(origin, f"has {len(names)} names / {len(labels)} labels for {n} samples")
    # UmURL keeps the file name; prepared NTU folders store the bare sample name
    names = [x[: -len(".skeleton")] if x.endswith(".skeleton") else x for x in names]
    return names, labels, origin


def agcn_part(folder: Path, part: str, out_part: str, chunk: int) -> PartSource:
    """Part `part` ("train"/"val") of an AGCN folder, stored as `out_part`, read `chunk` samples at a time."""
    data_path = folder / f"{part}_data_joint.npy"
    data = _load_npy(data_path, mmap=True)
    if data.ndim != 5 or data.shape[1] != 3:
        raise DataError(data_path, f"expected (N, 3, T, V, M), got shape {data.shape}")
    n, _, t, v, m = data.shape
    if v != NUM_JOINTS:
        raise DataError(data_path, f"has {v} joints; only NTU 25-joint (Kinect v2) arrays are supported")
    if m != NUM_PERSONS:
        raise DataError(data_path, f"has {m} persons; expected {NUM_PERSONS}")
    if data.dtype.kind != "f":
        raise DataError(data_path, f"dtype {data.dtype} is not floating point")
    nf_path = folder / f"{part}_num_frame.npy"
    num_frame = _load_npy(nf_path, mmap=False)
    if num_frame.shape != (n,) or num_frame.dtype.kind not in "iu":
        raise DataError(nf_path, f"expected {n} integers, got {num_frame.dtype} {num_frame.shape}")
    if (num_frame < 0).any():
        raise DataError(nf_path, f"negative frame count at sample {int(np.argmax(num_frame < 0))}")
    lengths = np.minimum(num_frame, t).astype(np.int64)
    names, labels, label_path = _agcn_labels(folder, part, n)

    def blocks() -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        frames = np.arange(t)
        for start in range(0, n, chunk):
            clips = np.array(data[start:start + chunk], dtype=np.float32)
            ln = lengths[start:start + chunk]
            clips *= (frames[None, :] < ln[:, None])[:, None, :, None, None]
            yield start, clips, ln

    return PartSource(out_part, data_path, n, t, names, labels, blocks, label_path)

# --- CTR-GCN / MAMP .npz ----------------------------------------------------------------------

class NpzStream:
    """Read one array of an ``.npz`` in row chunks, without loading it (stored or deflated members)."""

    def __init__(self, path: Path, key: str):
        self.path, self.key = path, key
        try:
            self.zip = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise DataError(path, f"not a readable .npz (zip) file: {exc}") from None
        member = f"{key}.npy"
        if member not in self.zip.namelist():
            raise DataError(path, f"has no array {key!r} (holds {sorted(n[:-4] for n in self.zip.namelist())})")
        self.fh = self.zip.open(member)
        self.shape, self.dtype, fortran = read_npy_header(self.fh, f"{path} (array {key!r})")
        if fortran or self.dtype.hasobject:
            raise DataError(path, f"array {key!r} is {'Fortran-ordered' if fortran else 'an object array'}; "
                                  "re-save it with numpy.savez (C order, numeric)")
        # the member's size as the zip records it, not the header's claim, bounds what is allocated
        check_data_size(path, self.shape, self.dtype, self.zip.getinfo(member).file_size - self.fh.tell(),
                        what=f"its member {member}")
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self.done = 0

    def read(self, rows: int) -> np.ndarray:
        rows = min(rows, self.shape[0] - self.done)
        buf = self.fh.read(rows * self.row_bytes)
        if len(buf) != rows * self.row_bytes:
            raise DataError(self.path, f"array {self.key!r} is truncated")
        self.done += rows
        return np.frombuffer(buf, dtype=self.dtype).reshape((rows,) + tuple(self.shape[1:]))

    def close(self) -> None:
        self.fh.close()
        self.zip.close()


def _npz_small(path: Path, key: str) -> np.ndarray:
    s = NpzStream(path, key)
    try:
        return np.array(s.read(s.shape[0]))
    finally:
        s.close()


def ctrgcn_part(path: Path, part: str, chunk: int) -> tuple[PartSource, int | None]:
    """Part `part` ("train"/"test") of a CTR-GCN .npz, and its one-hot width (None for plain labels)."""
    x_key, y_key = f"x_{part}", f"y_{part}"
    probe = NpzStream(path, x_key)
    shape, dtype = probe.shape, probe.dtype
    probe.close()
    if len(shape) != 3 or dtype.kind != "f":
        raise DataError(path, f"{x_key} should be float (N, T, 150), got {dtype} {shape}")
    n, t, width = shape
    if width != NUM_PERSONS * NUM_JOINTS * 3:
        raise DataError(path, f"{x_key} has {width} values per frame; expected {NUM_PERSONS} persons × "
                              f"{NUM_JOINTS} joints × 3 = {NUM_PERSONS * NUM_JOINTS * 3} (NTU 25 joints only)")
    y = _npz_small(path, y_key)
    labels = _labels_from_array(y, path)
    if len(labels) != n:
        raise DataError(path, f"{y_key} has {len(labels)} rows but {x_key} has {n}")
    width_c = int(y.shape[1]) if y.ndim == 2 else None
    names = [f"{part}_{i:06d}" for i in range(n)]

    def blocks() -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        stream = NpzStream(path, x_key)
        frames = np.arange(t)
        try:
            for start in range(0, n, chunk):
                x = stream.read(chunk).astype(np.float32)  # (n, T, 150)
                # 150 = person × joint × xyz; the CTR-GCN feeder's reshape and transpose
                clips = np.ascontiguousarray(x.reshape(len(x), t, NUM_PERSONS, NUM_JOINTS, 3).transpose(0, 4, 1, 3, 2))
                lengths = (x != 0).any(-1).sum(-1).astype(np.int64)
                clips *= (frames[None, :] < lengths[:, None])[:, None, :, None, None]
                yield start, clips, lengths
        finally:
            stream.close()

    return PartSource("train" if part == "train" else "test", path, n, t, names, labels, blocks), width_c
