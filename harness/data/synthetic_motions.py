"""The action library of the synthetic dataset: joint-angle trajectories, vectorised over a batch.

Every motion is a function of a :class:`MotionContext` (a batch of clips of one class, on a common
frame grid) that adds joint-angle deviations, in degrees, to a :class:`Tracks` object per person.
The body model and forward kinematics that turn tracks into joint positions live in
:mod:`harness.data.synthetic`; this module only says *how joints move*.

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

One-handed actions are written for the right hand; those marked ``either_hand`` are mirrored for
a random half of the clips. Classes are designed in confusable groups (left/right mirrors; punch vs reach; touch head vs
phone call vs drink; bow vs pick up; squat vs jump; handshake vs give object) so that a method has
to model the fine structure of the motion, not one global statistic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable

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


# --- single-person actions -----------------------------------------------------------------------
def wave(ctx: MotionContext, side: int) -> None:
    tr, p = ctx.p1, side_prefix(side)
    e = ctx.env(ctx.uni(0.15, 0.3), ctx.uni(0.15, 0.3))
    tr[p + "abd"] += e * ctx.uni(70, 115) * ctx.amp
    tr[p + "hz"] += e * ctx.uni(-10, 25)
    tr[p + "rot"] += e * -90
    tr[p + "elbow"] += e * (ctx.uni(40, 70) + ctx.uni(15, 30) * ctx.amp * ctx.osc(1.5, 2.8))


def punch(ctx: MotionContext, side: int) -> None:
    tr, p = ctx.p1, side_prefix(side)
    e = ctx.env(0.15, 0.15)
    guard(tr, e * (ctx.uni(0, 1) < 0.5), ctx)  # half the punchers keep a guard up
    tr[p + "flex"] += e * 35 * ctx.amp  # the punching fist is cocked at the chest either way
    tr[p + "elbow"] += e * 115
    n = ctx.ints(1, 3)
    q = ctx.reps(n, 0.6)
    jab = window(q, ctx.uni(0.1, 0.3), ctx.uni(0.5, 0.7)) * e
    tr[p + "flex"] += jab * ctx.uni(45, 60) * ctx.amp
    tr[p + "elbow"] += jab * -ctx.uni(95, 110)
    tr[p + "hz"] += jab * -5
    tr["twist2"] += jab * -side * ctx.uni(10, 20)  # the shoulder drives forward
    tr["pitch1"] += e * ctx.uni(0, 8)


def reach(ctx: MotionContext, side: int) -> None:
    """A single reach toward a target at a random height, held, then withdrawn."""
    tr, p = ctx.p1, side_prefix(side)
    e = ctx.env(ctx.uni(0.15, 0.4), ctx.uni(0.15, 0.4))
    tr[p + "flex"] += e * ctx.uni(40, 110) * ctx.amp
    tr[p + "elbow"] += e * ctx.uni(0, 25) + window(e, 0.0, 1.0) * ctx.uni(0, 70)  # bent on the way
    tr[p + "hz"] += e * ctx.uni(-15, 20)
    tr[p + "wrist"] += e * ctx.uni(-20, 10)
    tr["pitch1"] += e * ctx.uni(0, 12)
    tr["twist2"] += e * -side * ctx.uni(0, 12)


def kick(ctx: MotionContext, side: int) -> None:
    tr, p = ctx.p1, side_prefix(side)
    e = ctx.env(0.1, 0.1)
    n = ctx.ints(1, 2)
    b = window(ctx.reps(n, 1.0), ctx.uni(0.1, 0.25), ctx.uni(0.65, 0.9)) * e
    tr[p + "hip_flex"] += b * ctx.uni(50, 85) * ctx.amp
    tr[p + "knee"] += 4 * b * (1 - b) * ctx.uni(60, 100)  # chambered on the way up, straight at the top
    tr[p + "ankle"] += b * 20
    for q in ("r_", "l_"):
        tr[q + "abd"] += e * ctx.uni(10, 30)  # arms out for balance
    tr["pitch1"] += b * -ctx.uni(3, 10)


def squat(ctx: MotionContext) -> None:
    tr = ctx.p1
    e = ctx.env(0.1, 0.1)
    n = ctx.ints(1, 3)
    d = ctx.uni(0.55, 1.0) * ctx.amp
    b = window(ctx.reps(n, 1.2), 0.0, 1.0) * e * d
    for q in ("r_", "l_"):
        tr[q + "hip_flex"] += b * 95
        tr[q + "knee"] += b * 120
        tr[q + "ankle"] += b * 25
        tr[q + "flex"] += b * ctx.uni(40, 90)
    tr["pitch1"] += b * ctx.uni(15, 35)


def jump(ctx: MotionContext) -> None:
    tr = ctx.p1
    e = ctx.env(0.05, 0.05)
    n = ctx.ints(1, 3)
    q = ctx.reps(n, 1.2)
    crouch = (window(q, 0.0, 0.45) + 0.7 * window(q, 0.7, 1.0)) * e * ctx.uni(0.35, 0.6)
    flight = window(q, 0.38, 0.78) * e
    for s in ("r_", "l_"):
        tr[s + "hip_flex"] += crouch * 95
        tr[s + "knee"] += crouch * 120
        tr[s + "ankle"] += crouch * 25 - flight * 25
        tr[s + "flex"] += (-30 * window(q, 0.0, 0.4) + ctx.uni(90, 160) * window(q, 0.25, 0.95)) * e * ctx.amp
    tr["pitch1"] += crouch * 25
    tr["lift"] += flight * ctx.uni(0.05, 0.3) * ctx.amp


def bow(ctx: MotionContext) -> None:
    tr = ctx.p1
    e = ctx.env(ctx.uni(0.2, 0.35), ctx.uni(0.2, 0.35))
    tr["pitch1"] += e * ctx.uni(20, 50) * ctx.amp
    tr["pitch2"] += e * ctx.uni(10, 25)
    tr["neck_pitch"] += e * ctx.uni(10, 25)
    for s in ("r_", "l_"):
        tr[s + "flex"] += e * ctx.uni(-5, 15)


def pick_up(ctx: MotionContext) -> None:
    """Bend down and pick something up: a deeper bow with bent knees and a one-handed reach."""
    tr = ctx.p1
    e = ctx.env(ctx.uni(0.25, 0.4), ctx.uni(0.25, 0.4))
    k = ctx.uni(5, 45)
    tr["pitch1"] += e * ctx.uni(30, 55) * ctx.amp
    tr["pitch2"] += e * ctx.uni(10, 25)
    tr["neck_pitch"] += e * 10
    for s in ("r_", "l_"):
        tr[s + "hip_flex"] += e * k * 0.5
        tr[s + "knee"] += e * k
    tr["r_flex"] += e * ctx.uni(30, 60)
    tr["r_elbow"] += e * ctx.uni(0, 20)
    grab = window(ctx.u, 0.4, 0.6)
    tr["r_wrist"] += grab * 30
    tr["r_elbow"] += grab * 25


def clap(ctx: MotionContext) -> None:
    tr = ctx.p1
    e = ctx.env(0.15, 0.15)
    beat = 0.5 + 0.5 * ctx.osc(1.8, 3.2)  # 1 = hands apart
    for s in ("r_", "l_"):
        tr[s + "flex"] += e * ctx.uni(55, 85) * ctx.amp
        tr[s + "elbow"] += e * ctx.uni(35, 65)
        tr[s + "hz"] += e * (-28 + ctx.uni(25, 40) * beat)


def raise_arms(ctx: MotionContext) -> None:
    """Cheer: both arms up over the head, once or twice."""
    tr = ctx.p1
    e = ctx.env(0.1, 0.1)
    b = window(ctx.reps(ctx.ints(1, 2), 1.2), 0.0, 1.0) ** 0.5 * e
    for s in ("r_", "l_"):
        tr[s + "abd"] += b * ctx.uni(130, 170) * ctx.amp
        tr[s + "hz"] += b * ctx.uni(-20, 10)
        tr[s + "elbow"] += b * ctx.uni(5, 30)
    tr["neck_pitch"] += b * -10


def arm_circles(ctx: MotionContext) -> None:
    tr = ctx.p1
    e = ctx.env(0.15, 0.15)
    cycles = ctx.uni(0.8, 1.6) * ctx.seconds
    phase = 2 * np.pi * (cycles * ctx.u + ctx.uni(0, 1)) * ctx.sign()
    r = ctx.uni(15, 30) * ctx.amp
    for s in ("r_", "l_"):
        tr[s + "abd"] += e * (ctx.uni(75, 95) + r * np.sin(phase))
        tr[s + "hz"] += e * r * np.cos(phase)


def turn_around(ctx: MotionContext) -> None:
    tr = ctx.p1
    e = ctx.env(0.1, 0.1)
    tr["yaw"] += smoothstep(ctx.u) * ctx.uni(90, 180) * ctx.sign()
    steps_in_place(tr, e, ctx, height=15)


def side_step(ctx: MotionContext) -> None:
    tr = ctx.p1
    e = ctx.env(0.05, 0.05)
    n = ctx.ints(1, 2)
    q = ctx.reps(n, 1.2)
    go = window(q, 0.0, 1.0) ** 0.5 * e
    tr["tx"] += go * ctx.uni(0.25, 0.5) * ctx.sign()
    step = np.abs(np.gradient(go, axis=1)) * 150  # legs open while the body is moving
    for s in ("r_", "l_"):
        tr[s + "hip_abd"] += np.minimum(step, 1) * ctx.uni(8, 15)
        tr[s + "abd"] += e * ctx.uni(5, 15)


def _hand_to(ctx: MotionContext, flex, abd, hz, elbow, side: int = 1) -> np.ndarray:
    tr, p = ctx.p1, side_prefix(side)
    e = ctx.env(ctx.uni(0.15, 0.3), ctx.uni(0.15, 0.3))
    tr[p + "flex"] += e * ctx.uni(*flex)
    tr[p + "abd"] += e * ctx.uni(*abd)
    tr[p + "hz"] += e * ctx.uni(*hz)
    tr[p + "elbow"] += e * ctx.uni(*elbow)
    return e


def touch_head(ctx: MotionContext) -> None:
    """Headache: a palm on the forehead, head slightly down."""
    e = _hand_to(ctx, (95, 125), (0, 20), (-40, -15), (115, 140))
    ctx.p1["neck_pitch"] += e * ctx.uni(5, 15)


def phone_call(ctx: MotionContext) -> None:
    """A hand held at the ear, head tilted toward it."""
    e = _hand_to(ctx, (25, 55), (15, 45), (-20, 10), (125, 150))
    ctx.p1["neck_yaw"] += e * ctx.uni(5, 20)
    ctx.p1["roll2"] += e * ctx.uni(0, 6)


def drink(ctx: MotionContext) -> None:
    """A hand to the mouth for one or two sips, head tipping back with each."""
    e = _hand_to(ctx, (35, 65), (0, 20), (-35, -5), (110, 140))
    sip = window(ctx.reps(ctx.ints(1, 2), 1.0), 0.1, 0.9) * e
    ctx.p1["r_elbow"] += sip * 15
    ctx.p1["r_flex"] += sip * 15
    ctx.p1["neck_pitch"] += sip * -ctx.uni(10, 25)


def throw(ctx: MotionContext) -> None:
    tr = ctx.p1
    e = ctx.env(0.1, 0.15)
    cock = window(ctx.u, 0.05, 0.6) * e  # wind up behind the head
    release = window(ctx.u, 0.45, 0.8) * e  # fast forward swing
    tr["r_flex"] += cock * ctx.uni(130, 160) + release * ctx.uni(60, 90) * ctx.amp
    tr["r_abd"] += cock * 20
    tr["r_elbow"] += cock * ctx.uni(80, 110) + release * 10
    tr["twist2"] += cock * 25 - release * ctx.uni(15, 30)
    tr["pitch1"] += release * ctx.uni(5, 15) - cock * 5
    tr["l_hip_flex"] += window(ctx.u, 0.3, 0.9) * ctx.uni(15, 30)
    tr["l_flex"] += cock * 40


# --- two-person interactions (person 1 acts first; persons start `ctx.gap` apart, facing) -------
def _approach(ctx: MotionContext, tr: Tracks, e: np.ndarray, contact: float, share: np.ndarray) -> None:
    """Step toward the partner until the two are `contact` m apart; `share` of the way is this one's."""
    tr["tz"] += -e * np.maximum(ctx.gap - contact, 0) * share
    steps_in_place(tr, window(ctx.u, 0.0, 0.35), ctx, height=12)


