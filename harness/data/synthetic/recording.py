"""From motions to camera-space skeletons: angle tracks for a batch of one motion, the recording
rig (camera view, distance, height, tilt; where the persons stand), and the Kinect-like sensor
(noise, tracking-loss dropouts).

Camera space is NTU's: y up, z the depth from the sensor, x toward the sensor's left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .body import BODY_KEYS, J, Subjects, forward_kinematics, rot
from .motions import TRACK_INDEX, Motion, MotionContext, habits, idle, mirror

NUM_CAMERAS = 3
XVIEW_TRAIN_CAMERAS = (2, 3)
CAMERA_YAW_DEG = {1: 0.0, 2: -45.0, 3: 45.0}
# setup → (distance m, camera height m, downward tilt deg): recordings at different rigs
SETUPS = {1: (2.6, 0.9, 3.0), 2: (3.0, 1.1, 8.0), 3: (3.4, 1.3, 13.0), 4: (2.3, 0.8, 0.0)}
FACING_JITTER_DEG = 60.0
NOISE_RANGE = (0.005, 0.03)  # sensor noise sigma (m), drawn per clip
DROPOUT_RATE = 0.3  # chance that a clip has a tracking-loss burst
PERSONS = 2

# hand tips, thumbs and feet are where Kinect is least reliable: more noise, more dropouts
EXTREMITIES = np.array([J[n] for n in ("left_hand_tip", "left_thumb", "right_hand_tip", "right_thumb",
                                        "left_hand", "right_hand", "left_foot", "right_foot")])
NOISE_SCALE = np.ones(25)
NOISE_SCALE[EXTREMITIES] = 2.5


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
    cam = rot("x", -tilt) @ rot("y", view)  # scene → camera (tilt: the camera looks down)
    translate = np.stack([lateral, -height, dist], axis=1)
    pair = gap > 0
    # a pair stands side by side across the view, each turned ±90° toward the other
    facing = np.stack([np.where(pair, 90.0, 0.0), np.where(pair, -90.0, 0.0)], axis=1)
    spot = np.zeros((n, PERSONS, 3))
    spot[:, 0, 0], spot[:, 1, 0] = -gap / 2, gap / 2
    rotation = np.stack([cam @ rot("y", -facing[:, p]) for p in range(PERSONS)], axis=1)
    offset = np.stack([np.einsum("nij,nj->ni", cam, spot[:, p]) + np.einsum("nij,nj->ni", rot("x", -tilt), translate)
                       for p in range(PERSONS)], axis=1)
    return Recording(rotation, offset)


def dropout(x: np.ndarray, lengths: np.ndarray, rng: np.random.Generator, bursts: np.ndarray,
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
