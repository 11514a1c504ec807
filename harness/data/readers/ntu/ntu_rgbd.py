"""NTU RGB+D ``.skeleton`` files → prepared folders (``harness data prepare ntu60|ntu120``).

:func:`read_skeleton` (:mod:`harness.data.readers.ntu.ntu_skeleton`, re-exported here) keeps x, y, z of the
first 4 bodies of each frame of the file format described there. The kinds then follow the
UmURL/USDRL pipeline (docs/reference/data-formats.md §4, see :mod:`harness.transforms.normalize`): keep the 2 most
energetic bodies, store frames [0, T), ``pre_normalization`` (z-alignment only with ``--z-align``).

Where this differs from the reference ``ntu_gendata.py``:

- ``num_frame`` is the raw frame count **capped at** ``--max-frames`` (300). The reference would
  fail on a longer file; here the first 300 frames are kept. Bodies are chosen on the whole file
  (as ``read_xyz`` does), then the sequence is cut, then normalised.
- Frames [num_frame, 300) are zero on disk. The reference leaves the cyclic padding of step (a)
  there, but feeders only read [0, num_frame), so nothing a model sees changes.
- A file with no body in any frame is an error (naming the file): such files are on the official
  missing-skeleton lists, which are skipped by default.
- Samples are stored sorted by name (the reference uses ``os.listdir`` order).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

import numpy as np

from ....errors import DataError
from ....registry import DATASETS
from ...prepared.kinds import DatasetKind
from ....transforms.normalize import pre_normalization, select_bodies
# re-exported: the parser's names lived here before it got its own module
from .ntu_skeleton import (BODY_INFO_VALUES, JOINT_VALUES, MAX_BODIES, NUM_JOINTS, SkeletonFile,
                           read_skeleton)
from .ntu_splits import (LIMITS, OFFICIAL_MISSING, SPLITS, NtuName, canonical_split, parse_name,
                         read_missing_list, split_indices)
from ...prepared.format import PreparedWriter
from ...topology import NTU25

NUM_PERSONS = 2  # bodies kept after the energy selection
ACTION_NAMES_FILE = Path(__file__).resolve().parent / "resources" / "ntu_actions.txt"


def action_names(num_classes: int) -> list[str]:
    """The official NTU action names A001.. (from the dataset's README), 60 or 120 of them."""
    names = ACTION_NAMES_FILE.read_text(encoding="utf-8").splitlines()
    if not 0 < num_classes <= len(names):
        raise ValueError(f"NTU has {len(names)} actions, not {num_classes}")
    return names[:num_classes]


# --- one sample: read, select bodies, cut, normalise -------------------------------------------

@dataclass
class NtuSample:
    name: str
    clip: np.ndarray  # float32 (3, num_frame, 25, 2), normalised
    raw_frames: int  # frames in the file (num_frame = min(raw_frames, max_frames))
    max_bodies: int  # the largest body count of any frame


def load_sample(path: str | Path, *, max_frames: int = 300, z_align: bool = False) -> NtuSample:
    """One ``.skeleton`` file through the whole UmURL pipeline (docs/reference/data-formats.md §4)."""
    sk = read_skeleton(path)
    if not sk.body_counts.any():
        raise DataError(path, "no body in any frame: this sample has no skeleton (list it in the "
                              "missing-skeleton file given with --missing)")
    bodies, _ = select_bodies(sk.joints, NUM_PERSONS)  # (2, T, 25, 3) float64
    num_frame = min(sk.num_frames, max_frames)
    # the reference stores into a float32 (N, 3, 300, 25, 2) array, then normalises that array;
    # frames past num_frame only receive step (a)'s padding, which feeders never read
    stored = np.zeros((1, 3, num_frame, NUM_JOINTS, NUM_PERSONS), dtype=np.float32)
    stored[0] = bodies[:, :num_frame].transpose(3, 1, 2, 0)
    clip = pre_normalization(stored, z_align=z_align, topology=NTU25)[0]
    return NtuSample(Path(path).stem, clip, sk.num_frames, int(sk.body_counts.max()))


def _load_many(paths: list[str], max_frames: int, z_align: bool) -> list[Any]:
    """Worker task. A DataError goes back as plain values (it does not survive pickling)."""
    out: list[Any] = []
    for p in paths:
        try:
            out.append(load_sample(p, max_frames=max_frames, z_align=z_align))
        except DataError as exc:
            out.append(("error", exc.path, exc.reason, exc.line))
    return out


def iter_samples(paths: Sequence[Path], *, max_frames: int, z_align: bool, workers: int,
                 chunk: int = 32) -> Iterator[NtuSample]:
    """Load samples in order, in a process pool when `workers` > 1 (parsing is CPU-bound in Python).

    At most ``2 * workers`` chunks are in flight, so a slow consumer never piles up results.
    """
    groups = [[str(p) for p in paths[i:i + chunk]] for i in range(0, len(paths), chunk)]

    def unpack(results: list[Any]) -> Iterator[NtuSample]:
        for r in results:
            if isinstance(r, tuple):
                raise DataError(r[1], r[2], line=r[3])
            yield r

    if workers <= 1 or len(groups) <= 1:
        for g in groups:
            yield from unpack(_load_many(g, max_frames, z_align))
        return
    # spawn: the parent may hold threads (torch), which fork would copy in a broken state
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending: list[cf.Future] = []
        next_group = 0
        while next_group < len(groups) or pending:
            while next_group < len(groups) and len(pending) < 2 * workers:
                pending.append(pool.submit(_load_many, groups[next_group], max_frames, z_align))
                next_group += 1
            try:
                yield from unpack(pending.pop(0).result())
            except BaseException:
                for f in pending:
                    f.cancel()
                raise


# --- finding files ----------------------------------------------------------------------------

@dataclass
class Selection:
    paths: list[Path]
    names: list[NtuName]
    skipped_missing: int
    skipped_other: int  # NTU-120-only setups when preparing NTU-60


def find_skeleton_files(raw: Path, dataset: str, missing: set[str]) -> Selection:
    """Every ``*.skeleton`` under `raw` (recursively), sorted by name, minus `missing`.

    For ``ntu60``, setups 18-32 (NTU-120 only) are skipped, so the NTU-120 folder works for both.
    """
    if not raw.is_dir():
        raise DataError(raw, "expected a folder of .skeleton files (--raw)")
    seen: dict[str, Path] = {}
    for p in raw.rglob("*.skeleton"):
        name = parse_name(p.name, source=p)
        if name.name in seen:
            raise DataError(p, f"sample {name.name} appears twice (also {seen[name.name]})")
        seen[name.name] = p
    if not seen:
        raise DataError(raw, "no .skeleton files found (searched sub-folders too)")
    limits = LIMITS[dataset]
    paths, names, skipped_missing, skipped_other = [], [], 0, 0
    for key in sorted(seen):
        name = parse_name(key, source=seen[key])
        if name.setup > limits["setup"]:
            skipped_other += 1
            continue
        if name.action > limits["action"]:
            raise DataError(seen[key], f"action A{name.action:03d} is outside {dataset} "
                                       f"(A001-A{limits['action']:03d})")
        if key in missing:
            skipped_missing += 1
            continue
        paths.append(seen[key])
        names.append(name)
    if not paths:
        raise DataError(raw, f"no {dataset} samples left after skipping {skipped_missing} listed as "
                             f"missing and {skipped_other} from other setups")
    return Selection(paths, names, skipped_missing, skipped_other)


# --- the dataset kinds ------------------------------------------------------------------------

class _NtuKind(DatasetKind):
    dataset: ClassVar[str] = ""
    num_classes: ClassVar[int] = 0

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        splits = SPLITS[cls.dataset]
        parser.add_argument("--split", default="all", choices=[*splits, "all"],
                            help=f"named splits to record (default all: {' + '.join(splits)})")
        parser.add_argument("--z-align", action="store_true",
                            help="also rotate spine base→middle onto +z (HiCo/SCD-Net/CMD/PCM3 arrays; "
                                 "UmURL/USDRL skip it)")
        parser.add_argument("--max-frames", type=int, default=300,
                            help="frames stored per sample; longer files are cut (default 300)")
        parser.add_argument("--missing", default=None, metavar="FILE",
                            help="missing-skeleton list to skip (default: the official list shipped with "
                                 "the harness; 'none' skips nothing)")
        parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                            help="parallel reader processes (default: CPU count, at most 8)")

    @classmethod
    def prepare(cls, args: argparse.Namespace) -> list[Path]:
        if not getattr(args, "raw", None):
            raise DataError(None, f"{cls.name} needs --raw FOLDER (the .skeleton files)")
        if args.max_frames <= 0:
            raise DataError(None, f"--max-frames must be positive, got {args.max_frames}")
        missing_arg = getattr(args, "missing", None)
        if missing_arg is None:
            missing_path: Path | None = OFFICIAL_MISSING[cls.dataset]
        elif str(missing_arg).lower() == "none":
            missing_path = None
        else:
            missing_path = Path(missing_arg)
        missing = set(read_missing_list(missing_path)) if missing_path is not None else set()
        split_arg = getattr(args, "split", "all")
        splits = SPLITS[cls.dataset] if split_arg == "all" else (canonical_split(cls.dataset, split_arg),)
        sel = find_skeleton_files(Path(args.raw), cls.dataset, missing)
        return [cls.write(sel, Path(args.out), splits=splits, max_frames=args.max_frames,
                          z_align=bool(args.z_align), workers=int(getattr(args, "workers", 1)),
                          overwrite=bool(getattr(args, "overwrite", False)),
                          source={"raw": str(args.raw),
                                  "missing_list": str(missing_path) if missing_path else None})]

    @classmethod
    def write(cls, sel: Selection, out: Path, *, splits: Sequence[str], max_frames: int, z_align: bool,
              workers: int, overwrite: bool = False, source: dict[str, Any] | None = None) -> Path:
        from tqdm import tqdm

        n = len(sel.paths)
        stats = {"truncated": 0, "more_than_2_bodies": 0, "more_than_4_bodies": 0}
        info = dict(source or {}, reader="ntu .skeleton", pipeline="umurl pre_normalization",
                    z_align=z_align, max_frames=max_frames, skipped_missing=sel.skipped_missing,
                    skipped_other_setups=sel.skipped_other)
        with PreparedWriter(out, kind=cls.name, topology=NTU25, num_samples=n, max_frames=max_frames,
                            num_persons=NUM_PERSONS, class_names=action_names(cls.num_classes),
                            source=info, overwrite=overwrite) as w:
            samples = iter_samples(sel.paths, max_frames=max_frames, z_align=z_align, workers=workers)
            for i, sample in enumerate(tqdm(samples, total=n, desc=f"{cls.name} .skeleton",
                                            unit="file", disable=None)):
                nm = sel.names[i]
                assert sample.name == nm.name
                w.set_sample(i, sample.clip, name=nm.name, label=nm.label, subject=nm.performer,
                             camera=nm.camera, setup=nm.setup, replication=nm.replication)
                stats["truncated"] += sample.raw_frames > max_frames
                stats["more_than_2_bodies"] += sample.max_bodies > 2
                stats["more_than_4_bodies"] += sample.max_bodies > MAX_BODIES
            w.source.update(stats)  # the counts are known only now; meta.json is written on exit
            cols = {k: np.array([getattr(nm, k) for nm in sel.names]) for k in ("performer", "camera", "setup")}
            for split in splits:
                for part, idx in split_indices(cls.dataset, split, **cols).items():
                    w.add_split(split, part, idx)
        return out


@DATASETS.register("ntu60")
class Ntu60(_NtuKind):
    """NTU RGB+D 60 from raw .skeleton files (UmURL/USDRL preprocessing; splits xsub, xview)"""

    name = "ntu60"
    label = "NTU-60"
    dataset = "ntu60"
    num_classes = 60
    variants = SPLITS["ntu60"]


@DATASETS.register("ntu120")
class Ntu120(_NtuKind):
    """NTU RGB+D 120 from raw .skeleton files (UmURL/USDRL preprocessing; splits xsub, xset)"""

    name = "ntu120"
    label = "NTU-120"
    dataset = "ntu120"
    num_classes = 120
    variants = SPLITS["ntu120"]
