"""The built-in synthetic dataset: skeleton actions made by forward kinematics of a body model.

Pipeline (all vectorised over clips and frames with numpy)::

    motion library (synthetic_motions.py) → joint-angle tracks per person
    + subject posture → forward kinematics with the subject's body proportions (NTU-25 joints)
    → placement in the scene (two persons face each other) → camera view, distance, height, tilt
    → Kinect-like noise and joint dropout → (N, 3, 300, 25, 2) float32 in metres, camera space

Camera space is NTU's: y up, z the depth from the sensor (about 2–4 m), x toward the sensor's
left (so a person facing the camera has the right hand at +x). Nothing is centred or aligned:
like the raw Kinect data, every normalisation is left to the pipeline that reads it.

Nuisance factors, so that a method must learn the motion rather than the recording:
40 subjects (height 1.50–1.95 m, limb and shoulder proportions, tempo, amplitude and posture);
3 cameras at 0°, −45° and +45° with ±25° of facing jitter and four setups of distance/height/tilt;
tempo, phase, repetition count, amplitude, a monotone time warp and idle lead-in/out per clip;
Gaussian sensor noise (larger at hand tips, thumbs and feet) and dropouts (a whole skeleton, or a
few extremity joints, set to 0 for a burst of frames).

Splits follow NTU-60: ``xsub`` trains on the NTU training performers (1 2 4 5 8 9 13 14 15 16 17 18
19 25 27 28 31 34 35 38) and ``xview`` trains on cameras 2 and 3. Untrimmed videos (600–3000
frames, 3–10 actions separated by background motion: idle sway, walking in place, fidgets) carry
their actions as intervals [start, end), 0-based, end exclusive.

Everything is determined by the seed: the same seed gives byte-identical arrays.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..config import DataConfig
from ..errors import HarnessError
from ..registry import DATASETS
from .kinds import DatasetKind
from .prepared import PreparedWriter
from .synthetic_motions import (ACTIONS, BACKGROUND, CLASS_NAMES, TRACK_INDEX, TRACK_NAMES,
                                PAIR_GAP, TWO_PERSON_CLASSES, Motion, MotionContext, habits, idle,
                                mirror)
from .topology import NTU25

GENERATOR_VERSION = 1
MAX_FRAMES = 300  # trimmed clips are stored padded to this many frames (NTU's T_max)
MIN_FRAMES = 40
NUM_SUBJECTS = 40
NUM_CAMERAS = 3
XSUB_TRAIN_SUBJECTS = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
XVIEW_TRAIN_CAMERAS = (2, 3)
CAMERA_YAW_DEG = {1: 0.0, 2: -45.0, 3: 45.0}
# setup → (distance m, camera height m, downward tilt deg): recordings at different rigs
SETUPS = {1: (2.6, 0.9, 3.0), 2: (3.0, 1.1, 8.0), 3: (3.4, 1.3, 13.0), 4: (2.3, 0.8, 0.0)}
DEFAULT_NUM_SAMPLES = 4000
CHUNK = 256  # clips generated together; fixed, so the output does not depend on memory
FACING_JITTER_DEG = 60.0
NOISE_RANGE = (0.005, 0.03)  # sensor noise sigma (m), drawn per clip
DROPOUT_RATE = 0.3  # chance that a clip has a tracking-loss burst
PERSONS = 2

J = {name: i for i, name in enumerate(NTU25.joint_names)}
# hand tips, thumbs and feet are where Kinect is least reliable: more noise, more dropouts
EXTREMITIES = np.array([J[n] for n in ("left_hand_tip", "left_thumb", "right_hand_tip", "right_thumb",
                                        "left_hand", "right_hand", "left_foot", "right_foot")])
NOISE_SCALE = np.ones(25)
NOISE_SCALE[EXTREMITIES] = 2.5


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


# --- forward kinematics -----------------------------------------------------------------------------
_AXES = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}  # the two coordinates a rotation about the axis mixes


def _rot(axis: str, deg: np.ndarray) -> np.ndarray:
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

    root = _rot("y", -a["yaw"])
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


# --- from motions to camera-space clips ---------------------------------------------------------------
def render_motion(motion: Motion, lengths: np.ndarray, amp: np.ndarray, rng: np.random.Generator, *,
                  frames: int, gap: np.ndarray | None = None, trimmed: bool = True) -> MotionContext:
    """Angle tracks for a batch of one motion; trimmed clips get an idle lead-in and tail."""
    lead = (0.0, 0.35) if trimmed else (0.0, 0.0)
    ctx = MotionContext(rng, lengths, frames, amp[:, None], lead=lead, tail=lead,
                        gap=None if gap is None else gap[:, None])
    motion.fn(ctx)
    if motion.either_hand:
        left = rng.random(len(lengths)) < 0.5
        for tracks in (ctx.p1, ctx.p2):
            mirror(tracks, left)
    for tracks in (ctx.p1, ctx.p2) if motion.two_person else (ctx.p1,):
        idle(tracks, ctx)
        habits(tracks, ctx)
    return ctx


def _add_posture(tracks: np.ndarray, subjects: Subjects, subject: np.ndarray) -> None:
    """Constant per-subject offsets on tracks (K, n, T) of n clips by `subject` ids (1-based)."""
    s = subject - 1
    tracks[TRACK_INDEX["pitch1"]] += subjects.lean[s][:, None]
    for p in ("r_", "l_"):
        tracks[TRACK_INDEX[p + "abd"]] += subjects.hang_abd[s][:, None]
        tracks[TRACK_INDEX[p + "elbow"]] += subjects.hang_elbow[s][:, None]


@dataclass
class Recording:
    """Where n clips/videos were filmed from: each person's placement composed with the camera."""

    rotation: np.ndarray  # (n, P, 3, 3) person frame → camera
    offset: np.ndarray  # (n, P, 3)


