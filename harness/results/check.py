"""Checking and repairing the results store, and keeping rows that could not be written to it.

- :func:`check_store` reports what :func:`~harness.results.store.read_store` finds (lines that fail
  the checks, an unknown header, a missing final newline) and temporary files left by killed writes.
- :func:`repair_store` moves every bad line, with its line number and reason, to
  ``results.csv.rejected`` (appended, never overwritten) *before* it rewrites the store atomically
  without them: a crash in between leaves a line in both files, never in neither. Nothing is deleted
  except those temporary files.
- :func:`check_writable` proves, before hours of training, that the folder takes a write.
- :func:`record_rows` writes the rows' per-sample predictions beside the store (:mod:`.predictions`),
  appends the rows and, when that fails (disk full, permissions changed, a foreign
  header), prints them and saves them to a side file it names; ``harness results add FILE`` brings
  them into the store later.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from .. import atomic
from ..errors import HarnessError
from .prediction_files import attach_predictions
from .read import STORE_NAME, StoreProblem, StoreRead, check_header, parse_store, read_store
from .row import COLUMNS, ResultRow, StoreError
from .store import _store_lock, append_locked, append_rows, rewrite_store, rows_csv

REJECTED_NAME = STORE_NAME + ".rejected"
LIVE_WRITE_S = 60.0  # a store write takes milliseconds: an older temporary file is a killed writer's


def _stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class CheckReport:
    path: Path
    read: StoreRead
    leftovers: list[Path] = field(default_factory=list)  # temporary files of killed writes
    rejected: Path | None = None  # where --repair moved the bad lines
    moved: list[StoreProblem] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    rewritten: bool = False

    @property
    def problems(self) -> list[StoreProblem]:
        if self.read.header_error is not None:
            return [StoreProblem(self.read.header_line, self.read.header_error, "")]
        return self.read.problems

    @property
    def unread(self) -> int:
        """Lines below an unknown header (not checked: their columns are unknown)."""
        return sum(x.kind == "unread" for x in self.read.lines)

    @property
    def clean(self) -> bool:
        return not self.problems and not self.leftovers


def check_store(store_dir: str | Path) -> CheckReport:
    path = Path(store_dir) / STORE_NAME
    return CheckReport(path, read_store(store_dir), atomic.leftover_temporaries(path, older_than=LIVE_WRITE_S))


def repair_store(store_dir: str | Path) -> CheckReport:
    """Move bad lines to ``results.csv.rejected``, rewrite the store without them (under today's
    header, with a final newline) and remove the temporary files of killed writes."""
    store_dir = Path(store_dir)
    path = store_dir / STORE_NAME
    if not path.exists():
        return check_store(store_dir)
    with _store_lock(store_dir):
        read = read_store(store_dir)
        try:
            check_header(read)
        except StoreError:
            raise StoreError(f"{path}: line {read.header_line} is {read.header_error}. --repair cannot tell which "
                             f"column is which under that header: fix line {read.header_line} by hand (the other "
                             "lines are kept as they are)") from None
        bad = [x for x in read.lines if x.kind == "bad"]
        report = CheckReport(path, read)
        if bad:
            report.rejected = path.with_name(REJECTED_NAME)
            stamp = _stamp()
            atomic.append_text(report.rejected, "".join(
                f"# {stamp} moved from {path.name} line {x.number}: {x.problem}\n{x.text}\n" for x in bad))
            report.moved = [StoreProblem(x.number, x.problem or "", x.text) for x in bad]
        untidy = any(x.kind == "blank" for x in read.lines) or not read.final_newline
        if bad or untidy or read.upgradable:
            atomic.write_bytes(path, rewrite_store(read, drop_bad=True))
            report.rewritten = True
        report.removed = atomic.remove_leftover_temporaries(path, older_than=None)  # every writer holds the lock
    return report


# --- before and after a run -------------------------------------------------------------------
def check_writable(store_dir: str | Path) -> Path:
    """Raise a HarnessError naming the folder unless the store can be written (call it before the
    work whose rows go there): under the store's lock a small file is written, fsynced and removed,
    and an existing store's header must be one rows can be added under. A folder that does not exist
    yet is not made: the probe goes to the nearest existing parent it would be made in."""
    store_dir = Path(store_dir)
    where = store_dir
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        if not where.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(where))
        with _store_lock(store_dir) if where == store_dir else contextlib.nullcontext():
            fd, probe = tempfile.mkstemp(prefix=".write-check.", suffix=".tmp", dir=where)
            try:
                os.write(fd, b"\0" * 4096)
                os.fsync(fd)
            finally:
                os.close(fd)
                os.unlink(probe)
    except OSError as exc:
        raise HarnessError(f"results folder {store_dir} cannot be written ({exc.strerror or exc}"
                           f"{'' if where == store_dir else f' in {where}'}); nothing was trained or evaluated. "
                           "Make it writable, or choose another with --results DIR") from None
    if (store_dir / STORE_NAME).exists():
        check_header(read_store(store_dir))
    return store_dir


class UnrecordedRowsError(HarnessError):
    """Rows were measured but could not be added to the store; ``side_file`` holds them (or None)."""

    def __init__(self, message: str, rows: list, side_file: Path | None):
        super().__init__(message)
        self.rows, self.side_file = rows, side_file


def save_side_file(rows: Sequence[ResultRow | Mapping], places: Iterable[Path | None] = ()) -> Path | None:
    """Write ``rows`` (a store-format CSV) to the first of ``places``, then the temp folder, that takes
    the write; None when none does."""
    name = f"unrecorded-rows-{_stamp().replace(':', '')}-{os.getpid()}.csv"
    text = rows_csv(rows)
    for folder in [*[p for p in places if p is not None], Path(tempfile.gettempdir())]:
        try:
            atomic.write_text(Path(folder) / name, text)
        except OSError:
            continue
        return Path(folder) / name
    return None


def record_rows(store_dir: str | Path, rows: Iterable[ResultRow], *, side_dir: Path | None = None) -> Path:
    """:func:`append_rows`, and when the store cannot take them: print the rows, save them to a side
    file (``side_dir``, else the temp folder) and raise :class:`UnrecordedRowsError` naming it.

    First the per-sample predictions the rows carry go to ``store_dir/predictions/`` and each row names
    its file in ``extra.predictions`` (:mod:`.predictions`); a set that cannot be written is reported
    and its rows are recorded without it."""
    rows = list(rows)
    attach_predictions(store_dir, rows)  # never raises: a set it cannot write is reported, the rows go on
    try:
        return append_rows(store_dir, rows)
    except (OSError, StoreError) as exc:
        reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
        side = save_side_file(rows, [side_dir])
        print(f"harness: {len(rows)} measured row(s) not recorded (as store lines):", file=sys.stderr)
        print(rows_csv(rows), file=sys.stderr, end="")
        store = Path(store_dir) / STORE_NAME
        if side is not None:
            where = (f"they are printed above and saved in {side}; add them once the store can be written: "
                     f"harness results add {side} --results {store_dir}")
        else:
            where = "no side file could be written either: copy them from the lines printed above"
        raise UnrecordedRowsError(f"could not write {store} ({reason}): {where}", rows, side) from None


def _key(values: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(str(values[c]) for c in COLUMNS)


def add_rows_file(source: str | Path, store_dir: str | Path) -> tuple[int, int]:
    """Append the rows of a store-format CSV (a side file of :func:`record_rows`) to the store.
    Rows the store already holds are skipped, so adding a file twice adds nothing. Returns
    (added, already there); a file with a bad line adds nothing."""
    source = Path(source)
    try:
        read = parse_store(source, source.read_bytes())
    except OSError as exc:
        raise HarnessError(f"{source}: cannot read ({exc.strerror or exc})") from None
    check_header(read)
    if read.problems:
        listing = "; ".join(p.describe() for p in read.problems[:5])
        raise HarnessError(f"{source}: {len(read.problems)} line(s) are not complete result rows ({listing}); "
                           "nothing was added")
    with _store_lock(Path(store_dir)):
        have = {_key(x.values) for x in read_store(store_dir).rows}
        new = [x.values for x in read.rows if _key(x.values) not in have]
        if new:
            append_locked(Path(store_dir), rows_csv(new, header=False))
    return len(new), len(read.rows) - len(new)
