"""PKU-MMD (Phase I and II) → prepared folders: untrimmed videos, trimmed action clips, or both.

File formats and video names: :mod:`harness.data.readers.pku.raw_files`; split files and the built-in
splits: :mod:`harness.data.readers.pku.pku_splits` (their names stay importable from here).

**Untrimmed** (detection, docs/reference/protocols.md §5): one sample per video (max_frames = the longest video),
M = 2, label −1, and one row per action in intervals.csv with the 0-based class (label − 1) and the
frames [start, end), 0-based and end-exclusive.

**Trimmed** (recognition): the action clips cut out of the videos, label = label − 1. The dataset
does not document its end convention; two are in use (§7):

* ``--end-convention exclusive`` (default; CMD, PCM3, MAMP, and the detection code's targets):
  clip = ``video[start:end]`` (end − start frames);
* ``--end-convention inclusive`` (AimCLR): 1-based inclusive, clip = ``video[start−1:end]``
  (end − start + 1 frames).

The same convention sets the untrimmed intervals, so a trimmed clip is always its interval of the
video. Clips keep at most ``--max-frames`` (300) frames: the first ones as CMD/PCM3/MAMP do
(``--crop first``), or the middle ones as AimCLR (``--crop center``, start (L − 300) // 2).
**Deviation from the references:** CMD and PCM3 store the *unclamped* length as num_frame, which
breaks feeders that do not clamp (docs/reference/usdrl.md §13 item 14); here the stored length is always the
number of frames actually kept, and the raw length is only counted in meta.json (``source``).

Trimmed clips belong to the split part of their video.

**Coordinates** (``--normalize``): ``umurl`` (default) puts every video through the same
``pre_normalization`` as the ntu60 and msr kinds, without its null-frame padding (which would move
frames against the labels): each frame centred on body 0's spine joint, the whole video rotated
once so body 0's frame-0 shoulders lie along x. ``none`` keeps the raw camera-space metres, as SSD's
detection code reads them; on the real PKU-MMD I recordings body 0 then sits around
(−0.26, −0.05, 2.40) m, far from the origin the encoders see in every other dataset, and frozen
detection heads collapse to background (docs/datasets.md, "PKU-MMD").
"""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ....errors import DataError, HarnessError
from ....registry import DATASETS
from ...prepared.kinds import DatasetKind
# re-exported: these names lived here before the readers and split rules got their own modules
from .raw_files import (FLOATS_PER_FRAME, LABEL_SUFFIXES, NUM_CLASSES, NUM_PERSONS, SKELETON_SUFFIXES,
                        VIEWS, Action, PkuVideo, infer_phase, parse_video_name, read_class_names,
                        read_labels, read_skeleton, scan_frames, to_clip)
from .pku_splits import (PHASE2_TEST_SUBJECTS, builtin_splits, parse_split_arguments, phase1_xsub_part,
                         read_split_file, resolve_splits, split_name_for)
from ....transforms.normalize import pre_normalization
from ...prepared.format import PreparedWriter
from ...topology import NTU25


NORMALIZATIONS = ("none", "umurl")


def normalize_video(frames: np.ndarray, how: str) -> np.ndarray:
    """(T, M, V, 3) → the same frames, raw (``none``) or through the NTU/MSR ``pre_normalization``
    without its null-frame padding (``umurl``: every frame centred on body 0's spine joint of that
    frame, the whole video rotated so body 0's frame-0 shoulders lie along x). The whole video is
    normalised once, so a trimmed clip stays exactly its interval of the untrimmed video, and no frame
    moves in time (padding would shift frames against the labels)."""
    if how == "none":
        return frames
    clip = pre_normalization(to_clip(frames)[None], topology=NTU25, pad_null=False)[0]
    return np.ascontiguousarray(clip.transpose(1, 3, 2, 0), dtype=np.float32)