def make_recording(rng: np.random.Generator, camera: np.ndarray, setup: np.ndarray,
                   gap: np.ndarray) -> Recording:
    """Camera views, distances and tilts; person 2 (if any) stands `gap` m away, facing person 1."""
    n = len(camera)
    dist = np.array([SETUPS[s][0] for s in setup]) + rng.uniform(-0.3, 0.3, n)
    height = np.array([SETUPS[s][1] for s in setup]) + rng.uniform(-0.1, 0.1, n)
    tilt = np.array([SETUPS[s][2] for s in setup]) + rng.uniform(-3, 3, n)
    view = np.array([CAMERA_YAW_DEG[c] for c in camera]) + rng.uniform(-FACING_JITTER_DEG, FACING_JITTER_DEG, n)
    lateral = rng.uniform(-0.3, 0.3, n)
    cam = _rot("x", -tilt) @ _rot("y", view)  # scene → camera (tilt: the camera looks down)
    translate = np.stack([lateral, -height, dist], axis=1)
    pair = gap > 0
    # a pair stands side by side across the view, each turned ±90° toward the other
    facing = np.stack([np.where(pair, 90.0, 0.0), np.where(pair, -90.0, 0.0)], axis=1)
    spot = np.zeros((n, PERSONS, 3))
    spot[:, 0, 0], spot[:, 1, 0] = -gap / 2, gap / 2
    rotation = np.stack([cam @ _rot("y", -facing[:, p]) for p in range(PERSONS)], axis=1)
    offset = np.stack([np.einsum("nij,nj->ni", cam, spot[:, p]) + np.einsum("nij,nj->ni", _rot("x", -tilt), translate)
                       for p in range(PERSONS)], axis=1)
    return Recording(rotation, offset)