def handshake(ctx: MotionContext) -> None:
    e = ctx.env(ctx.uni(0.25, 0.35), ctx.uni(0.2, 0.3))
    share = ctx.uni(0.35, 0.65)
    shake = ctx.osc(2.0, 3.5) * window(ctx.u, 0.3, 0.8) * ctx.uni(6, 12)
    for tr, sh in ((ctx.p1, share), (ctx.p2, 1 - share)):
        _approach(ctx, tr, e, 0.8, sh)
        tr["r_flex"] += e * ctx.uni(40, 60) + shake
        tr["r_elbow"] += e * ctx.uni(25, 45)
        tr["r_hz"] += e * -10


def push(ctx: MotionContext) -> None:
    e = ctx.env(0.35, 0.3)
    shove = window(ctx.u, 0.35, 0.75)
    p1, p2 = ctx.p1, ctx.p2
    _approach(ctx, p1, e, 0.7, 1.0)
    for s in ("r_", "l_"):
        p1[s + "flex"] += e * ctx.uni(65, 85)
        p1[s + "elbow"] += e * 110 - shove * ctx.uni(80, 100) * ctx.amp
        p2[s + "abd"] += shove * ctx.uni(15, 35)
    knocked = smoothstep((ctx.u - 0.45) / 0.2) * smoothstep((1.0 - ctx.u) / 0.3)
    p2["tz"] += knocked * ctx.uni(0.2, 0.45) * ctx.amp  # stumbles backward
    p2["pitch1"] += shove * -ctx.uni(5, 15)


