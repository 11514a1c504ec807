"""Two-person interactions of the synthetic dataset: person 1 acts first; the two start
``ctx.gap`` m apart, facing each other."""

from __future__ import annotations

import numpy as np

from .tracks import MotionContext, Tracks, smoothstep, steps_in_place, window


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