def _missing_videos_label(split_files: dict[str, Path], present: set[str]) -> str:
    """"a subset: N of the M videos its split files name" when --allow-missing-videos left some out."""
    named = {n for path in split_files.values() for names in read_split_file(path).values() for n in names}
    if not named or named <= present:
        return ""
    return f"a subset: {len(named & present)} of the {len(named)} videos its split files name"


def crop(frames: np.ndarray, max_frames: int, how: str) -> np.ndarray:
    """Keep at most max_frames frames of a clip: the first ones, or the middle ones."""
    if len(frames) <= max_frames:
        return frames
    start = 0 if how == "first" else (len(frames) - max_frames) // 2
    return frames[start:start + max_frames]


# --- prepare ----------------------------------------------------------------------------------


@dataclass
class _Video:
    info: PkuVideo
    skeleton: Path
    labels: Path
    actions: list[Action]
    zero_frames: np.ndarray  # from scan_frames; its length is the frame count


def _find(folder: Path, name: str, suffixes: tuple[str, ...]) -> Path | None:
    for suffix in suffixes:
        if (folder / f"{name}{suffix}").exists():
            return folder / f"{name}{suffix}"
    return None


def _collect(root: Path, skeleton_dir: str, label_dir: str, phase: int | None,
             convention: str) -> tuple[list[_Video], int]:
    skel_folder, label_folder = root / skeleton_dir, root / label_dir
    for folder, option in ((skel_folder, "--skeleton-dir"), (label_folder, "--label-dir")):
        if not folder.is_dir():
            found = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())) if root.is_dir() else "nothing"
            raise DataError(folder, f"folder not found (ROOT has: {found}); name it with {option}")
    files = sorted(p for p in skel_folder.iterdir() if p.suffix in SKELETON_SUFFIXES)
    if not files:
        raise DataError(skel_folder, f"no skeleton files ({', '.join(SKELETON_SUFFIXES)})")
    if phase is None:
        phase = infer_phase(files[0].stem)
        if phase is None:
            raise DataError(files[0], "cannot tell the phase from this name; pass --phase 1 or 2")
    videos = []
    for path in files:
        info = parse_video_name(path.stem, phase, path)
        label_path = _find(label_folder, info.name, LABEL_SUFFIXES)
        if label_path is None:
            raise DataError(label_folder / f"{info.name}.txt", f"no label file for video {info.name}")
        actions = read_labels(label_path, convention)
        zero_frames = scan_frames(path)
        for a in actions:
            start, end = a.frames(convention)
            if end > len(zero_frames):
                raise DataError(label_path, f"action [{a.start}, {a.end}] ends beyond the video's "
                                            f"{len(zero_frames)} frames (end convention {convention})",
                                line=a.line)
        videos.append(_Video(info, path, label_path, actions, zero_frames))
    return videos, phase


