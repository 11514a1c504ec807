"""``harness results supersede``: move the rows no table reads, because a later measurement of the
same thing replaced them, out of the store into a labelled side store, so that a plain average of
``results.csv`` is what the tables show.

**Which rows** (the tables' own rule, :func:`harness.tables.cells.pick_cell`, applied to every
measurement of the store whether a table shows it or not): rows are grouped by what they measure
(dataset, preset, protocol, split, metric, method, variant, encoder, modality, evaluated checkpoint,
fused or not, and the ``extra`` values the protocols' measures split columns or select rows by, such
as the detection variant and θ). In each group the configuration (config hash; rows without one:
their recording date) whose newest row is the latest is kept; the rows of every other configuration
are **an older configuration**, and within the kept one every row but the latest per (pretraining
seed, protocol seed) is **re-measured**. Sweep rows (``extra.overrides``: Figure 4's α points) are
never moved; neither is a line that is not a complete row (``harness results check --repair``).

**Where** (``<store>/superseded/``): ``older-configurations.csv``, a store-format file holding the rows
unchanged (``harness results add`` brings them back), and ``older-configurations.md``, one section per
move listing each configuration moved, why, and the configuration that replaced it. The side file is
written before the store is rewritten without the rows, under the store's lock: a crash in between
leaves a row in both (a second move skips the rows the side file already has), never in neither.
Per-sample predictions stay in ``<store>/predictions/``.
"""

from __future__ import annotations

import datetime as _dt
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from .. import atomic
from ..results import COLUMNS, STORE_NAME, check_header, parse_store, read_store, rows_csv
from ..results.store import _store_lock
from .model import MEASURES
from .store_frame import prepare_store

SIDE_FOLDER = "superseded"
SIDE_NAME = "older-configurations.csv"
LISTING_NAME = "older-configurations.md"
OLDER = "an older configuration"
REMEASURED = "re-measured: a later row of the same configuration and seeds"
_KEY = ("dataset", "preset", "protocol", "split", "metric", "method", "variant", "encoder", "modality", "_checkpoint",
        "_fused")


@dataclass
class Moved:
    line: int
    reason: str  # OLDER or REMEASURED
    kept: str  # the configuration that replaced it (config hash, or "date:<date>")
    kept_date: str


@dataclass
class SupersedeReport:
    path: Path
    moved: list[Moved] = field(default_factory=list)
    side: Path | None = None
    listing: Path | None = None
    already: int = 0  # rows the side file already held (a move interrupted before)
    dry_run: bool = False


def _extra_keys() -> list[str]:
    keys = {m.sub_key for m in MEASURES.values() if m.sub_key}
    keys |= {k for m in MEASURES.values() for k, _ in m.extra_equals}
    return sorted(keys)


def superseded(df: pd.DataFrame) -> dict[int, Moved]:
    """The store lines (of a :func:`prepare_store` frame) the tables' rule never reads, and why."""
    rows = df[~df["_sweep"].astype(bool)].copy()
    if rows.empty:
        return {}
    extra_keys = _extra_keys()
    for k in extra_keys:
        rows[f"_x_{k}"] = [str(e.get(k, "")) for e in rows["_extra"]]
    rows["_group"] = [h if h else f"date:{d}" for h, d in zip(rows["config_hash"], rows["date"])]
    rows["_seedkey"] = rows["_seed"].astype(object).where(rows["_seed"].notna(), rows["seed"].astype(str))
    out: dict[int, Moved] = {}
    for _, g in rows.groupby(list(_KEY) + [f"_x_{k}" for k in extra_keys], sort=False, dropna=False):
        latest = g.groupby("_group").agg(date=("date", "max"), line=("_line", "max")).sort_values(["date", "line"])
        kept = latest.index[-1]
        kept_date = str(latest["date"].iloc[-1])
        for line in g.loc[g["_group"] != kept, "_line"]:
            out[int(line)] = Moved(int(line), OLDER, str(kept), kept_date)
        chosen = g[g["_group"] == kept].sort_values(["date", "_line"])
        last = chosen.groupby(["_pseed", "_seedkey"], sort=False, dropna=False).tail(1)["_line"]
        for line in set(chosen["_line"]) - set(last):
            out[int(line)] = Moved(int(line), REMEASURED, str(kept), kept_date)
    return out


