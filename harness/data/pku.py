"""PKU-MMD (Phase I and II) → prepared folders: untrimmed videos, trimmed action clips, or both.

Raw layout (data-formats.md §6)::

    ROOT/skeleton/<video>.txt   one line per frame: 150 floats, body 1 then body 2 (25 joints × xyz,
                                Kinect v2 order as NTU); body 2 is all zeros when absent
    ROOT/label/<video>.txt      one line per action: label,start,end,confidence (commas or spaces),
                                labels 1..51; confidence (1 slight, 2 strong) is read and ignored

Video names are ``NNNN-V`` in Phase I (e.g. ``0002-L``) and ``AxxNyy-V`` in Phase II (sequence
group xx, subject yy); V is the Kinect view L, M or R. Columns in samples.csv: ``camera`` = view
(L 1, M 2, R 3), ``setup`` = the sequence number (NNNN or xx), ``subject`` = yy in Phase II and −1
in Phase I (its names do not carry the subject).

**Untrimmed** (detection, protocols.md §5): one sample per video (max_frames = the longest video),
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
breaks feeders that do not clamp (usdrl.md §13 item 14); here the stored length is always the
number of frames actually kept, and the raw length is only counted in meta.json (``source``).

**Splits**: ``--split-file [NAME=]FILE`` reads the 4-line split files ("Training videos: ", list,
"Validataion videos: " (sic), list; the second list is the test part). NAME defaults to ``xsub``
when the file name mentions "subject", ``xview`` for "view", else the file's stem. Without split
files the built-in splits of data-formats.md §6 are used: Phase I ``xsub`` (test = videos
0291–0334, train = 0002–0246, 0251–0290, 0335–0364), Phase II ``xsub`` (test subjects N02, N03,
N07) and ``xview`` (test view L). Trimmed clips belong to the part of their video.
"""

from __future__ import annotations

import argparse
import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import DataError, HarnessError
from ..registry import DATASETS
from .kinds import DatasetKind
from .prepared import PreparedWriter
from .text_tables import content_lines, read_float_table, read_text
from .topology import NTU25

NUM_CLASSES = 51  # Phase II's 41 actions keep their Phase I ids, as the references do (§6)
NUM_PERSONS = 2
FLOATS_PER_FRAME = NUM_PERSONS * 25 * 3
VIEWS = {"L": 1, "M": 2, "R": 3}
_NAME_PATTERNS = {1: re.compile(r"^(\d{4})-([LMR])$"), 2: re.compile(r"^A(\d{2})N(\d{2})-([LMR])$")}
_NAME_EXAMPLES = {1: "0002-L", 2: "A01N01-L"}
SKELETON_SUFFIXES = (".txt", ".skeleton")
LABEL_SUFFIXES = (".txt", ".label")


# --- names ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PkuVideo:
    name: str
    phase: int
    sequence: int  # Phase I: NNNN; Phase II: the sequence group xx
    subject: int  # Phase II: yy; Phase I: -1 (unknown from the name)
    view: str  # L, M or R

    @property
    def camera(self) -> int:
        return VIEWS[self.view]

    def columns(self) -> dict[str, int]:
        return {"subject": self.subject, "camera": self.camera, "setup": self.sequence}


def infer_phase(name: str) -> int | None:
    for phase, pattern in _NAME_PATTERNS.items():
        if pattern.match(name):
            return phase
    return None


def parse_video_name(name: str, phase: int, path: str | Path | None = None, line: int | None = None) -> PkuVideo:
    m = _NAME_PATTERNS[phase].match(name)
    if not m:
        other = infer_phase(name)
        hint = f" (it looks like a Phase {other} name: pass --phase {other})" if other else ""
        raise DataError(path or name, f"{name!r} is not a Phase {phase} video name like "
                                      f"{_NAME_EXAMPLES[phase]!r}{hint}", line=line)
    if phase == 1:
        return PkuVideo(name, 1, int(m.group(1)), -1, m.group(2))
    return PkuVideo(name, 2, int(m.group(1)), int(m.group(2)), m.group(3))


