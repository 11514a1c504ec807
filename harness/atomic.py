"""Atomic writes: a reader sees the old file or the new one, never half of either.

A write goes to a temporary ``.NAME.XXXXXXXX.tmp`` beside the target, is fsynced and renamed over it.
File modes follow the usual rules, not ``mkstemp``'s private 0600: a new file gets ``0666 & ~umask``
(a folder ``0777 & ~umask``), a replaced one keeps the mode it had, so a results folder shared by a
group stays readable. A temporary file left by a killed writer is removed by the next write of the
same name once it is :data:`STALE_TMP_S` old (a live writer keeps touching its file).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

# a temporary file not modified for this long belongs to a killed writer (a live one writes to it,
# or renames it away, within seconds; 30 minutes leaves room for a huge checkpoint on a slow disk)
STALE_TMP_S = 30 * 60


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def current_umask() -> int:
    """The process umask (read from /proc where possible: setting it to read it is not thread-safe)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(target: Path, *, folder: bool = False) -> int:
    """The mode a write of ``target`` should leave: the existing file's, else the umask's default."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(target.stat().st_mode)
    return (0o777 if folder else 0o666) & ~current_umask()


def temporary_name_pattern(name: str) -> re.Pattern[str]:
    """The names :func:`atomic_path` gives temporary files of ``name`` (mkstemp's 8 random characters)."""
    return re.compile(rf"^\.{re.escape(name)}\.[a-z0-9_]{{8}}\.tmp$")


def leftover_temporaries(target: str | Path, *, older_than: float | None = STALE_TMP_S) -> list[Path]:
    """Temporary files of ``target`` left by killed writers (only those unchanged for ``older_than``
    seconds; None: all of them, for callers that hold the lock every writer of ``target`` takes)."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    pattern = temporary_name_pattern(target.name)
    now = time.time()
    out = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(target.parent):
            if not pattern.match(entry.name):
                continue
            with contextlib.suppress(OSError):
                # writers of one name take turns (the run's lock, the store's), so an old one is dead
                if older_than is None or now - entry.stat(follow_symlinks=False).st_mtime > older_than:
                    out.append(Path(entry.path))
    return sorted(out)


def remove_leftover_temporaries(target: str | Path, *, older_than: float | None = STALE_TMP_S) -> list[Path]:
    removed = []
    for p in leftover_temporaries(target, older_than=older_than):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target` in one rename."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftover_temporaries(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        if os.stat(tmp_path).st_nlink == 1:  # a hard link (link_or_copy) shares its source's mode: leave it
            os.chmod(tmp_path, _mode_for(target))
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(target: str | Path, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def append_text(target: str | Path, text: str) -> None:
    """Append by rewriting the whole file atomically, so a crash never leaves a torn last line.

    A file that does not end with a newline gets one first: the appended text starts a line of its
    own instead of being glued onto the last one. Fine for the small stores the harness keeps; logs
    that grow per step use plain appends.
    """
    target = Path(target)
    old = target.read_bytes() if target.exists() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    write_bytes(target, old + text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder under a temporary name; it appears at `target` only if the block succeeds."""
    target = Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists (pass --overwrite to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, _mode_for(target, folder=True))  # mkdtemp's 0700 would hide it from the group
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
