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

Modules, by job: :mod:`~harness.data.synthetic.body` (subjects, forward kinematics),
:mod:`~harness.data.synthetic.recording` (motion tracks → camera-space joints: rig, noise, dropouts),
:mod:`~harness.data.synthetic.clips` (trimmed clips), :mod:`~harness.data.synthetic.videos`
(untrimmed videos), the motion library :mod:`~harness.data.synthetic.motions`, and this module
(prepared folders and the ``synthetic`` dataset kind; every name above stays importable from here).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ...config import DataConfig
from ...errors import HarnessError
from ...registry import DATASETS
from ..prepared.kinds import DatasetKind
from ...transforms.normalize import pre_normalization
from ..prepared.format import PreparedWriter
# re-exported: these names lived here before the generator was split by job
from .body import (BODY_KEYS, J, NUM_SUBJECTS, REFERENCE_BODY, SEGMENT_GROUP,
                             XSUB_TRAIN_SUBJECTS, Subjects, forward_kinematics, make_subjects)
from .clips import (CHUNK, LEAD_MAX, MAX_FRAMES, MIN_FRAMES, ClipPlan, generate_trimmed,
                              iter_trimmed, make_clips, plan_clips)
from .motions import (ACTIONS, BACKGROUND, CLASS_NAMES, PAIR_GAP, TRACK_INDEX, TRACK_NAMES,
                                TWO_PERSON_CLASSES, Motion, MotionContext, Tracks, habits, idle, mirror)
from .recording import (CAMERA_YAW_DEG, DROPOUT_RATE, EXTREMITIES, FACING_JITTER_DEG,
                               NOISE_RANGE, NOISE_SCALE, NUM_CAMERAS, PERSONS, SETUPS,
                               XVIEW_TRAIN_CAMERAS, Recording, make_recording, render_motion,
                               render_people, to_prepared_layout)
from .videos import (BACKGROUND_GAP, PAIR_VIDEO_RATE, VIDEO_ACTIONS, VIDEO_CHUNK,
                               VIDEO_FRAMES, Segment, VideoPlan, default_num_videos, iter_untrimmed,
                               make_videos, plan_videos)
from ..topology import NTU25

GENERATOR_VERSION = 3  # bump whenever a seed's output changes (recorded in meta.json, keys the cache)
# 2: clips and videos get the NTU normalisation (per-frame centring, shoulders on +x) when written
# 3: the default untrimmed set has num_samples / 10 videos (was / 40: too few actions per class)
DEFAULT_NUM_SAMPLES = 4000


def _add_splits(w: PreparedWriter, subject: np.ndarray, camera: np.ndarray) -> None:
    for split, train in (("xsub", np.isin(subject, XSUB_TRAIN_SUBJECTS)),
                         ("xview", np.isin(camera, XVIEW_TRAIN_CAMERAS))):
        w.add_split(split, "train", np.flatnonzero(train))
        w.add_split(split, "test", np.flatnonzero(~train))


def _source(kind: str, seed: int, **sizes: int) -> dict:
    return {"generator": "harness.data.synthetic.dataset", "generator_version": GENERATOR_VERSION,
            "variant": kind, "seed": seed, **sizes}


def normalize(clips: np.ndarray) -> np.ndarray:
    """The normalisation prepared NTU data gets (docs/reference/data-formats.md §4 steps b and d, no z-alignment as in
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
