"""pyskl / MMAction2 skeleton pickles → a prepared folder (``harness data prepare pyskl``).

The file (``ntu60_3danno.pkl``, ``ntu120_3danno.pkl``) is a dict::

    {"split": {"xsub_train": [frame_dir, ...], "xsub_val": [...], ...},
     "annotations": [{"frame_dir": str, "label": int, "keypoint": (M, T, V, C) float,
                      "total_frames": int, ...}, ...]}

read with the restricted unpickler (:mod:`harness.data.readers.pickles`). Only 3D keypoints with the 25 NTU
(Kinect v2) joints are accepted; 2D files (``*_hrnet.pkl``: C = 2, 17 COCO joints) are refused,
because prepared folders hold x, y, z and the augmentations rotate in 3D.

- Split ``<name>_train`` becomes part ``train`` of split ``<name>``; ``<name>_val`` or
  ``<name>_test`` becomes its ``test`` part (bare ``train``/``val``/``test`` → split ``default``).
- Persons: the folder has the largest M of the file, at most ``--max-persons`` (default 2); a
  sample with more keeps its first ones (pyskl orders them most-moving first), and is counted.
- Length = ``total_frames`` clamped to the stored frames and to ``--max-frames`` (default 300).
- Coordinates: pyskl stores raw Kinect camera coordinates and normalises in its data pipeline, so
  they get the harness's NTU normalisation (the UmURL ``pre_normalization`` that
  ``prepare ntu60`` uses; ``--z-align`` as there); ``--raw-coordinates`` stores them as given.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ....errors import DataError
from ....registry import DATASETS
from ...prepared.kinds import DatasetKind
from .ntu_rgbd import NUM_JOINTS, action_names
from ....transforms.normalize import pre_normalization
from .ntu_splits import NAME_PATTERN, SPLIT_ALIASES, parse_name
from ..pickles import safe_load_pickle
from ...prepared.format import PreparedWriter
from ...topology import NTU25

REQUIRED_KEYS = ("frame_dir", "label", "keypoint", "total_frames")
SPLIT_KEY = re.compile(r"(?:(?P<name>.+)_)?(?P<part>train|val|test)")
DEFAULT_CHUNK = 256  # samples normalised per step: 256 × (3, 300, 25, 2) float64 ≈ 92 MB


@dataclass
class Sample:
    name: str
    label: int
    keypoint: np.ndarray  # (M, T, 25, 3) as stored in the pickle
    length: int  # frames kept: total_frames clamped to T and --max-frames


def _int(value: Any) -> int | None:
    """A Python or numpy integer (not bool), else None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        return None
    return int(value)


def load_file(path: Path) -> tuple[dict[str, Any], list[Any]]:
    obj = safe_load_pickle(path)
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a dict with 'split' and 'annotations', got {type(obj).__name__}")
    for key, kind in (("split", dict), ("annotations", list)):
        if key not in obj:
            raise DataError(path, f"has no {key!r} key (keys: {sorted(map(str, obj))}); expected a "
                                  "pyskl annotation file")
        if not isinstance(obj[key], kind):
            raise DataError(path, f"{key!r} should be a {kind.__name__}, got {type(obj[key]).__name__}")
    return obj["split"], obj["annotations"]


def read_sample(path: Path, i: int, ann: Any, max_frames: int) -> Sample:
    where = f"annotations[{i}]"
    if not isinstance(ann, dict):
        raise DataError(path, f"{where} should be a dict, got {type(ann).__name__}")
    name = ann.get("frame_dir")
    if isinstance(name, str):
        where += f" ({name})"
    missing = [k for k in REQUIRED_KEYS if k not in ann]
    if missing:
        raise DataError(path, f"{where} has no {', '.join(map(repr, missing))} key "
                              f"(needs {', '.join(REQUIRED_KEYS)})")
    if not isinstance(name, str) or not name or "/" in name:
        raise DataError(path, f"{where}: frame_dir should be a non-empty name, got {name!r}")
    label, total = _int(ann["label"]), _int(ann["total_frames"])
    if label is None or label < 0:
        raise DataError(path, f"{where}: label should be an integer >= 0, got {ann['label']!r}")
    if total is None:
        raise DataError(path, f"{where}: total_frames should be an integer, got {ann['total_frames']!r}")
    kp = ann["keypoint"]
    if not isinstance(kp, np.ndarray) or kp.ndim != 4 or kp.dtype.kind not in "fiu":
        shape = getattr(kp, "shape", None)
        raise DataError(path, f"{where}: keypoint should be a numeric (M, T, V, C) array, got "
                              f"{type(kp).__name__} of shape {shape}")
    m, t, v, c = kp.shape
    if c == 2:
        raise DataError(path, f"{where}: 2D keypoints (C=2) are not supported: prepared datasets hold "
                              "x, y, z and the augmentations rotate in 3D; use a 3D file such as "
                              "ntu60_3danno.pkl / ntu120_3danno.pkl")
    if c != 3 or v != NUM_JOINTS:
        raise DataError(path, f"{where}: keypoint has shape {kp.shape} (M, T, V, C); expected "
                              f"V = {NUM_JOINTS} NTU (Kinect v2) joints and C = 3 coordinates")
    length = min(total, t, max_frames)
    if m == 0 or length <= 0:
        raise DataError(path, f"{where}: no frames to keep (keypoint shape {kp.shape}, total_frames {total})")
    if not np.isfinite(kp).all():
        frame = int(np.flatnonzero(~np.isfinite(kp).all(axis=(0, 2, 3)))[0])
        raise DataError(path, f"{where}: keypoint has NaN or infinite values (first in frame {frame})")
    return Sample(name, label, kp, length)


