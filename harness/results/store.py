"""The results store file: one CSV row per measurement, one physical line per row.

``results/results.csv`` is machine-written and every number in the tables comes from it, so it is
written and read defensively:

- **Appends** (:func:`append_rows`) happen under the store's lock (``.results.lock``) and rewrite the
  file atomically (:mod:`harness.atomic`: temporary file, fsync, rename): a kill leaves the old file
  or the new one. A file that lacks its final newline gets one before the new rows, so they never
  glue onto the last line. Every row is one line (a newline inside a value is flattened).
- **Reading** (:func:`harness.results.read.read_store`) checks every line on its own: the header, the field count (a torn
  or cut row has too few fields, two rows glued together too many), the numbers (value, seeds,
  epochs, steps), the date and the ``extra`` JSON. A line that fails is a :class:`StoreProblem` with
  its line number and is never returned as a row, so no table cell is built from half a row.
- Stores written before ``pretrain_seed`` and ``steps`` existed are read and upgraded in place
  (:data:`ADDED_COLUMNS`, :func:`upgrade_row`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from .. import atomic
from .read import STORE_NAME, StoreRead, check_header, parse_store
from .row import COLUMNS, ResultRow

LOCK_NAME = ".results.lock"


@contextlib.contextmanager
def _store_lock(store_dir: Path):
    """Serialise every writer of the store (appends, upgrades, repairs) across processes."""
    store_dir = Path(store_dir)
    store_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: appends are still atomic, not serialised
        yield
        return
    with open(store_dir / LOCK_NAME, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _one_line(col: str, value: Any) -> Any:
    """A value that keeps its row on one physical line (JSON is re-dumped compactly)."""
    if not isinstance(value, str) or ("\n" not in value and "\r" not in value):
        return value
    if col == "extra":
        with contextlib.suppress(json.JSONDecodeError):
            return json.dumps(json.loads(value), sort_keys=True)
    return value.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def _as_row(row: ResultRow | Mapping[str, Any]) -> dict[str, Any]:
    d = row.as_dict() if isinstance(row, ResultRow) else dict(row)
    missing = [c for c in COLUMNS if c not in d]
    if missing:
        raise ValueError(f"result row lacks column(s) {missing}")
    return {c: _one_line(c, d[c]) for c in COLUMNS}


def rows_csv(rows: Iterable[ResultRow | Mapping[str, Any]], *, header: bool = True) -> str:
    """Rows as store lines (today's columns, one line each, ``\\n`` ends every line)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow(_as_row(row))
    return buf.getvalue()


def rewrite_store(read: StoreRead, *, drop_bad: bool = False) -> bytes:
    """The store's bytes under today's header: trusted rows upgraded, bad lines kept verbatim (or
    dropped, when the caller has put them somewhere else first), blank lines dropped."""
    out = [rows_csv([], header=True)]
    for x in read.lines:
        if x.kind == "row":
            out.append(rows_csv([x.values], header=False))
        elif x.kind in ("bad", "unread") and not drop_bad:
            out.append(x.text + "\n")
    return "".join(out).encode("utf-8")


def _upgrade_header(path: Path) -> None:
    """Rewrite a store written with an older column set under today's header (under the lock).

    Old rows keep every value; a column they lack gets :data:`ADDED_COLUMNS`' default (the
    pretraining seed of every run before pretrain seeds existed was 0). Lines that fail the checks
    stay as they are (still reported)."""
    read = parse_store(path, path.read_bytes())
    check_header(read)
    if read.upgradable:
        atomic.write_bytes(path, rewrite_store(read))


def append_rows(store_dir: str | Path, rows: Iterable[ResultRow | Mapping[str, Any]]) -> Path:
    """Append rows to ``store_dir/results.csv``: each a complete line, the file replaced atomically
    under the store's lock, so concurrent appenders never lose rows and a kill never tears one."""
    store_dir = Path(store_dir)
    text = rows_csv(rows, header=False)
    with _store_lock(store_dir):
        return append_locked(store_dir, text)


def append_locked(store_dir: Path, text: str) -> Path:
    """The append itself, for callers that hold the store's lock (``text``: complete store lines)."""
    path = Path(store_dir) / STORE_NAME
    # every writer of results.csv holds the lock: a temporary file of it now is a killed writer's
    atomic.remove_leftover_temporaries(path, older_than=None)
    read = parse_store(path, path.read_bytes() if path.exists() else b"")
    check_header(read)
    if read.header is None:  # no store yet (or only blank lines)
        atomic.write_text(path, rows_csv([], header=True) + text)
    elif read.upgradable:  # an older column set: rewritten under today's header with the new rows
        atomic.write_bytes(path, rewrite_store(read) + text.encode("utf-8"))
    else:
        atomic.append_text(path, text)
    return path