def _row_key(values: dict[str, str]) -> tuple[str, ...]:
    return tuple(str(values[c]) for c in COLUMNS)


def _listing(moved: list[Moved], by_line: dict[int, dict[str, str]], store: Path) -> str:
    groups: dict[tuple, list[Moved]] = defaultdict(list)
    for m in moved:
        v = by_line[m.line]
        groups[(v["dataset"], v["preset"], v["protocol"], v["method"], v["variant"], v["encoder"], v["modality"],
                v["split"], v["config_hash"] or "—", m.reason, m.kept, m.kept_date)].append(m)
    table = []
    for key, ms in sorted(groups.items()):
        dates = sorted(by_line[m.line]["date"] for m in ms)
        steps = sorted({by_line[m.line]["steps"] for m in ms})
        table.append((*key[:9], str(len(ms)), f"{dates[0][:10]} – {dates[-1][:10]}", "/".join(steps), key[9],
                      f"{key[10]} ({key[11][:10]})"))
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return "\n".join([
        f"## {stamp}: {len(moved)} row(s) moved from `{store.name}/{STORE_NAME}`", "",
        tabulate(table, headers=["dataset", "preset", "protocol", "method", "variant", "encoder", "modality", "split",
                                 "config", "rows", "measured", "steps", "why", "kept instead (newest row)"],
                 tablefmt="github", disable_numparse=True), "", ""])


def supersede_store(store_dir: str | Path, *, dry_run: bool = False) -> SupersedeReport:
    """Move the superseded rows of ``store_dir/results.csv`` to ``store_dir/superseded/`` (see the module)."""
    store_dir = Path(store_dir)
    path = store_dir / STORE_NAME
    report = SupersedeReport(path, dry_run=dry_run)
    if not path.exists():
        return report
    with _store_lock(store_dir):
        read = read_store(store_dir)
        check_header(read)
        df = prepare_store(read.frame(), [x.number for x in read.rows])
        found = superseded(df)
        report.moved = [found[k] for k in sorted(found)]
        if not found or dry_run:
            return report
        by_line = {x.number: x.values for x in read.rows}
        side = store_dir / SIDE_FOLDER / SIDE_NAME
        have: set[tuple[str, ...]] = set()
        if side.exists():
            old = parse_store(side, side.read_bytes())
            check_header(old)
            have = {_row_key(x.values) for x in old.rows}
        new = [by_line[m.line] for m in report.moved if _row_key(by_line[m.line]) not in have]
        report.already = len(report.moved) - len(new)
        if side.exists():
            atomic.append_text(side, rows_csv(new, header=False))
        else:
            atomic.write_text(side, rows_csv(new))
        listing = side.with_name(LISTING_NAME)
        head = "" if listing.exists() else (
            "# Rows moved out of the results store by `harness results supersede`\n\n"
            f"Generated (appended to) by `harness results supersede`; the rows are in `{SIDE_NAME}`, unchanged. "
            "Each section lists the configurations moved, why (an older configuration of the same measurement, or "
            "re-measured rows of the kept one), and the configuration the tables read instead.\n\n")
        atomic.append_text(listing, head + _listing(report.moved, by_line, store_dir))
        keep = [rows_csv([], header=True)]
        for x in read.lines:
            if x.kind == "row" and x.number not in found:
                keep.append(rows_csv([x.values], header=False))
            elif x.kind in ("bad", "unread"):
                keep.append(x.text + "\n")
        atomic.write_bytes(path, "".join(keep).encode("utf-8"))
        report.side, report.listing = side, listing
    return report
