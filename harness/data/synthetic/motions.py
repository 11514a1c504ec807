"""The action library of the synthetic dataset: which motions exist, how long they take, and
which are interactions or may be done with either hand.

The motions themselves are written in families, vectorised over a batch:
:mod:`~harness.data.synthetic.actions` (single-person), :mod:`~harness.data.synthetic.interactions`
(two persons) and :mod:`~harness.data.synthetic.background` (between actions in untrimmed videos),
on the tracks and tools of :mod:`~harness.data.synthetic.tracks` (angle conventions there). The body
model and forward kinematics that turn tracks into joint positions live in
:mod:`harness.data.synthetic.body`; the motion code only says *how joints move*.

One-handed actions are written for the right hand; those marked ``either_hand`` are mirrored for
a random half of the clips. Classes are designed in confusable groups (left/right mirrors; punch vs reach; touch head vs
phone call vs drink; bow vs pick up; squat vs jump; handshake vs give object) so that a method has
to model the fine structure of the motion, not one global statistic.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

# the whole library stays importable from here, as before the split into families
from .actions import (arm_circles, bow, clap, drink, jump, kick, phone_call, pick_up, punch,
                                raise_arms, reach, side_step, squat, throw, touch_head, turn_around,
                                wave)
from .background import bg_fidget, bg_look_around, bg_walk
from .interactions import give_object, handshake, hug, push
from .tracks import (FPS, MIRROR_NEGATE, SIDED, TRACK_INDEX, TRACK_NAMES, MotionContext,
                               Tracks, guard, habits, idle, mirror, side_prefix, smoothstep,
                               steps_in_place, window)


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
