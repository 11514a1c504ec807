"""Trimmed synthetic clips: everything about N clips drawn up front (class, performers, camera,
setup, length, where the action sits among idle frames), then rendered a chunk at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .body import NUM_SUBJECTS, Subjects, make_subjects, same_group_partner
from .motions import ACTIONS, PAIR_GAP, TRACK_NAMES, TWO_PERSON_CLASSES
from .recording import (DROPOUT_RATE, NOISE_RANGE, NUM_CAMERAS, SETUPS, dropout,
                               make_recording, render_motion, render_people, to_prepared_layout)

MAX_FRAMES = 300  # trimmed clips are stored padded to this many frames (NTU's T_max)
MIN_FRAMES = 40
LEAD_MAX = 0.8  # idle lead-in / tail, as a fraction of the action's duration
CHUNK = 256  # clips generated together; fixed, as the random streams are drawn per chunk


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
    partner = np.where(np.isin(label, TWO_PERSON_CLASSES), same_group_partner(rng, subject), 0)
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
    dropout(x, length, rng, (rng.random(n) < DROPOUT_RATE).astype(np.int64), 1 + (plan.partner[idx] > 0))
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