def hug(ctx: MotionContext) -> None:
    e = ctx.env(ctx.uni(0.25, 0.35), ctx.uni(0.2, 0.3))
    share = ctx.uni(0.35, 0.65)
    for tr, sh in ((ctx.p1, share), (ctx.p2, 1 - share)):
        _approach(ctx, tr, e, 0.4, sh)
        for s in ("r_", "l_"):  # arms forward, elbows bending inward around the partner
            tr[s + "flex"] += e * ctx.uni(75, 90)
            tr[s + "hz"] += e * ctx.uni(-20, 0)
            tr[s + "rot"] += e * ctx.uni(70, 90)
            tr[s + "elbow"] += e * ctx.uni(60, 90)
        tr["pitch1"] += e * ctx.uni(0, 10)


def give_object(ctx: MotionContext) -> None:
    """Person 1 holds an object out; person 2 reaches for it a moment later; both withdraw."""
    share = ctx.uni(0.4, 0.7)
    e_all = ctx.env(0.2, 0.2)
    for tr, sh, lo, hi in ((ctx.p1, share, 0.05, 0.7), (ctx.p2, 1 - share, 0.3, 0.95)):
        arm = window(ctx.u, lo, hi) ** 0.5
        _approach(ctx, tr, e_all, 1.0, sh)
        tr["r_flex"] += arm * ctx.uni(50, 70)
        tr["r_elbow"] += arm * ctx.uni(15, 35)
        tr["r_hz"] += arm * -8


