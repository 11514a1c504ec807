"""Northwestern-UCLA Multiview Action3D → a prepared folder (``harness data prepare nw-ucla``;
``--dataset nw-ucla``).

Raw layout (the real copy is ``<real data>/nw_ucla/all_sqe``): one JSON file per clip, named
``aAA_sSS_eEE_vVV.json`` (action, subject, repetition, view), holding
``{"file_name": "aAA_sSS_eEE_vVV", "skeletons": [[[x, y, z] × 20 joints] × T frames]}`` in metres,
joints in the Kinect v1 SDK order (``UCLA20``). There are 1,484 clips of 10 actions (ids a01–a06,
a08, a09, a11, a12; the dataset skips a07 and a10), 10 subjects and 3 views; clips are 1 to 201
frames long and a few are a single frame.

Output: one person, 20 joints (``UCLA20``), 10 classes numbered 0–9 in action-id order (a01 → 0 …
a12 → 9), ``subject`` = SS, ``camera`` = the view VV, ``replication`` = EE. Splits:

* ``xview``: the standard cross-view protocol, views 1 and 2 train, view 3 tests (1,020 / 464);
* ``xsub``: cross-subject, odd subjects train (724 / 760), the rule MSR Action3D uses.

Axes: Kinect camera space like MSR Action3D and NTU (y up, z the depth, about 2.7 m): the head is above
the left foot in the first frame of all 1,484 files and the left shoulder has the smaller x in 1,478.
Single-frame clips are kept: temporal resampling repeats their one frame.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DataError
from ...registry import DATASETS
from ..prepared.kinds import RealSetKind
from .limits import check_float32
from ...transforms.normalize import pre_normalization
from ..prepared.format import PreparedWriter
from .text_tables import read_text
from ..topology import Topology

NUM_JOINTS = 20
ACTION_IDS = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)  # label = position in this tuple
ACTION_NAMES = ("pick up with one hand", "pick up with two hands", "drop trash", "walk around",
                "sit down", "stand up", "donning", "doffing", "throw", "carry")
VIEWS = (1, 2, 3)
XVIEW_TRAIN_VIEWS = (1, 2)  # the standard cross-view protocol: view 3 is the test view
XSUB_TRAIN_SUBJECTS = (1, 3, 5, 7, 9)
SUBFOLDER = "all_sqe"  # where the clips lie inside the dataset's own folder
_NAME = re.compile(r"^a(\d{2})_s(\d{2})_e(\d{2})_v(\d{2})$")

_UCLA_NAMES = ("hip_center", "spine", "shoulder_center", "head", "left_shoulder", "left_elbow",
               "left_wrist", "left_hand", "right_shoulder", "right_elbow", "right_wrist", "right_hand",
               "left_hip", "left_knee", "left_ankle", "left_foot", "right_hip", "right_knee",
               "right_ankle", "right_foot")
# (child, parent), 1-based, the skeleton graph NW-UCLA readers use; hip centre (1) is the root
_UCLA_BONES_1 = ((2, 1), (3, 2), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9), (11, 10),
                 (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19))

UCLA20 = Topology(
    name="ucla20",
    joint_names=_UCLA_NAMES,
    # the root's zero bone keeps one bone per joint, as NTU25 and MSR20 do
    bones=((0, 0),) + tuple((c - 1, p - 1) for c, p in _UCLA_BONES_1),
    center=0,  # hip centre
    shoulders=(4, 8),  # left, right shoulder
    hip_spine=(0, 1),
    flip=(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 16, 17, 18, 19, 12, 13, 14, 15),
)


@dataclass(frozen=True)
class UclaName:
    name: str  # aAA_sSS_eEE_vVV
    action: int  # the dataset's id (1–12, not all used)
    subject: int
    repetition: int
    view: int

    @property
    def label(self) -> int:
        return ACTION_IDS.index(self.action)


def parse_name(name: str, path: str | Path | None = None) -> UclaName:
    m = _NAME.match(name)
    if not m:
        raise DataError(path or name, f"{name!r} is not an NW-UCLA clip name aAA_sSS_eEE_vVV")
    action, subject, repetition, view = (int(g) for g in m.groups())
    if action not in ACTION_IDS:
        raise DataError(path or name, f"{name!r}: action {action} is not one of the NW-UCLA actions "
                                      f"{', '.join(f'a{a:02d}' for a in ACTION_IDS)}")
    if view not in VIEWS:
        raise DataError(path or name, f"{name!r}: view {view} is outside v01–v03")
    return UclaName(name, action, subject, repetition, view)


def read_clip(path: str | Path) -> np.ndarray:
    """One clip file → float32 (T, 20, 3), x, y, z in metres. T ≥ 1."""
    path = Path(path)
    try:
        doc = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON: {exc.msg}", line=exc.lineno) from None
    if not isinstance(doc, dict) or "skeletons" not in doc:
        raise DataError(path, 'expected a JSON object with a "skeletons" list (T × 20 × 3)')
    stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.name
    if "file_name" in doc and doc["file_name"] != stem:
        raise DataError(path, f'"file_name" is {doc["file_name"]!r} but the file is named {stem!r}')
    try:
        seq = np.array(doc["skeletons"], dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(path, '"skeletons" is not a T × 20 × 3 array of numbers (ragged lists or '
                              'non-numbers)') from None
    if seq.ndim >= 1 and len(seq) == 0:
        raise DataError(path, "has no frames")
    if seq.ndim != 3 or seq.shape[1:] != (NUM_JOINTS, 3):
        raise DataError(path, f'"skeletons" has shape {seq.shape}, expected (T, {NUM_JOINTS}, 3)')
    bad = ~np.isfinite(seq)
    if bad.any():
        frame, joint, axis = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(path, f"non-finite value (NaN, Inf or null) at frame {frame}, joint {joint}, "
                              f"axis {'xyz'[axis]} ({bad.sum()} in all)")
    check_float32(seq, path, lambda i: "frame {}, joint {}, axis {}".format(
        *np.unravel_index(i, seq.shape)[:2], "xyz"[i % 3]))
    return seq.astype(np.float32)


def clip_folder(raw: str | Path) -> Path:
    """The folder holding the clip files: ``raw`` itself, or its ``all_sqe`` sub-folder."""
    folder = Path(raw)
    if not any(folder.glob("*.json")) and (folder / SUBFOLDER).is_dir():
        folder = folder / SUBFOLDER
    if not folder.is_dir() or not any(folder.glob("*.json")):
        raise DataError(folder, "expected a folder of NW-UCLA clips aAA_sSS_eEE_vVV.json "
                                f"(or one with an {SUBFOLDER}/ sub-folder of them)")
    return folder


def build_splits(subjects: np.ndarray, views: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """name → {"train": idx, "test": idx}."""
    out = {}
    for name, train in (("xview", np.isin(views, XVIEW_TRAIN_VIEWS)),
                        ("xsub", np.isin(subjects, XSUB_TRAIN_SUBJECTS))):
        out[name] = {"train": np.flatnonzero(train), "test": np.flatnonzero(~train)}
    return out


def prepare_nw_ucla(raw: str | Path, out: str | Path, *, overwrite: bool = False,
                    normalize: bool = True) -> Path:
    """Write every clip of ``raw``, sorted by name. ``normalize`` applies the normalisation MSR
    Action3D and NTU data get (the same function, with the UCLA20 joints): per-frame centring on the
    hip centre and one rotation per clip taking the frame-0 left→right shoulder vector onto +x."""
    folder = clip_folder(raw)
    paths = sorted(folder.glob("*.json"))
    entries = [parse_name(p.name[: -len(".json")], p) for p in paths]
    clips = [read_clip(p) for p in paths]
    source = {"raw": str(folder.resolve()), "files": len(entries),
              "axes": "Kinect camera space: y up, z depth, metres",
              "normalization": "hip-centred per frame, shoulders on +x" if normalize else "none (raw)"}
    with PreparedWriter(out, kind="nw-ucla", topology=UCLA20, num_samples=len(entries),
                        max_frames=max(len(c) for c in clips), num_persons=1,
                        class_names=ACTION_NAMES, source=source, overwrite=overwrite) as writer:
        for i, (entry, seq) in enumerate(zip(entries, clips)):
            clip = seq.transpose(2, 0, 1)[..., None]  # (T, V, 3) → (3, T, V, 1)
            if normalize:
                clip = pre_normalization(clip[None], topology=UCLA20)[0].astype(np.float32)
            writer.set_sample(i, clip, name=entry.name, label=entry.label, subject=entry.subject,
                              camera=entry.view, replication=entry.repetition)
        splits = build_splits(np.array([e.subject for e in entries]), np.array([e.view for e in entries]))
        for split, parts in splits.items():
            for part, idx in parts.items():
                writer.add_split(split, part, idx)
    return Path(out)


@DATASETS.register("nw-ucla")
class NwUcla(RealSetKind):
    """Northwestern-UCLA Multiview Action3D: 1,484 clips, 20 joints, 10 actions, 3 views."""

    name = "nw-ucla"
    label = "NW-UCLA"
    folder = f"nw_ucla/{SUBFOLDER}"
    title = "NW-UCLA"
    raw_help = ("Convert NW-UCLA Multiview Action3D skeletons. --raw is the folder of aAA_sSS_eEE_vVV.json "
                "clips or the one above it with all_sqe/ (default: the real data folder's nw_ucla).")

    @classmethod
    def convert(cls, raw: Path, out: str | Path, *, overwrite: bool, normalize: bool) -> Path:
        return prepare_nw_ucla(raw, out, overwrite=overwrite, normalize=normalize)


def default_raw() -> Path:
    return NwUcla.default_raw()