def _dropout(x: np.ndarray, lengths: np.ndarray, rng: np.random.Generator, bursts: np.ndarray) -> None:
    """Kinect-style tracking loss on x (P, n, T, V, 3): item i gets `bursts[i]` bursts of zeros.

    A burst zeroes either a whole skeleton for 1–8 frames or a few extremity joints for 3–20 frames.
    """
    n, t = x.shape[1:3]
    frame = np.arange(t)[None, :]
    extremity = np.isin(np.arange(25), EXTREMITIES)[None, :]
    for _ in range(int(bursts.max(initial=0))):
        on = bursts > 0
        bursts = bursts - 1
        whole = rng.random(n) < 0.4
        span = np.where(whole, rng.integers(1, 9, n), rng.integers(3, 21, n))
        start = (rng.random(n) * np.maximum(lengths - span, 1)).astype(np.int64)
        frames = on[:, None] & (frame >= start[:, None]) & (frame < (start + span)[:, None])  # (n, T)
        joints = whole[:, None] | (extremity & (rng.random((n, 25)) < 0.4))  # (n, V)
        person = rng.integers(0, x.shape[0], n)
        for p in range(x.shape[0]):
            hit = np.flatnonzero(on & (person == p))
            lost = frames[hit][:, :, None] & joints[hit][:, None, :]  # (h, T, V)
            x[p, hit] *= ~lost[..., None]


def render_people(tracks: np.ndarray, lengths: np.ndarray, who: np.ndarray, rec: Recording,
                  subjects: Subjects, rng: np.random.Generator, sigma: np.ndarray) -> np.ndarray:
    """Angle tracks (P, K, n, T) of performers `who` (n, P; 0 = nobody) → joints (P, n, T, V, 3).

    Adds each performer's posture, runs the kinematics with their body (±2 % per item, as Kinect's
    estimate of limb lengths wobbles between recordings) on the valid frames only, moves the result
    into camera space and adds sensor noise of `sigma` (n,) m (2.5× at the extremities).
    An absent person and frames beyond `lengths` stay exactly zero.
    """
    n_persons, _, n, t = tracks.shape
    x = np.zeros((n_persons, n, t, 25, 3), dtype=np.float32)
    valid = np.arange(t)[None, :] < lengths[:, None]
    for p in range(n_persons):
        has = np.flatnonzero(who[:, p] > 0)
        if not len(has):
            continue
        tr = tracks[p][:, has]
        _add_posture(tr, subjects, who[has, p])
        body = subjects.body[who[has, p] - 1] * rng.uniform(0.98, 1.02, (len(has), len(BODY_KEYS)))
        item, frame = np.nonzero(valid[has])
        local = forward_kinematics(tr[:, item, frame], body[item])
        rot, off = rec.rotation[has, p][item], rec.offset[has, p][item]
        cam = np.matmul(local, rot.transpose(0, 2, 1)) + off[:, None, :]
        noise = rng.standard_normal(local.shape, dtype=np.float32) * NOISE_SCALE[None, :, None]
        x[p, has[item], frame] = cam + noise * sigma[has][item, None, None]
    return x


def to_prepared_layout(x: np.ndarray) -> np.ndarray:
    """(P, n, T, V, 3) → the prepared (n, 3, T, V, P) float32."""
    return np.ascontiguousarray(x.transpose(1, 4, 2, 3, 0), dtype=np.float32)


# --- trimmed clips ----------------------------------------------------------------------------------
@dataclass
class ClipPlan:
    """Everything drawn up front for N clips (cheap), so each chunk can be made independently."""

    label: np.ndarray
    subject: np.ndarray
    partner: np.ndarray  # second performer of interactions (0 for single-person clips)
    camera: np.ndarray
    setup: np.ndarray
    replication: np.ndarray
    length: np.ndarray

    def rows(self, idx: np.ndarray) -> list[dict]:
        return [dict(name=f"S{self.setup[i]:03d}C{self.camera[i]:03d}P{self.subject[i]:03d}"
                          f"R{self.replication[i]:03d}A{self.label[i] + 1:03d}_{i:06d}",
                     label=int(self.label[i]), subject=int(self.subject[i]), camera=int(self.camera[i]),
                     setup=int(self.setup[i]), replication=int(self.replication[i])) for i in idx]


def _same_group_partner(rng: np.random.Generator, subject: np.ndarray) -> np.ndarray:
    """A different performer from the same xsub group, so interactions never leak across the split."""
    train = np.array(XSUB_TRAIN_SUBJECTS)
    test = np.setdiff1d(np.arange(1, NUM_SUBJECTS + 1), train)
    out = np.empty_like(subject)
    for i, s in enumerate(subject):
        pool = train if s in train else test
        pool = pool[pool != s]
        out[i] = pool[rng.integers(len(pool))]
    return out


