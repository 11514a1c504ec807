"""Skeleton topologies: joint names, bone pairs (child, parent), centre joint and shoulder pair.

Nothing else in the harness hard-codes a joint count: everything reads it from a Topology.
All indices here are 0-based.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError, UnknownNameError


@dataclass(frozen=True)
class Topology:
    name: str
    joint_names: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]  # (child, parent); a joint may pair with itself (zero bone)
    center: int  # joint subtracted when centring
    shoulders: tuple[int, int]  # (left, right), used for x-alignment
    hip_spine: tuple[int, int] | None = None  # (base, spine) used for the optional z-alignment
    flip: tuple[int, ...] | None = None  # left/right swap permutation for the flip augmentation
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def __post_init__(self) -> None:
        v = self.num_joints
        for c, p in self.bones:
            if not (0 <= c < v and 0 <= p < v):
                raise ValueError(f"topology {self.name}: bone ({c}, {p}) outside 0..{v - 1}")
        for j in (self.center, *self.shoulders):
            if not 0 <= j < v:
                raise ValueError(f"topology {self.name}: joint {j} outside 0..{v - 1}")
        if self.flip is not None and sorted(self.flip) != list(range(v)):
            raise ValueError(f"topology {self.name}: flip is not a permutation of {v} joints")

    def parents(self) -> np.ndarray:
        """parent[v] for every joint (a joint without a listed bone is its own parent)."""
        parent = np.arange(self.num_joints)
        for c, p in self.bones:
            parent[c] = p
        return parent

    def edges(self) -> list[tuple[int, int]]:
        """Undirected graph edges (self-pairs removed), for GCN-style adjacency."""
        return [(c, p) for c, p in self.bones if c != p]

    def adjacency(self, self_loops: bool = True) -> np.ndarray:
        a = np.zeros((self.num_joints, self.num_joints), dtype=np.float32)
        for c, p in self.edges():
            a[c, p] = a[p, c] = 1
        if self_loops:
            a += np.eye(self.num_joints, dtype=np.float32)
        return a

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bones"] = [list(b) for b in self.bones]
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str | Path | None = None) -> "Topology":
        try:
            return cls(
                name=str(d["name"]),
                joint_names=tuple(d["joint_names"]),
                bones=tuple((int(c), int(p)) for c, p in d["bones"]),
                center=int(d["center"]),
                shoulders=tuple(int(j) for j in d["shoulders"]),
                hip_spine=tuple(d["hip_spine"]) if d.get("hip_spine") is not None else None,
                flip=tuple(d["flip"]) if d.get("flip") is not None else None,
                extra=dict(d.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(source, f"not a valid topology: {exc!r}; needs name, joint_names, "
                                    "bones (0-based [child, parent] pairs), center, shoulders") from None

    @classmethod
    def from_json(cls, path: str | Path) -> "Topology":
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(path, f"cannot read topology JSON: {exc}") from None
        return cls.from_dict(d, path)


_NTU_NAMES = ("spine_base", "spine_mid", "neck", "head", "left_shoulder", "left_elbow", "left_wrist",
              "left_hand", "right_shoulder", "right_elbow", "right_wrist", "right_hand", "left_hip",
              "left_knee", "left_ankle", "left_foot", "right_hip", "right_knee", "right_ankle",
              "right_foot", "spine_shoulder", "left_hand_tip", "left_thumb", "right_hand_tip",
              "right_thumb")
# (child, parent), 1-based, as every SSL codebase uses them (docs/reference/data-formats.md §3)
_NTU_BONES_1 = ((1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
                (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
                (20, 19), (21, 21), (22, 23), (23, 8), (24, 25), (25, 12))

NTU25 = Topology(
    name="ntu25",
    joint_names=_NTU_NAMES,
    bones=tuple((c - 1, p - 1) for c, p in _NTU_BONES_1),
    center=1,  # spine middle
    shoulders=(4, 8),  # left, right shoulder
    hip_spine=(0, 1),  # spine base, spine middle
    flip=(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 16, 17, 18, 19, 12, 13, 14, 15, 20, 23, 24, 21, 22),
)

_MSR_NAMES = ("left_shoulder", "right_shoulder", "neck", "spine", "left_hip", "right_hip", "hip_center",
              "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
              "left_knee", "right_knee", "left_ankle", "right_ankle", "left_foot", "right_foot", "head")
# parent-child pairs (1-based) from msr_action3d/metadata.json; hip centre (7) is the root
_MSR_PARENT_CHILD_1 = ((7, 4), (4, 3), (3, 20), (3, 1), (3, 2), (1, 8), (2, 9), (8, 10), (9, 11), (10, 12),
                       (11, 13), (7, 5), (7, 6), (5, 14), (6, 15), (14, 16), (15, 17), (16, 18), (17, 19))

MSR20 = Topology(
    name="msr20",
    joint_names=_MSR_NAMES,
    bones=((6, 6),) + tuple((c - 1, p - 1) for p, c in _MSR_PARENT_CHILD_1),
    center=6,  # hip centre
    shoulders=(0, 1),
    hip_spine=(6, 3),
    flip=(1, 0, 2, 3, 5, 4, 6, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17, 19),
)

BUILTIN_TOPOLOGIES = {t.name: t for t in (NTU25, MSR20)}


def get_topology(name_or_path: str | Path | dict) -> Topology:
    """A built-in topology by name, a JSON file path, or a dict (as stored in a prepared folder)."""
    if isinstance(name_or_path, dict):
        return Topology.from_dict(name_or_path)
    key = str(name_or_path)
    if key in BUILTIN_TOPOLOGIES:
        return BUILTIN_TOPOLOGIES[key]
    if key.endswith(".json") or Path(key).exists():
        return Topology.from_json(key)
    raise UnknownNameError("topology", key, list(BUILTIN_TOPOLOGIES))
