"""Joint-angle tracks of the synthetic dataset and the tools motions are written with.

A motion (see :mod:`harness.data.synthetic.motions` for the library) is a function of a
:class:`MotionContext` (a batch of clips of one class, on a common frame grid) that adds joint-angle
deviations, in degrees, to a :class:`Tracks` object per person. This module holds the tracks, the
context with its per-clip random draws and temporal shapes, and the building blocks several motions
share (guard, steps in place, idle sway, limb habits).

Angle conventions (body frame: +x the person's right, +y up, forward is −z). Sided tracks
(``r_*``/``l_*``) use the same numbers for mirrored motions: the kinematics flips the signs of the
left side, so ``l_abd = 90`` raises the left arm sideways just as ``r_abd = 90`` raises the right.
- ``*_flex`` raises the arm forward; ``*_abd`` raises it sideways; ``*_hz`` swings a raised arm
  outward (negative: across the body); ``*_rot`` turns the upper arm about its own axis
  (−90 makes elbow flexion lift a sideways arm's forearm upward); ``*_elbow`` bends the elbow.
- ``*_hip_flex`` raises the thigh forward, ``*_hip_abd`` sideways, ``*_knee`` bends the knee.
- ``pitch1``/``pitch2`` bend the lower/upper trunk forward, ``roll*`` tilt it toward the right,
  ``twist*`` turn it toward the right; ``yaw`` turns the whole body (positive: toward the right);
  ``tx``/``tz`` move the body in its starting frame (m; ``tz < 0`` steps forward); ``lift`` raises
  it off the ground (m, jumps).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FPS = 30.0
SIDED = ("hz", "abd", "flex", "rot", "elbow", "wrist", "hip_flex", "hip_abd", "knee", "ankle")
TRACK_NAMES: tuple[str, ...] = (
    ("yaw", "tx", "tz", "lift", "pitch1", "roll1", "twist1", "pitch2", "roll2", "twist2",
     "neck_pitch", "neck_yaw")
    + tuple(f"{s}_{n}" for s in ("r", "l") for n in SIDED))
TRACK_INDEX = {name: i for i, name in enumerate(TRACK_NAMES)}


class Tracks:
    """Joint-angle tracks of one person for a batch: (K tracks, B clips, T frames), float64.

    ``tracks["r_flex"] += 30 * env`` edits one track in place; angles in degrees, distances in m.
    """

    def __init__(self, batch: int, frames: int):
        self.array = np.zeros((len(TRACK_NAMES), batch, frames))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.array[TRACK_INDEX[name]]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        self.array[TRACK_INDEX[name]] = value


MIRROR_NEGATE = ("yaw", "tx", "roll1", "twist1", "roll2", "twist2", "neck_yaw")


def mirror(tr: Tracks, which: np.ndarray) -> None:
    """Mirror clips `which` (B,) bool left↔right: swap the r_/l_ tracks, negate the sideways ones."""
    a = tr.array
    for n in SIDED:
        r, l = TRACK_INDEX["r_" + n], TRACK_INDEX["l_" + n]
        a[r, which], a[l, which] = a[l, which], a[r, which].copy()
    for n in MIRROR_NEGATE:
        a[TRACK_INDEX[n], which] *= -1


def side_prefix(side: int) -> str:
    return "r_" if side > 0 else "l_"


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, a raised-cosine ramp between (C¹-smooth, so no velocity jumps)."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def window(q: np.ndarray, a, b) -> np.ndarray:
    """A smooth bump that is 0 outside [a, b] and peaks at 1 in the middle."""
    x = np.clip((q - a) / (np.asarray(b) - a), 0.0, 1.0)
    return np.sin(np.pi * x) ** 2


@dataclass
class MotionContext:
    """A batch of clips of one motion on a shared grid of ``frames`` frames.

    ``u`` is each clip's *active phase*: 0 → 1 across the frames [start, end) where the motion
    happens (idle lead-in/out frames outside hold 0 or 1), time-warped so that clips differ in tempo
    profile as well as duration. ``amp`` scales amplitudes (subject style × per-clip variation).
    ``gap`` is the distance (m) between the two persons' starting spots for interactions.
    """

    rng: np.random.Generator
    lengths: np.ndarray  # (B,) valid frames
    frames: int
    amp: np.ndarray  # (B, 1)
    start: np.ndarray | None = None  # (B,) first active frame (default 0)
    end: np.ndarray | None = None  # (B,) end of the active frames (default: the length)
    gap: np.ndarray | None = None  # (B, 1), interactions only
    p1: Tracks = field(init=False)
    p2: Tracks = field(init=False)
    u: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        b = len(self.lengths)
        self.p1 = Tracks(b, self.frames)
        self.p2 = Tracks(b, self.frames)
        s0 = np.zeros((b, 1)) if self.start is None else self.start.astype(np.float64)[:, None]
        s1 = (self.lengths if self.end is None else self.end).astype(np.float64)[:, None]
        a = np.clip((np.arange(self.frames)[None, :] + 0.5 - s0) / (s1 - s0), 0.0, 1.0)
        # monotone time warp: derivative 1 + k·cos(2πa) stays ≥ 0.5, so the phase never runs back
        k = self.uni(-0.5, 0.5)
        self.u = a + k * np.sin(2 * np.pi * a) / (2 * np.pi)
        self.seconds = (s1 - s0) / FPS  # (B, 1) active duration

    # --- per-clip random parameters, shaped (B, 1) to broadcast over frames --------------------
    @property
    def batch(self) -> int:
        return len(self.lengths)

    def uni(self, lo: float, hi: float) -> np.ndarray:
        return self.rng.uniform(lo, hi, size=(len(self.lengths), 1))

    def ints(self, lo: int, hi: int) -> np.ndarray:
        """Integers in [lo, hi] inclusive."""
        return self.rng.integers(lo, hi + 1, size=(len(self.lengths), 1)).astype(np.float64)

    def sign(self) -> np.ndarray:
        return self.rng.choice([-1.0, 1.0], size=(len(self.lengths), 1))

    # --- temporal shapes over the active phase -------------------------------------------------
    def env(self, rise=0.2, fall=0.2) -> np.ndarray:
        """0 → 1 → 0 plateau: a smooth rise over the first `rise` of the phase, fall over the last."""
        return smoothstep(self.u / rise) * smoothstep((1.0 - self.u) / fall)

    def osc(self, hz_lo: float, hz_hi: float) -> np.ndarray:
        """sin of a random frequency (Hz, over the active duration) and random phase."""
        cycles = self.uni(hz_lo, hz_hi) * self.seconds
        return np.sin(2 * np.pi * (cycles * self.u + self.uni(0.0, 1.0)))

    def reps(self, n: np.ndarray, min_seconds: float) -> np.ndarray:
        """The phase within each of `n` repetitions: (u·n) mod 1 (u = 1 maps to the end of the last).

        A clip too short for `n` repetitions of at least `min_seconds` each does fewer, so that
        no limb moves faster than a person can move it.
        """
        n = np.clip(np.minimum(n, np.floor(self.seconds / min_seconds)), 1, None)
        x = self.u * n
        return np.where(self.u >= 1.0, 1.0, x - np.floor(x))


# --- building blocks shared by several actions --------------------------------------------------
def guard(tr: Tracks, e: np.ndarray, ctx: MotionContext) -> None:
    """Both fists up in front of the chest (boxing guard), weighted by envelope `e`."""
    for p in ("r_", "l_"):
        tr[p + "flex"] += e * 35 * ctx.amp
        tr[p + "elbow"] += e * 115
        tr[p + "hz"] += e * -10


def steps_in_place(tr: Tracks, e: np.ndarray, ctx: MotionContext, hz=(1.4, 2.0), height=25.0) -> None:
    """Alternating leg lifts (walking on the spot) with counter-swinging arms."""
    s = ctx.osc(*hz)
    lift_r, lift_l = np.maximum(s, 0), np.maximum(-s, 0)
    h = height * ctx.amp * e
    tr["r_hip_flex"] += h * lift_r
    tr["r_knee"] += 2 * h * lift_r
    tr["l_hip_flex"] += h * lift_l
    tr["l_knee"] += 2 * h * lift_l
    tr["r_flex"] += -0.6 * h * s
    tr["l_flex"] += 0.6 * h * s


def idle(tr: Tracks, ctx: MotionContext, level: float = 1.0) -> None:
    """Quiet standing: slow trunk sway, weight shift, head wander. Added to every clip."""
    for track, deg in (("roll1", 1.5), ("pitch1", 1.0), ("neck_yaw", 6.0), ("neck_pitch", 3.0)):
        tr[track] += level * deg * ctx.osc(0.1, 0.4)
    tr["tx"] += level * 0.02 * ctx.osc(0.1, 0.3)


def habits(tr: Tracks, ctx: MotionContext) -> None:
    """Per-clip idiosyncrasies of the limbs an action does not use: how the arms are held (a hand
    on the hip, crossed a little, hanging wide), a slow drift of each arm, a head turned aside."""
    for p in ("r_", "l_"):
        tr[p + "flex"] += ctx.rng.normal(0, 12, (ctx.batch, 1)) + 12 * ctx.osc(0.1, 0.5)
        tr[p + "abd"] += ctx.rng.normal(0, 8, (ctx.batch, 1))
        tr[p + "hz"] += ctx.rng.normal(0, 10, (ctx.batch, 1))
        tr[p + "elbow"] += ctx.uni(0, 35) + 12 * ctx.osc(0.1, 0.5)
        tr[p + "rot"] += ctx.rng.normal(0, 15, (ctx.batch, 1))
    tr["neck_yaw"] += ctx.rng.normal(0, 12, (ctx.batch, 1))
    tr["pitch2"] += ctx.rng.normal(0, 4, (ctx.batch, 1))
