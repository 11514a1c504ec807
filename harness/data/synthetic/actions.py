"""Single-person actions of the synthetic dataset (the library's table is in synthetic_motions.py).

One-handed actions are written for the right hand; the table marks those performed with either
hand, and the renderer mirrors them for a random half of the clips. Track names and angle
conventions: :mod:`harness.data.synthetic.tracks`.
"""

from __future__ import annotations

import numpy as np

from .tracks import MotionContext, guard, side_prefix, smoothstep, steps_in_place, window


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
