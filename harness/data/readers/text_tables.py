"""Strict readers for the small text files dataset kinds ingest.

Two shapes of file occur in raw skeleton datasets:

* numeric tables, one frame (or one joint) per line: PKU-MMD skeletons, MSR Action3D skeletons,
  the generic layout's ``.csv``/``.txt`` sequences. :func:`read_float_table` reads them with numpy's
  C parser and, only when something is wrong, rescans the file in Python to name the first bad line.
* small tables of names and numbers: label files, ``labels.csv``, split lists.
  :func:`read_csv_table` reads a headed CSV into :class:`Row` objects that remember their line, so
  every later check can still say where the bad value came from.

Every problem is raised as :class:`~harness.errors.DataError` with the file and (where it has one)
the line, 1-based as editors show it.
"""

from __future__ import annotations

import csv
import difflib
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from ...errors import DataError
from .limits import check_float32


def read_text(path: str | Path) -> str:
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")  # -sig: tolerate a byte-order mark
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DataError(path, f"cannot read: {exc.strerror or exc}") from None


def content_lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped line) for every line that is neither blank nor a # comment."""
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            yield number, line


def sniff_delimiter(path: str | Path) -> str | None:
    """',' when the first content line has a comma, else None (any whitespace)."""
    try:
        with open(path, "rb") as fh:
            for line in fh:
                line = line.strip()
                if line and not line.startswith(b"#"):
                    return "," if b"," in line else None
    except OSError as exc:
        raise DataError(path, f"cannot read: {exc.strerror or exc}") from None
    return None


def read_float_table(path: str | Path, width: int | None = None, *, delimiter: str | None = None,
                     what: str = "line") -> np.ndarray:
    """A file of numbers, the same count on every content line → float32 (lines, width).

    ``width`` fixes the count per line (None: whatever the first line has). ``delimiter`` is None
    for whitespace or ',' (then spaces around the commas are allowed). NaN or Inf values are errors.
    ``what`` names a line in messages ("frame", "joint line").
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        with warnings.catch_warnings():  # an empty file warns; it is reported as an error below
            warnings.simplefilter("ignore", UserWarning)
            arr = np.loadtxt(path, dtype=np.float64, ndmin=2, delimiter=delimiter, comments="#",
                             encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError):
        arr = None  # locate the problem below, line by line
    if arr is not None and arr.size and (width is None or arr.shape[1] == width) and np.isfinite(arr).all():
        check_float32(arr, path, line_of=lambda i: _content_line(path, i // arr.shape[1]))  # 1e300 → Inf otherwise
        return arr.astype(np.float32)
    _raise_first_bad_line(path, width, delimiter, what)
    if arr is None or arr.size == 0:
        raise DataError(path, f"no {what}s: the file has no numbers")
    raise DataError(path, "could not be read as a table of numbers")  # pragma: no cover - defensive


def _content_line(path: Path, k: int) -> int | None:
    """The file line of the k-th content line (the k-th row numpy read)."""
    for i, (number, _) in enumerate(content_lines(read_text(path))):
        if i == k:
            return number
    return None


def _raise_first_bad_line(path: Path, width: int | None, delimiter: str | None, what: str) -> None:
    expected = width
    for number, line in content_lines(read_text(path)):
        fields = [f.strip() for f in line.split(delimiter)] if delimiter else line.split()
        try:
            values = [float(f) for f in fields]
        except ValueError:
            bad = next(f for f in fields if not _is_float(f))
            raise DataError(path, f"{what} has a value that is not a number: {bad!r}", line=number) from None
        if expected is None:
            expected = len(values)
        if len(values) != expected:
            reason = f"expected {expected} numbers, found {len(values)}"
            if width is None:
                reason += " (the first line sets the count)"
            raise DataError(path, f"{what} has the wrong number of values: {reason}", line=number)
        bad = [v for v in values if not math.isfinite(v)]
        if bad:
            raise DataError(path, f"{what} contains {bad[0]} (NaN or Inf coordinates are not allowed)",
                            line=number)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- headed CSV tables ------------------------------------------------------------------------


@dataclass
class Row:
    """One CSV row: its values by column (stripped strings, '' when empty) and its line number."""

    path: Path
    line: int
    values: dict[str, str]

    def __getitem__(self, column: str) -> str:
        return self.values.get(column, "")

    def has(self, column: str) -> bool:
        return self.values.get(column, "") != ""

    def error(self, message: str) -> DataError:
        return DataError(self.path, message, line=self.line)

    def int(self, column: str, default: int | None = None, *, minimum: int | None = None) -> int:
        """The column as an integer; empty → `default` (an error when there is none)."""
        raw = self[column]
        if raw == "":
            if default is None:
                raise self.error(f"column {column!r} is empty")
            return default
        try:
            value = float(raw)
        except ValueError:
            raise self.error(f"column {column!r} must be an integer, got {raw!r}") from None
        if not value.is_integer():
            raise self.error(f"column {column!r} must be an integer, got {raw!r}")
        if minimum is not None and value < minimum:
            raise self.error(f"column {column!r} must be >= {minimum}, got {raw!r}")
        return int(value)


def read_csv_table(path: str | Path, required: Sequence[str], optional: Iterable[str] = ()) -> list[Row]:
    """A CSV file whose first line names its columns. Unknown columns are errors (typos)."""
    path = Path(path)
    text = read_text(path)
    reader = csv.reader(text.splitlines())
    header: list[str] | None = None
    rows: list[Row] = []
    known = list(required) + [c for c in optional if c not in required]
    for fields in reader:
        line = reader.line_num
        fields = [f.strip() for f in fields]
        if not any(fields) or fields[0].startswith("#"):
            continue
        if header is None:
            header = [f.lower() for f in fields]
            _check_header(path, line, header, required, known)
            continue
        if len(fields) != len(header):
            raise DataError(path, f"expected {len(header)} comma-separated values "
                                  f"({', '.join(header)}), found {len(fields)}", line=line)
        rows.append(Row(path, line, dict(zip(header, fields))))
    if header is None:
        raise DataError(path, f"empty: expected a header line naming the columns {', '.join(required)}")
    return rows


def _check_header(path: Path, line: int, header: list[str], required: Sequence[str], known: list[str]) -> None:
    for column in header:
        if column not in known:
            close = difflib.get_close_matches(column, known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(path, f"unknown column {column!r}{hint}; the columns are "
                                  f"{', '.join(known)}", line=line)
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise DataError(path, f"column {dupes[0]!r} appears twice", line=line)
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(path, f"the header must name the columns {', '.join(required)}; missing "
                              f"{', '.join(missing)} (is the first line a header?)", line=line)


def suggest(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for a close match among `known`, else ''."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
