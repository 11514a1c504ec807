"""Rows of campaign jobs on their way into the store: write-once side files, merged on read, folded in.

``harness reproduce --executor local|slurm|debug`` runs its jobs as separate processes, possibly on
many nodes sharing one filesystem. The store's own lock (``flock`` on ``.results.lock``) serialises
writers on one machine, but ``flock`` over NFS is only as good as the mount (``local_lock=flock``,
Lustre's ``localflock``: node-local), so jobs never write ``results.csv`` themselves:

- **A job writes side files** (:func:`write_pending`): each evaluation's rows, once, to a new file
  ``<store>/pending/<job>/<config_hash>-<protocol>-p<pretrain_seed>-<random>.csv`` (store format,
  atomic: temporary file, fsync, rename in the same folder). Nothing is ever appended to or rewritten,
  so there is no read-modify-write to race: every file has one writer and is whole or absent. The
  rows' per-sample predictions go straight to ``<store>/predictions/`` (content-addressed, atomic).
- **The reader merges** (:func:`load_with_pending`, what ``harness reproduce`` reads to skip recorded
  work and to report ``--status``): the store's rows plus the pending rows of every *recording* the
  store does not hold yet. A recording is keyed as ``harness reproduce`` decides "recorded": (config
  hash, protocol, pretraining seed); of two pending files with one key (two jobs raced on the same
  evaluation) the older is read, the other ignored.
- **The submitter folds** (:func:`fold_pending`) after the jobs, in one process: under an ``O_EXCL``
  lock file (which NFSv3+ makes atomic across clients) and the store's lock it appends the rows of
  every recording the store lacks, then deletes the folded files. A crash between the append and the
  deletes leaves files whose key the store now holds: the next fold drops them. So every recording
  lands exactly once, whichever jobs finish together on whichever nodes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd

from .. import atomic
from ..errors import HarnessError
from .prediction_files import attach_predictions
from .read import STORE_NAME, StoreLine, StoreRead, load_results, parse_store, read_store, check_header
from .row import ResultRow
from .store import _store_lock, append_locked, rows_csv

PENDING_DIR = "pending"
FOLD_LOCK = ".fold.lock"
FOLD_LOCK_STALE_S = 600.0  # a fold takes well under a second: an older lock file is a killed folder's
FOLD_LOCK_WAIT_S = 600.0

Key = tuple[str, str, int]  # (config_hash, protocol, pretrain_seed): one recording


def recording_key(values) -> Key:
    """The key ``harness reproduce`` skips by, from a row (a :class:`ResultRow` or store values)."""
    get = (lambda c: getattr(values, c)) if isinstance(values, ResultRow) else values.__getitem__
    return str(get("config_hash")), str(get("protocol")), int(get("pretrain_seed"))


def pending_dir(store_dir: str | Path) -> Path:
    return Path(store_dir) / PENDING_DIR


def write_pending(store_dir: str | Path, rows: Iterable[ResultRow], *, job: str) -> Path:
    """Write one evaluation's rows to a new side file of job ``job`` (atomically) and return it.

    The rows' predictions are written to the store's ``predictions/`` first (as :func:`record_rows`
    does), so the side file's rows name them."""
    rows = list(rows)
    if not rows:
        raise ValueError("no rows to write")
    attach_predictions(store_dir, rows)
    config_hash, protocol, seed = recording_key(rows[0])
    name = f"{config_hash}-{protocol}-p{seed}-{uuid.uuid4().hex[:8]}.csv"
    path = pending_dir(store_dir) / job / name
    atomic.write_text(path, rows_csv(rows))
    return path


def pending_files(store_dir: str | Path) -> list[Path]:
    """Every side file under ``<store>/pending``, oldest first (then by name)."""
    root = pending_dir(store_dir)
    if not root.is_dir():
        return []
    files = []
    for path in root.glob("*/*.csv"):
        with contextlib.suppress(OSError):
            files.append((path.stat().st_mtime, path.as_posix(), path))
    return [p for _, _, p in sorted(files)]