def plan_clips(num_samples: int, seed: int, subjects: Subjects) -> ClipPlan:
    rng = np.random.default_rng([seed, 1])
    n, c = num_samples, len(ACTIONS)
    label = rng.permutation(np.arange(n) % c)  # balanced classes
    subject = rng.permutation(np.arange(n) % NUM_SUBJECTS) + 1
    camera = rng.integers(1, NUM_CAMERAS + 1, n)
    setup = rng.integers(1, len(SETUPS) + 1, n)
    replication = rng.integers(1, 3, n)
    lo = np.array([a.frames[0] for a in ACTIONS])[label]
    hi = np.array([a.frames[1] for a in ACTIONS])[label]
    length = rng.uniform(lo, hi) * subjects.tempo[subject - 1]
    length = np.clip(np.round(length), MIN_FRAMES, MAX_FRAMES).astype(np.int64)
    partner = np.where(np.isin(label, TWO_PERSON_CLASSES), _same_group_partner(rng, subject), 0)
    return ClipPlan(label, subject, partner, camera, setup, replication, length)


def make_clips(plan: ClipPlan, idx: np.ndarray, subjects: Subjects, rng: np.random.Generator) -> np.ndarray:
    """Clips `idx` of the plan → (n, 3, MAX_FRAMES, 25, 2) float32, zero beyond each length."""
    n = len(idx)
    label, length = plan.label[idx], plan.length[idx]
    tracks = np.zeros((2, len(TRACK_NAMES), n, MAX_FRAMES))
    gap = np.zeros(n)
    for c in np.unique(label):
        sel = np.flatnonzero(label == c)
        motion = ACTIONS[c]
        amp = subjects.amp[plan.subject[idx[sel]] - 1] * rng.uniform(0.85, 1.15, len(sel))
        if motion.two_person:
            gap[sel] = rng.uniform(*PAIR_GAP, len(sel))
        ctx = render_motion(motion, length[sel], amp, rng, frames=MAX_FRAMES,
                            gap=gap[sel] if motion.two_person else None)
        tracks[0][:, sel], tracks[1][:, sel] = ctx.p1.array, ctx.p2.array
    rec = make_recording(rng, plan.camera[idx], plan.setup[idx], gap)
    who = np.stack([plan.subject[idx], plan.partner[idx]], axis=1)
    x = render_people(tracks, length, who, rec, subjects, rng, rng.uniform(*NOISE_RANGE, n))
    # Kinect numbers bodies arbitrarily: the one who acts first is in either slot
    swap = np.flatnonzero((plan.partner[idx] > 0) & (rng.random(n) < 0.5))
    x[:, swap] = x[::-1, swap]
    _dropout(x, length, rng, (rng.random(n) < DROPOUT_RATE).astype(np.int64))
    return to_prepared_layout(x)


def iter_trimmed(num_samples: int, seed: int) -> Iterator[tuple[int, np.ndarray, np.ndarray, list[dict]]]:
    """Yield (start, clips, lengths, rows) in chunks of CHUNK clips; deterministic in `seed`."""
    subjects = make_subjects(seed)
    plan = plan_clips(num_samples, seed, subjects)
    for k, start in enumerate(range(0, num_samples, CHUNK)):
        idx = np.arange(start, min(start + CHUNK, num_samples))
        clips = make_clips(plan, idx, subjects, np.random.default_rng([seed, 2, k]))
        yield start, clips, plan.length[idx], plan.rows(idx)


def generate_trimmed(num_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """All clips in memory: (N, 3, 300, 25, 2) float32, lengths (N,), sample rows. For small N."""
    clips, lengths, rows = [], [], []
    for _, c, n, r in iter_trimmed(num_samples, seed):
        clips.append(c), lengths.append(n), rows.extend(r)
    return np.concatenate(clips), np.concatenate(lengths), rows
