"""Reading the store line by line: the trusted rows and, with their line numbers, the lines that
are not complete rows (see :mod:`harness.results.store`)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .row import COLUMNS, INT_COLUMNS, StoreError, header_problem, row_problem, upgrade_row

STORE_NAME = "results.csv"
# the committed campaign store: `harness reproduce` writes it and `harness tables`, `harness results`
# read it by default; `harness run` writes the user's own store, <workdir>/results (RunConfig.results)
CAMPAIGN_STORE = "results"


@dataclass
class StoreProblem:
    line: int  # 1-based line of results.csv
    what: str  # what is wrong, in words
    text: str  # the line as it is in the file (without its newline)

    def describe(self) -> str:
        return f"line {self.line}: {self.what}"

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "what": self.what, "text": self.text}


def _split_fields(text: str) -> list[str] | str:
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        return f"not a CSV row ({exc})"
    return rows[0] if rows else []


@dataclass
class StoreLine:
    number: int
    text: str
    kind: str  # header | row | bad | blank | unread (below an unknown header)
    values: dict[str, str] | None = None  # a row in today's columns
    problem: str | None = None


@dataclass
class StoreRead:
    """A store, line by line: the rows that can be trusted and the lines that cannot."""

    path: Path
    lines: list[StoreLine]
    header: list[str] | None = None
    header_error: str | None = None
    header_line: int = 1
    final_newline: bool = True

    @property
    def rows(self) -> list[StoreLine]:
        return [x for x in self.lines if x.kind == "row"]

    @property
    def problems(self) -> list[StoreProblem]:
        return [StoreProblem(x.number, x.problem or "", x.text) for x in self.lines if x.kind == "bad"]

    @property
    def upgradable(self) -> bool:
        """Its header is an older column set (the next write rewrites it under today's)."""
        return self.header is not None and self.header_error is None and self.header != COLUMNS

    def frame(self) -> pd.DataFrame:
        """The trusted rows as strings (today's columns)."""
        return pd.DataFrame([x.values for x in self.rows], columns=COLUMNS, dtype=object)

    def typed(self) -> pd.DataFrame:
        """The trusted rows with numbers: value float (empty: NaN), the seed, epoch and step columns int."""
        df = self.frame()
        if df.empty:
            return pd.DataFrame(columns=COLUMNS)
        df["value"] = [float(v) if v.strip() else math.nan for v in df["value"]]
        for col in INT_COLUMNS:
            df[col] = pd.array([int(v) for v in df[col]], dtype="int64")
        return df


def parse_store(path: Path, data: bytes) -> StoreRead:
    """Check ``data`` (the bytes of ``path``) line by line; see the module docstring."""
    read = StoreRead(path, [], final_newline=not data or data.endswith(b"\n"))
    chunks = data.split(b"\n")
    if chunks and chunks[-1] == b"":
        chunks.pop()
    for number, raw in enumerate(chunks, 1):
        try:
            text = raw.decode("utf-8").removesuffix("\r")
        except UnicodeDecodeError:
            read.lines.append(StoreLine(number, raw.decode("utf-8", "replace"), "bad",
                                        problem="not UTF-8 text (binary garbage from a torn write?)"))
            continue
        if not text.strip():
            read.lines.append(StoreLine(number, text, "blank"))
            continue
        values = _split_fields(text)
        if read.header is None and read.header_error is None:  # the first line with content
            if isinstance(values, str):
                read.header_error = values
            else:
                read.header = values
                read.header_error = header_problem(values)
            read.header_line = number
            read.lines.append(StoreLine(number, text, "header", problem=read.header_error))
            continue
        if read.header_error is not None:  # rows under an unknown header cannot be placed in columns
            read.lines.append(StoreLine(number, text, "unread"))
            continue
        if values == read.header:
            problem = "the header again (two stores put one after the other?)"
        else:
            problem = values if isinstance(values, str) else row_problem(values, read.header)
        if problem:
            read.lines.append(StoreLine(number, text, "bad", problem=problem))
            continue
        row = dict(zip(read.header, values))
        read.lines.append(StoreLine(number, text, "row", upgrade_row(row) if read.header != COLUMNS else row))
    return read


def read_store(store_dir: str | Path) -> StoreRead:
    """The store ``store_dir/results.csv`` checked line by line (an absent file reads as empty)."""
    path = Path(store_dir) / STORE_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the results store ({exc.strerror or exc})") from None
    return parse_store(path, data)


def check_header(read: StoreRead) -> None:
    """Refuse to write under a header this version does not know (its rows would land in wrong columns)."""
    if read.header_error is not None:
        raise StoreError(f"{read.path}: line {read.header_line} is {read.header_error}. Rows cannot be added to "
                         f"it; fix or move "
                         f"that file (`harness results check --results {read.path.parent}` lists what it holds)")


def load_results(store_dir: str | Path) -> pd.DataFrame:
    """The trusted rows of the store (see :func:`read_store`); lines that fail the checks are left
    out and listed in ``df.attrs["store_problems"]`` (dicts: line, what, text)."""
    read = read_store(store_dir)
    if read.header_error is not None:
        df = pd.DataFrame(columns=COLUMNS)
        df.attrs["store_problems"] = [StoreProblem(read.header_line, read.header_error, "").as_dict()]
        return df
    df = read.typed()
    df.attrs["store_problems"] = [p.as_dict() for p in read.problems]
    return df