@dataclass
class PendingRead:
    rows: list[StoreLine] = field(default_factory=list)  # rows of recordings the store does not hold
    files: list[Path] = field(default_factory=list)  # files whose rows are all read or all redundant
    redundant: list[Path] = field(default_factory=list)  # files whose every recording the store holds
    problems: list[tuple[Path, str]] = field(default_factory=list)  # files that are not whole store files


def read_pending(store_dir: str | Path, have: set[Key]) -> PendingRead:
    """The pending rows of the recordings not in ``have`` (updated with the ones read)."""
    out = PendingRead()
    for path in pending_files(store_dir):
        try:
            read = parse_store(path, path.read_bytes())
        except OSError as exc:  # folded and removed meanwhile, or unreadable
            if path.exists():
                out.problems.append((path, f"cannot read ({exc.strerror or exc})"))
            continue
        bad = read.header_error or "; ".join(p.describe() for p in read.problems[:3])
        if bad:
            out.problems.append((path, bad))
            continue
        keys = {recording_key(x.values) for x in read.rows}
        fresh = [x for x in read.rows if recording_key(x.values) not in have]
        have |= keys
        out.files.append(path)
        if fresh:
            out.rows += fresh
        else:
            out.redundant.append(path)
    return out


def recorded_keys(read: StoreRead) -> set[Key]:
    return {recording_key(x.values) for x in read.rows}


def load_with_pending(store_dir: str | Path) -> pd.DataFrame:
    """:func:`~harness.results.load_results` plus the pending rows the store does not hold yet;
    a pending file that is not a whole store file is listed in ``attrs["store_problems"]``."""
    df = load_results(store_dir)
    if not pending_dir(store_dir).is_dir():
        return df
    have = set(zip(df["config_hash"].astype(str), df["protocol"].astype(str), df["pretrain_seed"].astype(int))) \
        if not df.empty else set()
    pending = read_pending(store_dir, have)
    problems = list(df.attrs.get("store_problems", []))
    problems += [{"line": 0, "what": f"{p}: {what}", "text": ""} for p, what in pending.problems]
    if pending.rows:
        extra = StoreRead(Path(store_dir) / STORE_NAME, pending.rows).typed()
        df = extra if df.empty else pd.concat([df, extra], ignore_index=True)
    df.attrs["store_problems"] = problems
    return df


@contextlib.contextmanager
def exclusive_file(path: Path, *, stale_s: float = FOLD_LOCK_STALE_S, wait_s: float = FOLD_LOCK_WAIT_S,
                   poll_s: float = 0.1) -> Iterator[None]:
    """Hold ``path`` created with ``O_CREAT | O_EXCL`` (atomic on local disks and NFSv3+, unlike
    ``flock`` on some mounts); a file older than ``stale_s`` is a killed holder's and is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                continue
            if age > stale_s:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            if time.monotonic() > deadline:
                owner = ""
                with contextlib.suppress(OSError):
                    owner = path.read_text().strip()
                raise HarnessError(f"{path} is held by another fold ({owner or '?'}) for over {wait_s:.0f} s; "
                                   f"remove it if that process is gone") from None
            time.sleep(poll_s)
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{socket.gethostname()} pid {os.getpid()} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
        break
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@dataclass
class FoldReport:
    added: int = 0  # rows appended to results.csv
    files: int = 0  # side files folded (and removed)
    redundant: int = 0  # of those, files the store already held
    problems: list[tuple[Path, str]] = field(default_factory=list)  # left in place


def fold_pending(store_dir: str | Path) -> FoldReport:
    """Append the pending rows of every recording the store lacks and remove the folded files."""
    store_dir = Path(store_dir)
    report = FoldReport()
    if not pending_files(store_dir):
        return report
    with exclusive_file(pending_dir(store_dir) / FOLD_LOCK), _store_lock(store_dir):
        read = read_store(store_dir)
        check_header(read)
        pending = read_pending(store_dir, recorded_keys(read))
        if pending.rows:
            append_locked(store_dir, rows_csv([x.values for x in pending.rows], header=False))
        for path in pending.files:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # only when the job's folder is empty
        report.added, report.files = len(pending.rows), len(pending.files)
        report.redundant, report.problems = len(pending.redundant), pending.problems
    return report
