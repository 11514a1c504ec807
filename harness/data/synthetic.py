"""The built-in synthetic dataset: skeleton actions made by forward kinematics of a body model.

Pipeline (all vectorised over clips and frames with numpy)::

    motion library (synthetic_motions.py) → joint-angle tracks per person
    + subject posture → forward kinematics with the subject's body proportions (NTU-25 joints)
    → placement in the scene (two persons face each other) → camera view, distance, height, tilt
    → Kinect-like noise and joint dropout → (N, 3, 300, 25, 2) float32 in metres, camera space

Camera space is NTU's: y up, z the depth from the sensor (about 2–4 m), x toward the sensor's
left (so a person facing the camera has the right hand at +x). Nothing is centred or aligned:
like the raw Kinect data, every normalisation is left to the pipeline that reads it.

Nuisance factors, so that a method must learn the motion rather than the recording (tuned until
a 1-nearest-neighbour on raw joints sits far below a small supervised model: docs/synthetic.md):
- 40 subjects: height 1.50–1.95 m, arm/leg/torso/shoulder proportions, tempo, amplitude, posture;
- 3 cameras at 0°, −45° and +45°, ±60° of facing jitter, four setups of distance/height/tilt;
- per clip: duration, tempo, phase, repetition count, amplitude, a monotone time warp, an idle
  lead-in and tail, hand choice for one-handed actions, limb habits (how the free arm is held);
- Gaussian sensor noise (0.5–3 cm, 2.5× at hand tips, thumbs, hands and feet) and dropouts (a whole
  skeleton, or a few extremity joints, set to 0 for a burst of frames);
- interactions put the first actor in either body slot, as Kinect's body order is arbitrary.

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
from .ntu_preprocess import pre_normalization
from .prepared import PreparedWriter
from .synthetic_motions import (ACTIONS, BACKGROUND, CLASS_NAMES, TRACK_INDEX, TRACK_NAMES,
                                PAIR_GAP, TWO_PERSON_CLASSES, Motion, MotionContext, Tracks, habits,
                                idle, mirror)
from .topology import NTU25

GENERATOR_VERSION = 3  # bump whenever a seed's output changes (recorded in meta.json, keys the cache)
# 2: clips and videos get the NTU normalisation (per-frame centring, shoulders on +x) when written
# 3: the default untrimmed set has num_samples / 10 videos (was / 40: too few actions per class)
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
LEAD_MAX = 0.8  # idle lead-in / tail, as a fraction of the action's duration
CHUNK = 256  # clips generated together; fixed, as the random streams are drawn per chunk
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
                  frames: int, gap: np.ndarray | None = None, active: tuple[np.ndarray, np.ndarray] | None = None
                  ) -> MotionContext:
    """Angle tracks for a batch of one motion.

    Trimmed clips pass `active` (first frame, end frame) of the motion inside each clip, the rest
    being idle lead-in and tail; they also get idle sway and per-clip limb habits here. Segments of
    an untrimmed video (``active=None``: the motion fills the segment) get neither: the video adds
    sway and habits once over its whole length, so that nothing jumps between segments.
    """
    start, end = active if active is not None else (None, None)
    ctx = MotionContext(rng, lengths, frames, amp[:, None], start=start, end=end,
                        gap=None if gap is None else gap[:, None])
    motion.fn(ctx)
    if motion.either_hand:
        left = rng.random(len(lengths)) < 0.5
        for tracks in (ctx.p1, ctx.p2):
            mirror(tracks, left)
    if active is not None:
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


def _dropout(x: np.ndarray, lengths: np.ndarray, rng: np.random.Generator, bursts: np.ndarray,
             persons: np.ndarray) -> None:
    """Kinect-style tracking loss on x (P, n, T, V, 3): item i gets `bursts[i]` bursts of zeros,
    each on one of its `persons[i]` persons.

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
        person = (rng.random(n) * persons).astype(np.int64)
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
    start: np.ndarray  # the motion runs over frames [start, end); the rest is idle
    end: np.ndarray

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
    action = rng.uniform(lo, hi) * subjects.tempo[subject - 1]
    # idle lead-in and tail of up to LEAD_MAX of the action each (NTU clips start and end idle)
    lead, tail = (rng.uniform(0, LEAD_MAX, n) * action for _ in range(2))
    total = action + lead + tail
    length = np.clip(np.round(total), MIN_FRAMES, MAX_FRAMES).astype(np.int64)
    scale = length / total  # a clip cut to fit MAX_FRAMES keeps its proportions
    start = np.round(lead * scale).astype(np.int64)
    end = np.minimum(start + np.maximum(np.round(action * scale), 1), length).astype(np.int64)
    partner = np.where(np.isin(label, TWO_PERSON_CLASSES), _same_group_partner(rng, subject), 0)
    return ClipPlan(label, subject, partner, camera, setup, replication, length, start, end)


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
                            gap=gap[sel] if motion.two_person else None,
                            active=(plan.start[idx[sel]], plan.end[idx[sel]]))
        tracks[0][:, sel], tracks[1][:, sel] = ctx.p1.array, ctx.p2.array
    rec = make_recording(rng, plan.camera[idx], plan.setup[idx], gap)
    who = np.stack([plan.subject[idx], plan.partner[idx]], axis=1)
    x = render_people(tracks, length, who, rec, subjects, rng, rng.uniform(*NOISE_RANGE, n))
    # Kinect numbers bodies arbitrarily: the one who acts first is in either slot
    swap = np.flatnonzero((plan.partner[idx] > 0) & (rng.random(n) < 0.5))
    x[:, swap] = x[::-1, swap]
    _dropout(x, length, rng, (rng.random(n) < DROPOUT_RATE).astype(np.int64), 1 + (plan.partner[idx] > 0))
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