# --- background motion between actions in untrimmed videos (never labelled) --------------------
def bg_look_around(ctx: MotionContext) -> None:
    """Stand and look around, shifting weight from foot to foot."""
    tr = ctx.p1
    e = ctx.env(0.25, 0.25)
    tr["neck_yaw"] += e * ctx.uni(20, 50) * ctx.osc(0.1, 0.4)
    tr["roll1"] += e * ctx.uni(2, 5) * ctx.osc(0.1, 0.4)


def bg_walk(ctx: MotionContext) -> None:
    steps_in_place(ctx.p1, ctx.env(0.1, 0.1), ctx, hz=(1.2, 1.8), height=ctx.uni(8, 20))


def bg_fidget(ctx: MotionContext) -> None:
    """Small restless movements: shoulder rolls, weight shifts, a hand drifting."""
    tr = ctx.p1
    e = ctx.env(0.2, 0.2)
    for track, deg in (("r_flex", 12), ("l_flex", 12), ("r_elbow", 20), ("l_elbow", 20),
                       ("roll1", 3), ("twist2", 6), ("neck_yaw", 15)):
        tr[track] += e * deg * ctx.osc(0.2, 0.8)


@dataclass(frozen=True)
class Motion:
    name: str
    fn: Callable[[MotionContext], None]
    frames: tuple[int, int]  # duration range (frames at 30 fps) before subject tempo
    two_person: bool = False
    either_hand: bool = False  # performed with the right or the left hand at random (mirrored)


