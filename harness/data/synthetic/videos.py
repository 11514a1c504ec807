"""Untrimmed synthetic videos: 600–3000 frames of background motion with 3–10 actions in between,
planned up front (segments, performers, camera) and rendered a chunk of videos at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .body import NUM_SUBJECTS, Subjects, make_subjects, same_group_partner
from .clips import MAX_FRAMES, MIN_FRAMES
from .motions import (ACTIONS, BACKGROUND, PAIR_GAP, TRACK_INDEX, TRACK_NAMES,
                                TWO_PERSON_CLASSES, Motion, MotionContext, Tracks, habits, idle)
from .recording import (DROPOUT_RATE, NOISE_RANGE, NUM_CAMERAS, PERSONS, SETUPS, dropout,
                               make_recording, render_motion, render_people, to_prepared_layout)

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
    partner = np.where(pair, same_group_partner(rng, subject), 0)
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
    dropout(x, length, rng, rng.poisson(length * DROPOUT_RATE / 150), 1 + (plan.partner[idx] > 0))
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