def prepare_pku(raw: str | Path, out: str | Path, *, phase: int | None = None,
                split_files: dict[str, Path] | None = None, mode: str = "untrimmed",
                end_convention: str = "exclusive", max_frames: int = 300, crop_mode: str = "first",
                drop_empty_clips: bool = False, allow_missing_videos: bool = False,
                skeleton_dir: str = "skeleton", label_dir: str = "label",
                class_names: list[str] | None = None, normalize: str = "umurl", subset_label: str = "",
                overwrite: bool = False) -> list[Path]:
    """Write the untrimmed and/or trimmed folders; with mode "both", under out/untrimmed and out/trimmed."""
    if normalize not in NORMALIZATIONS:
        raise HarnessError(f"--normalize must be one of {', '.join(NORMALIZATIONS)}, not {normalize!r}")
    if mode not in ("untrimmed", "trimmed", "both"):
        raise HarnessError(f"--mode must be untrimmed, trimmed or both, not {mode!r}")
    if end_convention not in ("exclusive", "inclusive"):
        raise HarnessError(f"--end-convention must be exclusive or inclusive, not {end_convention!r}")
    if max_frames < 1:
        raise HarnessError("--max-frames must be at least 1")
    root, out = Path(raw), Path(out)
    videos, phase = _collect(root, skeleton_dir, label_dir, phase, end_convention)
    names = class_names or [f"A{i:02d}" for i in range(1, NUM_CLASSES + 1)]
    if len(names) != NUM_CLASSES:
        raise HarnessError(f"PKU-MMD has {NUM_CLASSES} class ids; {len(names)} class names given")
    splits = resolve_splits(split_files or {}, [v.info for v in videos], phase, allow_missing_videos)
    source = {"raw": str(root.resolve()), "phase": phase, "end_convention": end_convention, "normalize": normalize,
              "split_files": {k: str(v) for k, v in (split_files or {}).items()} or "built-in"}
    subset = subset_label or _missing_videos_label(split_files or {}, {v.info.name for v in videos})
    if subset:
        source["subset"] = subset  # rows of runs on it carry it, tables label the dataset with it
    targets = {"untrimmed": out, "trimmed": out} if mode != "both" else \
        {"untrimmed": out / "untrimmed", "trimmed": out / "trimmed"}
    wanted = ("untrimmed", "trimmed") if mode == "both" else (mode,)

    # which clips the trimmed output keeps, known before anything is allocated
    spans = {(vi, ai): a.frames(end_convention) for vi, v in enumerate(videos) for ai, a in enumerate(v.actions)}
    empty = {c for c, (s, e) in spans.items() if videos[c[0]].zero_frames[s:e].all()}
    clips = [c for c in spans if not (drop_empty_clips and c in empty)]
    raw_lengths = [spans[c][1] - spans[c][0] for c in clips]
    if "trimmed" in wanted and not clips:
        raise DataError(root / label_dir, "no action instances to cut trimmed clips from")

    with contextlib.ExitStack() as stack:
        untrimmed = trimmed = None
        if "untrimmed" in wanted:
            untrimmed = stack.enter_context(PreparedWriter(
                targets["untrimmed"], kind="pku-mmd", topology=NTU25, num_samples=len(videos),
                max_frames=max(len(v.zero_frames) for v in videos), num_persons=NUM_PERSONS,
                class_names=names, untrimmed=True, overwrite=overwrite,
                source={**source, "mode": "untrimmed"}))
        if "trimmed" in wanted:
            trimmed = stack.enter_context(PreparedWriter(
                targets["trimmed"], kind="pku-mmd", topology=NTU25, num_samples=len(clips),
                max_frames=min(max_frames, max(raw_lengths)), num_persons=NUM_PERSONS,
                class_names=names, overwrite=overwrite,
                source={**source, "mode": "trimmed", "max_frames": max_frames, "crop": crop_mode,
                        "clips_longer_than_max_frames": int(sum(n > max_frames for n in raw_lengths)),
                        "longest_clip_raw_frames": int(max(raw_lengths)),
                        "all_zero_clips": len(empty), "all_zero_clips_dropped": drop_empty_clips}))
        clip_index = {c: k for k, c in enumerate(clips)}
        for vi, video in enumerate(videos):
            frames = read_skeleton(video.skeleton)
            if len(frames) != len(video.zero_frames):  # cannot happen unless the file changed meanwhile
                raise DataError(video.skeleton, "changed while it was being read")
            frames = normalize_video(frames, normalize)
            if untrimmed is not None:
                untrimmed.set_sample(vi, to_clip(frames), name=video.info.name, **video.info.columns())
                for action in video.actions:
                    untrimmed.add_interval(vi, action.label - 1, *action.frames(end_convention))
            if trimmed is not None:
                for ai, action in enumerate(video.actions):
                    if (vi, ai) in clip_index:
                        start, end = spans[vi, ai]
                        clip = crop(frames[start:end], max_frames, crop_mode)
                        trimmed.set_sample(clip_index[vi, ai], to_clip(clip), name=f"{video.info.name}_{ai:03d}",
                                           label=action.label - 1, **video.info.columns())
        video_index = {v.info.name: i for i, v in enumerate(videos)}
        for split, parts in splits.items():
            for part, members in parts.items():
                chosen = {video_index[n] for n in members}
                if untrimmed is not None:
                    untrimmed.add_split(split, part, sorted(chosen))
                if trimmed is not None:
                    trimmed.add_split(split, part, [k for k, (vi, _) in enumerate(clips) if vi in chosen])
    return [targets[m] for m in wanted]