def read_splits(path: Path, split: dict[str, Any], index: dict[str, int]) -> dict[tuple[str, str], np.ndarray]:
    """``{(split, part): sample indices}`` from the file's ``split`` dict (see the module docstring)."""
    out: dict[tuple[str, str], np.ndarray] = {}
    origin: dict[tuple[str, str], str] = {}
    names_of = {i: n for n, i in index.items()}
    for key, names in split.items():
        m = SPLIT_KEY.fullmatch(str(key))
        if m is None:
            raise DataError(path, f"split {key!r}: expected a name ending in _train, _val or _test "
                                  "(e.g. xsub_train, xsub_val)")
        name = m["name"] or "default"
        name = SPLIT_ALIASES.get(name, name)
        if "/" in name:
            raise DataError(path, f"split {key!r}: a split name cannot contain '/'")
        part = "train" if m["part"] == "train" else "test"
        if (name, part) in out:
            raise DataError(path, f"splits {origin[name, part]!r} and {key!r} are both the {part} part "
                                  f"of split {name!r}")
        if not isinstance(names, (list, tuple)):
            raise DataError(path, f"split {key!r} should be a list of frame_dir names, got {type(names).__name__}")
        absent = [n for n in names if not isinstance(n, str) or n not in index]
        if absent:
            raise DataError(path, f"split {key!r} names {len(absent)} sample(s) that no annotation has, "
                                  f"e.g. {absent[0]!r}")
        seen: set[str] = set()
        for n in names:
            if n in seen:
                raise DataError(path, f"split {key!r} lists {n!r} twice")
            seen.add(n)
        idx = np.array([index[n] for n in names], dtype=np.int64)
        out[name, part], origin[name, part] = idx, str(key)
    for name, part in list(out):
        if part == "train" and (name, "test") in out:
            both = np.intersect1d(out[name, "train"], out[name, "test"])
            if len(both):
                raise DataError(path, f"split {name!r}: {names_of[int(both[0])]!r} is in both "
                                      f"{origin[name, 'train']!r} and {origin[name, 'test']!r}")
    return out


def _clips(samples: list[Sample], persons: int, frames: int, normalize: bool, z_align: bool) -> np.ndarray:
    """(n, 3, frames, 25, persons) float32; frames past each length are zero.

    Normalising a padded block equals normalising each clip alone: step (a) fills a clip's trailing
    empty frames from its own earlier frames, and the rest uses each frame or frame 0 only; what
    step (a) writes past a clip's length is zeroed again afterwards.
    """
    block = np.zeros((len(samples), 3, frames, NUM_JOINTS, persons), dtype=np.float32)
    for k, s in enumerate(samples):
        kp = s.keypoint[:persons, :s.length]
        block[k, :, :s.length, :, :len(kp)] = kp.transpose(3, 1, 2, 0)  # (M, T, V, C) → (C, T, V, M)
    if normalize:
        block = pre_normalization(block, z_align=z_align, topology=NTU25).astype(np.float32)
        lengths = np.array([s.length for s in samples])
        block *= (np.arange(frames)[None, :] < lengths[:, None])[:, None, :, None, None]
    return block


def _class_names(num_classes: int, ntu: bool) -> list[str]:
    if ntu and num_classes <= 120:
        return action_names(num_classes)
    return [str(i) for i in range(num_classes)]


