"""The markdown under a table that says how its intervals were made and lists every tested
difference from an untrained floor (:mod:`harness.tables.statistics`; docs/statistics.md)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from tabulate import tabulate

from . import statistics
from .model import ABOVE_FLOOR, BELOW_FLOOR, MEASURES, TIE_FLOOR, MeasuredColumn

if TYPE_CHECKING:  # pragma: no cover
    from .build import BuiltTable

RESULT = {statistics.ABOVE: f"{ABOVE_FLOOR} above", statistics.BELOW: f"{BELOW_FLOOR} below",
          statistics.TIE: TIE_FLOOR}


def column_label(col: MeasuredColumn) -> str:
    sub = f", {col.sub}" if col.sub else ""
    return f"{MEASURES[col.measure].label} ({col.split}{sub})"


def _method_text(method: str, n_test: int, proportion: bool) -> str:
    text = statistics.describe(method)
    if method == "t+binomial":
        return f"{text}, n_test = {n_test} (the store's count of the split's test samples)"
    if method == "t" and proportion:
        return f"{text} (the store records no size of this test set)"
    if method == "t":
        return f"{text} (not a proportion of test samples)"
    return text


def interval_notes(t: "BuiltTable") -> list[str]:
    """One line per measured column: how many cells got which interval, and the cells without one."""
    lines = []
    for col in t.measured_columns:
        measure = MEASURES[col.measure]
        cells = [c for (_, x), c in list(t.cells.items()) + list(t.floors.items()) if x == col and c.values]
        if not cells:
            continue
        kinds = Counter((c.interval.method, c.interval.n_test) for c in cells if c.interval is not None)
        parts = [f"{_method_text(m, n, measure.proportion)}: {k} cell(s)" for (m, n), k in sorted(kinds.items())]
        single = sum(c.interval is None for c in cells)
        if single:
            parts.append(f"n=1, no interval: {single} cell(s)")
        lines.append(f"- {column_label(col)}: {'; '.join(parts)}")
    if not lines:
        return []
    return ["**Intervals** (95 %; docs/statistics.md)", "", *lines, ""]


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def differences_markdown(t: "BuiltTable") -> list[str]:
    """Every tested difference method − floor: Δ in the table's units, its 95 % interval, p, the seeds
    paired and the test; column by column, in the table's row order."""
    out = []
    for col in t.measured_columns:
        scale = MEASURES[col.measure].scale
        for (label, x), cell in t.cells.items():
            v = cell.versus
            if x != col or v is None:
                continue
            how = ("paired " if v.paired else "Welch ") + v.method
            out.append((label, column_label(col), f"{scale * v.estimate:+.1f}",
                        f"[{scale * v.lo:+.1f}, {scale * v.hi:+.1f}]", _p(v.p), str(v.n), how, RESULT[v.verdict]))
    if not out:
        return []
    table = tabulate(out, headers=["row", "measure (split)", "Δ method − floor", "95 % interval", "p", "seeds",
                                   "test", "result"], tablefmt="github", disable_numparse=True)
    return ["**Differences from the untrained floor** (the marks in the table; in the table's units, "
            "% points for accuracies; `seeds`: pretraining seeds paired, or the smaller side for Welch's t; "
            "`t`: a t-test over pretraining seeds given this test set, `bootstrap` / `t+bootstrap`: paired by test "
            "sample too, from per-sample predictions; docs/statistics.md)", "", table, ""]