# --- untrimmed videos -------------------------------------------------------------------------------
VIDEO_FRAMES = (600, 3000)
VIDEO_ACTIONS = (3, 10)
BACKGROUND_GAP = (30, 150)  # frames of background motion before, between and after actions
PAIR_VIDEO_RATE = 0.3  # share of videos with a second person (interactions happen only there)
VIDEO_CHUNK = 16
# actions that move a person away from their spot are left out of videos with a partner
_PAIR_VIDEO_SOLO = tuple(i for i, a in enumerate(ACTIONS)
                         if not a.two_person and a.name not in ("turn_around", "side_step"))
_SOLO = tuple(i for i, a in enumerate(ACTIONS) if not a.two_person)


@dataclass
class Segment:
    start: int
    end: int  # exclusive
    label: int  # action class, or -1 for background
    motion: Motion


@dataclass
class VideoPlan:
    subject: np.ndarray
    partner: np.ndarray  # 0 for videos with one person
    camera: np.ndarray
    setup: np.ndarray
    replication: np.ndarray
    length: np.ndarray
    gap: np.ndarray  # distance between the two persons (0 for one person)
    segments: list[list[Segment]]

    def rows(self, idx: np.ndarray) -> list[dict]:
        return [dict(name=f"S{self.setup[i]:03d}C{self.camera[i]:03d}P{self.subject[i]:03d}"
                          f"R{self.replication[i]:03d}_V{i:05d}", label=-1, subject=int(self.subject[i]),
                     camera=int(self.camera[i]), setup=int(self.setup[i]),
                     replication=int(self.replication[i])) for i in idx]

    def intervals(self, i: int) -> list[tuple[int, int, int]]:
        """(label, start, end) of video i's actions, end exclusive."""
        return [(s.label, s.start, s.end) for s in self.segments[i] if s.label >= 0]

    def frame_labels(self, i: int) -> np.ndarray:
        """Per-frame class of video i; −1 on background frames."""
        out = np.full(int(self.length[i]), -1, dtype=np.int64)
        for label, start, end in self.intervals(i):
            out[start:end] = label
        return out


