"""Import NTU arrays made by other codebases (docs/reference/data-formats.md §4–5) into prepared folders.

``harness data prepare agcn --raw FOLDER --out DIR [--split-name xsub]``
    2s-AGCN / UmURL / USDRL split folders (``{train,val}_data_joint.npy``, ``_num_frame.npy``,
    ``_label.pkl`` or ``_label.npy``).
``harness data prepare ctrgcn --raw NTU60_XSub.npz --out DIR [--split-name xsub]``
    CTR-GCN / MAMP ``.npz`` (``x_train``, one-hot ``y_train``, ``x_test``, ``y_test``).

Both write one prepared folder (NTU25 topology, 2 persons) whose single named split has parts
``train`` and ``test`` (AGCN's ``val`` is the test part). The split name defaults to the folder or
file name (``xsub``, ``xview``, ``xset``; UmURL's ``xsetup`` becomes ``xset``).

The readers (:mod:`harness.data.readers.ntu.agcn_readers`, whose names stay importable from here) describe
the file layouts, how large inputs are streamed and which frames count as valid.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import numpy as np

from ....errors import DataError
from ....registry import DATASETS
# re-exported: the readers' names lived here before they got their own module
from .agcn_readers import NpzStream, PartSource, agcn_part, ctrgcn_part
from ...prepared.kinds import DatasetKind
from .ntu_rgbd import NUM_PERSONS, action_names
from .ntu_splits import NAME_PATTERN, SPLIT_ALIASES, parse_name
from ...prepared.format import PreparedWriter
from ...topology import NTU25

KNOWN_SPLITS = ("xsub", "xview", "xset")
DEFAULT_CHUNK = 256  # samples per copy step: 256 × (3, 300, 25, 2) float32 ≈ 46 MB


def infer_split_name(stem: str) -> str | None:
    """``xsub`` from ``xsub``, ``NTU60_XSub``, ``ntu120_xsetup`` …; None when nothing matches."""
    for token in re.split(r"[^a-z0-9]+", stem.lower()):
        token = SPLIT_ALIASES.get(token, token)
        if token in KNOWN_SPLITS:
            return token
    return None


def _split_name(args: argparse.Namespace, source: Path) -> str:
    name = getattr(args, "split_name", None) or infer_split_name(source.stem if source.suffix else source.name)
    if not name:
        raise DataError(source, "cannot tell the split from the name: pass --split-name (e.g. xsub)")
    return SPLIT_ALIASES.get(name, name)


def _ntu_columns(name: str) -> dict[str, int]:
    if NAME_PATTERN.fullmatch(name):
        n = parse_name(name)
        return dict(subject=n.performer, camera=n.camera, setup=n.setup, replication=n.replication)
    return {}


def _class_names(num_classes: int, ntu: bool) -> list[str]:
    if ntu and num_classes <= 120:
        return action_names(num_classes)
    return [str(i) for i in range(num_classes)]  # no names in the files; do not invent any


def _num_classes(args: argparse.Namespace, labels: np.ndarray, fixed: int | None, ntu_names: bool) -> int:
    requested = getattr(args, "num_classes", None)
    if requested:
        return int(requested)
    if fixed is not None:  # one-hot width
        return fixed
    top = int(labels.max(initial=-1)) + 1
    if ntu_names:  # NTU file names: 60 or 120 actions (larger labels are reported as errors)
        return 60 if top <= 60 else 120
    return top


def write_import(out: Path, *, kind: str, split: str, parts: list[PartSource], num_classes: int,
                 ntu_names: bool, source: dict[str, Any], overwrite: bool = False) -> Path:
    """Write the parts (train first) into one prepared folder with split `split`."""
    n = sum(p.num for p in parts)
    t_max = max(p.frames for p in parts)
    for p in parts:
        bad = np.flatnonzero((p.labels < 0) | (p.labels >= num_classes))
        if len(bad):
            i = int(bad[0])
            raise DataError(p.label_file, f"{p.part} sample {i} ({p.names[i]}) has label {p.labels[i]} "
                                      f"outside [0, {num_classes}) (pass --num-classes?)")
    with PreparedWriter(out, kind=kind, topology=NTU25, num_samples=n, max_frames=t_max,
                        num_persons=NUM_PERSONS, class_names=_class_names(num_classes, ntu_names),
                        source=source, overwrite=overwrite) as w:
        offset = 0
        for p in parts:
            for start, clips, lengths in p.blocks():
                if not np.isfinite(clips).all():
                    k = int(np.flatnonzero(~np.isfinite(clips).reshape(len(clips), -1).all(1))[0])
                    raise DataError(p.origin, f"{p.part} sample {start + k} ({p.names[start + k]}) "
                                              "has NaN or infinite coordinates")
                if clips.shape[2] < t_max:  # parts of different lengths: pad the shorter
                    pad = np.zeros(clips.shape[:2] + (t_max - clips.shape[2],) + clips.shape[3:], np.float32)
                    clips = np.concatenate([clips, pad], axis=2)
                rows = [dict(name=p.names[start + k], label=int(p.labels[start + k]),
                             **_ntu_columns(p.names[start + k])) for k in range(len(clips))]
                w.set_samples(offset + start, clips, lengths, rows)
            w.add_split(split, p.part, np.arange(offset, offset + p.num))
            offset += p.num
    return out


def _check_unique(parts: list[PartSource]) -> None:
    seen: dict[str, str] = {}
    for p in parts:
        for name in p.names:
            if name in seen:
                raise DataError(p.origin, f"sample name {name!r} appears twice ({seen[name]} and {p.part})")
            seen[name] = p.part


def _check_labels_match_names(parts: list[PartSource]) -> None:
    """With NTU file names, each label must be the name's action − 1 (catches misaligned label files)."""
    for p in parts:
        for i, (name, label) in enumerate(zip(p.names, p.labels)):
            action = parse_name(name).action
            if label != action - 1:
                raise DataError(p.label_file, f"{p.part} sample {i} ({name}): label {label}, but action "
                                          f"A{action:03d} means label {action - 1}")


