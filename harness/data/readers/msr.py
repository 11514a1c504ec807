"""MSR Action3D → a prepared folder (``harness data prepare msr-action3d``; ``--dataset msr-action3d``).

Raw layout (docs/reference/data-formats.md §8; the real copy is ``<real data>/msr_action3d``)::

    skeletons/aXX_sYY_eZZ_skeleton3D.txt   20·T lines "x y z c": T frames × 20 joints, metres
    files_used.txt                          the 557 sequences normally used (one name per line)
    metadata.json                           action names, joint order, bones, subject splits

Output: one person, 20 joints (``MSR20``), 20 classes (label = action − 1), ``subject`` = YY,
``replication`` = ZZ. Splits:

* ``xsub``: the standard cross-subject split, odd subjects train (284 / 273 of the 557);
* ``as1``, ``as2``, ``as3``: the three 8-class action sets, cross-subject within the set
  (114 / 105, 116 / 112, 111 / 111). Labels keep their 20-class ids;
* ``rand0`` … ``rand9``: the 10 random 5/5 subject splits shipped in metadata.json.

Axes. The files are Kinect camera space: x across the image, y up, z = depth (about 2.6 m), the
same convention as NTU RGB+D and PKU-MMD (the person's left shoulder has the smaller x in those
files too). We checked this on the data rather than assumed it: the head is above the feet in all
566 non-empty files and the left shoulder has the smaller x in 564. So the coordinates are stored
unchanged; the fourth value ``c`` (a tracking flag/confidence) is dropped.
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
from ...transforms.normalize import pre_normalization
from ..prepared.format import PreparedWriter
from .text_tables import content_lines, read_float_table, read_text
from ..topology import MSR20

NUM_JOINTS = 20
# a01–a20 (docs/reference/data-formats.md §8); metadata.json, when present, must agree
ACTION_NAMES = (
    "high arm wave", "horizontal arm wave", "hammer", "hand catch", "forward punch", "high throw",
    "draw X", "draw tick", "draw circle", "hand clap", "two hand wave", "side boxing", "bend",
    "forward kick", "side kick", "jogging", "tennis swing", "tennis serve", "golf swing",
    "pickup and throw")
TRAIN_SUBJECTS = (1, 3, 5, 7, 9)  # the standard cross-subject split: odd subjects train
# 1-based action ids of the three 8-class action sets
ACTION_SETS = {"as1": (2, 3, 5, 6, 10, 13, 18, 20), "as2": (1, 4, 7, 8, 9, 11, 12, 14),
               "as3": (6, 14, 15, 16, 17, 18, 19, 20)}
SKELETON_SUFFIX = "_skeleton3D.txt"
_NAME = re.compile(r"^a(\d{2})_s(\d{2})_e(\d{2})$")


@dataclass(frozen=True)
class MsrName:
    name: str  # aXX_sYY_eZZ
    action: int  # 1-based
    subject: int
    repetition: int


def parse_name(name: str, path: str | Path | None = None, line: int | None = None) -> MsrName:
    m = _NAME.match(name)
    if not m:
        raise DataError(path or name, f"{name!r} is not an MSR Action3D name aXX_sYY_eZZ", line=line)
    action, subject, repetition = (int(g) for g in m.groups())
    if not 1 <= action <= len(ACTION_NAMES):
        raise DataError(path or name, f"{name!r}: action {action} is outside a01–a20", line=line)
    return MsrName(name, action, subject, repetition)


def read_skeleton(path: str | Path) -> np.ndarray:
    """One ``_skeleton3D.txt`` file → float32 (T, 20, 3) (x, y, z in metres; the flag dropped)."""
    table = read_float_table(path, 4, what="joint line")
    if len(table) % NUM_JOINTS:
        raise DataError(path, f"{len(table)} joint lines is not a multiple of {NUM_JOINTS} "
                              f"(each frame is {NUM_JOINTS} lines)")
    return table[:, :3].reshape(-1, NUM_JOINTS, 3)


def load_metadata(folder: Path) -> dict:
    path = folder / "metadata.json"
    if not path.exists():
        return {}
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON: {exc.msg}", line=exc.lineno) from None


def class_names(meta: dict, folder: Path) -> list[str]:
    names = list(ACTION_NAMES)
    actions = meta.get("actions")
    if actions is not None:
        got = [actions.get(f"a{i:02d}") for i in range(1, len(ACTION_NAMES) + 1)]
        if got != names:
            raise DataError(folder / "metadata.json", f"'actions' differ from the MSR Action3D list "
                                                       f"a01–a20 {names}: {got}")
    return names


def check_bones(meta: dict, folder: Path) -> None:
    """metadata.json's parent–child bones must be MSR20's (child, parent) bones, hip centre as root."""
    bones = meta.get("bones_1based")
    if bones is None:
        return
    expected = set(MSR20.bones) - {(MSR20.center, MSR20.center)}
    got = {(c - 1, p - 1) for p, c in bones}
    if got != expected or len(bones) != len(expected):
        raise DataError(folder / "metadata.json", "'bones_1based' differ from the MSR20 topology")


def used_names(folder: Path) -> list[str]:
    """The names in files_used.txt; without that file, every skeleton file that is not all zero."""
    listing = folder / "files_used.txt"
    if listing.exists():
        names = []
        for number, line in content_lines(read_text(listing)):
            parse_name(line, listing, number)
            names.append(line)
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise DataError(listing, f"{dupes[0]!r} is listed twice")
        return names
    skeletons = sorted((folder / "skeletons").glob(f"*{SKELETON_SUFFIX}"))
    return [p.name[: -len(SKELETON_SUFFIX)] for p in skeletons
            if np.abs(read_skeleton(p)).max(initial=0) > 0]


def build_splits(subjects: np.ndarray, actions: np.ndarray, meta: dict) -> dict[str, dict[str, np.ndarray]]:
    """name → {"train": idx, "test": idx}; `actions` 1-based."""
    xsub = meta.get("standard_cross_subject", {}).get("train_subjects", TRAIN_SUBJECTS)
    train = np.isin(subjects, xsub)
    splits = {"xsub": {"train": np.flatnonzero(train), "test": np.flatnonzero(~train)}}
    for name, ids in ACTION_SETS.items():
        inside = np.isin(actions, ids)
        splits[name] = {"train": np.flatnonzero(inside & train), "test": np.flatnonzero(inside & ~train)}
    for k, split in enumerate(meta.get("random_subject_splits", [])):
        splits[f"rand{k}"] = {part: np.flatnonzero(np.isin(subjects, split[part])) for part in ("train", "test")}
    return splits


def prepare_msr(raw: str | Path, out: str | Path, *, overwrite: bool = False, normalize: bool = True) -> Path:
    """Write the 557 used sequences. ``normalize`` applies the standard skeleton normalisation that
    NTU data gets (docs/reference/data-formats.md §4 steps a, b, d with the MSR20 joints): per-frame centring on the
    hip centre and a rotation taking the frame-0 shoulder vector onto +x. Raw camera coordinates put
    the subject's position (about 2.6 m deep, anywhere in the frame) into every joint."""
    folder = Path(raw)
    if not (folder / "skeletons").is_dir():
        raise DataError(folder, "expected a folder with skeletons/aXX_sYY_eZZ_skeleton3D.txt files "
                                "(and files_used.txt, metadata.json)")
    meta = load_metadata(folder)
    names = class_names(meta, folder)
    check_bones(meta, folder)
    entries = [parse_name(n, folder / "files_used.txt") for n in used_names(folder)]
    clips = []
    for entry in entries:
        path = folder / "skeletons" / f"{entry.name}{SKELETON_SUFFIX}"
        if not path.exists():
            raise DataError(path, "listed in files_used.txt but not found")
        seq = read_skeleton(path)
        if len(seq) == 0:
            raise DataError(path, "has no frames")
        clips.append(seq)
    max_frames = max(len(c) for c in clips)
    source = {"raw": str(folder.resolve()), "files": len(entries),
              "axes": "Kinect camera space: y up, z depth, metres",
              "normalization": "hip-centred per frame, shoulders on +x" if normalize else "none (raw)"}
    with PreparedWriter(out, kind="msr-action3d", topology=MSR20, num_samples=len(entries),
                        max_frames=max_frames, num_persons=1, class_names=names, source=source,
                        overwrite=overwrite) as writer:
        for i, (entry, seq) in enumerate(zip(entries, clips)):
            clip = seq.transpose(2, 0, 1)[..., None]  # (T, V, 3) → (3, T, V, 1)
            if normalize:
                clip = pre_normalization(clip[None], topology=MSR20)[0].astype(np.float32)
            writer.set_sample(i, clip, name=entry.name, label=entry.action - 1,
                              subject=entry.subject, replication=entry.repetition)
        subjects = np.array([e.subject for e in entries])
        actions = np.array([e.action for e in entries])
        for split, parts in build_splits(subjects, actions, meta).items():
            for part, idx in parts.items():
                writer.add_split(split, part, idx)
    return Path(out)


@DATASETS.register("msr-action3d")
class MsrAction3D(RealSetKind):
    """MSR Action3D: 557 sequences, 20 joints, 20 actions, cross-subject 284 / 273."""

    name = "msr-action3d"
    label = "MSR Action3D"
    format_version = 2  # 2: hip-centred and shoulder-aligned by default
    folder = "msr_action3d"
    title = "MSR Action3D"
    raw_help = ("Convert MSR Action3D skeletons. --raw is the folder with skeletons/, files_used.txt and "
                "metadata.json (default: the real data folder's msr_action3d).")

    @classmethod
    def convert(cls, raw: Path, out: str | Path, *, overwrite: bool, normalize: bool) -> Path:
        return prepare_msr(raw, out, overwrite=overwrite, normalize=normalize)


def default_raw() -> Path:
    return MsrAction3D.default_raw()