def _plan_segments(rng: np.random.Generator, tempo: float, pair: bool) -> list[Segment]:
    """Background, action, background, …, action, background; 600–3000 frames in all."""
    pool = _PAIR_VIDEO_SOLO if pair else _SOLO
    n = int(rng.integers(VIDEO_ACTIONS[0], VIDEO_ACTIONS[1] + 1))
    labels = [int(rng.choice(TWO_PERSON_CLASSES if pair and rng.random() < 0.5 else pool)) for _ in range(n)]
    acts = [int(np.clip(round(rng.uniform(*ACTIONS[c].frames) * tempo), MIN_FRAMES, MAX_FRAMES)) for c in labels]
    gaps = rng.integers(BACKGROUND_GAP[0], BACKGROUND_GAP[1] + 1, n + 1)
    while sum(acts) + gaps.sum() > VIDEO_FRAMES[1]:  # too long: drop the last action
        labels, acts, gaps = labels[:-1], acts[:-1], gaps[:-1]
    short = VIDEO_FRAMES[0] - (sum(acts) + gaps.sum())
    if short > 0:  # too short: lengthen the background evenly
        gaps = gaps + -(-short // len(gaps))
    segments, t = [], 0
    for k in range(len(gaps)):
        for length, label in ((int(gaps[k]), -1), (acts[k] if k < len(acts) else 0, labels[k] if k < len(labels) else -1)):
            if length == 0:
                continue
            motion = BACKGROUND[int(rng.integers(len(BACKGROUND)))] if label < 0 else ACTIONS[label]
            segments.append(Segment(t, t + length, label, motion))
            t += length
    return segments


def plan_videos(num_videos: int, seed: int, subjects: Subjects) -> VideoPlan:
    rng = np.random.default_rng([seed, 3])
    n = num_videos
    subject = rng.permutation(np.arange(n) % NUM_SUBJECTS) + 1
    camera = rng.integers(1, NUM_CAMERAS + 1, n)
    setup = rng.integers(1, len(SETUPS) + 1, n)
    replication = rng.integers(1, 3, n)
    pair = rng.random(n) < PAIR_VIDEO_RATE
    partner = np.where(pair, _same_group_partner(rng, subject), 0)
    gap = np.where(pair, rng.uniform(*PAIR_GAP, n), 0.0)
    segments = [_plan_segments(rng, float(subjects.tempo[subject[i] - 1]), bool(pair[i])) for i in range(n)]
    length = np.array([seg[-1].end for seg in segments], dtype=np.int64)
    return VideoPlan(subject, partner, camera, setup, replication, length, gap, segments)


def make_videos(plan: VideoPlan, idx: np.ndarray, subjects: Subjects, rng: np.random.Generator,
                frames: int) -> np.ndarray:
    """Videos `idx` of the plan → (n, 3, frames, 25, 2) float32, zero beyond each length."""
    n = len(idx)
    tracks = np.zeros((PERSONS, len(TRACK_NAMES), n, frames))
    # one render job per (video, segment, person); person 2 of a pair does background motion
    # except during an interaction
    jobs: dict[tuple[bool, str], list[tuple[int, int, Segment, int]]] = {}
    for k, v in enumerate(idx):
        for seg in plan.segments[v]:
            jobs.setdefault((seg.motion.two_person, seg.motion.name), []).append((k, 0, seg, v))
            if plan.partner[v] and not seg.motion.two_person:
                bg = BACKGROUND[int(rng.integers(len(BACKGROUND)))]
                jobs.setdefault((False, bg.name), []).append((k, 1, Segment(seg.start, seg.end, -1, bg), v))
    for key in sorted(jobs):
        batch = jobs[key]
        motion = batch[0][2].motion
        lengths = np.array([s.end - s.start for _, _, s, _ in batch])
        amp = subjects.amp[np.array([plan.subject[v] for *_, v in batch]) - 1] * rng.uniform(0.85, 1.15, len(batch))
        gap = np.array([plan.gap[v] for *_, v in batch]) if motion.two_person else None
        ctx = render_motion(motion, lengths, amp, rng, frames=int(lengths.max()), gap=gap)
        for j, (k, person, seg, _) in enumerate(batch):
            span = slice(seg.start, seg.end)
            if motion.two_person:
                tracks[0][:, k, span] = ctx.p1.array[:, j, :seg.end - seg.start]
                tracks[1][:, k, span] = ctx.p2.array[:, j, :seg.end - seg.start]
            else:
                tracks[person][:, k, span] = ctx.p1.array[:, j, :seg.end - seg.start]
    # a turn leaves the person facing a new way for the rest of the video (last turn first, so
    # that each adds only its own final angle to everything after it)
    yaw = tracks[:, TRACK_INDEX["yaw"]]
    for k, v in enumerate(idx):
        for seg in reversed(plan.segments[v]):
            if seg.motion.name == "turn_around":
                yaw[0, k, seg.end:plan.length[v]] += yaw[0, k, seg.end - 1]
    length = plan.length[idx]
    whole = MotionContext(rng, length, frames, subjects.amp[plan.subject[idx] - 1][:, None])
    for person in range(PERSONS):
        sway = Tracks(n, frames)
        idle(sway, whole)
        habits(sway, whole)
        tracks[person] += sway.array
    rec = make_recording(rng, plan.camera[idx], plan.setup[idx], plan.gap[idx])
    who = np.stack([plan.subject[idx], plan.partner[idx]], axis=1)
    x = render_people(tracks, length, who, rec, subjects, rng, rng.uniform(*NOISE_RANGE, n))
    _dropout(x, length, rng, rng.poisson(length * DROPOUT_RATE / 150), 1 + (plan.partner[idx] > 0))
    return to_prepared_layout(x)


def default_num_videos(num_samples: int) -> int:
    """Untrimmed videos to make for a trimmed size: about 0.65 action instances per trimmed clip
    (6.5 per video), so a detection head sees some 25 training instances per class at cpu size."""
    return max(12, num_samples // 10)


def iter_untrimmed(num_videos: int, seed: int, plan: VideoPlan | None = None
                   ) -> Iterator[tuple[int, np.ndarray, np.ndarray, list[dict]]]:
    """Yield (start, videos, lengths, rows) in chunks, videos padded to the longest of all.

    `plan` (from :func:`plan_videos` with the same seed) saves re-planning when the caller has it.
    """
    subjects = make_subjects(seed)
    plan = plan or plan_videos(num_videos, seed, subjects)
    frames = int(plan.length.max())
    for k, start in enumerate(range(0, num_videos, VIDEO_CHUNK)):
        idx = np.arange(start, min(start + VIDEO_CHUNK, num_videos))
        videos = make_videos(plan, idx, subjects, np.random.default_rng([seed, 4, k]), frames)
        yield start, videos, plan.length[idx], plan.rows(idx)


# --- prepared folders and the `synthetic` dataset kind --------------------------------------------
def _add_splits(w: PreparedWriter, subject: np.ndarray, camera: np.ndarray) -> None:
    for split, train in (("xsub", np.isin(subject, XSUB_TRAIN_SUBJECTS)),
                         ("xview", np.isin(camera, XVIEW_TRAIN_CAMERAS))):
        w.add_split(split, "train", np.flatnonzero(train))
        w.add_split(split, "test", np.flatnonzero(~train))


def _source(kind: str, seed: int, **sizes: int) -> dict:
    return {"generator": "harness.data.synthetic", "generator_version": GENERATOR_VERSION,
            "variant": kind, "seed": seed, **sizes}


def normalize(clips: np.ndarray) -> np.ndarray:
    """The normalisation prepared NTU data gets (data-formats.md §4 steps b and d, no z-alignment as in
    USDRL): every frame centred on person 0's spine middle, each clip rotated so its frame-0 shoulder
    vector lies on +x. Generated clips are camera-space like raw Kinect data; without this the subject's
    distance and facing (±60°) dominate every coordinate. Frames past a clip's length stay zero."""
    return pre_normalization(clips, topology=NTU25, pad_null=False).astype(np.float32)


def write_trimmed(out: str | Path, num_samples: int = DEFAULT_NUM_SAMPLES, seed: int = 0, *,
                  overwrite: bool = False) -> Path:
    """Write `num_samples` trimmed clips as a prepared folder (N, 3, 300, 25, 2) with xsub/xview."""
    if num_samples < 1:
        raise HarnessError(f"synthetic: --num-samples must be at least 1, got {num_samples}")
    plan = plan_clips(num_samples, seed, make_subjects(seed))
    with PreparedWriter(out, kind="synthetic", topology=NTU25, num_samples=num_samples,
                        max_frames=MAX_FRAMES, num_persons=PERSONS, class_names=CLASS_NAMES,
                        source=_source("trimmed", seed, num_samples=num_samples),
                        overwrite=overwrite) as w:
        for start, clips, lengths, rows in iter_trimmed(num_samples, seed):
            w.set_samples(start, normalize(clips), lengths, rows)
        _add_splits(w, plan.subject, plan.camera)
    return Path(out)


def write_untrimmed(out: str | Path, num_videos: int, seed: int = 0, *, overwrite: bool = False) -> Path:
    """Write `num_videos` untrimmed videos with their action intervals, xsub/xview splits."""
    if num_videos < 1:
        raise HarnessError(f"synthetic: --num-videos must be at least 1, got {num_videos}")
    subjects = make_subjects(seed)
    plan = plan_videos(num_videos, seed, subjects)
    with PreparedWriter(out, kind="synthetic", topology=NTU25, num_samples=num_videos,
                        max_frames=int(plan.length.max()), num_persons=PERSONS, class_names=CLASS_NAMES,
                        untrimmed=True, source=_source("untrimmed", seed, num_videos=num_videos),
                        overwrite=overwrite) as w:
        for start, videos, lengths, rows in iter_untrimmed(num_videos, seed, plan):
            w.set_samples(start, normalize(videos), lengths, rows)
        for i in range(num_videos):
            for label, begin, end in plan.intervals(i):
                w.add_interval(i, label, begin, end)
        _add_splits(w, plan.subject, plan.camera)
    return Path(out)


@DATASETS.register("synthetic")
class SyntheticKind(DatasetKind):
    """Built-in synthetic skeleton actions (NTU-25 kinematics, 24 classes), trimmed or untrimmed."""

    name = "synthetic"
    variants = ("trimmed", "untrimmed")
    untrimmed_variant = "untrimmed"
    format_version = GENERATOR_VERSION  # cached `--dataset synthetic` copies refresh when it changes

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--num-samples", type=int, default=DEFAULT_NUM_SAMPLES,
                            help=f"trimmed clips to generate (default {DEFAULT_NUM_SAMPLES})")
        parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
        parser.add_argument("--untrimmed", action="store_true",
                            help="write long videos with action intervals (for detection) instead")
        parser.add_argument("--num-videos", type=int, default=None,
                            help="untrimmed videos to generate (default: num-samples / 10, at least 12)")

    @classmethod
    def prepare(cls, args: argparse.Namespace) -> list[Path]:
        if getattr(args, "raw", None):
            raise HarnessError("synthetic data is generated, not converted: drop --raw")
        if args.untrimmed:
            videos = args.num_videos if args.num_videos is not None else default_num_videos(args.num_samples)
            return [write_untrimmed(args.out, videos, args.seed, overwrite=args.overwrite)]
        return [write_trimmed(args.out, args.num_samples, args.seed, overwrite=args.overwrite)]

    @classmethod
    def auto_prepare(cls, data: DataConfig, out: Path, *, untrimmed: bool = False) -> None:
        """``--dataset synthetic``: `data.num_samples` clips (0 = 4000) from `data.seed`; untrimmed
        makes ``data.options["num_videos"]`` videos (default num_samples / 10, at least 12)."""
        n = data.num_samples or DEFAULT_NUM_SAMPLES
        if untrimmed:
            videos = int(data.options.get("num_videos") or default_num_videos(n))
            write_untrimmed(out, videos, data.seed, overwrite=True)
        else:
            write_trimmed(out, n, data.seed, overwrite=True)