# --- skeletons and labels ---------------------------------------------------------------------


def read_skeleton(path: str | Path) -> np.ndarray:
    """One skeleton file → float32 (T, 2, 25, 3): frames, bodies, joints, xyz."""
    table = read_float_table(path, FLOATS_PER_FRAME, what="frame")
    return table.reshape(-1, NUM_PERSONS, 25, 3)


def to_clip(frames: np.ndarray) -> np.ndarray:
    """(T, M, V, 3) → the prepared layout (3, T, V, M)."""
    return frames.transpose(3, 0, 2, 1)


def scan_frames(path: str | Path) -> np.ndarray:
    """A cheap first pass over a skeleton file: for each frame line, whether it is written as zeros.

    Gives the frame count (the array's length) before the real parse, so max_frames is known when
    the output is allocated. A frame counts as zero when the line has no digit 1–9 (e.g. "0.000000
    -0.0 0e+00"); the real parse later checks every value.
    """
    try:
        with open(path, "rb") as fh:
            return np.array([line.strip(b" \t\r\n0.-+eE,") == b"" for line in fh
                             if line.strip() and not line.lstrip().startswith(b"#")], dtype=bool)
    except OSError as exc:
        raise DataError(path, f"cannot read: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class Action:
    label: int  # 1..51, as in the file
    start: int  # as in the file
    end: int
    line: int

    def frames(self, convention: str) -> tuple[int, int]:
        """0-based [start, end) of the action in the video under the end convention."""
        return (self.start, self.end) if convention == "exclusive" else (self.start - 1, self.end)


def read_labels(path: str | Path, convention: str = "exclusive") -> list[Action]:
    """A label file → its actions; checks the label range and start < end (file and line on error)."""
    actions = []
    for number, line in content_lines(read_text(path)):
        fields = [f for f in re.split(r"[,\s]+", line) if f]
        if len(fields) not in (3, 4):
            raise DataError(path, f"expected 'label,start,end,confidence', found {len(fields)} values",
                            line=number)
        try:
            label, start, end = (_as_int(f) for f in fields[:3])
        except ValueError as exc:
            raise DataError(path, f"label, start and end must be integers: {exc}", line=number) from None
        if not 1 <= label <= NUM_CLASSES:
            raise DataError(path, f"label {label} is outside 1..{NUM_CLASSES}", line=number)
        if start >= end:
            raise DataError(path, f"start {start} is not before end {end}", line=number)
        first = 0 if convention == "exclusive" else 1
        if start < first:
            raise DataError(path, f"start {start} is below the first frame ({first} with "
                                  f"--end-convention {convention})", line=number)
        actions.append(Action(label, start, end, number))
    return actions


def _as_int(text: str) -> int:
    value = float(text)  # accepts "12" and "12.0"
    if not value.is_integer():
        raise ValueError(f"{text!r} is not a whole number")
    return int(value)


def crop(frames: np.ndarray, max_frames: int, how: str) -> np.ndarray:
    """Keep at most max_frames frames of a clip: the first ones, or the middle ones."""
    if len(frames) <= max_frames:
        return frames
    start = 0 if how == "first" else (len(frames) - max_frames) // 2
    return frames[start:start + max_frames]


# --- splits -----------------------------------------------------------------------------------


def read_split_file(path: str | Path) -> dict[str, list[str]]:
    """The 4-line split format → {"train": names, "test": names} (the validation list is the test)."""
    path = Path(path)
    lines = [(n, line.strip()) for n, line in enumerate(read_text(path).splitlines(), start=1) if line.strip()]
    if len(lines) != 4:
        raise DataError(path, f"expected 4 non-empty lines ('Training videos:', list, "
                              f"'Validataion videos:', list), found {len(lines)}")
    (n1, head1), (n2, train), (n3, head2), (n4, test) = lines
    if not head1.lower().startswith("training"):
        raise DataError(path, f"expected 'Training videos:', found {head1[:40]!r}", line=n1)
    if not head2.lower().startswith(("validataion", "validation", "test")):
        raise DataError(path, f"expected 'Validataion videos:', found {head2[:40]!r}", line=n3)
    parts = {"train": _name_list(train), "test": _name_list(test)}
    for part, number in (("train", n2), ("test", n4)):
        seen: set[str] = set()
        for name in parts[part]:
            if name in seen:
                raise DataError(path, f"{name!r} is listed twice", line=number)
            seen.add(name)
    both = sorted(set(parts["train"]) & set(parts["test"]))
    if both:
        raise DataError(path, f"{both[0]!r} is in both the training and the validation list", line=n4)
    return parts


def _name_list(line: str) -> list[str]:
    return [n.strip() for n in line.split(",") if n.strip()]  # tolerates the trailing ", "


def split_name_for(path: str | Path) -> str:
    stem = Path(path).stem.lower()
    if "subject" in stem or "xsub" in stem:
        return "xsub"
    if "view" in stem or "xview" in stem:
        return "xview"
    return Path(path).stem


def parse_split_arguments(items: Iterable[str]) -> dict[str, Path]:
    """``[NAME=]FILE`` arguments → {split name: file}."""
    out: dict[str, Path] = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not sep or Path(item).exists():
            name, file = split_name_for(item), item
        if name in out:
            raise HarnessError(f"two split files are both named {name!r} ({out[name]} and {file}); "
                               "name them with NAME=FILE")
        out[name] = Path(file)
    return out


def phase1_xsub_part(video: PkuVideo) -> str | None:
    """The Phase I cross-subject split rule (identical to pkuv1_cross_subject.txt)."""
    n = video.sequence
    if 291 <= n <= 334:
        return "test"
    if 2 <= n <= 246 or 251 <= n <= 290 or 335 <= n <= 364:
        return "train"
    return None


PHASE2_TEST_SUBJECTS = (2, 3, 7)


def builtin_splits(videos: list[PkuVideo], phase: int) -> dict[str, dict[str, list[str]]]:
    rules = {"xsub": phase1_xsub_part} if phase == 1 else {
        "xsub": lambda v: "test" if v.subject in PHASE2_TEST_SUBJECTS else "train",
        "xview": lambda v: "test" if v.view == "L" else "train",
    }
    splits = {}
    for split, rule in rules.items():
        parts: dict[str, list[str]] = {"train": [], "test": []}
        for v in videos:
            part = rule(v)
            if part:
                parts[part].append(v.name)
        splits[split] = parts
    return splits


def resolve_splits(split_files: dict[str, Path], videos: list[PkuVideo], phase: int,
                   allow_missing: bool) -> dict[str, dict[str, list[str]]]:
    if not split_files:
        return builtin_splits(videos, phase)
    present = {v.name for v in videos}
    splits = {}
    for split, path in split_files.items():
        parts = read_split_file(path)
        for part, names in parts.items():
            for name in names:
                parse_video_name(name, phase, path)
            missing = [n for n in names if n not in present]
            if missing and not allow_missing:
                raise DataError(path, f"{len(missing)} {part} video(s) have no skeleton file, e.g. "
                                      f"{missing[0]!r} (pass "
                                      "--allow-missing-videos to leave them out)")
            parts[part] = [n for n in names if n in present]
        splits[split] = parts
    return splits


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
                class_names: list[str] | None = None, overwrite: bool = False) -> list[Path]:
    """Write the untrimmed and/or trimmed folders; with mode "both", under out/untrimmed and out/trimmed."""
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
    source = {"raw": str(root.resolve()), "phase": phase, "end_convention": end_convention,
              "split_files": {k: str(v) for k, v in (split_files or {}).items()} or "built-in"}
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


def read_class_names(path: str | Path) -> list[str]:
    return [line for _, line in content_lines(read_text(path))]


@DATASETS.register("pku-mmd")
class PkuMmd(DatasetKind):
    """PKU-MMD Phase I/II skeletons and labels: untrimmed videos (detection) and/or trimmed clips."""

    name = "pku-mmd"
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
            overwrite=args.overwrite)