@DATASETS.register("agcn")
class AgcnImport(DatasetKind):
    """Import 2s-AGCN/UmURL/USDRL arrays ({train,val}_data_joint.npy, _num_frame.npy, _label.pkl)"""

    name = "agcn"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--split-name", default=None,
                            help="name of the split (default: from the folder name, e.g. xsub)")
        parser.add_argument("--num-classes", type=int, default=None,
                            help="class count (default: 60/120 for NTU file names, else max label + 1)")
        parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="samples copied per step")

    @classmethod
    def prepare(cls, args: argparse.Namespace) -> list[Path]:
        if not getattr(args, "raw", None):
            raise DataError(None, "agcn needs --raw FOLDER (holding {train,val}_data_joint.npy ...)")
        folder = Path(args.raw)
        if not folder.is_dir():
            raise DataError(folder, "expected a folder with {train,val}_data_joint.npy")
        split = _split_name(args, folder)
        chunk = int(getattr(args, "chunk", DEFAULT_CHUNK))
        parts = [agcn_part(folder, "train", "train", chunk), agcn_part(folder, "val", "test", chunk)]
        _check_unique(parts)
        ntu = all(NAME_PATTERN.fullmatch(x) for p in parts for x in p.names)
        if ntu:
            _check_labels_match_names(parts)
        labels = np.concatenate([p.labels for p in parts])
        num_classes = _num_classes(args, labels, None, ntu)
        source = {"importer": "agcn", "raw": str(folder), "split": split,
                  "note": "frames past num_frame zeroed; num_frame clamped to T"}
        return [write_import(Path(args.out), kind=cls.name, split=split, parts=parts, num_classes=num_classes,
                             ntu_names=ntu, source=source, overwrite=bool(getattr(args, "overwrite", False)))]


@DATASETS.register("ctrgcn")
class CtrGcnImport(DatasetKind):
    """Import a CTR-GCN/MAMP .npz (x_train (N,300,150), one-hot y_train, x_test, y_test)"""

    name = "ctrgcn"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--split-name", default=None,
                            help="name of the split (default: from the file name, e.g. NTU60_XSub → xsub)")
        parser.add_argument("--num-classes", type=int, default=None,
                            help="class count (default: the one-hot width)")
        parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="samples copied per step")

    @classmethod
    def prepare(cls, args: argparse.Namespace) -> list[Path]:
        if not getattr(args, "raw", None):
            raise DataError(None, "ctrgcn needs --raw FILE.npz")
        path = Path(args.raw)
        if not path.is_file():
            raise DataError(path, "expected a CTR-GCN .npz file (e.g. NTU60_XSub.npz)")
        split = _split_name(args, path)
        chunk = int(getattr(args, "chunk", DEFAULT_CHUNK))
        train, width_train = ctrgcn_part(path, "train", chunk)
        test, width_test = ctrgcn_part(path, "test", chunk)
        if width_train != width_test:
            raise DataError(path, f"y_train is {width_train} classes wide but y_test {width_test}")
        labels = np.concatenate([train.labels, test.labels])
        num_classes = _num_classes(args, labels, width_train, ntu_names=False)
        ntu = num_classes in (60, 120)  # the CTR-GCN NTU files; other widths get plain names
        source = {"importer": "ctrgcn", "raw": str(path), "split": split,
                  "note": "length = frames with a non-zero coordinate; later frames zeroed"}
        return [write_import(Path(args.out), kind=cls.name, split=split, parts=[train, test],
                             num_classes=num_classes, ntu_names=ntu, source=source,
                             overwrite=bool(getattr(args, "overwrite", False)))]