@DATASETS.register("pku-mmd")
class PkuMmd(DatasetKind):
    """PKU-MMD Phase I/II skeletons and labels: untrimmed videos (detection) and/or trimmed clips."""

    name = "pku-mmd"
    label = "PKU-MMD"
    variants = ("untrimmed", "trimmed")
    untrimmed_variant = "untrimmed"

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.description = ("Convert PKU-MMD. --raw is ROOT with skeleton/<video>.txt and "
                              "label/<video>.txt. See docs/datasets.md.")
        parser.add_argument("--phase", type=int, choices=(1, 2),
                            help="1 (NNNN-V names) or 2 (AxxNyy-V); default: from the names")
        parser.add_argument("--split-file", dest="split_files", nargs="+", action="extend", default=[],
                            metavar="[NAME=]FILE", help="4-line split files; NAME defaults to xsub/xview "
                            "from the file name (default: the built-in splits)")
        parser.add_argument("--mode", choices=("untrimmed", "trimmed", "both"), default="untrimmed",
                            help="videos with intervals, action clips, or both (OUT/untrimmed, OUT/trimmed)")
        parser.add_argument("--end-convention", choices=("exclusive", "inclusive"), default="exclusive",
                            help="exclusive: video[start:end] (CMD/PCM3/MAMP); inclusive: "
                                 "video[start-1:end] (AimCLR)")
        parser.add_argument("--max-frames", type=int, default=300, help="trimmed clips keep at most this many frames")
        parser.add_argument("--crop", choices=("first", "center"), default="first",
                            help="which frames a longer clip keeps (first: CMD/PCM3/MAMP; center: AimCLR)")
        parser.add_argument("--drop-empty-clips", action="store_true",
                            help="leave out trimmed clips whose skeletons are all zero (as MAMP)")
        parser.add_argument("--allow-missing-videos", action="store_true",
                            help="leave split-file videos without a skeleton file out instead of failing")
        parser.add_argument("--skeleton-dir", default="skeleton", help="skeleton folder under ROOT")
        parser.add_argument("--label-dir", default="label", help="label folder under ROOT")
        parser.add_argument("--normalize", choices=NORMALIZATIONS, default="umurl",
                            help="umurl (default): each frame centred on body 0's spine, the video rotated so "
                                 "body 0's shoulders lie along x, as the ntu60/msr kinds; none: raw camera "
                                 "coordinates, as SSD's detection code reads them (docs/datasets.md)")
        parser.add_argument("--subset-label", default="", metavar="TEXT",
                            help="what part of PKU-MMD the folder holds, e.g. 'the interaction subset of PKU-MMD "
                                 "I'; tables label the dataset with it (default: 'a subset: N of the M videos its "
                                 "split files name' when videos are missing)")
        parser.add_argument("--class-names", metavar="FILE", help="51 class names, one per line "
                            "(default A01..A51)")

    @classmethod
    def prepare(cls, args: argparse.Namespace) -> list[Path]:
        if not args.raw:
            raise HarnessError("pku-mmd needs --raw ROOT (the folder with skeleton/ and label/)")
        return prepare_pku(
            args.raw, args.out, phase=args.phase, split_files=parse_split_arguments(args.split_files),
            mode=args.mode, end_convention=args.end_convention, max_frames=args.max_frames,
            crop_mode=args.crop, drop_empty_clips=args.drop_empty_clips,
            allow_missing_videos=args.allow_missing_videos, skeleton_dir=args.skeleton_dir,
            label_dir=args.label_dir,
            class_names=read_class_names(args.class_names) if args.class_names else None,
            normalize=args.normalize, subset_label=args.subset_label, overwrite=args.overwrite)
