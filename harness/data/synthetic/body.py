"""Synthetic subjects and their bodies: the 40 performers' proportions and style, and the forward
kinematics that turns joint-angle tracks into NTU-25 joint positions in the person's own frame.

Subjects are numbered 1..40 like NTU performers; the xsub training group is NTU-60's list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tracks import TRACK_INDEX
from ..topology import NTU25

NUM_SUBJECTS = 40
XSUB_TRAIN_SUBJECTS = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
J = {name: i for i, name in enumerate(NTU25.joint_names)}


# --- subjects and body proportions ----------------------------------------------------------------
# segment lengths (m) of a 1.75 m reference body; each subject scales them
REFERENCE_BODY = {
    "spine1": 0.26, "spine2": 0.22, "neck": 0.06, "head": 0.14, "shoulder_w": 0.17,
    "shoulder_drop": 0.03, "upper_arm": 0.27, "forearm": 0.24, "hand": 0.07, "tip": 0.07,
    "hip_w": 0.085, "hip_drop": 0.06, "thigh": 0.42, "shank": 0.40, "foot": 0.13,
}
SEGMENT_GROUP = {"upper_arm": "arm", "forearm": "arm", "hand": "arm", "tip": "arm", "thigh": "leg",
                 "shank": "leg", "foot": "leg", "spine1": "torso", "spine2": "torso", "neck": "torso",
                 "shoulder_w": "width", "hip_w": "width"}
BODY_KEYS = tuple(REFERENCE_BODY)


@dataclass(frozen=True)
class Subjects:
    """Per-subject body and style parameters, index s-1 for subject id s (1-based like NTU)."""

    body: np.ndarray  # (S, len(BODY_KEYS)) segment lengths in m
    amp: np.ndarray  # (S,) how large the subject's movements are
    tempo: np.ndarray  # (S,) duration multiplier (> 1 is slower)
    lean: np.ndarray  # (S,) habitual forward lean (deg)
    hang_abd: np.ndarray  # (S,) how far the arms hang from the body (deg)
    hang_elbow: np.ndarray  # (S,) resting elbow bend (deg)


def make_subjects(seed: int, n: int = NUM_SUBJECTS) -> Subjects:
    rng = np.random.default_rng([seed, 7])
    height = rng.uniform(1.50, 1.95, n) / 1.75
    group = {g: rng.uniform(lo, hi, n) for g, lo, hi in
             (("arm", 0.9, 1.1), ("leg", 0.9, 1.1), ("torso", 0.9, 1.1), ("width", 0.85, 1.18))}
    body = np.stack([REFERENCE_BODY[k] * height * group.get(SEGMENT_GROUP.get(k, ""), 1.0)
                     for k in BODY_KEYS], axis=1)
    return Subjects(body=body, amp=rng.uniform(0.8, 1.2, n), tempo=rng.uniform(0.8, 1.25, n),
                    lean=rng.normal(0, 4, n), hang_abd=rng.uniform(4, 16, n),
                    hang_elbow=rng.uniform(5, 25, n))


def same_group_partner(rng: np.random.Generator, subject: np.ndarray) -> np.ndarray:
    """A different performer from the same xsub group, so interactions never leak across the split."""
    train = np.array(XSUB_TRAIN_SUBJECTS)
    test = np.setdiff1d(np.arange(1, NUM_SUBJECTS + 1), train)
    out = np.empty_like(subject)
    for i, s in enumerate(subject):
        pool = train if s in train else test
        pool = pool[pool != s]
        out[i] = pool[rng.integers(len(pool))]
    return out


# --- forward kinematics -----------------------------------------------------------------------------
_AXES = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}  # the two coordinates a rotation about the axis mixes


def rot(axis: str, deg: np.ndarray) -> np.ndarray:
    """(F, 3, 3) rotations about a body axis by angles in degrees (right-handed)."""
    return _turn(np.broadcast_to(np.eye(3), np.shape(deg) + (3, 3)), axis, deg)


def _turn(r: np.ndarray, axis: str, deg: np.ndarray) -> np.ndarray:
    """r @ rot(axis, deg) for stacks (F, 3, 3): a rotation about one axis only mixes two columns,
    which is much cheaper than a batched 3×3 matmul."""
    a = np.deg2rad(deg)[:, None]
    c, s = np.cos(a), np.sin(a)
    i, j = _AXES[axis]
    out = np.array(r, copy=True)
    out[:, :, i] = r[:, :, i] * c + r[:, :, j] * s
    out[:, :, j] = r[:, :, j] * c - r[:, :, i] * s
    return out


def _turns(r: np.ndarray, *steps: tuple[str, np.ndarray]) -> np.ndarray:
    for axis, deg in steps:
        r = _turn(r, axis, deg)
    return r


def _apply(r: np.ndarray, x, y, z) -> np.ndarray:
    """r (F, 3, 3) times the vectors (x, y, z) (scalars or (F,) arrays) → (F, 3)."""
    out = r[:, :, 1] * np.asarray(y)[..., None] if np.any(y) else np.zeros(r.shape[:2])
    if np.any(x):
        out = out + r[:, :, 0] * np.asarray(x)[..., None]
    if np.any(z):
        out = out + r[:, :, 2] * np.asarray(z)[..., None]
    return out


def forward_kinematics(angles: np.ndarray, body: np.ndarray) -> np.ndarray:
    """Joint positions (F, 25, 3) in the person's own frame from tracks (K, F) and body (F, B).

    The person starts at the origin facing −z with the right hand at +x; ``yaw``/``tx``/``tz``
    move them, the lowest foot rests on the floor (y = 0) unless ``lift`` raises the body.
    """
    a = {name: angles[i] for name, i in TRACK_INDEX.items()}
    b = {k: body[:, i] for i, k in enumerate(BODY_KEYS)}
    n = angles.shape[1]
    out = np.zeros((n, 25, 3))

    root = rot("y", -a["yaw"])
    lower = _turns(root, ("x", -a["pitch1"]), ("z", -a["roll1"]), ("y", -a["twist1"]))
    upper = _turns(lower, ("x", -a["pitch2"]), ("z", -a["roll2"]), ("y", -a["twist2"]))
    out[:, J["spine_mid"]] = _apply(lower, 0, b["spine1"], 0)
    out[:, J["spine_shoulder"]] = out[:, J["spine_mid"]] + _apply(upper, 0, b["spine2"], 0)
    out[:, J["neck"]] = out[:, J["spine_shoulder"]] + _apply(upper, 0, b["neck"], 0)
    head = _turns(upper, ("x", -a["neck_pitch"]), ("y", -a["neck_yaw"]))
    out[:, J["head"]] = out[:, J["neck"]] + _apply(head, 0, b["head"], 0)

    for side, name in ((1, "right"), (-1, "left")):
        p = "r_" if side > 0 else "l_"
        sh = out[:, J["spine_shoulder"]] + _apply(upper, side * b["shoulder_w"], -b["shoulder_drop"], 0)
        arm = _turns(upper, ("y", -side * a[p + "hz"]), ("z", side * a[p + "abd"]),
                     ("x", a[p + "flex"]), ("y", side * a[p + "rot"]))
        fore = _turn(arm, "x", a[p + "elbow"])
        hand = _turn(fore, "x", a[p + "wrist"])
        out[:, J[f"{name}_shoulder"]] = sh
        out[:, J[f"{name}_elbow"]] = elbow = sh + _apply(arm, 0, -b["upper_arm"], 0)
        out[:, J[f"{name}_wrist"]] = wrist = elbow + _apply(fore, 0, -b["forearm"], 0)
        out[:, J[f"{name}_hand"]] = palm = wrist + _apply(hand, 0, -b["hand"], 0)
        out[:, J[f"{name}_hand_tip"]] = palm + _apply(hand, 0, -b["tip"], 0)
        out[:, J[f"{name}_thumb"]] = palm + _apply(hand, -side * 0.015, -0.02, -0.035)

        hip = _apply(root, side * b["hip_w"], -b["hip_drop"], 0)
        thigh = _turns(root, ("z", side * a[p + "hip_abd"]), ("x", a[p + "hip_flex"]))
        shank = _turn(thigh, "x", -a[p + "knee"])
        foot = _turn(shank, "x", a[p + "ankle"])
        out[:, J[f"{name}_hip"]] = hip
        out[:, J[f"{name}_knee"]] = knee = hip + _apply(thigh, 0, -b["thigh"], 0)
        out[:, J[f"{name}_ankle"]] = ankle = knee + _apply(shank, 0, -b["shank"], 0)
        out[:, J[f"{name}_foot"]] = ankle + _apply(foot, 0, -0.05, -b["foot"])

    # stand on the lower foot (the foot joint sits ~3 cm above the floor), then step and jump
    ground = 0.03 - np.minimum(out[:, J["left_foot"], 1], out[:, J["right_foot"], 1])
    out += np.stack([a["tx"], ground + a["lift"], a["tz"]], axis=1)[:, None, :]
    return out
