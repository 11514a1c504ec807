"""Background motion of the synthetic untrimmed videos: what a person does between actions
(never labelled)."""

from __future__ import annotations

from .tracks import MotionContext, steps_in_place


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