ACTIONS: tuple[Motion, ...] = (
    Motion("wave_right", partial(wave, side=1), (60, 160)),
    Motion("wave_left", partial(wave, side=-1), (60, 160)),
    Motion("punch_right", partial(punch, side=1), (40, 110)),
    Motion("punch_left", partial(punch, side=-1), (40, 110)),
    Motion("reach", partial(reach, side=1), (60, 150), either_hand=True),
    Motion("kick_right", partial(kick, side=1), (40, 110)),
    Motion("kick_left", partial(kick, side=-1), (40, 110)),
    Motion("squat", squat, (70, 220)),
    Motion("jump", jump, (50, 180)),
    Motion("bow", bow, (60, 150)),
    Motion("pick_up", pick_up, (70, 170), either_hand=True),
    Motion("clap", clap, (50, 150)),
    Motion("raise_arms", raise_arms, (60, 160)),
    Motion("arm_circles", arm_circles, (80, 200)),
    Motion("turn_around", turn_around, (60, 150)),
    Motion("side_step", side_step, (60, 160)),
    Motion("touch_head", touch_head, (60, 170), either_hand=True),
    Motion("phone_call", phone_call, (80, 240), either_hand=True),
    Motion("drink", drink, (60, 160), either_hand=True),
    Motion("throw", throw, (45, 120), either_hand=True),
    Motion("handshake", handshake, (80, 200), two_person=True),
    Motion("push", push, (70, 150), two_person=True),
    Motion("hug", hug, (80, 240), two_person=True),
    Motion("give_object", give_object, (80, 200), two_person=True),
)
CLASS_NAMES: tuple[str, ...] = tuple(a.name for a in ACTIONS)
PAIR_GAP = (1.0, 1.8)  # starting distance of the two persons of an interaction (m)
TWO_PERSON_CLASSES: tuple[int, ...] = tuple(i for i, a in enumerate(ACTIONS) if a.two_person)

BACKGROUND: tuple[Motion, ...] = (
    Motion("look_around", bg_look_around, (30, 200)),
    Motion("walk_in_place", bg_walk, (40, 200)),
    Motion("fidget", bg_fidget, (30, 200)),
)