def prepare_pyskl(raw: Path, out: Path, *, max_frames: int = 300, max_persons: int = 2,
                  normalize: bool = True, z_align: bool = False, num_classes: int | None = None,
                  chunk: int = DEFAULT_CHUNK, overwrite: bool = False) -> Path:
    if max_frames <= 0 or max_persons <= 0 or chunk <= 0:
        raise DataError(None, "--max-frames, --max-persons and --chunk must be positive")
    split, annotations = load_file(raw)
    if not annotations:
        raise DataError(raw, "'annotations' is empty")
    samples = [read_sample(raw, i, a, max_frames) for i, a in enumerate(annotations)]
    index: dict[str, int] = {}
    for i, s in enumerate(samples):
        if s.name in index:
            raise DataError(raw, f"annotations[{i}]: frame_dir {s.name!r} also at annotations[{index[s.name]}]")
        index[s.name] = i
    parts = read_splits(raw, split, index)
    ntu = all(NAME_PATTERN.fullmatch(s.name) for s in samples)
    names = [parse_name(s.name) for s in samples] if ntu else []
    for i, (s, nm) in enumerate(zip(samples, names)):
        if s.label != nm.label:  # catches a file whose labels are shifted against its names
            raise DataError(raw, f"annotations[{i}] ({s.name}): label {s.label}, but action "
                                 f"A{nm.action:03d} means label {nm.label}")
    labels = np.array([s.label for s in samples])
    top = int(labels.max()) + 1
    if num_classes is None:
        num_classes = (60 if top <= 60 else 120) if ntu and top <= 120 else top
    if top > num_classes:
        i = int(np.argmax(labels >= num_classes))
        raise DataError(raw, f"annotations[{i}] ({samples[i].name}): label {labels[i]} outside "
                             f"[0, {num_classes}) (pass --num-classes?)")
    file_persons = max(s.keypoint.shape[0] for s in samples)
    persons = min(file_persons, max_persons)
    t_max = max(s.length for s in samples)
    in_split = np.zeros(len(samples), bool)
    for idx in parts.values():
        in_split[idx] = True
    source = {
        "importer": "pyskl", "raw": str(raw), "keypoint_dtype": str(samples[0].keypoint.dtype),
        "normalization": ("umurl pre_normalization" + (" + z-align" if z_align else "")) if normalize
        else "none (coordinates as stored)",
        "max_frames": max_frames, "persons_in_file": file_persons,
        "samples_with_more_persons": sum(s.keypoint.shape[0] > persons for s in samples),
        "samples_cut_to_max_frames": sum(min(s.keypoint.shape[1], _int(a["total_frames"])) > max_frames
                                         for s, a in zip(samples, annotations)),
        "total_frames_beyond_stored": sum(_int(a["total_frames"]) > s.keypoint.shape[1]
                                          for s, a in zip(samples, annotations)),
        "samples_in_no_split": int((~in_split).sum()),
    }
    with PreparedWriter(out, kind="pyskl", topology=NTU25, num_samples=len(samples), max_frames=t_max,
                        num_persons=persons, class_names=_class_names(num_classes, ntu), source=source,
                        overwrite=overwrite) as w:
        # normalise in groups of similar length: a block costs its longest clip's frames per sample
        order = np.argsort([s.length for s in samples], kind="stable")
        for start in range(0, len(samples), chunk):
            group = [int(i) for i in order[start:start + chunk]]
            clips = _clips([samples[i] for i in group], persons, samples[group[-1]].length, normalize, z_align)
            for i, clip in zip(group, clips):
                s = samples[i]
                cols = {}
                if ntu:
                    nm = names[i]
                    cols = dict(subject=nm.performer, camera=nm.camera, setup=nm.setup, replication=nm.replication)
                w.set_sample(i, clip[:, :s.length], name=s.name, label=s.label, **cols)
        for (name, part), idx in parts.items():
            w.add_split(name, part, idx)
    return out


@DATASETS.register("pyskl")
class PysklImport(DatasetKind):
    """Import a pyskl / MMAction2 3D skeleton pickle (ntu60_3danno.pkl, ntu120_3danno.pkl)"""

    name = "pyskl"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--max-frames", type=int, default=300,
                            help="frames stored per sample; longer ones are cut (default 300)")
        parser.add_argument("--max-persons", type=int, default=2,
                            help="persons kept per sample, the first ones of the file (default 2)")
        parser.add_argument("--raw-coordinates", action="store_true",
                            help="store the coordinates as given (default: the NTU normalisation)")
        parser.add_argument("--z-align", action="store_true",
                            help="also rotate spine base→middle onto +z (as `prepare ntu60 --z-align`)")
        parser.add_argument("--num-classes", type=int, default=None,
                            help="class count (default: 60/120 for NTU names, else max label + 1)")
        parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="samples written per step")

    @classmethod
    def prepare(cls, args: argparse.Namespace) -> list[Path]:
        if not getattr(args, "raw", None):
            raise DataError(None, "pyskl needs --raw FILE.pkl (e.g. ntu60_3danno.pkl)")
        raw = Path(args.raw)
        if not raw.is_file():
            raise DataError(raw, "expected a pyskl annotation file (e.g. ntu60_3danno.pkl)")
        if args.raw_coordinates and args.z_align:
            raise DataError(None, "--z-align is part of the normalisation; it cannot go with --raw-coordinates")
        return [prepare_pyskl(raw, Path(args.out), max_frames=args.max_frames, max_persons=args.max_persons,
                              normalize=not args.raw_coordinates, z_align=args.z_align,
                              num_classes=args.num_classes, chunk=args.chunk,
                              overwrite=bool(getattr(args, "overwrite", False)))]
