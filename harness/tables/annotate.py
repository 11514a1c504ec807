"""What the store knows about a cell beyond its values: the size of its test set, whether the
backbone's features collapsed, the cell's 95 % interval and the paired test against its untrained
floor (:mod:`harness.tables.statistics`; docs/statistics.md).

Read from the store's own rows, by conventions any protocol may follow:

* **test-set size**: a row whose ``extra`` says ``part: "test"`` and ``samples: N`` (the collapse
  diagnostics record what they measured on) gives N for its dataset, split and
  ``extra.dataset_subset``; the newest such row counts. Per-sample predictions, where the rows have
  them, give it exactly and replace the binomial term by a bootstrap.
* **collapse**: a row whose ``extra`` has ``collapsed`` (true or false) speaks for its backbone: the
  same dataset, preset, method, variant, encoder, modality, split, evaluated checkpoint and
  pretraining seed; the newest such row counts. Every cell read from such a backbone with
  ``collapsed: true`` is marked with how many of its pretraining seeds collapsed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import statistics
from .cells import Cell
from .model import Measure

_BACKBONE = ("dataset", "preset", "method", "variant", "encoder", "modality", "split", "_checkpoint")


def _backbone_key(row: dict[str, Any]) -> tuple:
    return tuple(str(row[c]) for c in _BACKBONE) + (int(row["_pseed"]),)


@dataclass
class StoreFacts:
    store_dir: Path | None
    test_sizes: dict[tuple[str, str, str], int]  # (dataset, split, subset) → test samples
    collapsed: dict[tuple, bool]  # backbone key → its features collapsed
    cache: dict = field(default_factory=dict)  # predictions read once per table

    @classmethod
    def of(cls, df: pd.DataFrame, store_dir: str | Path | None = None) -> "StoreFacts":
        sizes: dict[tuple[str, str, str], int] = {}
        collapsed: dict[tuple, bool] = {}
        if not df.empty:
            rows = df[~df["_sweep"].astype(bool)].sort_values(["date", "_line"])
            for r in rows.to_dict("records"):
                extra = r["_extra"]
                if extra.get("part") == "test" and isinstance(extra.get("samples"), int) and extra["samples"] > 0:
                    sizes[(r["dataset"], r["split"], str(extra.get("dataset_subset", "")))] = int(extra["samples"])
                if "collapsed" in extra and not pd.isna(r["_pseed"]):
                    collapsed[_backbone_key(r)] = bool(extra["collapsed"])
        return cls(Path(store_dir) if store_dir is not None else None, sizes, collapsed)

    def n_test(self, cell: Cell, dataset: str, split: str) -> int:
        return self.test_sizes.get((dataset, split, cell.subset), 0)


def annotate(cell: Cell, measure: Measure, dataset: str, split: str, facts: StoreFacts) -> None:
    """The cell's collapsed seeds and its interval (bootstrap where every row has predictions)."""
    if not cell.values:
        return
    cell.collapsed = sorted({seed for seed, rows in cell.records.items()
                             if any(facts.collapsed.get(_backbone_key(r)) for r in rows)})
    if measure.proportion:
        sm = statistics.seed_matrix(facts.store_dir, cell.records, facts.cache)
        if sm is not None and sm.seeds == cell.seeds:
            cell.per_sample = sm
            cell.interval = statistics.matrix_interval(sm.matrix, bounds=(0.0, 1.0))
            return
    cell.interval = statistics.seed_interval(cell.values, n_test=facts.n_test(cell, dataset, split),
                                             proportion=measure.proportion)


def compare(cell: Cell, floor: Cell) -> None:
    """``cell.versus``: the difference cell − floor, paired by pretraining seed (and by test sample
    where both have predictions), with its interval and p-value; None when it cannot be tested."""
    if not cell.values or not floor.values:
        return
    if cell.per_sample is not None and floor.per_sample is not None:
        d = cell.per_sample.paired_with(floor.per_sample)
        if d is not None:
            cell.versus = statistics.matrix_interval(d)
            return
    common = [s for s in cell.seeds if s in floor.seeds]  # without predictions: over seeds, given the test set
    if len(common) >= 2:
        mine = [cell.values[cell.seeds.index(s)] for s in common]
        theirs = [floor.values[floor.seeds.index(s)] for s in common]
        cell.versus = statistics.paired_difference(mine, theirs)
    else:
        cell.versus = statistics.welch_difference(cell.values, floor.values)
